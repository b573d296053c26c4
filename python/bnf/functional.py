"""The losses as functions, shaped like ``torch.nn.functional.cross_entropy``.

Common arguments:

- ``logits``: ``(B, T, V)`` (B sequences of T positions) or ``(N, V)`` (one sequence), float32,
  float16 or bfloat16, on the CPU or a CUDA device. The loss is computed in float32 and returned
  as float32; the gradient has the logits' dtype.
- ``labels``: token ids of shape ``logits.shape[:-1]``, ``ignore_index`` at prompt and padding
  positions. With ``shift=True`` (causal LMs, as Hugging Face and TRL; the default for
  ``(B, T, V)`` logits) the logits at position ``t`` score ``labels[..., t + 1]`` and the first
  label is never scored. ``(N, V)`` logits default to ``shift=False``: rows already aligned with
  their labels, as ``F.cross_entropy`` takes them, one sequence.
- ``ref_logps``: the reference model's log-prob of each label (``labels``' shape, float; see
  :func:`bnf.reference_logps`), read only where the label is scored. No gradient flows into it.
- ``preference``: one value per sequence, ``+1`` preferred and ``-1`` dispreferred (default: all
  ``+1``); a bool tensor reads ``True`` as ``+1`` and ``False`` as ``-1`` (TRL's ``label``). For
  BNF and NLL the value weights the sequence; 0 is refused.
- ``reduction``: ``"mean"`` is the paper's: the mean over sequences of each sequence's mean over
  its scored tokens. ``"sum"`` is the sum of the per-token losses, and ``"none"`` returns them,
  shaped like ``labels`` (0 where nothing is scored); the per-token loss is
  ``preference * CE(f, pi)`` for BNF and ``-preference * log pi(y)`` for NLL. For the
  sequence-level objectives (DPO, ...) the terms are per pair (per sequence for KTO): ``"mean"``
  is their mean, ``"sum"`` their sum, ``"none"`` the terms themselves.

Every input is checked before any work: a wrong shape, dtype or device is a ``TypeError`` or
``ValueError`` naming the argument; a bad value (a label outside the vocabulary, a reference
log-prob above 0, a NaN logit at a scored position, a sequence with nothing scored) is a
``ValueError`` naming the index and the value.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from . import _checks, _layout, _native, _ops

__all__ = [
    "ObjectiveInfo",
    "TokenStats",
    "describe_objective",
    "bnf_loss",
    "nll_loss",
    "objective_loss",
    "sequence_logps",
    "objective_names",
]


class ObjectiveInfo(NamedTuple):
    """What :func:`objective_info` says of an objective."""

    name: str  # the canonical name (one of objective_names())
    needs_pairs: bool  # pairwise: reads ``pairs`` (every sequence in a pair)
    needs_reference: bool  # reads ``ref_logps``
    hyperparameters: dict  # every hyperparameter with its value (None: KTO's estimated z0)


def describe_objective(objective: str, **hyperparameters) -> ObjectiveInfo:
    """The objective called ``objective`` (any name or alias :func:`objective_loss` takes) with
    ``hyperparameters`` set, checked by core: a bad name, an unknown hyperparameter or a value
    out of range is a ``ValueError``. For a trainer that must know what data an objective
    needs before it has any."""
    names, values = _params(hyperparameters)
    name, pairs, ref, params = objective_info(str(objective), tuple(zip(names, values)))
    return ObjectiveInfo(name, pairs, ref, dict(params))


class TokenStats(NamedTuple):
    """BNF's per-token diagnostics, each shaped like ``labels`` (0 where nothing is scored):
    the policy's probability of the label ``pi_y``, its mass in the dynamic target ``f_y`` and
    the gradient scale ``c = min(1, odds(pi_y) / odds(pi_ref))`` (1 for NLL)."""

    pi_y: Tensor
    f_y: Tensor
    c: Tensor
    scored: Tensor


def objective_names() -> Tuple[str, ...]:
    """The objectives :func:`objective_loss` runs, one name each (aliases: ``sft``, ``slic``,
    ``r_dpo``)."""
    return tuple(_native.objective_names())


@torch.compiler.assume_constant_result
def objective_info(objective: str, params: tuple):
    """``(canonical name, needs pairs, needs reference, ((hyperparameter, value), ...))`` of
    ``objective`` with ``params`` set, checked by core (a bad name or value is a
    ``ValueError``). A constant for ``torch.compile``."""
    try:
        name, pairs, ref, values = _native.objective_info(objective, list(params))
    except _native.CoreError as e:
        raise ValueError(f"objective {e.args[0]} (see bnf.describe_objective and losses.md for "
                         "each hyperparameter's range)") from None
    return name, pairs, ref, tuple(values)


def _need_grad(x: Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


class Batch(NamedTuple):
    """A checked batch as rows, with what every objective reads besides the rows' inputs."""

    rows: _layout.Rows
    labels_shape: torch.Size
    ref: Optional[Tensor]  # (B*T,) float32 reference log-prob per row, or None
    shift: bool
    ndim: int  # the caller's logits (or hidden states) dims: 2 for one flat sequence


