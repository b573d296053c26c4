"""Every check of what a user passes, with errors that name the argument, the index and the
value. Two kinds:

- static checks (types, dtypes, shapes, devices, option values) run in the public functions
  before any op, on metadata only, so ``torch.compile`` traces them without a graph break;
- value checks (label range, reference log-probs, preferences, empty sequences) run inside the
  custom ops on the flattened rows, before any pointer reaches Rust, and map a row back to the
  caller's index.

The Rust side trusts the lengths it is given: a wrong shape must never get there.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import _layout
from ._native import REF_LOGP_TOLERANCE

#: Logit dtypes the library computes on (float32 accumulation for all three).
LOGIT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
REDUCTIONS = ("mean", "sum", "none")


def _tensor(name: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def logits(x, name: str = "logits") -> Tensor:
    """``(B, T, V)`` or ``(N, V)`` floating logits of a supported dtype, with ``V >= 1`` (or,
    for the fused head, ``(B, T, H)`` / ``(N, H)`` hidden states, named ``name``)."""
    x = _tensor(name, x)
    last = "V" if name == "logits" else "H"
    if x.dim() not in (2, 3):
        raise ValueError(
            f"{name} must be (B, T, {last}) or (N, {last}), got shape {tuple(x.shape)}"
        )
    if x.dtype not in LOGIT_DTYPES:
        tail = (f" (cast with {name}.float()): bnf reads these three and accumulates in float32"
                if x.dtype.is_floating_point else "")
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {x.dtype}{tail}")
    if x.shape[-2] == 0:
        what = "sequence positions (T = 0)" if x.dim() == 3 else "rows (N = 0)"
        raise ValueError(f"{name} has no {what}: shape {tuple(x.shape)}")
    if x.shape[-1] == 0:
        what = "vocabulary" if name == "logits" else "hidden"
        raise ValueError(f"{name} has an empty {what} dimension: shape {tuple(x.shape)}")
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be on a CPU or CUDA device, got {x.device}")
    return x


def labels(x, logits: Tensor, name: str = "logits") -> Tensor:
    """Integer labels of shape ``logits.shape[:-1]``, on the logits' device (``name``: what
    ``logits`` is called)."""
    x = _tensor("labels", x)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor of token ids, got {x.dtype}")
    if tuple(x.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"labels has shape {tuple(x.shape)} but {name} {tuple(logits.shape)} needs "
            f"labels of shape {tuple(logits.shape[:-1])}"
        )
    same_device("labels", x, logits, name)
    return x


def per_label(name: str, x, labels: Tensor, required: bool = True) -> Optional[Tensor]:
    """A floating tensor with one value per label (``ref_logps``), on the labels' device."""
    if x is None:
        if required:
            raise ValueError(f"{name} is required: one reference log-prob per label")
        return None
    x = _tensor(name, x)
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
    if tuple(x.shape) != tuple(labels.shape):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}; it needs the labels' shape {tuple(labels.shape)}"
        )
    same_device(name, x, labels, "labels")
    return x


def preference(x, batch: int, like: Tensor) -> Tensor:
    """Per-sequence preference (``+1`` preferred, ``-1`` dispreferred) as float32 ``(B,)``;
    ``None`` means all preferred; a bool tensor is ``True -> +1``, ``False -> -1``."""
    if x is None:
        return torch.ones(batch, dtype=torch.float32, device=like.device)
    x = _tensor("preference", x)
    if x.dtype == torch.bool:
        x = torch.where(x, 1.0, -1.0)
    if x.dtype.is_complex:
        raise TypeError(f"preference must be a real tensor, got {x.dtype}")
    if x.dim() > 1 or (x.dim() == 1 and x.shape[0] != batch) or (x.dim() == 0 and batch != 1):
        raise ValueError(
            f"preference has shape {tuple(x.shape)}; it needs one value per sequence: ({batch},)"
        )
    same_device("preference", x, like)
    return x.reshape(batch).to(torch.float32)


