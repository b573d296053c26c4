"""The fused LM head + loss against the unfused loss on ``hidden @ weight.T + bias``: every
objective, reduction, chunk size and dtype, gradients for any subset of the inputs, tied
embeddings, torch.compile, opcheck, and a check (torch's profiler, which sees the allocations
inside the custom ops) that nothing of size B x T x V is allocated."""

import pytest
import torch

import bnf
from bnf.fused import chunk_rows

B, T, H, V = 4, 9, 6, 23


def head_batch(dtype=torch.float32, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, T, H, generator=g).to(dtype).requires_grad_()
    w = (torch.randn(V, H, generator=g) / 2).to(dtype).requires_grad_()
    b = (torch.randn(V, generator=g) / 2).to(dtype).requires_grad_() if bias else None
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[0, :2] = labels[1, :3] = labels[2, :1] = labels[3, :4] = -100
    labels[1, -1] = -100
    ref = -torch.rand(B, T, generator=g) * 4
    pref = torch.tensor([1.0, -1.0, 1.0, -1.0])
    return h, w, b, labels, ref, pref


def both(objective, dtype, reduction="mean", chunk=None, bias=True, seed=0, **kw):
    h, w, b, labels, ref, pref = head_batch(dtype, seed, bias)
    if objective in ("bnf", "nll", "kto"):
        kw.setdefault("preference", pref)
    inputs = [t for t in (h, w, b) if t is not None]
    fused = bnf.fused_linear_loss(h, w, labels, ref, objective=objective, bias=b, reduction=reduction,
                                  chunk_size=chunk, **kw)
    logits = h @ w.T if b is None else h @ w.T + b
    plain = bnf.objective_loss(objective, logits, labels, ref, reduction=reduction, **kw)
    up = torch.rand(fused.shape, generator=torch.Generator().manual_seed(1)) if fused.dim() else None
    gf = torch.autograd.grad(fused if up is None else (fused * up).sum(), inputs)
    gp = torch.autograd.grad(plain if up is None else (plain * up).sum(), inputs)
    return fused, plain, gf, gp


def close(a, b, dtype):
    rtol, atol = {torch.float32: (1e-5, 1e-6), torch.bfloat16: (2e-2, 2e-2), torch.float16: (5e-3, 5e-3)}[dtype]
    torch.testing.assert_close(a.float(), b.float(), rtol=rtol, atol=atol * max(1.0, float(b.detach().float().abs().max())))


