//! The loss rows on a GPU through `bnf-driver` (`--device gpu`). The model runs on the CPU, so
//! the logits are uploaded, the gradient is written over them on the device and downloaded:
//!
//! - BNF and NLL: one fused launch per row (`Gpu::forward_backward_in_place`), with the row
//!   weights `label / |y|` from core;
//! - sequence-level objectives: row statistics on the device (`Gpu::row_stats`), the
//!   per-response sums and the sequence loss on the host ([`super::seqloss`]), then the row
//!   gradient `w (pi - onehot)` on the device (`Gpu::row_grad_in_place`) from the kept
//!   statistics.
//!
//! The result is the CPU path's within the tolerance stated in `tests/gpu_loss.rs` (device
//! `expf`/`logf` and a tree summation instead of core's sequential sums). Built without the
//! `cuda` or `emu` feature, or on a machine without a GPU, [`GpuLoss::new`] is an error.

use super::seqloss::{sequence_loss, SeqInputs};
use super::{per_response, to_f32};
use crate::seq::TokenBatch;
use bnf_core::{check_ref_logp, response_weights, Batch, Objective, ObjectiveOutput, RowLoss};
use bnf_driver::{Gpu, GpuError, Rows};

/// A GPU context with the kernels loaded, made once per training run.
pub struct GpuLoss {
    gpu: Gpu,
}

fn gpu_err(e: GpuError) -> String {
    format!("gpu loss: {e}")
}

/// Where each response's rows are scored, counted (`|y_i|`, at least 1).
fn lengths(batch: &TokenBatch) -> Result<Vec<usize>, String> {
    let n = per_response(batch, |_| 1.0);
    match n.iter().position(|&c| c == 0.0) {
        Some(i) => Err(format!("gpu loss: response {i} has no scored row")),
        None => Ok(n.into_iter().map(|c| c as usize).collect()),
    }
}

impl GpuLoss {
    /// Device 0, or why it cannot be used.
    pub fn new() -> Result<Self, String> {
        match Gpu::new(0) {
            Ok(gpu) => Ok(GpuLoss { gpu }),
            Err(GpuError::BuiltWithoutCuda) => Err("--device gpu: this build has no GPU \
                 support; rebuild with `--features cuda` (or `--features emu` for the host \
                 emulator of the kernels)"
                .into()),
            Err(e) => Err(format!("--device gpu: {e}")),
        }
    }

    /// The device's name (the host emulator says so in its name).
    pub fn describe(&self) -> String {
        self.gpu.device_name().unwrap_or_else(|e| e.to_string())
    }

    /// The loss of `obj` on `batch` with `dloss/dlogits` written over `logits` (unscaled).
    pub fn loss_and_grad(
        &self,
        obj: &Objective,
        logits: &mut [f32],
        vocab: usize,
        batch: &TokenBatch,
        ref_logp: Option<&[f32]>,
    ) -> Result<ObjectiveOutput, String> {
        match obj {
            Objective::Bnf | Objective::Nll => self.fused(obj, logits, vocab, batch, ref_logp),
            _ => self.sequence(obj, logits, vocab, batch, ref_logp),
        }
    }

