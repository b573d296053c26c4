"""The two ``torch.library`` custom ops every loss in the package is built from, with their
fake (meta) implementations and autograd formulas:

- ``bnf::row_loss``: BNF or NLL over rows (core's fused pass, or the CUDA kernel through
  bnf-driver). Returns each row's loss term, its diagnostics and, when asked, the gradient of
  ``sum(loss) / num_responses`` written in the same pass; backward scales that buffer in place
  by the incoming gradient (no second pass through the loss, no second logits-sized buffer).
- ``bnf::sequence_terms``: the terms of a sequence-level objective (DPO, SimPO, KTO, ...) from
  each response's summed log-prob, with each term's derivatives from core.

Both check the values they read first (see ``_checks``) and turn core's errors into
``ValueError`` naming the caller's index.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _checks, _layout, _native

_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
_CUDA_STATUS = {
    1: "a target id is out of range",
    2: "a row weight is not finite",
    3: "non-finite logits",
    4: "a reference log-prob is invalid",
    5: "invalid row statistics",
}


def _core_error(e: Exception, seq_len: int, shift: bool, ndim: int, what: str) -> ValueError:
    """A ``CoreError`` from row-level work as a ``ValueError`` naming the caller's index
    (``what`` names the logits: ``"logits"``, or the fused head's ``hidden @ weight.T``)."""
    msg, kind, row, _response, col, value = e.args
    if kind == "logits" and row is not None:
        where = _layout.logits_index(row, seq_len, ndim, col)
        return ValueError(
            f"{what}{where} = {value}: a scored position's logits must be finite or -inf, and "
            "the target's logit must be finite"
        )
    if row is not None:
        return ValueError(f"labels{_layout.label_index(row, seq_len, shift, ndim)}: {msg}")
    return ValueError(f"bnf: {msg}")


def _run_cpu(logits, targets, scored, weights, ref, n, grad, row_out):
    _native.row_loss(
        _DTYPE_NAMES[logits.dtype],
        logits.data_ptr(),
        logits.shape[0],
        logits.shape[1],
        targets.data_ptr(),
        scored.data_ptr(),
        weights.data_ptr(),
        0 if ref is None else ref.data_ptr(),
        n,
        0 if grad is None else grad.data_ptr(),
        row_out.data_ptr(),
        torch.get_num_threads(),
    )


def _run_cuda(logits, targets, scored, weights, ref, n, grad, row_out, at):
    rows, vocab = logits.shape
    if rows >= 2**32 or vocab >= 2**32:
        raise ValueError(f"bnf CUDA: {rows} rows x {vocab} columns exceed the kernels' 32-bit sizes")
    out = torch.empty((rows, 5), dtype=torch.float32, device=logits.device)
    status = torch.zeros(rows, dtype=torch.int32, device=logits.device)
    with torch.cuda.device(logits.device):
        _native.cuda_row_loss(
            logits.device.index,
            _DTYPE_NAMES[logits.dtype],
            logits.data_ptr(),
            rows,
            vocab,
            targets.data_ptr(),
            scored.data_ptr(),
            weights.data_ptr(),
            0 if ref is None else ref.data_ptr(),
            float(n),
            0 if grad is None else grad.data_ptr(),
            out.data_ptr(),
            status.data_ptr(),
            torch.cuda.current_stream(logits.device).cuda_stream,
        )
    bad = _checks._first(status != 0)
    if bad is not None:
        code = int(status[bad])
        if code == 3:
            host = logits[bad].cpu().contiguous()
            found = _native.bad_logit(
                _DTYPE_NAMES[logits.dtype], host.data_ptr(), vocab, int(targets[bad])
            )
            col, value = found if found is not None else (None, float("nan"))
            raise ValueError(
                f"{at(bad, col)} = {value}: a scored position's logits must be finite or -inf, "
                "and the target's logit must be finite"
            )
        raise ValueError(f"{at(bad, None)}: {_CUDA_STATUS.get(code, f'status {code}')}")
    row_out.copy_(out[:, :4])


def checked_rows(targets, scored, weights, ref_logps, vocab, where):
    """The per-row inputs after the value checks (``_checks.rows``), as the row pass reads
    them: int32 targets (0 where not scored), bool mask, float32 weights and reference."""
    _, seq_len, shift, ndim = where
    _checks.rows(targets, scored, vocab, seq_len, shift, ndim, weights, ref_logps)
    targets32 = torch.where(scored, targets, 0).to(torch.int32).contiguous()
    weights = weights.to(torch.float32).contiguous()
    ref = None if ref_logps is None else ref_logps.to(torch.float32).contiguous()
    return targets32, scored.contiguous(), weights, ref


def run_rows(logits, targets32, scored, weights, ref, n, grad, row_out, where, what="logits"):
    """One call of the row pass on prepared, contiguous rows (CPU: bnf-core; CUDA: the
    kernels): ``row_out`` gets ``[loss, pi_y, f_y, c]`` per row and ``grad`` (None: loss only;
    ``logits`` itself: in place) the gradient. ``where = (first_row, seq_len, shift, ndim)``
    maps a failing row back to the caller's index."""
    row0, seq_len, shift, ndim = where
    try:
        if logits.is_cuda:
            at = lambda r, col: what + _layout.logits_index(row0 + r, seq_len, ndim, col)  # noqa: E731
            _run_cuda(logits, targets32, scored, weights, ref, n, grad, row_out, at)
        else:
            _run_cpu(logits, targets32, scored, weights, ref, n, grad, row_out)
    except _native.CoreError as e:
        msg, kind, row, response, col, value = e.args
        shifted = (msg, kind, None if row is None else row0 + row, response, col, value)
        raise _core_error(_native.CoreError(*shifted), seq_len, shift, ndim, what) from None


@torch.library.custom_op("bnf::row_loss", mutates_args=())
def row_loss(
    logits: Tensor,
    targets: Tensor,
    scored: Tensor,
    weights: Tensor,
    ref_logps: Optional[Tensor],
    num_responses: int,
    need_grad: bool,
    seq_len: int,
    shift: bool,
    ndim: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    """BNF (``ref_logps`` given) or NLL over ``(N, V)`` rows. Returns ``(loss (N,), diag (N, 3)
    = [pi_y, f_y, c], grad)``: ``loss[r] = weights[r] * CE(f_r, pi_r)`` (0 for unscored rows)
    and, when ``need_grad``, ``grad = d(sum(loss) / num_responses) / dlogits`` in the logits'
    dtype (else an empty tensor)."""
    targets32, scored, weights, ref = checked_rows(
        targets, scored, weights, ref_logps, logits.shape[1], (0, seq_len, shift, ndim)
    )
    logits = logits.contiguous()
    grad = torch.empty_like(logits) if need_grad else None
    row_out = torch.empty((logits.shape[0], 4), dtype=torch.float32, device=logits.device)
    run_rows(logits, targets32, scored, weights, ref, num_responses, grad, row_out, (0, seq_len, shift, ndim))
    empty = logits.new_empty((0,))
    return row_out[:, 0].clone(), row_out[:, 1:].clone(), grad if need_grad else empty


@row_loss.register_fake
def _row_loss_fake(logits, targets, scored, weights, ref_logps, num_responses, need_grad, seq_len, shift, ndim):
    n = logits.shape[0]
    loss = logits.new_empty((n,), dtype=torch.float32)
    diag = logits.new_empty((n, 3), dtype=torch.float32)
    grad = logits.new_empty(logits.shape) if need_grad else logits.new_empty((0,))
    return loss, diag, grad


def _row_loss_setup(ctx, inputs, output):
    _, diag, grad = output
    ctx.mark_non_differentiable(diag, grad)
    ctx.save_for_backward(grad)
    ctx.num_responses = inputs[5]
    ctx.need_grad = inputs[6]


def _no_grad_error():
    return RuntimeError(
        "bnf: backward through a loss computed without its gradient (the logits did not "
        "require grad, or grad mode was off, when the loss was computed)"
    )


def _row_loss_backward(ctx, g_loss, _g_diag, _g_grad):
    (grad,) = ctx.saved_tensors
    if not ctx.need_grad:
        raise _no_grad_error()
    scale = (g_loss * ctx.num_responses).to(grad.dtype)[:, None]
    return grad * scale, None, None, None, None, None, None, None, None, None


row_loss.register_autograd(_row_loss_backward, setup_context=_row_loss_setup)


def _params(names: str, values: List[float]):
    """Hyperparameters as the op carries them (names comma-separated: schemas have no string
    lists) back to ``(name, value)`` pairs."""
    return list(zip(names.split(","), values)) if names else []


@torch.library.custom_op("bnf::sequence_terms", mutates_args=())
def sequence_terms(
    logp: Tensor,
    scored: Tensor,
    ref_logps: Optional[Tensor],
    labels: Tensor,
    pairs: Tensor,
    objective: str,
    param_names: str,
    param_values: List[float],
    seq_len: int,
    shift: bool,
    ndim: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The terms of a sequence-level objective: ``(terms (K,), d (K, 2), responses (K, 2),
    z0)`` from the summed log-probs ``logp (B,)``, the scored rows ``(B*T,)``, the
    reference log-prob per row (summed here over each sequence's scored rows), per-sequence
    labels and ``(P, 2)`` pairs; hyperparameters as comma-separated names and values. ``d[k]`` is ``d terms[k] / d logp[responses[k]]``; ``z0`` holds
    KTO's reference point (one value; empty for other objectives)."""
    batch = logp.shape[0]
    _checks.pair_values(pairs, batch)
    params = _params(param_names, param_values)
    scored = scored.view(batch, seq_len)
    rp: List[float] = []
    if ref_logps is not None:
        invalid = torch.isnan(ref_logps) | torch.isinf(ref_logps)
        invalid |= ref_logps > _native.REF_LOGP_TOLERANCE
        bad = _checks._first(scored.reshape(-1) & invalid)
        if bad is not None:
            raise ValueError(
                f"ref_logps{_layout.label_index(bad, seq_len, shift, ndim)} = "
                f"{float(ref_logps[bad])} is not a log-probability: sequence objectives need "
                f"finite values <= 0 (up to {_native.REF_LOGP_TOLERANCE} of rounding)"
            )
        # Each row's value clamped at 0 before the sum, as core's own sequence path does.
        ref = torch.where(scored, ref_logps.view(batch, seq_len).double().clamp(max=0.0), 0.0)
        rp = ref.sum(dim=1).float().tolist()
    try:
        losses, responses, d, z0 = _native.sequence_terms(
            objective,
            params,
            logp.detach().float().tolist(),
            rp,
            scored.sum(dim=1).tolist(),
            labels.float().tolist(),
            [tuple(p) for p in pairs.tolist()],
        )
    except _native.CoreError as e:
        msg, kind, _row, response, _col, _value = e.args
        who = {"label": "sequence", "empty": "sequence"}.get(kind)
        where = f"{who} {response}: " if who is not None and response is not None else ""
        raise ValueError(f"objective {objective}: {where}{msg}") from None
    dev = logp.device
    return (
        torch.tensor(losses, dtype=torch.float32, device=dev),
        torch.tensor(d, dtype=torch.float32, device=dev).reshape(-1, 2),
        torch.tensor(responses, dtype=torch.int64, device=dev).reshape(-1, 2),
        torch.tensor([] if z0 is None else [z0], dtype=torch.float32, device=dev),
    )


@sequence_terms.register_fake
def _sequence_terms_fake(logp, scored, ref_logps, labels, pairs, objective, param_names, param_values, seq_len, shift, ndim):
    name, needs_pairs, _, _ = _native.objective_info(objective, _params(param_names, param_values))  # fmt: skip
    k = pairs.shape[0] if needs_pairs else logp.shape[0]
    return (
        logp.new_empty((k,), dtype=torch.float32),
        logp.new_empty((k, 2), dtype=torch.float32),
        logp.new_empty((k, 2), dtype=torch.int64),
        logp.new_empty((1 if name == "kto" else 0,), dtype=torch.float32),
    )


def _sequence_terms_setup(ctx, inputs, output):
    _, d, responses, z0 = output
    ctx.mark_non_differentiable(d, responses, z0)
    ctx.save_for_backward(d, responses)
    ctx.batch = inputs[0].shape[0]


def _sequence_terms_backward(ctx, g_terms, _g_d, _g_resp, _g_z0):
    d, responses = ctx.saved_tensors
    g = g_terms.to(torch.float32)
    dlogp = torch.zeros(ctx.batch, dtype=torch.float32, device=g.device)
    dlogp = dlogp.index_add(0, responses[:, 0], g * d[:, 0])
    dlogp = dlogp.index_add(0, responses[:, 1], g * d[:, 1])
    return dlogp, None, None, None, None, None, None, None, None, None, None


sequence_terms.register_autograd(_sequence_terms_backward, setup_context=_sequence_terms_setup)


def one_backward_only(create_graph: bool, buffer) -> None:
    """The errors of a backward that the gradient written in forward cannot serve."""
    if create_graph:
        raise RuntimeError(
            "bnf losses have no double backward (create_graph=True): their gradient is computed "
            "in the forward pass, not differentiated again"
        )
    if buffer is None:
        raise RuntimeError(
            "bnf losses support one backward per forward (retain_graph=True and a second "
            "backward are not supported): the gradient buffer written in forward was handed to "
            "the first backward"
        )


class RowLoss(torch.autograd.Function):
    """``bnf::row_loss`` with the gradient buffer handed to the logits: what the public
    functions call. The op's registered autograd must return a new tensor (its buffer is an
    op output, which autograd keeps a reference to, so the returned gradient would be copied);
    here the buffer is an intermediate of this Function, held on ``ctx`` (not saved, so that
    a second backward finds it gone and says so), so backward scales it in place and autograd
    takes it as the logits' gradient: no second logits-sized buffer and no copy. Under
    ``torch.compile`` the same Function is traced, saving the buffer and scaling it out of
    place."""

    @staticmethod
    def forward(ctx, logits, targets, scored, weights, ref_logps, num_responses, need_grad, seq_len, shift, ndim):
        loss, diag, grad = row_loss(
            logits, targets, scored, weights, ref_logps, num_responses, need_grad, seq_len, shift, ndim
        )
        ctx.mark_non_differentiable(diag)
        ctx.traced = torch.compiler.is_compiling() or type(grad) is not torch.Tensor
        if ctx.traced:
            ctx.save_for_backward(grad)
        else:
            ctx.grad = grad
        ctx.num_responses, ctx.need_grad = num_responses, need_grad
        return loss, diag

    @staticmethod
    def backward(ctx, g_loss, _g_diag):
        if not ctx.need_grad:
            raise _no_grad_error()
        if ctx.traced:
            (grad,) = ctx.saved_tensors
            scale = (g_loss * ctx.num_responses).to(grad.dtype)[:, None]
            return (grad * scale,) + (None,) * 9
        grad, ctx.grad = ctx.grad, None
        one_backward_only(torch.is_grad_enabled(), grad)
        scale = (g_loss * ctx.num_responses).to(grad.dtype)[:, None]
        return (grad.mul_(scale),) + (None,) * 9
