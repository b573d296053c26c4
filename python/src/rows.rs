//! The row-local losses (BNF, NLL) on host memory: one call of core's fused pass per batch,
//! writing the gradient into a buffer the caller allocated (never over the logits, which
//! belong to autograd) and four floats per row.

use bnf_core::{
    bf16, f16, forward, forward_backward, forward_backward_in_place, Batch, Logit, RowDiag, RowLoss,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::core_error;
use crate::memory::{elements, slice, slice_mut};

/// Floats per row in `row_out`: the row's loss term `s * CE(f, pi)`, `pi_y`, `f_y`, `c`.
pub const ROW_OUT: usize = 4;

/// Where one row-local call reads and writes (addresses of contiguous tensors; 0 = absent).
#[derive(Clone, Copy)]
struct Call {
    logits: usize,
    rows: usize,
    vocab: usize,
    targets: usize,
    scored: usize,
    weights: usize,
    ref_logp: usize,
    num_responses: usize,
    grad: usize,
    row_out: usize,
}

/// BNF (`ref_logp` given) or NLL (`ref_logp == 0`) over `rows x vocab` logits of `dtype`
/// (`"float32"`, `"float16"`, `"bfloat16"`): targets `int32` (ids, read as `u32`), `scored`
/// `bool` (0: every row), weights and `ref_logp` `float32`, `row_out` `rows x 4` `float32`;
/// `grad` (0: loss only) gets `d(sum_r loss_r / num_responses) / dlogits` in `dtype`; `grad`
/// equal to `logits` writes it over the logits (core's in-place pass; a failed call leaves
/// them untouched). Runs on
/// up to `threads` threads (0: core's setting) with the GIL released. Returns the batch loss.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn row_loss(
    py: Python<'_>,
    dtype: &str,
    logits: usize,
    rows: usize,
    vocab: usize,
    targets: usize,
    scored: usize,
    weights: usize,
    ref_logp: usize,
    num_responses: usize,
    grad: usize,
    row_out: usize,
    threads: usize,
) -> PyResult<f32> {
    let call = Call {
        logits,
        rows,
        vocab,
        targets,
        scored,
        weights,
        ref_logp,
        num_responses,
        grad,
        row_out,
    };
    if threads > 0 {
        bnf_core::set_num_threads(threads);
    }
    let dtype = dtype.to_string();
    py.detach(move || match dtype.as_str() {
        // SAFETY (all three): the Python caller passes the addresses of live, contiguous
        // tensors of these dtypes and sizes, which no one else touches during the call.
        "float32" => unsafe { run::<f32>(&call) },
        "float16" => unsafe { run::<f16>(&call) },
        "bfloat16" => unsafe { run::<bf16>(&call) },
        other => Err(PyValueError::new_err(format!(
            "bnf._native.row_loss: dtype {other} is not float32, float16 or bfloat16"
        ))),
    })
}

/// [`row_loss`] for one element type.
///
/// # Safety
/// Every non-zero address in `c` points to a live, contiguous buffer of the documented type
/// and length that no one else reads or writes during the call.
unsafe fn run<T: Logit>(c: &Call) -> PyResult<f32> {
    let n = elements(c.rows, c.vocab)?;
    // SAFETY: the caller's contract, buffer by buffer.
    let (targets, weights, ref_logp, scored, row_out) = unsafe {
        (
            slice::<u32>(c.targets, c.rows, "targets")?,
            slice::<f32>(c.weights, c.rows, "weights")?,
            match c.ref_logp {
                0 => None,
                a => Some(slice::<f32>(a, c.rows, "ref_logp")?),
            },
            match c.scored {
                0 => None,
                a => Some(slice::<bool>(a, c.rows, "scored")?),
            },
            slice_mut::<f32>(c.row_out, c.rows * ROW_OUT, "row_out")?,
        )
    };
    let batch = Batch {
        vocab: c.vocab,
        targets,
        weights,
        scored,
        num_responses: c.num_responses,
    };
    let loss = match ref_logp {
        Some(ref_logp) => RowLoss::Bnf { ref_logp },
        None => RowLoss::Nll,
    };
    let mut diag = vec![RowDiag::default(); c.rows];
    // SAFETY (each arm): the caller's contract; `grad` is either the logits themselves (then
    // only the one mutable slice exists) or a buffer of its own.
    let total = match c.grad {
        0 => forward(
            unsafe { slice::<T>(c.logits, n, "logits")? },
            &batch,
            loss,
            &mut diag,
        ),
        a if a == c.logits => {
            let logits = unsafe { slice_mut::<T>(c.logits, n, "logits")? };
            forward_backward_in_place(logits, &batch, loss, &mut diag)
        }
        a => {
            let logits = unsafe { slice::<T>(c.logits, n, "logits")? };
            let grad = unsafe { slice_mut::<T>(a, n, "grad")? };
            forward_backward(logits, &batch, loss, grad, &mut diag)
        }
    }
    .map_err(core_error)?;
    for (out, d) in row_out.chunks_exact_mut(ROW_OUT).zip(&diag) {
        out.copy_from_slice(&[d.loss, d.pi_y, d.f_y, d.c]);
    }
    Ok(total)
}

/// Core's choice of the offending logit of a row that a kernel reported non-finite (the first
/// NaN or `+inf`, else the target's `-inf`), on a host copy of the row: `(column, value)`.
#[pyfunction]
pub fn bad_logit(
    dtype: &str,
    row: usize,
    vocab: usize,
    target: usize,
) -> PyResult<Option<(usize, f32)>> {
    // SAFETY: the caller passes a live contiguous host row of `vocab` elements of `dtype`.
    unsafe {
        Ok(match dtype {
            "float32" => bnf_core::bad_logit(slice::<f32>(row, vocab, "row")?, target),
            "float16" => bnf_core::bad_logit(slice::<f16>(row, vocab, "row")?, target),
            "bfloat16" => bnf_core::bad_logit(slice::<bf16>(row, vocab, "row")?, target),
            other => {
                return Err(PyValueError::new_err(format!(
                    "bnf._native.bad_logit: dtype {other} is not float32, float16 or bfloat16"
                )))
            }
        })
    }
}
