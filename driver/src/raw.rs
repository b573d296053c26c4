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
    fn shape(&self) -> Result<Launch, GpuError> {
        if self.vocab == 0 {
            return Err(BnfError::EmptyVocab.into());
        }
        Ok(launch(self.rows, self.vocab, self.dtype.size()))
    }
}

impl Gpu {
    /// Fused BNF forward and backward on raw pointers (one launch).
    ///
    /// # Safety
    /// Every non-zero pointer must be a device allocation of this context with the size the
    /// module documentation gives; `grad` may alias `logits` and nothing else.
    pub unsafe fn bnf_fwd_bwd_raw(&self, a: &RawBnf, stream: RawStream) -> Result<(), GpuError> {
        let shape = a.rows.shape()?;
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

    /// Row statistics on raw pointers: `stats` gets 6 floats per row (`RowStats` order).
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

    /// Target log-probs `ell = log pi_y` (and `lse`, unless `lse` is 0) on raw pointers.
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
