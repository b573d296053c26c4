//! The raw entries: kernels launched on device pointers (`u64`) and a stream that another
//! framework owns, with no copies and no synchronisation. The caller's context must be current
//! (see [`Gpu::attach_current`]). Layouts are those of `bnf-kernels`: logits row-major
//! `rows x vocab` of the dtype, targets `u32`, weights and reference log-probs `f32`, the
//! scored mask one byte per row (0 = masked), statuses one `i32` per row.

use crate::context::{kernel_args, Gpu, Module, RawStream};
use crate::error::GpuError;
use bnf_core::BnfError;
use bnf_kernels::{launch, Dtype, Launch};

/// The rows a kernel runs over.
#[derive(Clone, Copy, Debug)]
pub struct RawRows {
    /// Element type of `logits` (and of any gradient buffer).
    pub dtype: Dtype,
    /// Number of rows.
    pub rows: u32,
    /// Vocabulary size (row length), at least 1.
    pub vocab: u32,
    /// `rows x vocab` logits.
    pub logits: u64,
    /// `rows` target ids.
    pub targets: u64,
    /// `rows` bytes, nonzero = scored; 0 (null): every row is scored.
    pub scored: u64,
}

/// Arguments of the fused BNF (or NLL) forward and backward.
#[derive(Clone, Copy, Debug)]
pub struct RawBnf {
    /// The rows.
    pub rows: RawRows,
    /// `rows x vocab` gradient output; equal to `rows.logits` for in place; 0: loss only.
    pub grad: u64,
    /// `rows` weights `s = label / |y|`.
    pub weights: u64,
    /// `rows` reference log-probs; 0 (null): NLL instead of BNF.
    pub ref_logp: u64,
    /// The batch's number of responses (> 0): gradients are `s c / num_responses`.
    pub num_responses: f32,
    /// `rows x 5` floats out: loss term, pi_y, f_y, c, lse.
    pub out: u64,
    /// `rows` statuses out (`bnf_kernels::status`).
    pub status: u64,
}

impl RawRows {
    /// The launch shape, after the checks every raw entry shares: a vocabulary, and (unless
    /// there are no rows, when nothing is launched) non-null logits and targets.
    fn shape(&self) -> Result<Launch, GpuError> {
        if self.vocab == 0 {
            return Err(BnfError::EmptyVocab.into());
        }
        self.required(&[(self.logits, "rows.logits"), (self.targets, "rows.targets")])?;
        Ok(launch(self.rows, self.vocab, self.dtype.size()))
    }

