"""Every bad input is refused before any work, with an error that names the argument, the
index and the value; nothing is computed from a wrong shape."""

import re

import pytest
import torch

import bnf
from conftest import make_batch


def raises(exc, pattern, fn, *a, **kw):
    with pytest.raises(exc, match=pattern) as info:
        fn(*a, **kw)
    return str(info.value)


def test_dtypes_and_types():
    logits, labels, ref, pref = make_batch()
    raises(TypeError, r"float32, float16 or bfloat16, got torch.float64 \(cast with logits.float\(\)\)",
           bnf.bnf_loss, logits.double(), labels, ref)
    msg = raises(TypeError, "got torch.int64", bnf.bnf_loss, labels, labels, ref)
    assert "float64" not in msg
    raises(TypeError, "logits must be a torch.Tensor, got list", bnf.bnf_loss, [[0.0]], labels, ref)
    raises(TypeError, "labels must be an integer tensor.*float32", bnf.bnf_loss, logits, labels.float(), ref)
    raises(TypeError, "ref_logps must be a floating tensor, got torch.int64", bnf.bnf_loss, logits, labels, labels)
    raises(TypeError, "pairs must be an integer tensor", bnf.objective_loss, "dpo", logits, labels, ref,
           pairs=torch.zeros(2, 2))
    raises(TypeError, "hyperparameter beta must be a number, got str", bnf.objective_loss, "dpo", logits, labels,
           ref, beta="0.1")


def test_shapes():
    logits, labels, ref, pref = make_batch(B=4, T=9, V=13)
    raises(ValueError, r"logits must be \(B, T, V\) or \(N, V\), got shape \(1, 4, 9, 13\)", bnf.bnf_loss,
           logits[None], labels, ref)
    raises(ValueError, r"logits has no sequence positions \(T = 0\)", bnf.bnf_loss, logits[:, :0],
           labels[:, :0], ref[:, :0])
    raises(ValueError, r"logits has no rows \(N = 0\)", bnf.bnf_loss, logits[0, :0], labels[0, :0], ref[0, :0])
    raises(ValueError, r"labels has shape \(4, 8\) but logits \(4, 9, 13\) needs labels of shape \(4, 9\)",
           bnf.bnf_loss, logits, labels[:, :8], ref)
    raises(ValueError, r"ref_logps has shape \(4, 8\); it needs the labels' shape \(4, 9\)",
           bnf.bnf_loss, logits, labels, ref[:, 1:])
    raises(ValueError, r"preference has shape \(3,\); it needs one value per sequence: \(4,\)",
           bnf.bnf_loss, logits, labels, ref, preference=pref[:3])
    raises(ValueError, "empty vocabulary", bnf.bnf_loss, logits[..., :0], labels, ref)
    raises(ValueError, r"pairs must be \(P, 2\)", bnf.objective_loss, "dpo", logits, labels, ref,
           pairs=torch.zeros(2, 3, dtype=torch.int64))
    raises(ValueError, "even number of sequences, got 3", bnf.objective_loss, "dpo", logits[:3], labels[:3], ref[:3])
    raises(ValueError, re.escape("pairs[0, 1] = 4 is not a sequence index in [0, 4)"), bnf.objective_loss,
           "dpo", logits, labels, ref, pairs=torch.tensor([[0, 4]]))
    raises(ValueError, re.escape("pairs[1, 0] = -1 is not a sequence index"), bnf.objective_loss,
           "dpo", logits, labels, ref, pairs=torch.tensor([[0, 1], [-1, 3]]))


