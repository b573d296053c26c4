"""Fused LM head + loss: every objective from hidden states ``h`` and the head ``W`` (and bias
``b``) without ever holding the logits. The rows go through in chunks: ``z = h_c W^T + b`` (torch's
matmul, in the hidden states' dtype), the row pass writes ``d loss / dz`` over ``z`` in place
(bnf-core, or the CUDA kernels), then ``dh_c = G W``, ``dW += G^T h_c`` (float32 accumulator) and
``db += sum G``. Peak extra memory: one ``chunk x V`` logits chunk, ``dh`` (``B T x H``), ``dW``
(``V x H``) and a few floats per row; nothing of size ``B x T x V``.

Two ways through, both on the op ``bnf::fused_linear_rows``:

- BNF and NLL with ``reduction="mean"`` or ``"sum"`` (the common case): one pass in forward
  computes the loss and every gradient at once (three matmuls per chunk); backward scales them
  by the incoming gradient (``_FusedScalar``).
- ``reduction="none"`` and the sequence-level objectives (which need each response's summed
  log-prob before any gradient): forward makes the per-row losses (for DPO and friends, each
  row's ``log pi(y)``) chunk by chunk keeping only those floats; backward makes the chunks again
  with each row's gradient scaled by its incoming gradient (the op's registered autograd).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _checks, _ops, functional

#: The most logits one chunk holds when the chunk size is chosen automatically (1 GiB of
#: float32).
MAX_CHUNK_ELEMENTS = 1 << 28


def chunk_rows(rows: int, vocab: int, hidden: int, chunk_size: Optional[int] = None) -> int:
    """The rows per chunk. Given: ``chunk_size``. Automatic: a logits chunk about as large as
    the larger of the hidden states and the head (``chunk x V ~ max(rows x H, V x H)``, so
    ``chunk ~ max(rows H / V, H)`` rows), rounded up to a power of two, at least 1 row, at most
    ``rows`` and at most ``MAX_CHUNK_ELEMENTS // V`` rows. The memory stays of the order of what
    is held anyway (the hidden states and ``dW``), while each chunk is tall enough that
    re-reading the head for every chunk costs little (measured on CPU: 128-row chunks took 2.2x
    the unfused time, 512-row ones 1.04x)."""
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        return max(1, min(chunk_size, rows))
    want = max(math.ceil(rows * hidden / max(vocab, 1)), hidden)
    c = 1 << max(0, (want - 1).bit_length())
    return max(1, min(c, rows, MAX_CHUNK_ELEMENTS // max(vocab, 1)))


def _accumulate_dw(dw: Tensor, g: Tensor, h: Tensor, tmp: Optional[Tensor]) -> Optional[Tensor]:
    """``dw += g^T h`` into the float32 accumulator ``dw``. float32 chunks accumulate inside
    the GEMM. float16/bfloat16 chunks keep their fast GEMM in their own dtype (tensor cores;
    AVX512-BF16/AMX on CPUs that have them, where it measured 4x a float32 GEMM) into ``tmp``,
    one ``V x H`` buffer of that dtype made on the first chunk and reused, then add it in
    float32: one rounding per chunk's product, none in the sum. Returns ``tmp``."""
    if g.dtype == torch.float32:
        dw.addmm_(g.T, h)
        return tmp
    if tmp is None:
        tmp = torch.empty(dw.shape, dtype=g.dtype, device=g.device)
    torch.matmul(g.T, h, out=tmp)
    dw.add_(tmp)
    return tmp


