//! The safe entries: core's batch functions (`forward`, `forward_backward`,
//! `forward_backward_in_place`) and row primitives (`row_stats`, `row_grad`, `gather_logp`) on
//! device logits. Host inputs are validated first (core's errors), small per-row arrays are
//! uploaded, the kernel runs on the context's own stream, and per-row results come back.
//!
//! Errors are core's, for the same (lowest) row. When the host finds a bad row, the fused
//! kernel runs without a gradient to see whether an earlier row has non-finite logits (which
//! only the device sees), so nothing is written. A row whose logits turn out non-finite in a
//! batch the host found clean is reported as core's `NonFiniteLogits` and its gradient row is
//! left untouched, but the other rows' gradients are written (in place: over their logits),
//! where core writes nothing: the fused kernel cannot know before it writes.

use crate::buffer::DeviceBuffer;
use crate::context::Gpu;
use crate::error::GpuError;
use crate::raw::{RawBnf, RawRows};
use crate::validate::{check_batch, check_rows, status_error};
use bnf_core::{check, Batch, BnfError, Logit, RowLoss, RowStats, Rows};
use bnf_kernels::{Dtype, BNF_OUT_FLOATS, ROW_STATS_FLOATS};

/// One row's results from the fused kernel (zeros for masked rows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuRow {
    /// Whether the row counted.
    pub scored: bool,
    /// The row's term in the batch sum, `s * CE(f, pi)` (core's `RowDiag::loss`).
    pub loss: f32,
    /// `pi_y`.
    pub pi_y: f32,
    /// `f_y` (1 for NLL).
    pub f_y: f32,
    /// The gradient scale `c` (1 for NLL).
    pub c: f32,
    /// `lse = log sum_j e^(z_j)`.
    pub lse: f32,
}

/// The batch loss and per-row results of the fused kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuOutput {
    /// The batch loss: row terms summed in row order in `f64`, divided by `num_responses`.
    pub loss: f32,
    /// One record per row.
    pub rows: Vec<GpuRow>,
}

/// Target log-probs per row (zeros for masked rows).
#[derive(Clone, Debug, PartialEq)]
pub struct LogProbs {
    /// `ell = log pi_y`.
    pub logp: Vec<f32>,
    /// `lse`, kept so a second pass needs no second reduction.
    pub lse: Vec<f32>,
}

fn dtype_of<T: Logit>() -> Result<Dtype, GpuError> {
    Dtype::from_name(T::NAME).ok_or(GpuError::UnsupportedDtype(T::NAME))
}

fn scored_bytes(rows: &Rows<'_>) -> Option<Vec<u8>> {
    rows.scored
        .map(|m| m.iter().map(|&s| u8::from(s)).collect())
}

/// Device copies of the per-row inputs every kernel takes; kept alive for the launch.
struct RowInputs {
    targets: DeviceBuffer<u32>,
    scored: Option<DeviceBuffer<u8>>,
}

impl RowInputs {
    fn upload(gpu: &Gpu, rows: &Rows<'_>) -> Result<RowInputs, GpuError> {
        Ok(RowInputs {
            targets: gpu.upload(rows.targets)?,
            scored: scored_bytes(rows).map(|m| gpu.upload(&m)).transpose()?,
        })
    }

    fn raw(&self, dtype: Dtype, rows: u32, vocab: u32, logits: u64) -> RawRows {
        RawRows {
            dtype,
            rows,
            vocab,
            logits,
            targets: self.targets.as_raw(),
            scored: self.scored.as_ref().map_or(0, |b| b.as_raw()),
        }
    }
}

impl Gpu {
    /// Core's own error for row `r` of the device logits at `logits` (`rows.vocab` per row),
    /// from [`row_stats`](bnf_core::row_stats) on a host copy of that row: what a kernel's
    /// `NonFiniteLogits` status does not say, the column and value of a NaN or `+inf` (or the
    /// target's `-inf`), or `Overflow` where finite logits span more than `f32` (the kernel
    /// flags a non-finite `z_y - max` with the same status). Only on that error path; a kernel
    /// leaves a row it reports untouched, so the copy holds the logits it judged. Should the
    /// copy find nothing wrong (it cannot, after the same check), the target's logit is named.
    fn row_error<T: Logit>(
        &self,
        logits: u64,
        rows: &Rows<'_>,
        r: usize,
    ) -> Result<BnfError, GpuError> {
        let mut row = vec![T::from_f32(0.0); rows.vocab];
        let y = rows.targets[r] as usize;
        let offset = (r * rows.vocab * std::mem::size_of::<T>()) as u64;
        // SAFETY: the caller's `logits` holds `rows.len() * rows.vocab` `T`s (checked by
        // check_rows before the launch), and `r` is one of its rows.
        unsafe { self.download_raw(logits + offset, &mut row)? };
        let e = bnf_core::row_stats(&row, y).err();
        let e = e.unwrap_or(BnfError::NonFiniteLogits {
            row: 0,
            col: y,
            value: row[y].to_f32(),
        });
        Ok(e.at_row(r))
    }

