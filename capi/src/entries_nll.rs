//! The NLL batch entry points: forward, forward+backward into a buffer, and
//! forward+backward over the logits, for f32, f16 and bf16 logits (f16/bf16 as `uint16_t` bits).
//! NLL is the SFT cross-entropy (BNF with a one-hot target); it ignores `batch->ref_logp`.
use crate::batch::{run, Grad, Objective};
use crate::guard::entry;
use crate::status::BnfStatus;
use crate::types::{BnfBatch, BnfRowDiag};
use bnf_core::{bf16, f16};

/// NLL loss only, `float` logits: writes the batch loss to `*loss` and, if `diag` is not
/// NULL, `batch->rows` records to `diag`.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_f32(
    logits: *const f32,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_f32", || {
        run(
            Objective::Nll,
            logits as *mut f32,
            batch,
            Grad::None,
            diag,
            loss,
        )
    })
}

/// NLL loss and gradient, `float` logits: writes `dloss/dz` to `grad` (same shape as
/// `logits`, must not overlap it), the batch loss to `*loss` and, if `diag` is not NULL,
/// `batch->rows` records to `diag`. Nothing is written on error.
///
/// # Safety
/// `logits` and `grad` point to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_backward_f32(
    logits: *const f32,
    batch: *const BnfBatch,
    grad: *mut f32,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_backward_f32", || {
        run(
            Objective::Nll,
            logits as *mut f32,
            batch,
            Grad::Into(grad),
            diag,
            loss,
        )
    })
}

/// As `bnf_nll_forward_backward_f32`, with the gradient written over `logits` (no second
/// `rows x vocab` buffer; bit for bit the same gradient). On error the logits are untouched.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` writable elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_backward_in_place_f32(
    logits: *mut f32,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_backward_in_place_f32", || {
        run(Objective::Nll, logits, batch, Grad::InPlace, diag, loss)
    })
}

/// NLL loss only, IEEE half (`uint16_t` bits) logits: writes the batch loss to `*loss` and, if `diag` is not
/// NULL, `batch->rows` records to `diag`.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_f16(
    logits: *const u16,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_f16", || {
        run(
            Objective::Nll,
            logits as *const f16 as *mut f16,
            batch,
            Grad::None,
            diag,
            loss,
        )
    })
}

/// NLL loss and gradient, IEEE half (`uint16_t` bits) logits: writes `dloss/dz` to `grad` (same shape as
/// `logits`, must not overlap it), the batch loss to `*loss` and, if `diag` is not NULL,
/// `batch->rows` records to `diag`. Nothing is written on error.
///
/// # Safety
/// `logits` and `grad` point to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_backward_f16(
    logits: *const u16,
    batch: *const BnfBatch,
    grad: *mut u16,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_backward_f16", || {
        run(
            Objective::Nll,
            logits as *const f16 as *mut f16,
            batch,
            Grad::Into(grad as *mut f16),
            diag,
            loss,
        )
    })
}

/// As `bnf_nll_forward_backward_f16`, with the gradient written over `logits` (no second
/// `rows x vocab` buffer; bit for bit the same gradient). On error the logits are untouched.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` writable elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_backward_in_place_f16(
    logits: *mut u16,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_backward_in_place_f16", || {
        run(
            Objective::Nll,
            logits as *mut f16,
            batch,
            Grad::InPlace,
            diag,
            loss,
        )
    })
}

/// NLL loss only, bfloat16 (`uint16_t` bits) logits: writes the batch loss to `*loss` and, if `diag` is not
/// NULL, `batch->rows` records to `diag`.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_bf16(
    logits: *const u16,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_bf16", || {
        run(
            Objective::Nll,
            logits as *const bf16 as *mut bf16,
            batch,
            Grad::None,
            diag,
            loss,
        )
    })
}

/// NLL loss and gradient, bfloat16 (`uint16_t` bits) logits: writes `dloss/dz` to `grad` (same shape as
/// `logits`, must not overlap it), the batch loss to `*loss` and, if `diag` is not NULL,
/// `batch->rows` records to `diag`. Nothing is written on error.
///
/// # Safety
/// `logits` and `grad` point to `batch->rows * batch->vocab` elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_backward_bf16(
    logits: *const u16,
    batch: *const BnfBatch,
    grad: *mut u16,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_backward_bf16", || {
        run(
            Objective::Nll,
            logits as *const bf16 as *mut bf16,
            batch,
            Grad::Into(grad as *mut bf16),
            diag,
            loss,
        )
    })
}

/// As `bnf_nll_forward_backward_bf16`, with the gradient written over `logits` (no second
/// `rows x vocab` buffer; bit for bit the same gradient). On error the logits are untouched.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` writable elements; `diag` (if not NULL) to
/// `batch->rows` records; `loss` to one float; the arrays in `batch` to `batch->rows` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_nll_forward_backward_in_place_bf16(
    logits: *mut u16,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry("bnf_nll_forward_backward_in_place_bf16", || {
        run(
            Objective::Nll,
            logits as *mut bf16,
            batch,
            Grad::InPlace,
            diag,
            loss,
        )
    })
}
