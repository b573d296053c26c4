"""Per-token reference log-probs, computed once before training: what BNF reads per token
(TRL stores only sequence sums)."""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor

from . import _checks, _layout, functional


def _logits_of(out) -> Tensor:
    """A model's output as logits: a tensor, or an object with ``.logits`` (Hugging Face)."""
    logits = getattr(out, "logits", out)
    if not isinstance(logits, Tensor):
        raise TypeError(f"the model returned {type(out).__name__}, not logits or an object with .logits")
    return logits


@torch.no_grad()
def reference_logps(
    model_or_logits: Union[Callable, Tensor],
    input_ids: Optional[Tensor] = None,
    labels: Optional[Tensor] = None,
    *,
    attention_mask: Optional[Tensor] = None,
    ignore_index: int = -100,
    shift: Optional[bool] = None,
    batch_size: Optional[int] = None,
) -> Tensor:
    """The log-prob of each label under the reference, shaped like ``labels`` (float32, 0 where
    the label is not scored), under ``torch.no_grad``.

    ``model_or_logits`` is the reference's logits (then ``input_ids`` is not needed) or a model
    called as ``model(input_ids)`` (``model(input_ids, attention_mask=...)`` when a mask is
    given) returning logits or an object with
    ``.logits`` (Hugging Face), ``batch_size`` sequences at a time (default: all at once). The
    log-probs are read from the logits in place, in their own dtype, by the library's fused row
    pass: no float32 copy and no log-softmax of ``(B, T, V)`` is made."""
    if isinstance(model_or_logits, Tensor) and labels is None and input_ids is not None:
        labels = input_ids  # reference_logps(logits, labels): the logits form needs no ids
    if labels is None:
        raise ValueError("labels is required: the token ids to score, ignore_index elsewhere")
    if isinstance(model_or_logits, Tensor):
        return _from_logits(model_or_logits, labels, ignore_index, shift)
    if not callable(model_or_logits):
        raise TypeError("model_or_logits must be logits (a Tensor) or a callable model")
    if input_ids is None:
        raise ValueError("input_ids is required when a model is given")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    step = batch_size or labels.shape[0]
    outs = []
    for i in range(0, labels.shape[0], step):
        kwargs = {} if attention_mask is None else {"attention_mask": attention_mask[i : i + step]}
        logits = _logits_of(model_or_logits(input_ids[i : i + step], **kwargs))
        outs.append(_from_logits(logits, labels[i : i + step], ignore_index, shift))
    return torch.cat(outs, dim=0)


def _from_logits(logits: Tensor, labels: Tensor, ignore_index: int, shift: bool) -> Tensor:
    logits = _checks.logits(logits)
    labels = _checks.labels(labels, logits)
    logits = logits.detach()
    b = functional.prepare(logits, labels, None, ignore_index, shift, False)
    shift = b.shift
    scored = b.rows.scored
    ell, _ = functional._logit_rows(logits, b)(torch.where(scored, -1.0, 0.0).to(torch.float32), None, 1, False)
    return _layout.shift_right(ell.view(b.rows.batch, b.rows.seq_len), shift).reshape(labels.shape)