@torch.library.custom_op("bnf::fused_linear_rows", mutates_args=())
def fused_linear_rows(
    hidden: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    targets: Tensor,
    scored: Tensor,
    weights: Tensor,
    ref_logps: Optional[Tensor],
    num_responses: int,
    row_scale: Optional[Tensor],
    need: List[bool],
    chunk: int,
    seq_len: int,
    shift: bool,
    ndim: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The row pass of ``z = hidden @ weight.T + bias`` (``(N, H)``, ``(V, H)``, ``(V,)``),
    ``chunk`` rows at a time. Returns ``(loss (N,), diag (N, 3), dh, dW, db)``: ``loss`` and
    ``diag`` as ``bnf::row_loss``'s; the gradients of ``sum(loss * row_scale) / num_responses``
    (``row_scale`` None: 1) for the inputs that ``need = [hidden, weight, bias]`` asks for, else
    empty tensors."""
    n, h = hidden.shape
    v = weight.shape[0]
    where = (0, seq_len, shift, ndim)
    targets32, scored, weights, ref = _ops.checked_rows(targets, scored, weights, ref_logps, v, where)
    hidden, weight = hidden.contiguous(), weight.contiguous()
    f32 = dict(dtype=torch.float32, device=hidden.device)
    loss, diag = torch.empty(n, **f32), torch.empty((n, 3), **f32)
    grads = any(need)
    dh = torch.empty_like(hidden) if need[0] else hidden.new_empty((0,))
    dw = torch.zeros((v, h), **f32) if need[1] else None
    db = torch.zeros(v, **f32) if need[2] and bias is not None else None
    tmp = None
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        hc = hidden[i:j]
        z = hc @ weight.T if bias is None else torch.addmm(bias, hc, weight.T)
        z = z.contiguous()
        out = torch.empty((j - i, 4), **f32)
        _ops.run_rows(z, targets32[i:j], scored[i:j], weights[i:j], None if ref is None else ref[i:j],
                      num_responses, z if grads else None, out, (i, seq_len, shift, ndim), "(hidden @ weight.T)")
        loss[i:j], diag[i:j] = out[:, 0], out[:, 1:]
        if not grads:
            continue
        if row_scale is not None:
            z.mul_(row_scale[i:j, None].to(z.dtype))
        if dh.numel():
            torch.matmul(z, weight, out=dh[i:j])
        if dw is not None:
            tmp = _accumulate_dw(dw, z, hc, tmp)
        if db is not None:
            db += z.sum(dim=0, dtype=torch.float32)
    return (
        loss,
        diag,
        dh,
        hidden.new_empty((0,)) if dw is None else dw.to(weight.dtype),
        hidden.new_empty((0,)) if db is None else db.to(bias.dtype),
    )


@fused_linear_rows.register_fake
def _fused_fake(hidden, weight, bias, targets, scored, weights, ref_logps, num_responses, row_scale, need, chunk, seq_len, shift, ndim):
    n = hidden.shape[0]
    return (
        hidden.new_empty((n,), dtype=torch.float32),
        hidden.new_empty((n, 3), dtype=torch.float32),
        hidden.new_empty(hidden.shape) if need[0] else hidden.new_empty((0,)),
        weight.new_empty(weight.shape) if need[1] else hidden.new_empty((0,)),
        bias.new_empty(bias.shape) if need[2] and bias is not None else hidden.new_empty((0,)),
    )


def _fused_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(*output[1:])
    hidden, weight, bias, targets, scored, weights, ref, n = inputs[:8]
    ctx.save_for_backward(hidden, weight, bias, targets, scored, weights, ref)
    ctx.n, ctx.rest = n, inputs[10:]


def _fused_backward(ctx, g_loss, *_):
    """The chunks again, each row's gradient scaled by its incoming gradient."""
    hidden, weight, bias, targets, scored, weights, ref = ctx.saved_tensors
    need = [bool(x) for x in ctx.needs_input_grad[:3]]
    need[2] = need[2] and bias is not None
    _, _, dh, dw, db = fused_linear_rows(
        hidden, weight, bias, targets, scored, weights, ref, ctx.n, g_loss.float() * ctx.n, need, *ctx.rest
    )
    pick = lambda ok, g: g if ok else None  # noqa: E731
    return (pick(need[0], dh), pick(need[1], dw), pick(need[2], db)) + (None,) * 11


fused_linear_rows.register_autograd(_fused_backward, setup_context=_fused_setup)


class _FusedScalar(torch.autograd.Function):
    """``sum(loss) / n`` with every gradient made in the forward pass and scaled in backward
    (in place and held on ``ctx`` when eager, as ``_ops.RowLoss`` does; saved and out of place
    when traced)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, scored, weights, ref, n, need, chunk, seq_len, shift, ndim):
        loss, diag, dh, dw, db = fused_linear_rows(
            hidden, weight, bias, targets, scored, weights, ref, n, None, need, chunk, seq_len, shift, ndim
        )
        ctx.mark_non_differentiable(diag)
        ctx.traced = torch.compiler.is_compiling() or type(dh) is not torch.Tensor
        if ctx.traced:
            ctx.save_for_backward(dh, dw, db)
        else:
            ctx.grads = (dh, dw, db)
        ctx.need = need
        return loss.sum() / n, diag

    @staticmethod
    def backward(ctx, g, _g_diag):
        if ctx.traced:
            grads = ctx.saved_tensors
        else:
            grads, ctx.grads = ctx.grads, None
            _ops.one_backward_only(torch.is_grad_enabled(), grads)
        out = []
        for ok, grad in zip(ctx.need, grads):
            scale = g.to(grad.dtype)
            out.append(None if not ok else grad * scale if ctx.traced else grad.mul_(scale))
        return tuple(out) + (None,) * 10


def _check_head(hidden, weight, bias):
    hidden = _checks.logits(hidden, name="hidden")
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must be (V, H) with H = {hidden.shape[-1]} (the hidden size), got {tuple(weight.shape)}"
        )
    if weight.shape[0] == 0:
        raise ValueError("weight has no rows: the vocabulary is empty")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if t.dtype != hidden.dtype:
            raise TypeError(f"{name} is {t.dtype} but hidden is {hidden.dtype}: the head's matmul needs one dtype")
        _checks.same_device(name, t, hidden, "hidden")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must be (V,) = ({weight.shape[0]},), got {tuple(bias.shape)}")
    return hidden


def fused_linear_loss(
    hidden: Tensor,
    weight: Tensor,
    labels: Tensor,
    ref_logps: Optional[Tensor] = None,
    *,
    objective: str = "bnf",
    bias: Optional[Tensor] = None,
    preference: Optional[Tensor] = None,
    pairs: Optional[Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    shift: Optional[bool] = None,
    chunk_size: Optional[int] = None,
    return_stats: bool = False,
    **hyperparameters,
):
    """``objective_loss(objective, hidden @ weight.T + bias, labels, ref_logps, ...)`` without
    the logits: ``hidden`` ``(B, T, H)`` or ``(N, H)``, ``weight`` ``(V, H)`` (a tied embedding
    works), ``bias`` ``(V,)`` or None, all of one dtype (float32, float16 or bfloat16) and
    device. Gradients reach ``hidden``, ``weight`` and ``bias``, whichever require them. The
    other arguments and the result are :func:`bnf.objective_loss`'s; ``chunk_size`` rows per
    chunk (default: :func:`chunk_rows`). ``return_stats=True`` (BNF and NLL) also returns the
    per-token :class:`bnf.TokenStats`, as :func:`bnf.bnf_loss` does."""
    hidden = _check_head(hidden, weight, bias)
    names, values = functional._params(hyperparameters)
    name, _, needs_ref, _ = functional.objective_info(str(objective), tuple(zip(names, values)))
    if return_stats and name not in ("bnf", "nll"):
        raise ValueError(f"return_stats is for BNF and NLL (per-token statistics), not {name}")
    b = functional.prepare(hidden, labels, ref_logps, ignore_index, shift, needs_ref, "hidden")
    r = b.rows
    chunk = chunk_rows(r.x.shape[0], weight.shape[0], weight.shape[1], chunk_size)
    on = torch.is_grad_enabled()
    need = [on and t is not None and t.requires_grad for t in (hidden, weight, bias)]
    where = (r.seq_len, b.shift, b.ndim)

    def rows_fn(weights, ref, n, reduced):
        if reduced and any(need):
            return _FusedScalar.apply(r.x, weight, bias, r.targets, r.scored, weights, ref, n, need, chunk, *where)
        loss, diag, _, _, _ = fused_linear_rows(
            r.x, weight, bias, r.targets, r.scored, weights, ref, n, None, [False] * 3, chunk, *where
        )
        return (loss.sum() / n if reduced else loss), diag

    return functional.run(name, names, values, b, preference, pairs, reduction, rows_fn, return_stats)