@pytest.mark.parametrize("objective", ["bnf", "nll", "dpo", "simpo", "orpo", "kto"])
@pytest.mark.parametrize("chunk", [1, 5, None])
def test_matches_unfused_f32(objective, chunk):
    fused, plain, gf, gp = both(objective, torch.float32, chunk=chunk)
    close(fused, plain, torch.float32)
    for a, b in zip(gf, gp):
        close(a, b, torch.float32)


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("objective", ["bnf", "dpo"])
def test_reductions(objective, reduction):
    fused, plain, gf, gp = both(objective, torch.float32, reduction=reduction, chunk=4)
    assert fused.shape == plain.shape
    close(fused, plain, torch.float32)
    for a, b in zip(gf, gp):
        close(a, b, torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("objective", ["bnf", "dpo"])
def test_low_precision(dtype, objective):
    fused, plain, gf, gp = both(objective, dtype, chunk=3)
    close(fused, plain, dtype)
    for a, b in zip(gf, gp):
        assert a.dtype == dtype
        close(a, b, dtype)


def test_no_bias_and_any_subset_requiring_grad():
    h, w, _, labels, ref, pref = head_batch(bias=False)
    want = torch.autograd.grad(bnf.bnf_loss(h @ w.T, labels, ref, preference=pref), (h, w))
    for need_h, need_w in [(True, False), (False, True)]:
        hh, ww = h.detach().requires_grad_(need_h), w.detach().requires_grad_(need_w)
        loss = bnf.fused_linear_loss(hh, ww, labels, ref, preference=pref, chunk_size=2)
        loss.backward()
        assert (hh.grad is not None) == need_h and (ww.grad is not None) == need_w
        close(hh.grad if need_h else ww.grad, want[0] if need_h else want[1], torch.float32)
    with torch.no_grad():
        loss = bnf.fused_linear_loss(h, w, labels, ref, preference=pref)
    assert not loss.requires_grad
    close(loss, bnf.bnf_loss(h.detach() @ w.detach().T, labels, ref, preference=pref), torch.float32)


def test_tied_embedding():
    """The head is the token embedding: its gradient collects from the head and the input."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, H)
    ids = torch.randint(0, V, (B, T))
    labels = ids.clone()
    labels[:, :2] = -100
    ref = -torch.rand(B, T) * 4
    loss = bnf.fused_linear_loss(torch.tanh(emb(ids)), emb.weight, labels, ref, chunk_size=7)
    (g,) = torch.autograd.grad(loss, emb.weight)
    want = torch.autograd.grad(bnf.bnf_loss(torch.tanh(emb(ids)) @ emb.weight.T, labels, ref), emb.weight)[0]
    close(g, want, torch.float32)


def largest_allocation(fn) -> int:
    """The largest single tensor allocation (bytes) torch makes while ``fn`` runs, inside the
    custom ops too (the profiler's memory events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    sizes = [e.cpu_memory_usage for e in prof.events() if e.name.startswith("aten::empty")]
    return max(sizes)


@pytest.mark.parametrize("objective", ["bnf", "dpo"])
def test_never_allocates_the_logits(objective):
    h, w, b, labels, ref, _ = head_batch()
    logits_bytes = B * T * V * 4

    def fused():
        bnf.fused_linear_loss(h, w, labels, ref, objective=objective, bias=b, chunk_size=4).backward()

    def unfused():
        bnf.objective_loss(objective, h @ w.T + b, labels, ref).backward()

    assert largest_allocation(fused) < logits_bytes
    assert largest_allocation(fused) <= 4 * max(4 * V, B * T * H, V * H)
    # The measurement sees a full-size tensor when one is made.
    assert largest_allocation(unfused) >= logits_bytes


def test_chunk_rule():
    assert chunk_rows(4096, 32000, 1024) == 1024  # max(rows H / V, H) = H, a power of two
    assert chunk_rows(65536, 32000, 1000) == 2048  # rows H / V = 2048 > H: already a power of two
    assert chunk_rows(65537, 32000, 1000) == 4096  # 2048.03 rounds up to the next power of two
    assert chunk_rows(100, 10, 1000) == 100  # never more than the rows
    assert chunk_rows(1 << 20, 128256, 4096) == (1 << 28) // 128256  # the chunk-size cap
    assert chunk_rows(100, 10, 10, chunk_size=7) == 7
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        chunk_rows(100, 10, 10, chunk_size=0)


def test_compile_and_opcheck():
    h, w, b, labels, ref, pref = head_batch()
    step = torch.compile(lambda h: bnf.fused_linear_loss(h, w, labels, ref, bias=b, preference=pref, chunk_size=4),
                         fullgraph=True, backend="aot_eager")
    h2 = h.detach().requires_grad_()
    a = step(h2)
    a.backward()
    want = bnf.fused_linear_loss(h, w, labels, ref, bias=b, preference=pref, chunk_size=4)
    close(a, want, torch.float32)
    close(h2.grad, torch.autograd.grad(want, h)[0], torch.float32)
    targets = torch.cat([labels[:, 1:], torch.full((B, 1), -100)], 1).reshape(-1)
    scored = targets != -100
    weights = torch.where(scored, 0.1, 0.0)
    args = (h.detach().reshape(-1, H).requires_grad_(), w.detach().requires_grad_(), b.detach().requires_grad_(),
            targets, scored, weights, ref.reshape(-1), 4, None, [False, False, False], 5, T, True, 3)
    torch.library.opcheck(torch.ops.bnf.fused_linear_rows.default, args)


def test_module_and_errors():
    h, w, b, labels, ref, pref = head_batch()
    m = bnf.FusedLinearLoss("dpo", beta=0.2, chunk_size=3)
    close(m(h, w, labels, ref, bias=b), bnf.objective_loss("dpo", h @ w.T + b, labels, ref, beta=0.2), torch.float32)
    assert "dpo" in repr(m)
    with pytest.raises(ValueError, match=r"weight must be \(V, H\) with H = 6"):
        bnf.fused_linear_loss(h, w.T, labels, ref)
    with pytest.raises(TypeError, match="weight is torch.bfloat16 but hidden is torch.float32"):
        bnf.fused_linear_loss(h, w.bfloat16(), labels, ref)
    with pytest.raises(ValueError, match=r"bias must be \(V,\) = \(23,\)"):
        bnf.fused_linear_loss(h, w, labels, ref, bias=b[:5])
    with pytest.raises(ValueError, match=r"labels has shape \(4, 8\) but hidden \(4, 9, 6\)"):
        bnf.fused_linear_loss(h, w, labels[:, 1:], ref)
    bad = labels.clone()
    bad[2, 3] = V
    with pytest.raises(ValueError, match=r"labels\[2, 3\] = 23 is not a token id"):
        bnf.fused_linear_loss(h, w, bad, ref)
    nan = h.detach().clone()
    nan[3, 5, 0] = float("nan")
    with pytest.raises(ValueError, match=r"\(hidden @ weight.T\)\[3, 5, 0\] = nan"):
        bnf.fused_linear_loss(nan, w, labels, ref, chunk_size=2)


def test_fused_stats_equal_unfused():
    h, w, b, labels, ref, pref = head_batch()
    loss, s = bnf.fused_linear_loss(h, w, labels, ref, bias=b, preference=pref, chunk_size=5, return_stats=True)
    want, t = bnf.bnf_loss(h @ w.T + b, labels, ref, preference=pref, return_stats=True)
    close(loss, want, torch.float32)
    for a, c in zip(s, t):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="return_stats is for BNF and NLL"):
        bnf.fused_linear_loss(h, w, labels, ref, objective="dpo", return_stats=True)
