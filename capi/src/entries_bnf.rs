//! The BNF batch entry points: forward, forward+backward into a buffer, and forward+backward over
//! the logits, for f32, f16 and bf16 logits (f16/bf16 as `uint16_t` bits). BNF is the paper's eq. 4
//! with gradient eq. 8; it reads `batch->ref_logp`. Each symbol is a one-line wrapper of a generic
//! body in `batch.rs`; the f32 ones are written here, their f16 and bf16 twins are generated from
//! them by `build.rs` (which says why not with a macro).
use crate::batch::{self, Objective::Bnf};
use crate::status::BnfStatus;
use crate::types::{BnfBatch, BnfRowDiag};
use bnf_core::{bf16, f16};

/// BNF loss only, `float` logits: writes the batch loss to `*loss` and, if `diag` is not
/// NULL, `batch->rows` records to `diag`. Row losses and gradients follow the
/// paper's eqs. 4, 6 and 8. Nothing is written on error.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_forward_f32(
    logits: *const f32,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    batch::forward("bnf_forward_f32", Bnf, logits, batch, diag, loss)
}

/// BNF loss and gradient, `float` logits: writes `dloss/dz` to `grad` (same shape as
/// `logits`, must not overlap it), the batch loss to `*loss` and, if `diag` is not NULL,
/// `batch->rows` records to `diag`. Nothing is written on error.
///
/// # Safety
/// `logits` and `grad` point to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_forward_backward_f32(
    logits: *const f32,
    batch: *const BnfBatch,
    grad: *mut f32,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    batch::forward_backward(
        "bnf_forward_backward_f32",
        Bnf,
        logits,
        batch,
        grad,
        diag,
        loss,
    )
}

/// As `bnf_forward_backward_f32`, with the gradient written over `logits` (no second
/// `rows x vocab` buffer; bit for bit the same gradient). On error the logits are untouched.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` writable elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_forward_backward_in_place_f32(
    logits: *mut f32,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    batch::in_place(
        "bnf_forward_backward_in_place_f32",
        Bnf,
        logits,
        batch,
        diag,
        loss,
    )
}

include!(concat!(env!("OUT_DIR"), "/entries_bnf_halves.rs"));
