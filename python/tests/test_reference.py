"""reference_logps: from logits and from a model (plain or Hugging Face-shaped), in chunks."""

import types

import torch

import bnf
import reference as R
from conftest import make_batch


def test_from_logits_every_dtype(dtype):
    logits, labels, _, _ = make_batch(dtype=dtype, seed=3)
    got = bnf.reference_logps(logits, labels=labels)
    assert got.shape == labels.shape and got.dtype == torch.float32 and not got.requires_grad
    want, mask = R.token_logps(logits.detach().float(), labels)
    torch.testing.assert_close(got[:, 1:], want, rtol=1e-5, atol=1e-5)
    assert (got[:, 0] == 0).all() and (got[:, 1:][~mask] == 0).all()


def test_from_a_model_in_chunks():
    logits, labels, _, _ = make_batch(B=5, seed=4)
    ids = labels.clamp(min=0)
    calls = []

    def model(input_ids, attention_mask=None):
        start = sum(calls)
        calls.append(input_ids.shape[0])
        assert attention_mask is not None and attention_mask.shape == input_ids.shape
        assert torch.equal(input_ids, ids[start : start + input_ids.shape[0]])
        rows = logits.detach()[start : start + input_ids.shape[0]]
        return types.SimpleNamespace(logits=rows)  # Hugging Face-shaped

    got = bnf.reference_logps(model, ids, labels, attention_mask=torch.ones_like(ids), batch_size=2)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(got, bnf.reference_logps(logits, labels=labels))


def test_a_model_returning_a_tensor():
    lin = torch.nn.Embedding(13, 13)
    ids = torch.randint(0, 13, (2, 6))
    got = bnf.reference_logps(lin, ids, ids)
    want, _ = R.token_logps(lin(ids).detach(), ids)
    torch.testing.assert_close(got[:, 1:], want)
    assert not got.requires_grad


def test_positional_logits_and_labels_and_batch_size():
    logits, labels, _, _ = make_batch(seed=6)
    torch.testing.assert_close(bnf.reference_logps(logits, labels), bnf.reference_logps(logits, labels=labels))
    import pytest

    with pytest.raises(ValueError, match="batch_size must be a positive int or None, got 0"):
        bnf.reference_logps(lambda ids: logits, labels, labels, batch_size=0)
