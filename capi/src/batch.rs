//! The one generic path behind every batch entry point (BNF and NLL; forward, forward+backward,
//! in place; f32, f16, bf16): check the C arguments, build core's `Batch`, call
//! `bnf_core::forward*`, copy out the loss and diagnostics. Nothing is written on error. The C
//! batch is read straight into core's `Batch` (only its `scored` bytes are converted, to the
//! `bool`s core borrows): capi keeps no batch or rows type of its own, and core's checks
//! (`bnf_core::check`) run on what it builds.
//! [`forward`], [`forward_backward`] and [`in_place`] are the bodies of the exported symbols,
//! which are one-line wrappers written out per objective and dtype so cbindgen sees them.

use bnf_core::{Batch, Logit};
use bnf_core::{RowDiag, RowLoss};

use crate::guard::{check_disjoint, check_outputs, entry, required, slice, slice_mut};
use crate::guard::{Region, IN_PLACE};
use crate::status::{BnfStatus, Fail};
use crate::types::{BnfBatch, BnfRowDiag};

/// Which objective a batch entry runs.
#[derive(Clone, Copy)]
pub(crate) enum Objective {
    /// BNF (needs `batch->ref_logp`).
    Bnf,
    /// NLL (ignores `batch->ref_logp`).
    Nll,
}

/// Where the gradient goes.
pub(crate) enum Grad<T> {
    /// Loss only.
    None,
    /// Into a separate `rows x vocab` buffer.
    Into(*mut T),
    /// Over the logits.
    InPlace,
}

/// `rows * vocab`, after rejecting a zero or overflowing size (named `batch->...`).
pub(crate) fn elements(vocab: usize, rows: usize) -> Result<usize, Fail> {
    if vocab == 0 {
        return Err(Fail::new(BnfStatus::BNF_ERR_ZERO_SIZE, "batch->vocab is 0"));
    }
    if rows == 0 {
        return Err(Fail::new(BnfStatus::BNF_ERR_ZERO_SIZE, "batch->rows is 0"));
    }
    let n = rows.checked_mul(vocab).ok_or_else(|| {
        Fail::new(
            BnfStatus::BNF_ERR_ZERO_SIZE,
            format!("batch->rows * batch->vocab = {rows} * {vocab} overflows"),
        )
    })?;
    // Checked here, before the overlap checks, which would read an unaddressable size as an
    // overlap: no slice of f32 logits or of per-row records can be this long.
    let max = isize::MAX as usize;
    if n > max / std::mem::size_of::<f32>() || rows > max / std::mem::size_of::<BnfRowDiag>() {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_ZERO_SIZE,
            format!(
                "batch->rows * batch->vocab = {rows} * {vocab} = {n} logits is too large to \
                 address"
            ),
        ));
    }
    Ok(n)
}

/// `rows` default records, or `BNF_ERR_ZERO_SIZE` when there is no memory for them (an
/// absurd `batch->rows` must not abort the host process).
fn scratch<R: Clone + Default>(rows: usize) -> Result<Vec<R>, Fail> {
    let mut v = Vec::new();
    v.try_reserve_exact(rows).map_err(|_| {
        Fail::new(
            BnfStatus::BNF_ERR_ZERO_SIZE,
            format!(
                "batch->rows = {rows}: no memory for the library's per-row scratch ({} bytes)",
                rows.saturating_mul(std::mem::size_of::<R>())
            ),
        )
    })?;
    v.resize(rows, R::default());
    Ok(v)
}

/// The optional `batch->scored` flags as core's `bool`s (NULL: every row counts).
///
/// # Safety
/// If not NULL, `scored` points to `rows` bytes.
pub(crate) unsafe fn scored_flags(
    scored: *const u8,
    rows: usize,
) -> Result<Option<Vec<bool>>, Fail> {
    if scored.is_null() {
        return Ok(None);
    }
    let flags = slice(scored, rows, "batch->scored")?;
    Ok(Some(flags.iter().map(|&f| f != 0).collect()))
}

/// Reject outputs (`loss`, `diag`, the gradient or, in place, the logits) that overlap the
/// batch's arrays, the logits or each other.
fn check_overlaps<T>(
    objective: Objective,
    b: &BnfBatch,
    logits: *const T,
    elements: usize,
    grad: &Grad<T>,
    diag: *const BnfRowDiag,
    loss: *const f32,
) -> Result<(), Fail> {
    let rows = b.rows;
    let mut inputs = vec![
        Region::of(b.targets, rows, "batch->targets"),
        Region::of(b.weights, rows, "batch->weights"),
        Region::of(b.scored, rows, "batch->scored"),
    ];
    if let Objective::Bnf = objective {
        inputs.push(Region::of(b.ref_logp, rows, "batch->ref_logp"));
    }
    let outputs = vec![Region::of(loss, 1, "loss"), Region::of(diag, rows, "diag")];
    check_overlaps_with_logits(logits, elements, grad, inputs, outputs)
}

