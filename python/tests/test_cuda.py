"""CUDA tensors through bnf-driver's kernels on torch's stream, against the CPU path (bnf-core)
on the same inputs. They need a CUDA device and a build with the `cuda` feature
(``MATURIN_PEP517_ARGS="--features cuda" pip install ./python``); otherwise each is reported
skipped, never passed. Tolerances: the kernels reduce in a different order than core, so f32
results agree to 1e-5 relative and f16/bf16 gradients to one unit in their last place."""

import pytest
import torch

import bnf
from conftest import make_batch, tol

needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and bnf.cuda_built()),
    reason="needs a CUDA device and bnf built with --features cuda",
)


@needs_cuda
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bnf_cuda_matches_cpu(dtype, reduction):
    for V in (1, 13, 32000):
        logits, labels, ref, pref = make_batch(B=4, T=17, V=V, dtype=dtype, seed=V)
        cpu = bnf.bnf_loss(logits, labels, ref, preference=pref, reduction=reduction)
        (g_cpu,) = torch.autograd.grad(cpu.sum(), logits)
        x = logits.detach().cuda().requires_grad_()
        gpu = bnf.bnf_loss(x, labels.cuda(), ref.cuda(), preference=pref.cuda(), reduction=reduction)
        (g_gpu,) = torch.autograd.grad(gpu.sum(), x)
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)
        rtol, atol = tol(dtype)
        torch.testing.assert_close(g_gpu.cpu().float(), g_cpu.float(), rtol=rtol, atol=atol * g_cpu.float().abs().max())


@needs_cuda
def test_objectives_and_reference_on_cuda():
    logits, labels, ref, pref = make_batch(B=4, seed=3)
    for name in ("dpo", "simpo", "kto"):
        kw = {"preference": pref} if name == "kto" else {}
        cpu = bnf.objective_loss(name, logits, labels, ref, **kw)
        gpu = bnf.objective_loss(name, logits.cuda(), labels.cuda(), ref.cuda(),
                                 **{k: v.cuda() for k, v in kw.items()})
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bnf.reference_logps(logits.cuda(), labels=labels.cuda()).cpu(),
                               bnf.reference_logps(logits, labels=labels), rtol=1e-5, atol=1e-6)


@needs_cuda
def test_cuda_errors_name_the_index():
    logits, labels, ref, _ = make_batch(B=4, T=9, V=13)
    x = logits.detach().clone()
    x[2, 4, 7] = float("nan")
    with pytest.raises(ValueError, match=r"logits\[2, 4, 7\] = nan"):
        bnf.bnf_loss(x.cuda(), labels.cuda(), ref.cuda())
    bad = labels.clone()
    bad[1, 3] = 13
    with pytest.raises(ValueError, match=r"labels\[1, 3\] = 13"):
        bnf.bnf_loss(logits.cuda(), bad.cuda(), ref.cuda())


@needs_cuda
def test_cuda_compile_fullgraph():
    logits, labels, ref, pref = make_batch(seed=5, device="cuda")
    step = torch.compile(lambda x: bnf.bnf_loss(x, labels, ref, preference=pref), fullgraph=True)
    torch.testing.assert_close(step(logits), bnf.bnf_loss(logits, labels, ref, preference=pref))