    /// BNF or NLL in one launch.
    fn fused(
        &self,
        obj: &Objective,
        logits: &mut [f32],
        vocab: usize,
        batch: &TokenBatch,
        ref_logp: Option<&[f32]>,
    ) -> Result<ObjectiveOutput, String> {
        let rows = batch.targets.len();
        let mut weights = vec![0.0f32; rows];
        let n = response_weights(
            &batch.offsets,
            &batch.labels,
            Some(&batch.scored),
            &mut weights,
        )
        .map_err(|e| format!("gpu loss: {e}"))?;
        let lengths = lengths(batch)?;
        let core_batch = Batch {
            vocab,
            targets: &batch.targets,
            weights: &weights,
            scored: Some(&batch.scored),
            num_responses: n,
        };
        let loss = match obj {
            Objective::Bnf => RowLoss::Bnf {
                ref_logp: ref_logp.ok_or("gpu loss: bnf needs reference log-probs")?,
            },
            _ => RowLoss::Nll,
        };
        let mut dev = self.gpu.upload(logits).map_err(gpu_err)?;
        let out = self
            .gpu
            .forward_backward_in_place(&mut dev, &core_batch, loss)
            .map_err(gpu_err)?;
        // The host logits are still intact (and the targets checked by the driver):
        // `ell = z_y - lse` per scored row.
        let ell = |r: usize| logits[r * vocab + batch.targets[r] as usize] - out.rows[r].lse;
        let logp = to_f32(per_response(batch, |r| ell(r) as f64));
        self.gpu.download(&dev, logits).map_err(gpu_err)?;
        let row_weight: Vec<f32> = (0..rows)
            .map(|r| match batch.scored[r] {
                true => weights[r] * out.rows[r].c / n as f32,
                false => 0.0,
            })
            .collect();
        let sum_w = per_response(batch, |r| row_weight[r] as f64);
        Ok(ObjectiveOutput {
            loss: out.loss,
            terms: to_f32(per_response(batch, |r| out.rows[r].loss as f64)),
            logp,
            ref_logp: Vec::new(),
            dloss_dlogp: sum_w
                .iter()
                .zip(&lengths)
                .map(|(s, &l)| (-s / l as f64) as f32)
                .collect(),
            lengths,
            row_weight,
            kl_estimate: None,
        })
    }

    /// A sequence-level objective: statistics and gradient on the device, the sequence loss on
    /// the host.
    fn sequence(
        &self,
        obj: &Objective,
        logits: &mut [f32],
        vocab: usize,
        batch: &TokenBatch,
        ref_logp: Option<&[f32]>,
    ) -> Result<ObjectiveOutput, String> {
        let lengths = lengths(batch)?;
        let ref_sums = match (obj.needs_reference(), ref_logp) {
            (false, _) => Vec::new(),
            (true, None) => {
                return Err(format!(
                    "gpu loss: {} needs reference log-probs",
                    obj.name()
                ))
            }
            (true, Some(rp)) => {
                if rp.len() != batch.targets.len() {
                    return Err(format!(
                        "gpu loss: ref_logp: expected length {}, found {}",
                        batch.targets.len(),
                        rp.len()
                    ));
                }
                for r in (0..rp.len()).filter(|&r| batch.scored[r]) {
                    let v =
                        check_ref_logp(rp[r]).map_err(|e| format!("gpu loss: {}", e.at_row(r)))?;
                    if !v.is_finite() {
                        return Err(format!(
                            "gpu loss: row {r}: reference log-prob {v} is not finite"
                        ));
                    }
                }
                to_f32(per_response(batch, |r| rp[r].min(0.0) as f64))
            }
        };
        let rows = Rows {
            vocab,
            targets: &batch.targets,
            scored: Some(&batch.scored),
        };
        let mut dev = self.gpu.upload(logits).map_err(gpu_err)?;
        let stats = self.gpu.row_stats(&dev, &rows).map_err(gpu_err)?;
        let logp = to_f32(per_response(batch, |r| stats[r].ell as f64));
        let seq = sequence_loss(
            obj,
            &SeqInputs {
                logp: &logp,
                ref_logp: &ref_sums,
                lengths: &lengths,
                labels: &batch.labels,
                pairs: &batch.pairs,
            },
        )?;
        let mut row_weight = vec![0.0f32; batch.targets.len()];
        for (i, w) in batch.offsets.windows(2).enumerate() {
            for r in (w[0]..w[1]).filter(|&r| batch.scored[r]) {
                row_weight[r] = -seq.dloss_dlogp[i];
            }
        }
        self.gpu
            .row_grad_in_place(&mut dev, &rows, &stats, &row_weight)
            .map_err(gpu_err)?;
        self.gpu.download(&dev, logits).map_err(gpu_err)?;
        Ok(ObjectiveOutput {
            loss: seq.loss,
            terms: seq.terms,
            logp,
            ref_logp: ref_sums,
            lengths,
            dloss_dlogp: seq.dloss_dlogp,
            row_weight,
            kl_estimate: seq.kl_estimate,
        })
    }
}