    /// Reject a null pointer among `ptrs` (`(pointer, name)`) when there are rows to run: a
    /// kernel would fault on it and leave the caller's context unusable.
    fn required(&self, ptrs: &[(u64, &'static str)]) -> Result<(), GpuError> {
        match ptrs.iter().find(|(p, _)| *p == 0) {
            Some(&(_, what)) if self.rows > 0 => Err(GpuError::NullPointer { what }),
            _ => Ok(()),
        }
    }

    /// Reject a gradient output `grad` (named `what`) that overlaps the logits without being
    /// them: 0 (none), the logits pointer (in place) or a disjoint buffer are fine.
    fn check_grad(&self, grad: u64, what: &'static str) -> Result<(), GpuError> {
        if grad == 0 || grad == self.logits {
            return Ok(());
        }
        let bytes = (u64::from(self.rows) * u64::from(self.vocab))
            .saturating_mul(u64::from(self.dtype.size()));
        let overlaps =
            grad < self.logits.saturating_add(bytes) && self.logits < grad.saturating_add(bytes);
        match overlaps {
            true => Err(GpuError::PartialOverlap { what }),
            false => Ok(()),
        }
    }
}

impl Gpu {
    /// Fused BNF forward and backward on raw pointers (one launch). Null `logits`, `targets`,
    /// `weights`, `out` or `status` is [`GpuError::NullPointer`], a `grad` that overlaps the
    /// logits without being them [`GpuError::PartialOverlap`] (checked before launching).
    ///
    /// # Safety
    /// Every non-zero pointer must be a device allocation of this context with the size the
    /// module documentation gives; `grad` may alias `logits` and nothing else.
    pub unsafe fn bnf_fwd_bwd_raw(&self, a: &RawBnf, stream: RawStream) -> Result<(), GpuError> {
        let shape = a.rows.shape()?;
        a.rows
            .required(&[(a.weights, "weights"), (a.out, "out"), (a.status, "status")])?;
        a.rows.check_grad(a.grad, "grad")?;
        if !(a.num_responses > 0.0 && a.num_responses.is_finite()) {
            return Err(BnfError::NoResponses.into());
        }
        let r = a.rows;
        let (mut logits, mut grad, mut targets, mut weights) =
            (r.logits, a.grad, r.targets, a.weights);
        let (mut ref_logp, mut scored, mut vocab, mut n) =
            (a.ref_logp, r.scored, r.vocab, a.num_responses);
        let (mut cached, mut out, mut status) = (shape.cached, a.out, a.status);
        let args = kernel_args!(
            logits, grad, targets, weights, ref_logp, scored, vocab, n, cached, out, status
        );
        self.launch(
            Module::Bnf,
            r.dtype.kernels().bnf_fwd_bwd,
            shape,
            &args,
            stream,
        )
    }

    /// Row statistics on raw pointers: `stats` gets 6 floats per row (`RowStats` order). Null
    /// `logits`, `targets`, `stats` or `status` is [`GpuError::NullPointer`].
    ///
    /// # Safety
    /// As [`Gpu::bnf_fwd_bwd_raw`]; `stats` holds `6 * rows` floats, `status` `rows` ints.
    pub unsafe fn row_stats_raw(
        &self,
        r: &RawRows,
        stats: u64,
        status: u64,
        stream: RawStream,
    ) -> Result<(), GpuError> {
        let shape = r.shape()?;
        r.required(&[(stats, "stats"), (status, "status")])?;
        let (mut logits, mut targets, mut scored, mut vocab) =
            (r.logits, r.targets, r.scored, r.vocab);
        let (mut cached, mut stats, mut status) = (shape.cached, stats, status);
        let args = kernel_args!(logits, targets, scored, vocab, cached, stats, status);
        self.launch(
            Module::Bnf,
            r.dtype.kernels().row_stats,
            shape,
            &args,
            stream,
        )
    }

    /// Row gradients `w[r] (softmax - onehot)` on raw pointers, from `stats` (6 floats per row
    /// as `row_stats_raw` writes them). `out` may equal `r.logits` (in place); `status` may be 0.
    /// Null `logits`, `targets`, `out`, `stats` or `w` is [`GpuError::NullPointer`], an `out`
    /// that overlaps the logits without being them [`GpuError::PartialOverlap`].
    ///
    /// # Safety
    /// As [`Gpu::bnf_fwd_bwd_raw`]; `w` holds `rows` floats.
    pub unsafe fn row_grad_raw(
        &self,
        r: &RawRows,
        out: u64,
        stats: u64,
        w: u64,
        status: u64,
        stream: RawStream,
    ) -> Result<(), GpuError> {
        let shape = r.shape()?;
        r.required(&[(out, "out"), (stats, "stats"), (w, "w")])?;
        r.check_grad(out, "out")?;
        let (mut logits, mut out, mut targets, mut scored) = (r.logits, out, r.targets, r.scored);
        let (mut stats, mut w, mut vocab, mut cached, mut status) =
            (stats, w, r.vocab, shape.cached, status);
        let args = kernel_args!(logits, out, targets, scored, stats, w, vocab, cached, status);
        self.launch(
            Module::Bnf,
            r.dtype.kernels().row_grad,
            shape,
            &args,
            stream,
        )
    }

    /// Target log-probs `ell = log pi_y` (and `lse`, unless `lse` is 0) on raw pointers. Null
    /// `logits`, `targets`, `logp` or `status` is [`GpuError::NullPointer`].
    ///
    /// # Safety
    /// As [`Gpu::bnf_fwd_bwd_raw`]; `logp` and `lse` hold `rows` floats.
    pub unsafe fn gather_logp_raw(
        &self,
        r: &RawRows,
        logp: u64,
        lse: u64,
        status: u64,
        stream: RawStream,
    ) -> Result<(), GpuError> {
        let shape = r.shape()?;
        r.required(&[(logp, "logp"), (status, "status")])?;
        let (mut logits, mut targets, mut scored, mut vocab) =
            (r.logits, r.targets, r.scored, r.vocab);
        let (mut cached, mut logp, mut lse, mut status) = (shape.cached, logp, lse, status);
        let args = kernel_args!(logits, targets, scored, vocab, cached, logp, lse, status);
        self.launch(
            Module::Bnf,
            r.dtype.kernels().gather_logp,
            shape,
            &args,
            stream,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: u32) -> RawRows {
        RawRows {
            dtype: Dtype::F32,
            rows,
            vocab: 8,
            logits: 0x1000,
            targets: 0x2000,
            scored: 0,
        }
    }

    #[test]
    fn null_required_pointers_are_input_errors() {
        let r = rows(4);
        assert!(r.shape().is_ok());
        let no_logits = RawRows { logits: 0, ..r };
        let e = no_logits.shape().unwrap_err();
        assert_eq!(
            e,
            GpuError::NullPointer {
                what: "rows.logits"
            }
        );
        assert_eq!(e.to_string(), "device pointer `rows.logits` is null");
        let no_targets = RawRows { targets: 0, ..r };
        assert_eq!(
            no_targets.shape().unwrap_err(),
            GpuError::NullPointer {
                what: "rows.targets"
            }
        );
        assert_eq!(
            r.required(&[(0x3000, "stats"), (0, "status")]),
            Err(GpuError::NullPointer { what: "status" })
        );
        // No rows: nothing is launched, so nothing is dereferenced.
        let empty = RawRows {
            logits: 0,
            targets: 0,
            ..rows(0)
        };
        assert!(empty.shape().is_ok() && empty.required(&[(0, "out")]).is_ok());
    }

    #[test]
    fn grad_is_none_the_logits_or_disjoint() {
        let r = rows(4); // 4 x 8 f32 logits: 128 bytes from 0x1000
        for ok in [0, 0x1000, 0x1000 + 128, 0x1000 - 128, 0x9000] {
            assert!(r.check_grad(ok, "grad").is_ok(), "{ok:#x}");
        }
        for bad in [0x1000 + 4, 0x1000 + 127, 0x1000 - 124] {
            assert_eq!(
                r.check_grad(bad, "grad"),
                Err(GpuError::PartialOverlap { what: "grad" }),
                "{bad:#x}"
            );
        }
    }
}
