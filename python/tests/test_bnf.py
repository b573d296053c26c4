"""bnf_loss and nll_loss against the pure-torch reference: loss, gradient, reductions, layouts,
dtypes."""

import pytest
import torch

import bnf
import reference as R
from conftest import make_batch, tol


def grad_of(loss, x):
    (g,) = torch.autograd.grad(loss, x)
    return g


def ref_grad(fn, logits, *args, **kw):
    x = logits.detach().float().requires_grad_()
    out = fn(x, *args, **kw)
    return out, grad_of(out.sum() if out.dim() else out, x)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bnf_matches_reference(dtype, reduction):
    for seed in range(3):
        logits, labels, ref, pref = make_batch(dtype=dtype, seed=seed)
        loss = bnf.bnf_loss(logits, labels, ref, preference=pref, reduction=reduction)
        want, want_g = ref_grad(R.bnf, logits, labels, ref, pref, reduction)
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
        g = grad_of(loss, logits)
        assert g.dtype == dtype
        rtol, atol = tol(dtype)
        torch.testing.assert_close(g.float(), want_g, rtol=rtol, atol=atol * want_g.abs().max())


def test_bnf_per_token(dtype):
    logits, labels, ref, pref = make_batch(dtype=dtype, seed=5)
    out = bnf.bnf_loss(logits, labels, ref, preference=pref, reduction="none")
    assert out.shape == labels.shape
    tok, mask = R.bnf_tokens(logits.detach().float(), labels, ref, pref)
    # Position t of the output is the loss of labels[:, t]: the reference's t - 1.
    torch.testing.assert_close(out[:, 1:], tok, rtol=1e-5, atol=1e-6)
    assert (out[:, 0] == 0).all() and (out[:, 1:][~mask] == 0).all()
    # A per-token upstream gradient reaches each row.
    w = torch.rand(labels.shape)
    g = grad_of((out * w).sum(), logits)
    x = logits.detach().float().requires_grad_()
    want = grad_of((R.bnf_tokens(x, labels, ref, pref)[0] * w[:, 1:]).sum(), x)
    rtol, atol = tol(dtype)
    torch.testing.assert_close(g.float(), want, rtol=rtol, atol=atol * want.abs().max())


def test_no_shift_and_flat_input():
    logits, labels, ref, pref = make_batch(seed=7)
    loss = bnf.bnf_loss(logits, labels, ref, preference=pref, shift=False)
    torch.testing.assert_close(loss, R.bnf(logits.detach(), labels, ref, pref, shift=False))
    # (N, V) logits with (N,) labels: one sequence, shifted only when asked.
    one = bnf.bnf_loss(logits[0], labels[0], ref[0], preference=pref[0], shift=True)
    torch.testing.assert_close(one, R.bnf(logits.detach()[:1], labels[:1], ref[:1], pref[:1]))
    tok = bnf.bnf_loss(logits[0], labels[0], ref[0], reduction="none")
    assert tok.shape == labels[0].shape


def test_flat_rows_are_cross_entropys_layout():
    """(N, V) rows default to no shift: F.cross_entropy's pre-shifted, flattened layout."""
    logits, labels, _, _ = make_batch(seed=17)
    flat, flat_labels = logits.detach()[:, :-1].reshape(-1, 13), labels[:, 1:].reshape(-1)
    want = torch.nn.functional.cross_entropy(flat, flat_labels)
    torch.testing.assert_close(bnf.nll_loss(flat, flat_labels), want)
    torch.testing.assert_close(bnf.nll_loss(flat, flat_labels, reduction="sum"),
                               torch.nn.functional.cross_entropy(flat, flat_labels, reduction="sum"))


def test_bool_preference_is_trls_label():
    logits, labels, ref, pref = make_batch(seed=19)
    torch.testing.assert_close(bnf.bnf_loss(logits, labels, ref, preference=pref > 0),
                               bnf.bnf_loss(logits, labels, ref, preference=pref))


def test_gradient_is_scaled_cross_entropy_at_the_reference():
    """At pi = pi_ref, BNF's gradient is NLL's (c = 1): the paper's section 3 identity."""
    logits, labels, _, pref = make_batch(seed=3)
    ref = bnf.reference_logps(logits.detach(), labels=labels)
    g_bnf = grad_of(bnf.bnf_loss(logits, labels, ref, preference=pref), logits)
    g_nll = grad_of(bnf.nll_loss(logits, labels, preference=pref), logits)
    torch.testing.assert_close(g_bnf, g_nll, rtol=1e-5, atol=1e-7)
    _, stats = bnf.bnf_loss(logits, labels, ref, preference=pref, return_stats=True)
    assert torch.allclose(stats.c[stats.scored], torch.ones(()), atol=1e-5)


