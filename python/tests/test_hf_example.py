"""python/examples/align_hf.py runs: its built-in tiny default (no download), then for real use
on the model it saved (a local path) and a JSON Lines file of conversational unpaired data."""

import ast
import json
import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "align_hf.py")


def _run(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, EXAMPLE, *args], cwd=str(cwd), env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def test_example_default_then_a_model_path_and_a_data_file(tmp_path):
    out = _run(["--output-dir", str(tmp_path / "tiny"), "--max-steps", "16"], tmp_path)
    before = ast.literal_eval(out.split("before: ", 1)[1].splitlines()[0])
    after = ast.literal_eval(out.split("after: ", 1)[1].splitlines()[0])
    assert after["eval_loss"] < before["eval_loss"] and after["eval_accuracy"] > 0.5
    assert (tmp_path / "tiny" / "model.safetensors").exists()
    data = tmp_path / "prefs.jsonl"
    rows = [{"prompt": [{"role": "user", "content": f"{i}+1="}],
             "completion": [{"role": "assistant", "content": str(i + 1 + (i % 2))}], "label": i % 2 == 0}
            for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _run(["--model", str(tmp_path / "tiny"), "--data", str(data), "--output-dir", str(tmp_path / "real"),
          "--max-steps", "2", "--lr", "1e-3", "--fused-head"], tmp_path)
    assert (tmp_path / "real" / "model.safetensors").exists()