    /// The fused kernel over `logits` with the gradient into `grad` (a raw pointer: 0, a
    /// separate buffer, or `logits` itself).
    fn fused<T: Logit>(
        &self,
        logits: u64,
        logits_len: usize,
        grad: u64,
        batch: &Batch<'_>,
        loss: RowLoss<'_>,
    ) -> Result<GpuOutput, GpuError> {
        let (nrows, vocab) = check_batch(batch, &loss, logits_len)?;
        if grad != 0 {
            // The kernel writes the gradient in the same pass as it finds `c`, so the host
            // bounds it first (`|s c / n| <= |s| / n`): no gradient can overflow `T`.
            check::weights_fit::<T>(batch)?;
        }
        let host_verdict = check::scored_rows(batch, loss.ref_logp());
        let grad = if host_verdict.is_ok() { grad } else { 0 };
        let rows = Rows::from(batch);
        let n = rows.len();
        let inputs = RowInputs::upload(self, &rows)?;
        let weights = self.upload(batch.weights)?;
        let ref_host = loss.ref_logp();
        let ref_dev = ref_host.map(|r| self.upload(r)).transpose()?;
        let out = self.alloc::<f32>(n * BNF_OUT_FLOATS)?;
        let status = self.alloc::<i32>(n)?;
        let args = RawBnf {
            rows: inputs.raw(dtype_of::<T>()?, nrows, vocab, logits),
            grad,
            weights: weights.as_raw(),
            ref_logp: ref_dev.as_ref().map_or(0, |b| b.as_raw()),
            // An all-masked batch may have 0 responses; the kernel then never divides.
            num_responses: batch.num_responses.max(1) as f32,
            out: out.as_raw(),
            status: status.as_raw(),
        };
        // SAFETY: every pointer is a live buffer of this context with the sizes checked above.
        unsafe { self.bnf_fwd_bwd_raw(&args, self.stream())? };
        let statuses = self.to_host(&status)?;
        let at = |r| self.row_error::<T>(logits, &rows, r);
        status_error(&statuses, &rows, Some(batch.weights), ref_host, &at)?;
        // The kernel checks all the host does, so a host error came back as a status above.
        host_verdict?;
        let flat = self.to_host(&out)?;
        let per_row: Vec<GpuRow> = flat
            .chunks_exact(BNF_OUT_FLOATS)
            .enumerate()
            .map(|(r, o)| GpuRow {
                scored: rows.is_scored(r),
                loss: o[0],
                pi_y: o[1],
                f_y: o[2],
                c: o[3],
                lse: o[4],
            })
            .collect();
        // A row's loss or the batch loss beyond f32 is an error, as in core; on the device
        // the gradient is written by then (finite: bounded above), unlike core, which checks
        // before writing.
        if let Some(r) = per_row.iter().position(|r| r.scored && !r.loss.is_finite()) {
            return Err(BnfError::Overflow {
                at: bnf_core::Site::Row(r),
                what: "loss term (row weight x row cross-entropy)",
                value: per_row[r].loss as f64,
                dtype: "f32",
            }
            .into());
        }
        let loss = if batch.num_responses == 0 {
            0.0
        } else {
            let total: f64 = per_row.iter().map(|r| r.loss as f64).sum();
            let mean = total / batch.num_responses as f64;
            check::fits_f32(
                bnf_core::Site::Batch,
                "batch loss (mean over responses)",
                mean,
            )?
        };
        Ok(GpuOutput {
            loss,
            rows: per_row,
        })
    }

    /// The loss only (core's `forward`).
    pub fn forward<T: Logit>(
        &self,
        logits: &DeviceBuffer<T>,
        batch: &Batch<'_>,
        loss: RowLoss<'_>,
    ) -> Result<GpuOutput, GpuError> {
        self.fused::<T>(logits.as_raw(), logits.len(), 0, batch, loss)
    }

    /// Loss and gradient into `grad` (core's `forward_backward`), one launch.
    pub fn forward_backward<T: Logit>(
        &self,
        logits: &DeviceBuffer<T>,
        batch: &Batch<'_>,
        loss: RowLoss<'_>,
        grad: &mut DeviceBuffer<T>,
    ) -> Result<GpuOutput, GpuError> {
        check::len("grad", logits.len(), grad.len())?;
        self.fused::<T>(logits.as_raw(), logits.len(), grad.as_raw(), batch, loss)
    }

    /// Loss and gradient written over the logits (core's `forward_backward_in_place`): no
    /// extra device memory per logit.
    pub fn forward_backward_in_place<T: Logit>(
        &self,
        logits: &mut DeviceBuffer<T>,
        batch: &Batch<'_>,
        loss: RowLoss<'_>,
    ) -> Result<GpuOutput, GpuError> {
        let p = logits.as_raw();
        self.fused::<T>(p, logits.len(), p, batch, loss)
    }

