"""Every objective of core through objective_loss, against the pure-torch formulas of
losses.md: loss and gradient, pairing layouts, reductions, hyperparameters."""

import pytest
import torch

import bnf
import reference as R
from conftest import make_batch, tol

PAIRWISE = ["nll_pll", "dpo", "ipo", "slic_hf", "simpo", "rdpo", "cpo", "orpo"]
HYPER = {
    "dpo": {"beta": 0.3},
    "ipo": {"tau": 0.5},
    "slic_hf": {"margin": 2.0, "lambda": 0.2},
    "simpo": {"beta": 2.0, "gamma": 0.5},
    "rdpo": {"beta": 0.2, "alpha": 0.1},
    "cpo": {"beta": 0.5},
    "orpo": {"lambda": 0.3},
}


def sums(logits, labels, ref):
    lp, mask = R.token_logps(logits, labels)
    rp = torch.where(mask, ref[:, 1:], 0.0).sum(1)
    return lp.sum(1), rp, mask.sum(1)


def check(loss_fn, want_fn, logits, dtype):
    loss = loss_fn(logits)
    x = logits.detach().float().requires_grad_()
    want = want_fn(x)
    torch.testing.assert_close(loss, want, rtol=2e-5, atol=2e-6)
    (g,) = torch.autograd.grad(loss.sum(), logits)
    (wg,) = torch.autograd.grad(want.sum(), x)
    rtol, atol = tol(dtype)
    torch.testing.assert_close(g.float(), wg, rtol=rtol, atol=atol * max(wg.abs().max(), 1e-12))


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize("defaults", [True, False], ids=["defaults", "set"])
def test_pairwise_matches_formula(name, defaults, dtype):
    logits, labels, ref, _ = make_batch(B=6, dtype=dtype, seed=hash(name) % 1000)
    hp = {} if defaults else HYPER.get(name, {})
    pairs = torch.tensor([[0, 3], [1, 4], [2, 5]])  # TRL's layout: first half chosen

    def ours(x):
        return bnf.objective_loss(name, x, labels, ref, **hp)

    def want(x):
        lp, rp, L = sums(x, labels, ref)
        return R.pair_terms(name, lp, rp, L, pairs, **hp).mean()

    check(ours, want, logits, dtype)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_pairwise_reductions_and_explicit_pairs(reduction):
    logits, labels, ref, _ = make_batch(B=5, seed=21)
    pairs = torch.tensor([[4, 0], [2, 1], [4, 3]])  # a chosen response in two pairs

    def ours(x):
        return bnf.objective_loss("dpo", x, labels, ref, pairs=pairs, reduction=reduction, beta=0.2)

    def want(x):
        lp, rp, L = sums(x, labels, ref)
        t = R.pair_terms("dpo", lp, rp, L, pairs, beta=0.2)
        return t.sum() if reduction == "sum" else t

    check(ours, want, logits, torch.float32)


@pytest.mark.parametrize("z0", [None, 0.25])
def test_kto_matches_formula(z0, dtype):
    logits, labels, ref, pref = make_batch(B=5, dtype=dtype, seed=31)
    hp = {"beta": 0.5, "desirable_weight": 1.5, "undesirable_weight": 0.7, "z0": z0}

    def ours(x):
        return bnf.objective_loss("kto", x, labels, ref, preference=pref, **hp)

    def want(x):
        lp, rp, _ = sums(x, labels, ref)
        return R.kto_terms(lp, rp, pref, **hp).mean()

    check(ours, want, logits, dtype)


def test_row_local_objectives_by_name():
    logits, labels, ref, pref = make_batch(seed=41)
    torch.testing.assert_close(
        bnf.objective_loss("bnf", logits, labels, ref, preference=pref),
        bnf.bnf_loss(logits, labels, ref, preference=pref),
    )
    torch.testing.assert_close(
        bnf.objective_loss("sft", logits, labels, preference=pref),
        R.nll(logits.detach(), labels, pref),
    )


def test_sequence_logps():
    logits, labels, _, _ = make_batch(seed=51)
    lp = bnf.sequence_logps(logits, labels)
    want, _ = R.token_logps(logits.detach(), labels)
    torch.testing.assert_close(lp, want.sum(1))
    (g,) = torch.autograd.grad(lp[1] * 2.0, logits)
    x = logits.detach().requires_grad_()
    (wg,) = torch.autograd.grad(R.token_logps(x, labels)[0].sum(1)[1] * 2.0, x)
    torch.testing.assert_close(g, wg, rtol=1e-5, atol=1e-7)


def test_objective_module_and_names():
    names = bnf.objective_names()
    assert set(PAIRWISE + ["bnf", "nll", "kto"]) == set(names)
    m = bnf.ObjectiveLoss("simpo", beta=2.0, gamma=0.5)
    assert m.hyperparameters == {"beta": 2.0, "gamma": 0.5}
    logits, labels, ref, _ = make_batch(seed=61)
    torch.testing.assert_close(m(logits, labels), bnf.objective_loss("simpo", logits, labels, beta=2.0, gamma=0.5))
    assert "simpo" in repr(m)
    # lambda is a Python keyword: lambda_ spells it.
    a = bnf.objective_loss("orpo", logits, labels, lambda_=0.4)
    b = bnf.objective_loss("orpo", logits, labels, **{"lambda": 0.4})
    torch.testing.assert_close(a, b)


def test_describe_objective():
    info = bnf.describe_objective("slic", lambda_=0.3)
    assert info == ("slic_hf", True, False, {"margin": 1.0, "lambda": pytest.approx(0.3)})
    assert bnf.describe_objective("kto").hyperparameters["z0"] is None
    assert bnf.describe_objective("bnf") == ("bnf", False, True, {})
    with pytest.raises(ValueError, match="tau"):
        bnf.describe_objective("ipo", tau=-1.0)


def test_reference_rows_above_zero_are_clamped_per_row():
    """A reference log-prob within rounding above 0 counts as 0 on its own row (as core's
    sequence path clamps it), not summed first."""
    logits, labels, ref, _ = make_batch(B=4, seed=71)
    r = ref.clone()
    r[0, 5] = 5e-4  # scored, within REF_LOGP_TOLERANCE
    assert labels[0, 5] != -100
    got = bnf.objective_loss("dpo", logits, labels, r, beta=1.0)
    lp, mask = R.token_logps(logits.detach(), labels)
    rp = torch.where(mask, r[:, 1:].clamp(max=0.0), 0.0).sum(1)
    want = R.pair_terms("dpo", lp.sum(1), rp, mask.sum(1), torch.tensor([[0, 2], [1, 3]]), beta=1.0).mean()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
