//! The loss through the fused LM head (DESIGN.md section 8, "Fused LM head"): the tied head
//! and the objective run chunk by chunk over the rows ([`TiedHead`]), so only one chunk of
//! logits is ever held, never the `(N, V)` of the whole batch.
//!
//! - BNF and NLL, one pass: per chunk, its logits, core's `forward_backward_in_place` on a
//!   [`Batch`] over the chunk's rows with the weights `label / |y|` and the number of responses
//!   of the whole batch (so each row's loss and gradient are the unfused ones), the gradient
//!   scaled, then the chunk's `dx` and `dW`; the output is assembled from the rows'
//!   diagnostics by core (`forward_from_rows`);
//! - sequence-level objectives, two passes: per chunk, core's row statistics (a [`RowStats`],
//!   six floats, per row); core's `forward_from_stats` gives the sequence loss and each row's
//!   weight; then per chunk again its logits, core's `row_grad_in_place` per scored row (a zero
//!   row for the others), the gradient scaled, and the chunk's backward.
//!
//! Loss and diagnostics are bit for bit the unfused path's (the same rows reach the same core
//! code); the parameter gradients differ in rounding only, where `dW` sums over the chunks
//! (`tests/fused.rs` states the tolerance). Everything but the logits themselves is checked
//! before the first chunk adds to the gradients.

use super::{pref_batch, scale_grad};
use crate::model::head::TiedHead;
use crate::seq::TokenBatch;
use bnf_core::{check, forward_backward_in_place, forward_from_rows, forward_from_stats};
use bnf_core::{response_weights, row_grad_in_place, row_stats};
use bnf_core::{Batch, BnfError, Objective, ObjectiveOutput, RowDiag, RowLoss, RowStats};
use std::ops::Range;

/// The loss of `objective` on `batch` through the fused head, `chunk` rows at a time, with
/// `scale * dloss/dlogits` backpropagated through the head into its `dx` and `dW` (see
/// [`crate::model::Model::backward_with_head`]). Returns what the unfused
/// [`super::loss_and_grad`] returns, the same bits.
pub fn loss_and_grad_fused(
    objective: &Objective,
    head: &mut TiedHead<'_>,
    batch: &TokenBatch,
    ref_logp: Option<&[f32]>,
    scale: f32,
    chunk: usize,
) -> Result<ObjectiveOutput, String> {
    match objective {
        Objective::Bnf | Objective::Nll => {
            row_local(objective, head, batch, ref_logp, scale, chunk)
        }
        _ => sequence(objective, head, batch, ref_logp, scale, chunk),
    }
}

/// The row ranges of `rows` rows, `chunk` at a time (the last one may be shorter).
fn chunks(rows: usize, chunk: usize) -> impl Iterator<Item = Range<usize>> {
    let chunk = chunk.max(1);
    (0..rows)
        .step_by(chunk)
        .map(move |r| r..(r + chunk).min(rows))
}

/// `e`, reported by a call over the rows from `first` on, with the batch's row index.
fn batch_row(e: BnfError, first: usize) -> BnfError {
    match e {
        BnfError::TargetOutOfRange { row, .. }
        | BnfError::NonFiniteLogits { row, .. }
        | BnfError::InvalidRefLogProb { row, .. }
        | BnfError::InvalidWeight { row, .. }
        | BnfError::InvalidStats { row, .. } => e.at_row(first + row),
        other => other,
    }
}

/// BNF or NLL: one pass over the chunks.
fn row_local(
    obj: &Objective,
    head: &mut TiedHead<'_>,
    batch: &TokenBatch,
    ref_logp: Option<&[f32]>,
    scale: f32,
    chunk: usize,
) -> Result<ObjectiveOutput, String> {
    let err = |e: BnfError| format!("{} loss: {e}", obj.name());
    let v = head.vocab();
    let pb = pref_batch(batch, v, ref_logp);
    let rows = pb.rows();
    // Core's checks of the batch (configuration, layout, pairs, the reference's presence and
    // length), run on empty rows before any chunk adds to the gradients.
    forward_from_rows(&pb, obj, &vec![RowDiag::default(); rows]).map_err(err)?;
    let loss = match obj {
        Objective::Bnf => RowLoss::Bnf {
            ref_logp: ref_logp.unwrap_or(&[]),
        },
        _ => RowLoss::Nll,
    };
    let mut weights = vec![0.0f32; rows];
    let n =
        response_weights(&batch.offsets, &batch.labels, pb.scored, &mut weights).map_err(err)?;
    let whole = Batch {
        vocab: v,
        targets: &batch.targets,
        weights: &weights,
        scored: pb.scored,
        num_responses: n,
    };
    check::scored_rows(&whole, loss.ref_logp()).map_err(err)?;
    let mut diag = vec![RowDiag::default(); rows];
    for r in chunks(rows, chunk) {
        let part = Batch {
            targets: &batch.targets[r.clone()],
            weights: &weights[r.clone()],
            scored: Some(&batch.scored[r.clone()]),
            ..whole
        };
        let part_loss = match loss {
            RowLoss::Bnf { ref_logp } => RowLoss::Bnf {
                ref_logp: &ref_logp[r.clone()],
            },
            RowLoss::Nll => RowLoss::Nll,
        };
        let z = head.forward(r.clone())?;
        forward_backward_in_place(z, &part, part_loss, &mut diag[r.clone()])
            .map_err(|e| err(batch_row(e, r.start)))?;
        scale_grad(z, scale);
        head.backward(r);
    }
    forward_from_rows(&pb, obj, &diag).map_err(err)
}

/// A sequence-level objective: row statistics chunk by chunk, the sequence loss and row
/// weights from core, then the gradient pass over the chunks.
fn sequence(
    obj: &Objective,
    head: &mut TiedHead<'_>,
    batch: &TokenBatch,
    ref_logp: Option<&[f32]>,
    scale: f32,
    chunk: usize,
) -> Result<ObjectiveOutput, String> {
    let err = |e: BnfError| format!("{} loss: {e}", obj.name());
    let v = head.vocab();
    let pb = pref_batch(batch, v, ref_logp);
    let rows = pb.rows();
    let mut stats = vec![RowStats::default(); rows];
    for r in chunks(rows, chunk) {
        let z = head.forward(r.clone())?;
        for (i, row) in r.enumerate().filter(|&(_, row)| pb.is_scored(row)) {
            let y = batch.targets[row] as usize;
            stats[row] = row_stats(&z[i * v..(i + 1) * v], y).map_err(|e| err(e.at_row(row)))?;
        }
    }
    let out = forward_from_stats(&pb, obj, &stats).map_err(err)?;
    for r in chunks(rows, chunk) {
        let z = head.forward(r.clone())?;
        for (i, row) in r.clone().enumerate() {
            let zr = &mut z[i * v..(i + 1) * v];
            match pb.is_scored(row) {
                true => {
                    let y = batch.targets[row] as usize;
                    row_grad_in_place(zr, y, &stats[row], out.row_weight[row])
                        .map_err(|e| err(e.at_row(row)))?;
                }
                false => zr.fill(0.0),
            }
        }
        scale_grad(z, scale);
        head.backward(r);
    }
    Ok(out)
}
