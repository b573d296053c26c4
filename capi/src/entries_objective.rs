//! The objective entry points: BNF, NLL and every sequence-level baseline of `bnf-core`
//! (`bnf_objective_default` to pick one) on host pointers, loss only, loss and gradient into a
//! buffer, or the gradient over the logits, for f32, f16 and bf16 logits (f16/bf16 as `uint16_t`
//! bits). Each symbol is a one-line wrapper of a generic body in `objective.rs`; the f32 ones are
//! written here, their f16 and bf16 twins are generated from them by `build.rs` (which says why not
//! with a macro).

use std::ffi::c_char;

use crate::guard::entry;
use crate::objective::{self, BnfObjective, BnfObjectiveOut, BnfPrefBatch};
use crate::status::BnfStatus;
use bnf_core::{bf16, f16};

/// Fill `*out` with the objective called `name` and its default parameters (`losses.md`):
/// "bnf", "nll" (or "sft"), "nll_pll", "dpo", "ipo", "slic_hf", "simpo", "rdpo", "cpo", "orpo",
/// "kto"; case-insensitive, `-` and `_` alike. Unknown names are `BNF_ERR_INVALID_ARGUMENT`
/// with the list in the message.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` points to a writable `BnfObjective`.
#[no_mangle]
pub unsafe extern "C" fn bnf_objective_default(
    name: *const c_char,
    out: *mut BnfObjective,
) -> BnfStatus {
    entry("bnf_objective_default", || objective::default(name, out))
}

/// The loss of `objective` on `batch`, `float` logits: writes `out->loss`, `out->kl_estimate`
/// and the arrays `out` points to. Checks the batch as core does (offsets, labels, pairs, the
/// reference where the objective needs it, targets, values). Nothing is written on error.
///
/// # Safety
/// `logits` points to `batch->rows * batch->vocab` elements; the arrays of `batch` and `out` to
/// the sizes their fields state.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_objective_forward_f32(
    logits: *const f32,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    out: *mut BnfObjectiveOut,
) -> BnfStatus {
    objective::forward("bnf_objective_forward_f32", logits, batch, objective, out)
}

/// As `bnf_objective_forward_f32`, and `dloss/dlogits` into `grad` (same shape as `logits`,
/// must not overlap it).
///
/// # Safety
/// As `bnf_objective_forward_f32`; `grad` points to `batch->rows * batch->vocab` elements.
#[no_mangle]
pub unsafe extern "C" fn bnf_objective_forward_backward_f32(
    logits: *const f32,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    grad: *mut f32,
    out: *mut BnfObjectiveOut,
) -> BnfStatus {
    objective::forward_backward(
        "bnf_objective_forward_backward_f32",
        logits,
        batch,
        objective,
        grad,
        out,
    )
}

/// As `bnf_objective_forward_backward_f32`, with the gradient written over `logits` (bit for
/// bit the same). On error the logits are untouched.
///
/// # Safety
/// As `bnf_objective_forward_f32`, with `logits` writable.
#[no_mangle]
pub unsafe extern "C" fn bnf_objective_forward_backward_in_place_f32(
    logits: *mut f32,
    batch: *const BnfPrefBatch,
    objective: *const BnfObjective,
    out: *mut BnfObjectiveOut,
) -> BnfStatus {
    objective::in_place(
        "bnf_objective_forward_backward_in_place_f32",
        logits,
        batch,
        objective,
        out,
    )
}

include!(concat!(env!("OUT_DIR"), "/entries_objective_halves.rs"));