def test_options_and_objectives():
    logits, labels, ref, _ = make_batch()
    raises(ValueError, r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'",
           bnf.bnf_loss, logits, labels, ref, reduction="avg")
    raises(ValueError, 'unknown objective "dp0"', bnf.objective_loss, "dp0", logits, labels, ref)
    raises(ValueError, "objective dpo has no hyperparameter \"tau\" \\(its hyperparameters: beta\\)",
           bnf.objective_loss, "dpo", logits, labels, ref, tau=0.1)
    msg = raises(ValueError, r"objective dpo: beta = -1 is out of range", bnf.objective_loss, "dpo", logits,
                 labels, ref, beta=-1.0)
    assert not msg.startswith("(")  # a sentence, not an args tuple
    raises(ValueError, "lambda is given twice", bnf.objective_loss, "orpo", logits, labels, lambda_=0.1,
           **{"lambda": 0.2})
    raises(TypeError, "ignore_index must be an int, got -100.0", bnf.bnf_loss, logits, labels, ref,
           ignore_index=-100.0)
    raises(TypeError, "shift must be True, False or None, got 'yes'", bnf.bnf_loss, logits, labels, ref,
           shift="yes")
    raises(ValueError, "ref_logps is required", bnf.objective_loss, "dpo", logits, labels)
    raises(ValueError, "ref_logps is required", bnf.bnf_loss, logits, labels, None)
    raises(ValueError, "objective bnf has no hyperparameter", bnf.ObjectiveLoss, "bnf", beta=1.0)


def test_label_values():
    logits, labels, ref, pref = make_batch(B=4, T=9, V=13)
    bad = labels.clone()
    bad[2, 5] = 13
    raises(ValueError, re.escape("labels[2, 5] = 13 is not a token id: it must be in [0, 13)"),
           bnf.bnf_loss, logits, bad, ref)
    bad[2, 5] = -7
    raises(ValueError, re.escape("labels[2, 5] = -7 is not a token id"), bnf.bnf_loss, logits, bad, ref)
    huge = labels.clone()
    huge[1, 4] = 2**32 + 1  # would wrap to a valid id as a 32-bit integer
    raises(ValueError, re.escape("labels[1, 4] = 4294967297"), bnf.bnf_loss, logits, huge, ref)
    # Without the shift, the row index is the label index.
    bad = labels.clone()
    bad[0, 8] = 99
    raises(ValueError, re.escape("labels[0, 8] = 99"), bnf.bnf_loss, logits, bad, ref, shift=False)
    # Flat (N, V) input names a 1-D index.
    raises(ValueError, re.escape("labels[8] = 99"), bnf.bnf_loss, logits[0], bad[0], ref[0], shift=False)


def test_empty_sequence():
    logits, labels, ref, _ = make_batch(B=4, T=9, V=13)
    labels[3, 1:] = -100
    raises(ValueError, "sequence 3 has no scored label: every label after the causal shift is ignore_index",
           bnf.bnf_loss, logits, labels, ref)
    raises(ValueError, "sequence 3", bnf.objective_loss, "dpo", logits, labels, ref)


def test_reference_values():
    logits, labels, ref, _ = make_batch(B=4, T=9, V=13)
    r = ref.clone()
    r[1, 6] = 0.5
    raises(ValueError, re.escape("ref_logps[1, 6] = 0.5 is not a log-probability"), bnf.bnf_loss, logits, labels, r)
    r[1, 6] = float("nan")
    raises(ValueError, re.escape("ref_logps[1, 6] = nan"), bnf.bnf_loss, logits, labels, r)
    # -inf (the reference gives the label no mass) is valid for BNF (c = 1), not for DPO.
    r[1, 6] = float("-inf")
    assert torch.isfinite(bnf.bnf_loss(logits, labels, r))
    raises(ValueError, re.escape("ref_logps[1, 6] = -inf"), bnf.objective_loss, "dpo", logits, labels, r)
    # Values at ignored positions are never read (the fixture holds NaN there).
    assert torch.isnan(ref[0, 0]) and torch.isfinite(bnf.bnf_loss(logits, labels, ref))