/// The overlap checks of an entry with `elements` logits at `logits` and `grad`: a separate
/// gradient must not overlap the logits (the in-place entries exist for that); then the
/// logits join `inputs`, or `outputs` when written in place, a separate gradient joins
/// `outputs`, and no output may overlap anything else.
pub(crate) fn check_overlaps_with_logits<'a, T>(
    logits: *const T,
    elements: usize,
    grad: &Grad<T>,
    mut inputs: Vec<Region<'a>>,
    mut outputs: Vec<Region<'a>>,
) -> Result<(), Fail> {
    let z = Region::of(logits, elements, "logits");
    match *grad {
        Grad::None => inputs.push(z),
        Grad::Into(g) => {
            check_disjoint(logits, elements, g, elements, ("logits", "grad"), IN_PLACE)?;
            inputs.push(z);
            outputs.push(Region::of(g.cast_const(), elements, "grad"));
        }
        Grad::InPlace => outputs.push(z),
    }
    check_outputs(&outputs, &inputs)
}

/// Run `objective` over the batch at `batch` with logits at `logits`.
///
/// # Safety
/// The header's contract: `logits` (and `grad`) hold `rows * vocab` elements, `diag` (if not
/// NULL) `rows` records, `loss` one float; no output overlaps anything else (checked).
pub(crate) unsafe fn run<T: Logit>(
    objective: Objective,
    logits: *mut T,
    batch: *const BnfBatch,
    grad: Grad<T>,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> Result<(), Fail> {
    // A copy: the outputs are checked against the arrays it points to, not against itself.
    let b = *required(batch, "batch")?;
    let n = elements(b.vocab, b.rows)?;
    check_overlaps(objective, &b, logits.cast_const(), n, &grad, diag, loss)?;
    // The batch's fields, in the order they are checked: `scored`, `ref_logp` (BNF),
    // `targets`, `weights`.
    let scored = scored_flags(b.scored, b.rows)?;
    let kind = match objective {
        Objective::Bnf => RowLoss::Bnf {
            ref_logp: slice(b.ref_logp, b.rows, "batch->ref_logp")?,
        },
        Objective::Nll => RowLoss::Nll,
    };
    let core_batch = Batch {
        vocab: b.vocab,
        targets: slice(b.targets, b.rows, "batch->targets")?,
        weights: slice(b.weights, b.rows, "batch->weights")?,
        scored: scored.as_deref(),
        num_responses: b.num_responses,
    };
    let loss_out = slice_mut(loss, 1, "loss")?;
    let diag_out = if diag.is_null() {
        None
    } else {
        Some(slice_mut(diag, b.rows, "diag")?)
    };
    let mut rows = scratch::<RowDiag>(b.rows)?;
    let value = match grad {
        Grad::None => {
            let z = slice(logits as *const T, n, "logits")?;
            bnf_core::forward(z, &core_batch, kind, &mut rows)?
        }
        Grad::Into(g) => {
            let z = slice(logits as *const T, n, "logits")?;
            let g = slice_mut(g, n, "grad")?;
            bnf_core::forward_backward(z, &core_batch, kind, g, &mut rows)?
        }
        Grad::InPlace => {
            let z = slice_mut(logits, n, "logits")?;
            bnf_core::forward_backward_in_place(z, &core_batch, kind, &mut rows)?
        }
    };
    loss_out[0] = value;
    if let Some(d) = diag_out {
        for (out, row) in d.iter_mut().zip(&rows) {
            *out = BnfRowDiag::from(row);
        }
    }
    Ok(())
}

/// Body of `bnf_forward_*` and `bnf_nll_forward_*` (entry point `name`): the loss only.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn forward<T: Logit>(
    name: &str,
    objective: Objective,
    logits: *const T,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    let logits = logits.cast_mut();
    entry(name, || {
        run(objective, logits, batch, Grad::None, diag, loss)
    })
}

/// Body of `bnf_forward_backward_*` and `bnf_nll_forward_backward_*`: loss and gradient into
/// `grad`.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn forward_backward<T: Logit>(
    name: &str,
    objective: Objective,
    logits: *const T,
    batch: *const BnfBatch,
    grad: *mut T,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    let (logits, grad) = (logits.cast_mut(), Grad::Into(grad));
    entry(name, || run(objective, logits, batch, grad, diag, loss))
}

/// Body of `bnf_forward_backward_in_place_*` and `bnf_nll_forward_backward_in_place_*`: loss,
/// and the gradient over the logits.
///
/// # Safety
/// As [`run`].
pub(crate) unsafe fn in_place<T: Logit>(
    name: &str,
    objective: Objective,
    logits: *mut T,
    batch: *const BnfBatch,
    diag: *mut BnfRowDiag,
    loss: *mut f32,
) -> BnfStatus {
    entry(name, || {
        run(objective, logits, batch, Grad::InPlace, diag, loss)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_without_memory_is_an_error_not_an_abort() {
        let e = scratch::<RowDiag>(usize::MAX / 2).unwrap_err();
        assert_eq!(e.status, BnfStatus::BNF_ERR_ZERO_SIZE);
        assert!(e.message.contains("no memory for"), "{}", e.message);
        assert_eq!(scratch::<RowDiag>(3).unwrap(), vec![RowDiag::default(); 3]);
    }
}