def test_stats_are_the_papers_quantities():
    logits, labels, ref, pref = make_batch(seed=11)
    _, s = bnf.bnf_loss(logits, labels, ref, preference=pref, return_stats=True)
    lp, mask = R.token_logps(logits.detach(), labels)
    pi_y = lp.exp()
    f_y = torch.clamp(torch.exp(lp - ref[:, 1:]), max=1)
    odds = lambda q: q / (1 - q)  # noqa: E731
    c = torch.clamp(odds(pi_y) / odds(ref[:, 1:].exp()), max=1)
    torch.testing.assert_close(s.pi_y[:, 1:][mask], pi_y[mask])
    torch.testing.assert_close(s.f_y[:, 1:][mask], f_y[mask])
    torch.testing.assert_close(s.c[:, 1:][mask], c[mask], rtol=1e-4, atol=1e-6)
    assert torch.equal(s.scored[:, 1:], mask)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_matches_reference(dtype, reduction):
    logits, labels, _, pref = make_batch(dtype=dtype, seed=2)
    loss = bnf.nll_loss(logits, labels, preference=pref, reduction=reduction)
    want = R.nll(logits.detach().float(), labels, pref, reduction)
    if reduction == "none":
        torch.testing.assert_close(loss[:, 1:], want, rtol=1e-5, atol=1e-6)
    else:
        torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)


def test_nll_equals_cross_entropy_on_preferred_single_length():
    """With every sequence preferred and the same number of scored tokens, the paper's mean
    is F.cross_entropy's token mean."""
    logits, labels, _, _ = make_batch(seed=4)
    labels = torch.randint(0, 13, labels.shape)
    labels[:, :2] = -100
    loss = bnf.nll_loss(logits, labels)
    want = torch.nn.functional.cross_entropy(logits.detach()[:, :-1].reshape(-1, 13), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(loss, want)


def test_no_gradient_buffer_without_grad():
    logits, labels, ref, pref = make_batch(seed=1)
    with torch.no_grad():
        loss = bnf.bnf_loss(logits, labels, ref, preference=pref)
    assert not loss.requires_grad
    plain = logits.detach()
    out = bnf.bnf_loss(plain, labels, ref, preference=pref)
    assert not out.requires_grad
    torch.testing.assert_close(out, loss)


def test_non_contiguous_inputs():
    logits, labels, ref, pref = make_batch(seed=9)
    wide = torch.randn(4, 9, 26)
    wide[..., ::2] = logits.detach()
    strided = wide[..., ::2].requires_grad_()
    assert not strided.is_contiguous()
    lt = labels.t().contiguous().t()
    loss = bnf.bnf_loss(strided, lt, ref.t().contiguous().t(), preference=pref)
    torch.testing.assert_close(loss, R.bnf(logits.detach(), labels, ref, pref))
    g = grad_of(loss, strided)
    assert g.shape == strided.shape


def test_module_wrapper():
    logits, labels, ref, pref = make_batch(seed=6)
    m = bnf.BNFLoss(reduction="sum")
    torch.testing.assert_close(m(logits, labels, ref, pref), bnf.bnf_loss(logits, labels, ref, preference=pref, reduction="sum"))
    assert "sum" in repr(m)


def test_results_do_not_depend_on_threads_or_backend():
    """The same bits on 1 and 2 threads, on torch's OpenMP team and on core's own threads."""
    logits, labels, ref, pref = make_batch(B=8, T=64, V=4099, seed=12)
    before = torch.get_num_threads()
    out = []
    try:
        for backend in ("openmp", "threads"):
            assert bnf.set_parallel_backend(backend) == backend
            for n in (1, 2):
                torch.set_num_threads(n)
                loss = bnf.bnf_loss(logits, labels, ref, preference=pref)
                out.append((loss, grad_of(loss, logits)))
    finally:
        torch.set_num_threads(before)
        bnf.set_parallel_backend("openmp")
    for loss, g in out[1:]:
        assert torch.equal(loss, out[0][0]) and torch.equal(g, out[0][1])
    with pytest.raises(ValueError, match="'openmp' or 'threads'"):
        bnf.set_parallel_backend("tbb")


def test_backward_hands_its_buffer_over_once():
    """The gradient written in forward becomes the logits' gradient (scaled in place); a second
    backward through the same graph is refused, never scaled twice."""
    logits, labels, ref, pref = make_batch(seed=13)
    loss = bnf.bnf_loss(logits, labels, ref, preference=pref)
    (loss * 3.0).backward(retain_graph=True)
    x = logits.detach().float().requires_grad_()
    (R.bnf(x, labels, ref, pref) * 3.0).backward()
    torch.testing.assert_close(logits.grad, x.grad, rtol=1e-4, atol=1e-7)
    with pytest.raises(RuntimeError, match="support one backward per forward"):
        loss.backward()
    # No double backward: said at the call, not later as a missing graph.
    loss = bnf.bnf_loss(logits, labels, ref, preference=pref)
    with pytest.raises(RuntimeError, match="no double backward"):
        torch.autograd.grad(loss, logits, create_graph=True)
