"""The README's PyTorch snippet runs as written (extracted from README.md, not copied)."""

import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_readme_pytorch_snippet_runs():
    text = open(README, encoding="utf-8").read()
    section = text.split("## PyTorch", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the PyTorch section has one python snippet"
    scope = {}
    exec(compile(blocks[0], "README.md (PyTorch)", "exec"), scope)
    loss = scope["loss"]
    assert loss.dim() == 0 and bool(loss.isfinite())
    assert scope["model"][1].weight.grad is not None  # backward reached the model