def test_preference_values():
    logits, labels, ref, pref = make_batch(B=4)
    p = pref.clone()
    p[2] = float("inf")
    raises(ValueError, re.escape("preference[2] is not usable (its row weight is inf)"), bnf.bnf_loss, logits, labels, ref, preference=p)
    p[2] = 0.0
    raises(ValueError, re.escape("preference[2] is not usable"), bnf.bnf_loss, logits, labels, ref, preference=p)
    raises(ValueError, "sequence 2", bnf.objective_loss, "kto", logits, labels, ref, preference=p)
    raises(ValueError, "rejected response is not labelled dispreferred", bnf.objective_loss, "dpo",
           logits, labels, ref, preference=torch.ones(4))


def test_non_finite_logits_name_position_and_column():
    logits, labels, ref, _ = make_batch(B=4, T=9, V=13)
    x = logits.detach().clone()
    x[2, 4, 7] = float("nan")
    raises(ValueError, re.escape("logits[2, 4, 7] = nan"), bnf.bnf_loss, x, labels, ref)
    x[2, 4, 7] = float("inf")
    raises(ValueError, re.escape("logits[2, 4, 7] = inf"), bnf.nll_loss, x, labels)
    # The target's logit at -inf (pi_y = 0) has no finite log-prob.
    x = logits.detach().clone()
    y = int(labels[1, 5])
    x[1, 4, y] = float("-inf")
    raises(ValueError, re.escape(f"logits[1, 4, {y}] = -inf"), bnf.bnf_loss, x, labels, ref)
    # NaN at a position that scores nothing is not read.
    x = logits.detach().clone()
    x[0, 8] = float("nan")
    assert torch.isfinite(bnf.bnf_loss(x, labels, ref))


def test_finite_logits_that_overflow_are_named_as_overflow_not_as_non_finite():
    # A row whose finite logits span more than f32 (3e38 - (-1e38)) has a log-prob of its
    # target beyond f32: an overflow, named at the caller's label index, never "non-finite".
    logits, labels, ref, _ = make_batch(B=2, T=5, V=7)
    x = logits.detach().clone()
    y = int(labels[1, 3])
    x[1, 2] = 0.0
    x[1, 2, (y + 1) % 7] = 3e38
    x[1, 2, y] = -1e38
    msg = raises(ValueError, re.escape("labels[1, 3]"), bnf.nll_loss, x, labels)
    assert "overflow" in msg and "finite or -inf" not in msg, msg


def test_devices():
    logits, labels, ref, _ = make_batch()
    raises(ValueError, "logits must be on a CPU or CUDA device, got meta", bnf.bnf_loss,
           torch.empty(4, 9, 13, device="meta"), labels, ref)
    raises(ValueError, "labels is on meta but logits are on cpu", bnf.bnf_loss, logits,
           labels.to("meta"), ref)
    raises(ValueError, "ref_logps is on meta but labels are on cpu", bnf.bnf_loss, logits, labels,
           ref.to("meta"))


def test_nothing_written_on_error():
    logits, labels, ref, _ = make_batch()
    before = logits.detach().clone()
    bad = labels.clone()
    bad[0, 4] = 99
    with pytest.raises(ValueError):
        bnf.bnf_loss(logits, bad, ref).backward()
    assert logits.grad is None and torch.equal(logits.detach(), before)


def test_a_build_without_cuda_says_so():
    """The native CUDA entry of a build without the cuda feature refuses with the fix (checked
    on the entry itself, so that it runs without a GPU)."""
    from bnf import _native

    if bnf.cuda_built():
        pytest.skip("this build has CUDA")
    with pytest.raises(RuntimeError, match=r"built without CUDA: reinstall with .*--features cuda"):
        _native.cuda_row_loss(0, "float32", 0, 0, 1, 0, 0, 0, 0, 1.0, 0, 0, 0, 0)


def test_cuda_needs_a_cuda_build_or_says_so():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if bnf.cuda_built():
        pytest.skip("this build has CUDA (tests/test_cuda.py covers it)")
    logits, labels, ref, _ = make_batch(device="cuda")
    raises(RuntimeError, "built without CUDA", bnf.bnf_loss, logits, labels, ref)
