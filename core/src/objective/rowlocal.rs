//! BNF and NLL through the objective API: they are row-local, so they run the existing fused
//! path ([`crate::forward_backward`] over weights from [`crate::response_weights`]); this file
//! only picks the [`RowLoss`] and turns the per-row diagnostics into an [`ObjectiveOutput`].

use alloc::vec;
use alloc::vec::Vec;

use super::{per_response, to_f32, Objective, ObjectiveOutput, PrefBatch, Prepared};
use crate::batch::Batch;
use crate::error::BnfError;
use crate::local::{grad_weight, RowDiag, RowLoss};

/// The row-local loss for `obj`, `None` for a sequence-level objective.
pub(crate) fn row_loss<'a>(
    pb: &PrefBatch<'a>,
    obj: &Objective,
) -> Result<Option<RowLoss<'a>>, BnfError> {
    Ok(match obj {
        Objective::Bnf => Some(RowLoss::Bnf {
            ref_logp: pb.ref_logp.ok_or(BnfError::MissingReference {
                objective: obj.name(),
            })?,
        }),
        Objective::Nll => Some(RowLoss::Nll),
        _ => None,
    })
}

/// Run a row-local objective: check the batch for `obj`, run `pass` (one of
/// [`crate::local`]'s batch functions) on its row-level view, and collect the output.
pub(crate) fn run(
    logits_len: usize,
    pb: &PrefBatch<'_>,
    obj: &Objective,
    pass: impl FnOnce(&Batch<'_>, &mut [RowDiag]) -> Result<f32, BnfError>,
) -> Result<ObjectiveOutput, BnfError> {
    let prep = Prepared::new(logits_len, pb, obj)?;
    let mut diag = vec![RowDiag::default(); pb.rows()];
    let value = pass(&prep.batch(pb), &mut diag)?;
    Ok(output(pb, &prep, &diag, value))
}

/// Per-response sums and per-row weights from the row diagnostics of a finished pass.
fn output(pb: &PrefBatch<'_>, prep: &Prepared, diag: &[RowDiag], loss: f32) -> ObjectiveOutput {
    let batch = prep.batch(pb);
    let row_weight: Vec<f32> = (0..pb.rows())
        .map(|r| grad_weight(&batch, r, &diag[r]).map_or(0.0, |(_, w)| w))
        .collect();
    let sum_w = per_response(pb, |r| row_weight[r] as f64);
    let dloss_dlogp = sum_w
        .iter()
        .zip(&prep.lengths)
        .map(|(s, &n)| (-s / n as f64) as f32)
        .collect();
    ObjectiveOutput {
        loss,
        terms: to_f32(per_response(pb, |r| diag[r].loss as f64)),
        logp: to_f32(per_response(pb, |r| diag[r].stats.ell as f64)),
        ref_logp: Vec::new(),
        lengths: prep.lengths.clone(),
        dloss_dlogp,
        row_weight,
        kl_estimate: None,
    }
}
