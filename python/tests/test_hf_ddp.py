"""A 2-process DDP run of BNFTrainer (torchrun, gloo on CPU) ends with the parameters of the
1-process run with the same global batch.

Setup (hf_ddp_worker.py): 32 pairs at pairing ratio 0.5 (so the two processes hold unequal
numbers of responses in most steps, which a per-process mean would get wrong), 4 SGD steps at
learning rate 0.5 with a global batch of 4 rows: 1 process x 4, or 2 processes x 2.

Tolerance: 1e-5 absolute on every parameter (they are O(1); SGD moves them by more than 1e-2
here, which the test checks). The two runs compute the same sums in another order: the
gradient is gloo's average of two half-batch gradients instead of one batch's, and each
process pads to its own longest sequence, which changes the matmul shapes (and blocking) of
the forward passes and of the reference pass. Each is float32 rounding, ~1e-7 relative per
step; over 4 steps of lr 0.5 on O(1) gradients that stays ~1e-6 (measured here: 1.2e-7). A
wrong global mean (a per-process mean, or a missing factor of the process count) moves the
parameters apart by ~1e-2.
"""

import os
import socket
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "hf_ddp_worker.py")
TOL = 1e-5


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([HERE] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def test_two_process_ddp_matches_one_process(tmp_path):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    common = ["0.5", "0.5", "sgd"]  # pairing ratio, learning rate, optimizer
    _run([sys.executable, WORKER, str(one), "4", *common], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(_free_port()), WORKER, str(two), "2", *common], tmp_path)
    a, b = torch.load(one), torch.load(two)
    assert (a["world"], b["world"]) == (1, 2)
    losses_a = [l["loss"] for l in a["log"] if "loss" in l]
    losses_b = [l["loss"] for l in b["log"] if "loss" in l]
    assert len(losses_a) == 4 and losses_a == pytest.approx(losses_b, rel=1e-5, abs=1e-6)
    moved = max((a["params"][k] - a["init"][k]).abs().max().item() for k in a["params"])
    assert moved > 1e-2, moved
    diff = max((a["params"][k] - b["params"][k]).abs().max().item() for k in a["params"])
    print(f"max |1-process - 2-process| = {diff:.3g} (tolerance {TOL}), largest move {moved:.3g}")
    assert diff < TOL

