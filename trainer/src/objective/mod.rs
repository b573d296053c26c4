//! Every call into `bnf-core`'s losses lives here. The training objective is
//! [`bnf_core::Objective`] (BNF, NLL, or any baseline with its typed configuration):
//! [`loss_and_grad`] lays a [`TokenBatch`] out as a [`PrefBatch`] (targets, scored rows,
//! response offsets, labels, pairs, per-row reference log-probs) and runs
//! `objective_forward_backward_in_place`, so the gradient is written over the logits. [`Loss`]
//! is the same call bound to a device: the CPU, or a GPU through `bnf-driver` ([`gpu`]). Also
//! here: the per-row and per-response log-probs that the reference cache and evaluation use.
//!
//! - [`params`]: hyperparameters by name (`beta`, ...), and the objective's record in a run's
//!   config;
//! - [`check`]: what an objective needs of the data, checked before training;
//! - [`gpu`]: the GPU path ([`Device::Gpu`]);
//! - [`fused`]: the loss through the fused LM head, chunk by chunk, without the `(N, V)`
//!   logits.

pub mod check;
pub mod fused;
pub mod gpu;
pub mod params;

use crate::names::Names;
use crate::seq::TokenBatch;
use bnf_core::{forward, objective_forward_backward_in_place, Batch, RowDiag, RowLoss};
pub use bnf_core::{Objective, ObjectiveOutput, PrefBatch, OBJECTIVE_NAMES};
use serde::{Deserialize, Serialize};

pub use check::check_data;
pub use fused::loss_and_grad_fused;
pub use params::build;

fn core_err(e: bnf_core::BnfError) -> String {
    format!("loss: {e}")
}

/// `batch` as core's batch of responses, with `vocab`-long logits rows and `ref_logp` (one per
/// row) when given. Every pair of the micro-batch is passed; unpaired objectives only check them.
pub fn pref_batch<'a>(
    batch: &'a TokenBatch,
    vocab: usize,
    ref_logp: Option<&'a [f32]>,
) -> PrefBatch<'a> {
    PrefBatch {
        vocab,
        targets: &batch.targets,
        scored: Some(&batch.scored),
        offsets: &batch.offsets,
        labels: &batch.labels,
        pairs: Some(&batch.pairs),
        ref_logp,
    }
}

/// Multiply the gradient by `scale` (gradient accumulation's `1 / accum`).
fn scale_grad(grad: &mut [f32], scale: f32) {
    if scale != 1.0 {
        for g in grad.iter_mut() {
            *g *= scale;
        }
    }
}

/// The loss of `objective` on `batch` from `logits` (`rows x vocab`, one row per position),
/// with `scale * dloss/dlogits` written over the logits, on the CPU. `ref_logp` holds one value
/// per row (0 on unscored rows). The loss is the objective's batch loss: the mean over
/// responses (BNF, NLL, KTO) or over pairs (pairwise objectives). The returned diagnostics
/// (`row_weight`, `dloss_dlogp`) are not scaled.
pub fn loss_and_grad(
    objective: &Objective,
    logits: &mut [f32],
    vocab: usize,
    batch: &TokenBatch,
    ref_logp: Option<&[f32]>,
    scale: f32,
) -> Result<ObjectiveOutput, String> {
    let pb = pref_batch(batch, vocab, ref_logp);
    let out = objective_forward_backward_in_place(logits, &pb, objective)
        .map_err(|e| format!("{} loss: {e}", objective.name()))?;
    scale_grad(logits, scale);
    Ok(out)
}

/// Where the loss rows run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// `bnf-core` on the CPU.
    #[default]
    Cpu,
    /// The CUDA kernels through `bnf-driver` (builds with the `cuda` or `emu` feature).
    Gpu,
}

/// An objective bound to the device its loss rows run on.
pub struct Loss {
    objective: Objective,
    /// `Some` on the GPU.
    gpu: Option<gpu::GpuLoss>,
}

impl Loss {
    /// `objective` on `device`; a device this build or machine cannot use is an error. The
    /// messages name the hyperparameters and the device as the caller does (`names`).
    pub fn new(objective: Objective, device: Device, names: Names) -> Result<Self, String> {
        objective
            .validate()
            .map_err(|e| params::config_error(e, names))?;
        let gpu = match device {
            Device::Cpu => None,
            Device::Gpu => Some(gpu::GpuLoss::new(names)?),
        };
        Ok(Loss { objective, gpu })
    }

    /// The objective.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// The device.
    pub fn device(&self) -> Device {
        match self.gpu {
            Some(_) => Device::Gpu,
            None => Device::Cpu,
        }
    }

    /// The GPU's name (`None` on the CPU).
    pub fn gpu_name(&self) -> Option<String> {
        self.gpu.as_ref().map(|g| g.describe())
    }

    /// [`loss_and_grad_fused`] (the fused head, `chunk` rows at a time): on the CPU only.
    pub fn loss_and_grad_fused(
        &self,
        head: &mut crate::model::head::TiedHead<'_>,
        batch: &TokenBatch,
        ref_logp: Option<&[f32]>,
        scale: f32,
        chunk: usize,
    ) -> Result<ObjectiveOutput, String> {
        match &self.gpu {
            None => loss_and_grad_fused(&self.objective, head, batch, ref_logp, scale, chunk),
            Some(_) => Err("the fused head runs the loss rows on the CPU only".into()),
        }
    }

    /// [`loss_and_grad`] on this loss's device.
    pub fn loss_and_grad(
        &self,
        logits: &mut [f32],
        vocab: usize,
        batch: &TokenBatch,
        ref_logp: Option<&[f32]>,
        scale: f32,
    ) -> Result<ObjectiveOutput, String> {
        match &self.gpu {
            None => loss_and_grad(&self.objective, logits, vocab, batch, ref_logp, scale),
            Some(g) => {
                let out = g.loss_and_grad(&self.objective, logits, vocab, batch, ref_logp)?;
                scale_grad(logits, scale);
                Ok(out)
            }
        }
    }
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
    // Core's per-response sum reads the layout only (the vocabulary plays no part).
    pref_batch(batch, 0, None).per_response(|r| row_logp[r] as f64)
}