    /// Core's `row_stats` for every scored row (default stats for masked rows).
    pub fn row_stats<T: Logit>(
        &self,
        logits: &DeviceBuffer<T>,
        rows: &Rows<'_>,
    ) -> Result<Vec<RowStats>, GpuError> {
        let (nrows, vocab) = check_rows(rows, logits.len())?;
        let inputs = RowInputs::upload(self, rows)?;
        let stats = self.alloc::<f32>(rows.len() * ROW_STATS_FLOATS)?;
        let status = self.alloc::<i32>(rows.len())?;
        let raw = inputs.raw(dtype_of::<T>()?, nrows, vocab, logits.as_raw());
        // SAFETY: live buffers of this context with the sizes checked above.
        unsafe { self.row_stats_raw(&raw, stats.as_raw(), status.as_raw(), self.stream())? };
        let at = |r| self.row_error::<T>(logits.as_raw(), rows, r);
        status_error(&self.to_host(&status)?, rows, None, None, &at)?;
        Ok(self
            .to_host(&stats)?
            .chunks_exact(ROW_STATS_FLOATS)
            .map(|s| RowStats {
                max: s[0],
                lse: s[1],
                ell: s[2],
                sum: s[3],
                others_sum: s[4],
                others_dot: s[5],
            })
            .collect())
    }

    fn grad_common<T: Logit>(
        &self,
        logits: u64,
        logits_len: usize,
        out: u64,
        rows: &Rows<'_>,
        stats: &[RowStats],
        w: &[f32],
    ) -> Result<(), GpuError> {
        let (nrows, vocab) = check_rows(rows, logits_len)?;
        check::grad_rows::<T>(rows, stats, w)?;
        let inputs = RowInputs::upload(self, rows)?;
        let flat: Vec<f32> = stats
            .iter()
            .flat_map(|s| [s.max, s.lse, s.ell, s.sum, s.others_sum, s.others_dot])
            .collect();
        let stats_dev = self.upload(&flat)?;
        let w_dev = self.upload(w)?;
        let status = self.alloc::<i32>(rows.len())?;
        let raw = inputs.raw(dtype_of::<T>()?, nrows, vocab, logits);
        // SAFETY: live buffers of this context with the sizes checked above.
        unsafe {
            self.row_grad_raw(
                &raw,
                out,
                stats_dev.as_raw(),
                w_dev.as_raw(),
                status.as_raw(),
                self.stream(),
            )?
        };
        let at = |r| self.row_error::<T>(logits, rows, r);
        status_error(&self.to_host(&status)?, rows, Some(w), None, &at)
    }

    /// Core's `row_grad` for every row: `out` row `r` = `w[r] (softmax - onehot)` from
    /// `stats[r]` (as `row_stats` returned them); masked rows get zeros. Core's errors (target,
    /// weight, statistics) for the lowest bad row, found before anything is written.
    pub fn row_grad<T: Logit>(
        &self,
        logits: &DeviceBuffer<T>,
        rows: &Rows<'_>,
        stats: &[RowStats],
        w: &[f32],
        out: &mut DeviceBuffer<T>,
    ) -> Result<(), GpuError> {
        check::len("out", logits.len(), out.len())?;
        self.grad_common::<T>(logits.as_raw(), logits.len(), out.as_raw(), rows, stats, w)
    }

    /// [`Gpu::row_grad`] written over the logits (core's `row_grad_in_place`).
    pub fn row_grad_in_place<T: Logit>(
        &self,
        logits: &mut DeviceBuffer<T>,
        rows: &Rows<'_>,
        stats: &[RowStats],
        w: &[f32],
    ) -> Result<(), GpuError> {
        let p = logits.as_raw();
        self.grad_common::<T>(p, logits.len(), p, rows, stats, w)
    }

    /// `log pi_y` and `lse` per scored row (reference log-probs, sequence-level losses).
    pub fn gather_logp<T: Logit>(
        &self,
        logits: &DeviceBuffer<T>,
        rows: &Rows<'_>,
    ) -> Result<LogProbs, GpuError> {
        let (nrows, vocab) = check_rows(rows, logits.len())?;
        let inputs = RowInputs::upload(self, rows)?;
        let logp = self.alloc::<f32>(rows.len())?;
        let lse = self.alloc::<f32>(rows.len())?;
        let status = self.alloc::<i32>(rows.len())?;
        let raw = inputs.raw(dtype_of::<T>()?, nrows, vocab, logits.as_raw());
        // SAFETY: live buffers of this context with the sizes checked above.
        unsafe {
            self.gather_logp_raw(
                &raw,
                logp.as_raw(),
                lse.as_raw(),
                status.as_raw(),
                self.stream(),
            )?
        };
        let at = |r| self.row_error::<T>(logits.as_raw(), rows, r);
        status_error(&self.to_host(&status)?, rows, None, None, &at)?;
        Ok(LogProbs {
            logp: self.to_host(&logp)?,
            lse: self.to_host(&lse)?,
        })
    }
}
