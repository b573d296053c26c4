"""``nn.Module`` wrappers of the functional losses, holding the options (and an objective's
hyperparameters, checked when the module is made)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from . import _checks, functional, fused


class BNFLoss(nn.Module):
    """``BNFLoss(ignore_index=-100, reduction="mean", shift=None, return_stats=False)(logits,
    labels, ref_logps, preference=None)``: :func:`bnf.functional.bnf_loss`."""

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", shift: Optional[bool] = None,
                 return_stats: bool = False):
        super().__init__()
        self.ignore_index = _checks.integer("ignore_index", ignore_index)
        self.reduction = _checks.reduction(reduction)
        self.shift = shift if shift is None else _checks.flag("shift", shift, True)
        self.return_stats = _checks.flag("return_stats", return_stats, False)

    def forward(self, logits: Tensor, labels: Tensor, ref_logps: Tensor,
                preference: Optional[Tensor] = None):
        return functional.bnf_loss(logits, labels, ref_logps, preference=preference,
                                   ignore_index=self.ignore_index, reduction=self.reduction,
                                   shift=self.shift, return_stats=self.return_stats)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, shift={self.shift}"


class ObjectiveLoss(nn.Module):
    """``ObjectiveLoss("dpo", beta=0.1)(logits, labels, ref_logps, preference=None,
    pairs=None)``: :func:`bnf.functional.objective_loss` with the objective and its
    hyperparameters fixed (and checked here)."""

    def __init__(self, objective: str, ignore_index: int = -100, reduction: str = "mean",
                 shift: Optional[bool] = None, **hyperparameters):
        super().__init__()
        names, values = functional._params(hyperparameters)
        info = functional.objective_info(str(objective), tuple(zip(names, values)))
        name, needs_pairs, needs_ref, params = info
        given = dict(zip(names, values))
        self.objective = name
        self.hyperparameters = {k: given.get(k, v) for k, v in params if v is not None}
        self.needs_pairs, self.needs_reference = needs_pairs, needs_ref
        self.ignore_index = _checks.integer("ignore_index", ignore_index)
        self.reduction = _checks.reduction(reduction)
        self.shift = shift if shift is None else _checks.flag("shift", shift, True)

    def forward(self, logits: Tensor, labels: Tensor, ref_logps: Optional[Tensor] = None,
                preference: Optional[Tensor] = None, pairs: Optional[Tensor] = None) -> Tensor:
        return functional.objective_loss(self.objective, logits, labels, ref_logps,
                                         preference=preference, pairs=pairs,
                                         ignore_index=self.ignore_index, reduction=self.reduction,
                                         shift=self.shift, **self.hyperparameters)

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.hyperparameters.items())
        return f"{self.objective!r}{', ' + params if params else ''}, reduction={self.reduction!r}"


class FusedLinearLoss(nn.Module):
    """``FusedLinearLoss("bnf", chunk_size=None, ...)(hidden, weight, labels, ref_logps=None,
    bias=None, preference=None, pairs=None)``: :func:`bnf.fused_linear_loss`, the LM head and
    the loss without the logits."""

    def __init__(self, objective: str = "bnf", ignore_index: int = -100, reduction: str = "mean",
                 shift: Optional[bool] = None, chunk_size: Optional[int] = None, **hyperparameters):
        super().__init__()
        names, values = functional._params(hyperparameters)
        name, _, _, params = functional.objective_info(str(objective), tuple(zip(names, values)))
        given = dict(zip(names, values))
        self.objective = name
        self.hyperparameters = {k: given.get(k, v) for k, v in params if v is not None}
        self.ignore_index = _checks.integer("ignore_index", ignore_index)
        self.reduction = _checks.reduction(reduction)
        self.shift = shift if shift is None else _checks.flag("shift", shift, True)
        self.chunk_size = None if chunk_size is None else fused.chunk_rows(1 << 62, 1, 1, chunk_size)

    def forward(self, hidden: Tensor, weight: Tensor, labels: Tensor, ref_logps: Optional[Tensor] = None,
                bias: Optional[Tensor] = None, preference: Optional[Tensor] = None,
                pairs: Optional[Tensor] = None) -> Tensor:
        return fused.fused_linear_loss(hidden, weight, labels, ref_logps, objective=self.objective, bias=bias,
                                       preference=preference, pairs=pairs, ignore_index=self.ignore_index,
                                       reduction=self.reduction, shift=self.shift, chunk_size=self.chunk_size,
                                       **self.hyperparameters)

    def extra_repr(self) -> str:
        params = "".join(f", {k}={v}" for k, v in self.hyperparameters.items())
        return f"{self.objective!r}{params}, reduction={self.reduction!r}, chunk_size={self.chunk_size}"
