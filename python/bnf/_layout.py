"""How a batch of sequences becomes core's rows, and back.

A row is one position of one sequence: row ``r = b * T + t`` holds ``logits[b, t]``. With
``shift=True`` (causal LMs, as TRL and Hugging Face do) the row at position ``t`` scores the
label at ``t + 1`` and the last position scores nothing, so the logits are never sliced or
copied: the labels are shifted instead. A row is *scored* when its (shifted) label is not
``ignore_index``. Everything here is plain torch on ``(B, T)``-sized tensors, traceable by
``torch.compile``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor


class Rows(NamedTuple):
    """A batch laid out as rows (see the module docstring)."""

    x: Tensor  # (B*T, V) logits, or (B*T, H) hidden states for the fused head; contiguous
    targets: Tensor  # (B*T,) int64, the shifted labels (ignore_index where not scored)
    scored: Tensor  # (B*T,) bool
    batch: int  # B
    seq_len: int  # T


def shift_left(x: Tensor, shift: bool, fill) -> Tensor:
    """``x[:, t + 1]`` at position ``t`` (``fill`` at the last position) when ``shift``."""
    if not shift:
        return x
    return torch.cat([x[:, 1:], x.new_full((x.shape[0], 1), fill)], dim=1)


def shift_right(x: Tensor, shift: bool) -> Tensor:
    """The inverse of :func:`shift_left` for per-row values: position ``t`` gets row ``t - 1``
    (0 at position 0), so a per-row value lands on the label it scored."""
    if not shift:
        return x
    return torch.cat([x.new_zeros((x.shape[0], 1)), x[:, :-1]], dim=1)


def as_batch(logits: Tensor, labels: Tensor):
    """``(N, V)`` logits with ``(N,)`` labels are one sequence: ``(1, N, V)`` and ``(1, N)``."""
    if logits.dim() == 2:
        return logits.unsqueeze(0), labels.unsqueeze(0)
    return logits, labels


def rows(x: Tensor, labels: Tensor, shift: bool, ignore_index: int) -> Rows:
    """The rows of ``(B, T, V)`` logits (or ``(B, T, H)`` hidden states) and ``(B, T)``
    labels."""
    b, t, v = x.shape
    targets = shift_left(labels, shift, ignore_index)
    scored = targets != ignore_index
    return Rows(x.reshape(b * t, v).contiguous(), targets.reshape(-1), scored.reshape(-1), b, t)


def per_row(values: Optional[Tensor], shift: bool) -> Optional[Tensor]:
    """A ``(B, T)`` per-label tensor (reference log-probs) as one float32 value per row."""
    if values is None:
        return None
    return shift_left(values.to(torch.float32), shift, 0.0).reshape(-1).contiguous()


def lengths(r: Rows) -> Tensor:
    """``|y_b|``: the number of scored rows of each sequence, ``(B,)`` int64."""
    return r.scored.view(r.batch, r.seq_len).sum(dim=1)


def label_index(r: int, seq_len: int, shift: bool, ndim: int) -> str:
    """The index into the caller's ``labels`` that row ``r`` scores (``ndim``: the logits'
    dims, 2 for one flat sequence)."""
    b, t = divmod(r, seq_len)
    t += int(shift)
    return f"[{t}]" if ndim == 2 else f"[{b}, {t}]"


def logits_index(r: int, seq_len: int, ndim: int, col: Optional[int] = None) -> str:
    """The index into the caller's ``logits`` (of ``ndim`` dims) of row ``r`` (and column
    ``col``)."""
    b, t = divmod(r, seq_len)
    head = f"{t}" if ndim == 2 else f"{b}, {t}"
    return f"[{head}]" if col is None else f"[{head}, {col}]"