def prepare(x: Tensor, labels, ref_logps, ignore_index, shift, needs_ref: bool, name="logits") -> Batch:
    """Check ``labels``, ``ref_logps`` and the options against ``x`` (logits, or the fused
    head's hidden states, already checked, called ``name``) and lay the batch out as rows.
    ``shift=None``: True for ``(B, T, ...)`` input, False for ``(N, ...)`` rows."""
    labels = _checks.labels(labels, x, name)
    ignore_index = _checks.integer("ignore_index", ignore_index)
    shift = _checks.flag("shift", shift, default=x.dim() == 3)
    ref_logps = _checks.per_label("ref_logps", ref_logps, labels, required=needs_ref)
    xb, lb = _layout.as_batch(x, labels)
    r = _layout.rows(xb, lb, shift, ignore_index)
    ref = None if ref_logps is None else _layout.per_row(ref_logps.reshape(lb.shape), shift)
    return Batch(r, labels.shape, ref, shift, x.dim())


def run(name, names, values, b: Batch, preference, pairs, reduction, rows_fn, stats=False):
    """The objective ``name`` on the batch ``b``, whatever computes its rows: ``rows_fn(weights,
    ref, n, reduced)`` returns ``(sum(loss) / n, diag)`` when ``reduced``, else ``(loss rows,
    diag)``, with autograd (``bnf::row_loss`` on logits, or the fused head on hidden states).

    BNF and NLL: one row pass with weights ``preference / |y|`` (``"mean"``) or ``preference``.
    Sequence objectives: each row's ``log pi(y)`` (NLL rows with weight -1), summed per
    sequence, then ``bnf::sequence_terms``."""
    r, shift = b.rows, b.shift
    reduction = _checks.reduction(reduction)
    dev = r.x.device
    per_label = lambda v: _layout.shift_right(v.view(r.batch, r.seq_len), shift).reshape(b.labels_shape)  # noqa: E731
    if name in ("bnf", "nll"):
        pref = _checks.preference(preference, r.batch, r.x)
        if reduction == "mean":
            seq_weight, n = pref / _layout.lengths(r).clamp(min=1), r.batch
        else:
            seq_weight, n = pref, 1
        weights = torch.where(r.scored, seq_weight.repeat_interleave(r.seq_len), 0.0)
        out, diag = rows_fn(weights, b.ref if name == "bnf" else None, n, reduction != "none")
        if reduction == "none":
            out = per_label(out)
        if not stats:
            return out
        return out, TokenStats(per_label(diag[:, 0]), per_label(diag[:, 1]), per_label(diag[:, 2]), per_label(r.scored))
    _, needs_pairs, needs_ref, _ = objective_info(name, tuple(zip(names, values)))
    if needs_pairs:
        pair_idx = _checks.pairs(pairs, r.batch, r.x)
        if preference is None:
            # Clamped only to build the default: bnf::sequence_terms refuses a bad index by name.
            rejected = pair_idx[:, 1].clamp(0, max(r.batch - 1, 0))
            preference = torch.ones(r.batch, device=dev).index_fill(0, rejected, -1.0)
    else:
        pair_idx = torch.zeros((0, 2), dtype=torch.int64, device=dev)
    pref = _checks.preference(preference, r.batch, r.x)
    ell, _ = rows_fn(torch.where(r.scored, -1.0, 0.0).to(torch.float32), None, 1, False)
    logp = ell.view(r.batch, r.seq_len).sum(dim=1)
    terms, _, _, _ = _ops.sequence_terms(
        logp, r.scored, b.ref if needs_ref else None, pref, pair_idx, name, ",".join(names), values, r.seq_len, shift, b.ndim
    )
    if reduction == "mean":
        return terms.mean()
    if reduction == "sum":
        return terms.sum()
    return terms


