//! Every call into `bnf-core`'s objectives lives here: the training loss (NLL for SFT, BNF for
//! alignment) with its gradient written in place over the logits, and the per-row and
//! per-response log-probs that the reference cache and evaluation use.
//!
//! Adding a sequence-level baseline (DPO, SimPO, ...) is one more [`Objective`] variant whose
//! [`loss_and_grad`] arm builds a `PrefBatch` from the same [`TokenBatch`] fields (targets,
//! scored, offsets, labels, pairs, per-row reference log-probs).

use crate::seq::TokenBatch;
use bnf_core::{forward, forward_backward_in_place, response_weights, Batch, RowDiag, RowLoss};

/// The training objective, chosen by one flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// Negative log-likelihood of preferred responses (SFT).
    Nll,
    /// BNF (paper eq. 4): preferred and dispreferred responses, reference log-probs per row.
    Bnf,
}

/// Objectives named in the paper's comparisons that are not wired in yet.
const NOT_YET: &[&str] = &["dpo", "ipo", "simpo", "orpo", "kto", "slic", "cpo", "rdpo"];

impl Objective {
    /// Parse a `--objective` value.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "bnf" => Ok(Objective::Bnf),
            "nll" | "sft" => Ok(Objective::Nll),
            n if NOT_YET.contains(&n) => Err(format!(
                "objective \"{name}\" is not available yet in the trainer (available: bnf, nll)"
            )),
            _ => Err(format!(
                "unknown objective \"{name}\" (available: bnf, nll)"
            )),
        }
    }

    /// Whether the objective reads the reference model's log-probs.
    pub fn needs_reference(self) -> bool {
        matches!(self, Objective::Bnf)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Nll => "nll",
            Objective::Bnf => "bnf",
        }
    }
}

fn core_err(e: bnf_core::BnfError) -> String {
    format!("loss: {e}")
}

/// Compute the loss of `batch` from `logits` (`rows x vocab`, one row per position) and write
/// `scale * dloss/dlogits` over them. `ref_logp` holds one value per row (used by BNF on
/// scored rows). Row weights are `label / |y|` per response, so the loss is the mean over
/// responses of each response's summed row losses.
pub fn loss_and_grad(
    objective: Objective,
    logits: &mut [f32],
    vocab: usize,
    batch: &TokenBatch,
    ref_logp: Option<&[f32]>,
    scale: f32,
) -> Result<f32, String> {
    let rows = batch.targets.len();
    let mut weights = vec![0.0f32; rows];
    let num_responses = response_weights(
        &batch.offsets,
        &batch.labels,
        Some(&batch.scored),
        &mut weights,
    )
    .map_err(core_err)?;
    let core_batch = Batch {
        vocab,
        targets: &batch.targets,
        weights: &weights,
        scored: Some(&batch.scored),
        num_responses,
    };
    let row_loss = match objective {
        Objective::Nll => RowLoss::Nll,
        Objective::Bnf => RowLoss::Bnf {
            ref_logp: ref_logp.ok_or("loss: bnf needs reference log-probs (run precompute-ref)")?,
        },
    };
    let mut diag = vec![RowDiag::default(); rows];
    let loss =
        forward_backward_in_place(logits, &core_batch, row_loss, &mut diag).map_err(core_err)?;
    if scale != 1.0 {
        for g in logits.iter_mut() {
            *g *= scale;
        }
    }
    Ok(loss)
}

/// `log pi(y_r)` of every row (0 on unscored rows), from the row statistics.
pub fn row_logps(logits: &[f32], vocab: usize, batch: &TokenBatch) -> Result<Vec<f32>, String> {
    let rows = batch.targets.len();
    let weights = vec![1.0f32; rows];
    let core_batch = Batch {
        vocab,
        targets: &batch.targets,
        weights: &weights,
        scored: Some(&batch.scored),
        num_responses: batch.b.max(1),
    };
    let mut diag = vec![RowDiag::default(); rows];
    forward(logits, &core_batch, RowLoss::Nll, &mut diag).map_err(core_err)?;
    Ok(diag
        .iter()
        .map(|d| if d.scored { d.stats.ell } else { 0.0 })
        .collect())
}

/// `log pi(y) = sum_i ell_i` of each response, summed in row order in f64.
pub fn sequence_logps(row_logp: &[f32], batch: &TokenBatch) -> Vec<f64> {
    batch
        .offsets
        .windows(2)
        .map(|w| {
            (w[0]..w[1])
                .filter(|&r| batch.scored[r])
                .map(|r| row_logp[r] as f64)
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_objectives() {
        assert_eq!(Objective::parse("BNF"), Ok(Objective::Bnf));
        assert_eq!(Objective::parse("nll"), Ok(Objective::Nll));
        assert!(Objective::parse("dpo")
            .unwrap_err()
            .contains("not available yet"));
        assert!(Objective::parse("zzz").unwrap_err().contains("unknown"));
    }
}
