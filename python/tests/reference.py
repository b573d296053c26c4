"""Pure-torch implementations written from the paper and losses.md, independent of the library:
the literal BNF of eqs. 4, 6 and 8 (materialised dynamic target ``f``, detached, then
``-sum f log pi`` with autograd) and each baseline's formula on summed log-probs. The tests hold
the library to these."""

import torch
import torch.nn.functional as F


def shifted(logits, labels, other=None, shift=True, ignore_index=-100):
    """Logits, labels (and a per-label tensor) with the causal shift applied, and the mask."""
    if logits.dim() == 2:
        logits, labels = logits[None], labels[None]
        other = None if other is None else other[None]
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
        other = None if other is None else other[:, 1:]
    return logits, labels, other, labels != ignore_index


def token_logps(logits, labels, ignore_index=-100, shift=True):
    """``log pi(y_t)`` per scored label position (0 elsewhere), shaped like the shifted labels."""
    z, y, _, mask = shifted(logits, labels, shift=shift, ignore_index=ignore_index)
    logp = torch.log_softmax(z.float(), dim=-1)
    return torch.where(mask, logp.gather(-1, y.clamp(min=0)[..., None])[..., 0], 0.0), mask


def bnf_tokens(logits, labels, ref, pref, ignore_index=-100, shift=True):
    """Per-token ``pref * CE(f, pi)`` (paper eq. 4 before normalisation) and the mask."""
    z, y, rho, mask = shifted(logits, labels, ref, shift, ignore_index)
    rho = torch.where(mask, rho, 0.0)  # not read where ignored (may be NaN there)
    logp = torch.log_softmax(z.float(), dim=-1)
    pi = logp.exp()
    yc = y.clamp(min=0)[..., None]
    with torch.no_grad():
        # Eq. 6: f_y = min(pi_y / pi_ref, 1); the rest of the mass in proportion to pi.
        pi_y = pi.gather(-1, yc)[..., 0]
        f_y = torch.clamp(torch.exp(logp.gather(-1, yc)[..., 0] - rho.float()), max=1.0)
        f = ((1 - f_y) / (1 - pi_y))[..., None] * pi
        f = f.scatter(-1, yc, f_y[..., None])
    ce = -(f * logp).sum(-1)
    if pref.dim() == 0:
        pref = pref.reshape(1)
    return torch.where(mask, pref.float()[:, None] * ce, 0.0), mask


def reduce_tokens(tok, mask, reduction):
    if reduction == "mean":
        return (tok.sum(1) / mask.sum(1)).mean()
    if reduction == "sum":
        return tok.sum()
    return tok


def bnf(logits, labels, ref, pref, reduction="mean", ignore_index=-100, shift=True):
    tok, mask = bnf_tokens(logits, labels, ref, pref, ignore_index, shift)
    return reduce_tokens(tok, mask, reduction)


def nll(logits, labels, pref, reduction="mean", ignore_index=-100, shift=True):
    lp, mask = token_logps(logits, labels, ignore_index, shift)
    if pref.dim() == 0:
        pref = pref.reshape(1)
    return reduce_tokens(-pref.float()[:, None] * lp, mask, reduction)


def logsig(x):
    return F.logsigmoid(x)


def pair_terms(name, lp, rp, L, pairs, **hp):
    """One term per pair of ``losses.md``'s formula for objective ``name``."""
    w, l_ = pairs[:, 0], pairs[:, 1]
    lpw, lpl, Lw, Ll = lp[w], lp[l_], L[w].float(), L[l_].float()
    rpw = rp[w] if rp is not None else 0
    rpl = rp[l_] if rp is not None else 0
    cl, rl = lpw - rpw, lpl - rpl
    delta = cl - rl
    if name == "nll_pll":
        return -lpw + lpl
    if name == "dpo":
        return -logsig(hp.get("beta", 0.1) * delta)
    if name == "ipo":
        return (cl / Lw - rl / Ll - 1 / (2 * hp.get("tau", 0.1))) ** 2
    if name == "slic_hf":
        return torch.clamp(hp.get("margin", 1.0) - lpw + lpl, min=0) - hp.get("lambda", 0.1) * lpw
    if name == "simpo":
        return -logsig(hp.get("beta", 2.5) * (lpw / Lw - lpl / Ll) - hp.get("gamma", 1.375))
    if name == "rdpo":
        return -logsig(hp.get("beta", 0.1) * delta + hp.get("alpha", 0.05) * (Lw - Ll))
    if name == "cpo":
        return -logsig(hp.get("beta", 0.1) * (lpw - lpl)) - lpw / Lw
    if name == "orpo":
        aw, al = lpw / Lw, lpl / Ll
        log_odds = lambda a: a - torch.log(-torch.expm1(a))  # noqa: E731
        return -lpw / Lw - hp.get("lambda", 0.1) * logsig(log_odds(aw) - log_odds(al))
    raise ValueError(name)


def kto_terms(lp, rp, pref, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0, z0=None):
    r = lp - rp
    if z0 is None:
        z0 = torch.clamp(r.detach().mean(), min=0)
    good = torch.sigmoid(-beta * (r - z0)) * desirable_weight
    bad = torch.sigmoid(-beta * (z0 - r)) * undesirable_weight
    return torch.where(pref > 0, good, bad)