def _logit_rows(logits: Tensor, b: Batch):
    """``rows_fn`` of :func:`run` on materialised logits: ``bnf::row_loss``."""
    r, need = b.rows, _need_grad(logits)

    def rows_fn(weights, ref, n, reduced):
        loss, diag = _ops.RowLoss.apply(r.x, r.targets, r.scored, weights, ref, n, need, r.seq_len, b.shift, b.ndim)
        return (loss.sum() / n if reduced else loss), diag

    return rows_fn


def _on_logits(name, logits, labels, ref_logps, preference, pairs, ignore_index, reduction, shift,
               names=(), values=(), needs_ref=False, stats=False):
    logits = _checks.logits(logits)
    b = prepare(logits, labels, ref_logps, ignore_index, shift, needs_ref)
    return run(name, list(names), list(values), b, preference, pairs, reduction, _logit_rows(logits, b), stats)


def bnf_loss(
    logits: Tensor,
    labels: Tensor,
    ref_logps: Tensor,
    *,
    preference: Optional[Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    shift: Optional[bool] = None,
    return_stats: bool = False,
) -> Union[Tensor, Tuple[Tensor, TokenStats]]:
    """The BNF loss (paper eq. 4) with its gradient (eq. 8) computed in the same pass.

    With ``return_stats=True`` returns ``(loss, TokenStats)``. See the module docstring for the
    arguments."""
    return _on_logits("bnf", logits, labels, ref_logps, preference, None, ignore_index, reduction,
                      shift, needs_ref=True, stats=return_stats)


def nll_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    preference: Optional[Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    shift: Optional[bool] = None,
) -> Tensor:
    """NLL (the SFT cross-entropy) through the same pass: each sequence contributes
    ``-preference * mean log pi(y)``. See the module docstring for the arguments."""
    return _on_logits("nll", logits, labels, None, preference, None, ignore_index, reduction, shift)


def sequence_logps(
    logits: Tensor, labels: Tensor, *, ignore_index: int = -100, shift: bool = True
) -> Tensor:
    """Each sequence's summed log-prob of its scored labels, ``(B,)`` float32 (a scalar for
    ``(N, V)`` logits), differentiable: what TRL's ``concatenated_forward`` computes."""
    logits = _checks.logits(logits)
    b = prepare(logits, labels, None, ignore_index, shift, False)
    ell, _ = _logit_rows(logits, b)(torch.where(b.rows.scored, -1.0, 0.0).to(torch.float32), None, 1, False)
    out = ell.view(b.rows.batch, b.rows.seq_len).sum(dim=1)
    return out[0] if logits.dim() == 2 else out


def _params(hyperparameters: dict):
    """``(names, values)`` of the hyperparameters given; ``lambda_`` spells ``lambda``, and
    ``None`` (KTO's ``z0``: estimate per batch) is left out."""
    names, values = [], []
    for k, v in hyperparameters.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"hyperparameter {k} must be a number, got {type(v).__name__}")
        name = "lambda" if k == "lambda_" else k
        if name in names:
            raise ValueError("hyperparameter lambda is given twice (as lambda_ and as \"lambda\")")
        names.append(name)
        values.append(float(v))
    return names, values


def objective_loss(
    objective: str,
    logits: Tensor,
    labels: Tensor,
    ref_logps: Optional[Tensor] = None,
    *,
    preference: Optional[Tensor] = None,
    pairs: Optional[Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    shift: Optional[bool] = None,
    **hyperparameters,
) -> Tensor:
    """Any objective of :func:`objective_names` by name, with its hyperparameters as keywords
    (``beta=0.1``, ``tau=``, ``gamma=``, ``alpha=``, ``margin=``, ``lambda_=`` (or
    ``**{"lambda": v}``), KTO's ``desirable_weight=``, ``undesirable_weight=``, ``z0=``).

    Pairwise objectives (NLL+PLL, DPO, IPO, SLiC-HF, SimPO, R-DPO, CPO, ORPO) read ``pairs``,
    ``(P, 2)`` ``(chosen, rejected)`` sequence indices; by default TRL's layout, the first half
    of the batch chosen and the second half rejected (``preference`` then defaults to ``+1`` for
    chosen and ``-1`` for rejected). KTO reads ``preference`` (desirable ``> 0``). DPO, IPO,
    R-DPO, KTO and BNF need ``ref_logps``. ``"bnf"`` and ``"nll"`` are :func:`bnf_loss` and
    :func:`nll_loss`."""
    names, values = _params(hyperparameters)
    name, _, needs_ref, _ = objective_info(str(objective), tuple(zip(names, values)))
    return _on_logits(name, logits, labels, ref_logps, preference, pairs, ignore_index, reduction,
                      shift, names, values, needs_ref)
