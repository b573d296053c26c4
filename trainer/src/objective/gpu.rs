//! The loss rows on a GPU through `bnf-driver` ([`super::Device::Gpu`]). The model runs on the CPU, so
//! the logits are uploaded, the gradient is written over them on the device and downloaded:
//!
//! - BNF and NLL: one fused launch per row (`Gpu::forward_backward_in_place`), with the row
//!   weights `label / |y|` from core, and the output (loss, per-response sums, row weights)
//!   assembled by core from the device's rows (`bnf_core::forward_from_rows`);
//! - sequence-level objectives: row statistics on the device (`Gpu::row_stats`), the
//!   per-response sums, the sequence loss and the row weights on the host (core's
//!   `forward_from_stats`), then the row gradient `w (pi - onehot)` on the device
//!   (`Gpu::row_grad_in_place`) from the kept statistics.
//!
//! The result is the CPU path's within the tolerance stated in `tests/gpu_loss.rs` (device
//! `expf`/`logf` and a tree summation instead of core's sequential sums). Built without the
//! `cuda` or `emu` feature, or on a machine without a GPU, [`GpuLoss::new`] is an error.

use super::pref_batch;
use crate::names::Names;
use crate::seq::TokenBatch;
use bnf_core::{forward_from_rows, forward_from_stats, response_weights, Batch, BnfError};
use bnf_core::{Objective, ObjectiveOutput, RowDiag, RowLoss, RowStats};
use bnf_driver::{Gpu, GpuError, Rows};

/// A GPU context with the kernels loaded, made once per training run.
pub struct GpuLoss {
    gpu: Gpu,
}

fn gpu_err(e: GpuError) -> String {
    format!("gpu loss: {e}")
}

fn core_err(e: BnfError) -> String {
    format!("gpu loss: {e}")
}

impl GpuLoss {
    /// Device 0, or why it cannot be used, naming the device setting as the caller does
    /// (`names`: `device gpu`, or the command line's `--device gpu`).
    pub fn new(names: Names) -> Result<Self, String> {
        let setting = format!("{} gpu", names.of("device"));
        match Gpu::new(0) {
            Ok(gpu) => Ok(GpuLoss { gpu }),
            Err(GpuError::BuiltWithoutCuda) => Err(format!(
                "{setting}: this build has no GPU support; rebuild with `--features cuda` (or \
                 `--features emu` for the host emulator of the kernels)"
            )),
            Err(e) => Err(format!("{setting}: {e}")),
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

    /// BNF or NLL in one launch; the output assembled by core from the device's rows
    /// (`bnf_core::forward_from_rows`, the same code the CPU path runs).
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
        .map_err(core_err)?;
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
        let diag: Vec<RowDiag> = (0..rows)
            .map(|r| {
                let g = &out.rows[r];
                let lse = g.lse;
                let ell = match g.scored {
                    true => logits[r * vocab + batch.targets[r] as usize] - lse,
                    false => 0.0,
                };
                RowDiag {
                    scored: g.scored,
                    stats: RowStats {
                        lse,
                        ell,
                        ..RowStats::default()
                    },
                    pi_y: g.pi_y,
                    f_y: g.f_y,
                    c: g.c,
                    loss: g.loss,
                }
            })
            .collect();
        self.gpu.download(&dev, logits).map_err(gpu_err)?;
        forward_from_rows(&pref_batch(batch, vocab, ref_logp), obj, &diag).map_err(core_err)
    }

    /// A sequence-level objective: statistics and gradient on the device; per-response sums,
    /// the sequence loss and the row weights on the host by core
    /// (`bnf_core::forward_from_stats`, the same code the CPU path runs).
    fn sequence(
        &self,
        obj: &Objective,
        logits: &mut [f32],
        vocab: usize,
        batch: &TokenBatch,
        ref_logp: Option<&[f32]>,
    ) -> Result<ObjectiveOutput, String> {
        let rows = Rows {
            vocab,
            targets: &batch.targets,
            scored: Some(&batch.scored),
        };
        let mut dev = self.gpu.upload(logits).map_err(gpu_err)?;
        let stats = self.gpu.row_stats(&dev, &rows).map_err(gpu_err)?;
        let out = forward_from_stats(&pref_batch(batch, vocab, ref_logp), obj, &stats)
            .map_err(core_err)?;
        self.gpu
            .row_grad_in_place(&mut dev, &rows, &stats, &out.row_weight)
            .map_err(gpu_err)?;
        self.gpu.download(&dev, logits).map_err(gpu_err)?;
        Ok(out)
    }
}