def pairs(x, batch: int, like: Tensor) -> Tensor:
    """``(P, 2)`` integer ``(chosen, rejected)`` sequence indices; ``None``: TRL's layout, the
    first half of the batch chosen and the second half rejected, ``i`` paired with
    ``i + B/2``."""
    if x is None:
        if batch % 2:
            raise ValueError(
                f"a pairwise objective needs pairs: with pairs=None the batch is TRL's "
                f"[chosen; rejected] layout, which needs an even number of sequences, got {batch}"
            )
        half = torch.arange(batch // 2, device=like.device)
        return torch.stack([half, half + batch // 2], dim=1)
    x = _tensor("pairs", x)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"pairs must be an integer tensor, got {x.dtype}")
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"pairs must be (P, 2) (chosen, rejected) indices, got {tuple(x.shape)}")
    return x.to(device=like.device, dtype=torch.int64)


def flag(name: str, x, default: bool) -> bool:
    """A bool option (``None``: ``default``)."""
    if x is None:
        return default
    if not isinstance(x, bool):
        raise TypeError(f"{name} must be True, False or None, got {x!r}")
    return x


def integer(name: str, x) -> int:
    """An int option (not a bool, float or tensor)."""
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"{name} must be an int, got {x!r}")
    return x


def reduction(x) -> str:
    if x not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {x!r}")
    return x


def same_device(name: str, x: Tensor, ref: Tensor, ref_name: str = "logits") -> None:
    if x.device != ref.device:
        verb = "are" if ref_name.endswith("s") else "is"
        raise ValueError(f"{name} is on {x.device} but {ref_name} {verb} on {ref.device}")


# ---- value checks, run inside the ops on the flattened rows ------------------------------


def _first(mask: Tensor) -> Optional[int]:
    """The first index where ``mask`` is true (one host sync), or ``None``."""
    idx = torch.nonzero(mask.reshape(-1))
    return None if idx.numel() == 0 else int(idx[0, 0])


def rows(
    targets: Tensor,
    scored: Tensor,
    vocab: int,
    seq_len: int,
    shift: bool,
    ndim: int,
    weights: Tensor,
    ref_logps: Optional[Tensor],
    finite_ref: bool = False,
) -> None:
    """Check the scored rows' targets, the sequences' lengths and preferences, and the
    reference log-probs, naming the caller's index of the first bad value (``ndim``: the
    logits' dims, 2 for one flat sequence)."""
    at = lambda r: _layout.label_index(r, seq_len, shift, ndim)  # noqa: E731
    bad = _first(scored & ((targets < 0) | (targets >= vocab)))
    if bad is not None:
        raise ValueError(
            f"labels{at(bad)} = {int(targets[bad])} is not a token id: it must be in "
            f"[0, {vocab}) (the vocabulary of the logits) or ignore_index"
        )
    batch = scored.numel() // max(seq_len, 1)
    empty = _first(~scored.view(batch, seq_len).any(dim=1))
    if empty is not None:
        who = "the sequence" if ndim == 2 else f"sequence {empty}"
        after = " after the causal shift" if shift else ""
        raise ValueError(
            f"{who} has no scored label: every label{after} is ignore_index, so its length "
            "|y| is 0"
        )
    bad = _first(scored & (~torch.isfinite(weights) | (weights == 0)))
    if bad is not None:
        b = bad // seq_len
        raise ValueError(
            f"preference[{b}] is not usable (its row weight is {float(weights[bad])}): it must be "
            "finite and not 0 (+1 preferred, -1 dispreferred)"
        )
    if ref_logps is not None:
        invalid = torch.isnan(ref_logps) | (ref_logps > REF_LOGP_TOLERANCE)
        if finite_ref:
            invalid |= torch.isinf(ref_logps)
        bad = _first(scored & invalid)
        if bad is not None:
            need = "finite and " if finite_ref else ""
            raise ValueError(
                f"ref_logps{at(bad)} = {float(ref_logps[bad])} is not a log-probability: it must be "
                f"{need}<= 0 (up to {REF_LOGP_TOLERANCE} of rounding) and not NaN"
            )


def pair_values(pairs: Tensor, batch: int) -> None:
    """Every entry of ``(P, 2)`` pairs is a sequence index in ``[0, batch)``."""
    bad = _first((pairs < 0) | (pairs >= batch))
    if bad is not None:
        p, side = divmod(bad, 2)
        raise ValueError(
            f"pairs[{p}, {side}] = {int(pairs.reshape(-1)[bad])} is not a sequence index in [0, {batch})"
        )
