"""Shared fixtures: random batches with prompts, padding and both preferences."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def make_batch(B=4, T=9, V=13, dtype=torch.float32, seed=0, scale=3.0, device="cpu"):
    """Logits (requires grad), labels with a prompt and right padding per sequence
    (ignore_index), per-label reference log-probs, and alternating preferences."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, T, V, generator=g) * scale).to(dtype)
    labels = torch.randint(0, V, (B, T), generator=g)
    for b in range(B):
        prompt = 1 + b % 3
        pad = b % 2
        labels[b, :prompt] = -100
        if pad:
            labels[b, T - pad :] = -100
    ref_logits = torch.randn(B, T, V, generator=g) * scale
    ref = torch.log_softmax(ref_logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    ref = torch.where(labels == -100, torch.nan, ref)  # never read where ignored
    pref = torch.tensor([1.0 if b % 2 == 0 else -1.0 for b in range(B)])
    return logits.to(device).requires_grad_(), labels.to(device), ref.to(device), pref.to(device)


def tol(dtype):
    """(rtol, atol) for a gradient of ``dtype`` against a float32 reference."""
    return {torch.float32: (1e-4, 1e-6), torch.float16: (2e-3, 2e-5), torch.bfloat16: (1.6e-2, 2e-4)}[dtype]


@pytest.fixture(params=DTYPES, ids=lambda d: str(d).split(".")[-1])
def dtype(request):
    return request.param
