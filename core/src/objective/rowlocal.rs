//! BNF and NLL through the objective API: they are row-local, so they run the existing fused
//! path ([`crate::forward_backward`] over weights from [`crate::response_weights`]); this file
//! picks the [`RowLoss`] and turns the per-row diagnostics into an [`ObjectiveOutput`], for
//! core's own pass and for per-row results computed elsewhere ([`forward_from_rows`]).

use alloc::vec::Vec;

use super::kind::Objective;
use super::pref::{ObjectiveOutput, PrefBatch};
use super::prepare::{to_f32, Prepared};
use crate::batch::Batch;
use crate::check;
use crate::error::BnfError;
use crate::local::{grad_weight, losses_fit, RowDiag, RowLoss};
use crate::pass::mean_over;

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
    let mut diag = alloc::vec![RowDiag::default(); pb.rows()];
    pass(&prep.batch(pb), &mut diag)?;
    Ok(output(pb, &prep, &diag))
}

/// What [`crate::objective_forward`] returns for BNF or NLL, from per-row results computed
/// elsewhere (a GPU's fused kernel, say): the batch loss (the rows' `loss` summed in row order
/// in `f64` over the number of responses), the per-response sums and the row weights
/// `s c / n`, so the caller needs no formula of its own. The same bits as the host path for
/// the same rows.
///
/// `rows` has one entry per row: `scored`, `c`, `loss` and `stats.ell` are read (masked rows
/// are ignored). Errors: as [`crate::objective_forward`] for the batch, `LengthMismatch` for
/// `rows`, `InvalidConfig` for a sequence-level objective (use
/// [`forward_from_stats`](crate::forward_from_stats)), and `Overflow` for a row's loss, a
/// response's summed loss or log-prob, or the batch loss that does not fit `f32`.
pub fn forward_from_rows(
    pb: &PrefBatch<'_>,
    obj: &Objective,
    rows: &[RowDiag],
) -> Result<ObjectiveOutput, BnfError> {
    let Some(loss) = row_loss(pb, obj)? else {
        return Err(BnfError::InvalidConfig {
            objective: obj.name(),
            what: "objective (sequence-level, not row-local)",
            value: f32::NAN,
        });
    };
    let prep = Prepared::new(pb.rows().saturating_mul(pb.vocab), pb, obj)?;
    check::len("row diagnostics", pb.rows(), rows.len())?;
    losses_fit(&prep.batch(pb), loss, rows, Some(pb.offsets))?;
    Ok(output(pb, &prep, rows))
}

/// The loss, per-response sums and per-row weights from the row diagnostics of a finished pass.
fn output(pb: &PrefBatch<'_>, prep: &Prepared, diag: &[RowDiag]) -> ObjectiveOutput {
    let batch = prep.batch(pb);
    let row_weight: Vec<f32> = (0..pb.rows())
        .map(|r| grad_weight(&batch, r, &diag[r]).map_or(0.0, |(_, w)| w))
        .collect();
    let sum_w = pb.per_response(|r| row_weight[r] as f64);
    let dloss_dlogp = sum_w
        .iter()
        .zip(&prep.lengths)
        .map(|(s, &n)| (-s / n as f64) as f32)
        .collect();
    ObjectiveOutput {
        loss: mean_over(prep.responses, pb.rows(), |r| match pb.is_scored(r) {
            true => diag[r].loss,
            false => 0.0,
        }),
        terms: to_f32(pb.per_response(|r| diag[r].loss as f64)),
        logp: to_f32(pb.per_response(|r| diag[r].stats.ell as f64)),
        ref_logp: Vec::new(),
        lengths: prep.lengths.clone(),
        dloss_dlogp,
        row_weight,
        kl_estimate: None,
    }
}
