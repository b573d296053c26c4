//! The benchmark's baseline: BNF as the paper's appendix code computes it, one kernel per
//! step (`bnf_kernels::NAIVE_PTX`): materialised log-softmax, gather, `exp * logp` sums, the
//! target scalars, then autograd's backward through log-softmax. It needs two `f32`
//! `rows x vocab` intermediates ([`NaiveBuffers`]), which is the memory BNF's fused kernel saves.

use crate::buffer::DeviceBuffer;
use crate::context::{kernel_args, Gpu, Module, RawStream};
use crate::error::GpuError;
use crate::raw::RawBnf;
use bnf_core::BnfError;
use bnf_kernels::naive;

/// The naive BNF's intermediates for `rows x vocab` logits.
pub struct NaiveBuffers {
    /// `log_softmax(z)`, `rows x vocab`.
    pub logp: DeviceBuffer<f32>,
    /// `dloss/dlogp`, `rows x vocab`.
    pub dlogp: DeviceBuffer<f32>,
    /// `log pi_y` per row.
    pub ell: DeviceBuffer<f32>,
    /// `sum_j pi_j logp_j - pi_y ell` per row.
    pub other: DeviceBuffer<f32>,
    /// `f_y` per row.
    pub resp_t: DeviceBuffer<f32>,
    /// `(1 - f_y) / (1 - pi_y)` per row.
    pub others_t: DeviceBuffer<f32>,
    /// The row loss terms `-s (f_y ell + others_t other)`.
    pub loss: DeviceBuffer<f32>,
}

impl NaiveBuffers {
    /// Allocate the intermediates for `rows x vocab` logits.
    pub fn new(gpu: &Gpu, rows: usize, vocab: usize) -> Result<NaiveBuffers, GpuError> {
        let n = rows.checked_mul(vocab).ok_or(GpuError::TooLarge {
            what: "rows x vocab",
            value: rows,
        })?;
        Ok(NaiveBuffers {
            logp: gpu.alloc(n)?,
            dlogp: gpu.alloc(n)?,
            ell: gpu.alloc(rows)?,
            other: gpu.alloc(rows)?,
            resp_t: gpu.alloc(rows)?,
            others_t: gpu.alloc(rows)?,
            loss: gpu.alloc(rows)?,
        })
    }

    /// Extra device bytes per logit (the two `f32` intermediates).
    pub const BYTES_PER_LOGIT: usize = 8;
}

impl Gpu {
    /// The naive BNF forward+backward with the fused kernel's arguments (six launches):
    /// gradient into `a.grad`, row loss terms into `bufs.loss`. Every row counts (`a.rows.scored`
    /// is ignored) and `a.out`, `a.status` are not written.
    ///
    /// # Safety
    /// As [`Gpu::bnf_fwd_bwd_raw`], with `a.grad` separate from the logits and `a.ref_logp`
    /// not null, and `bufs` made for these sizes.
    pub unsafe fn naive_bnf_raw(
        &self,
        a: &RawBnf,
        bufs: &NaiveBuffers,
        stream: RawStream,
    ) -> Result<(), GpuError> {
        let r = &a.rows;
        if r.vocab == 0 {
            return Err(BnfError::EmptyVocab.into());
        }
        if a.ref_logp == 0 {
            return Err(BnfError::MissingReference {
                objective: "naive BNF",
            }
            .into());
        }
        let k = r.dtype.kernels();
        let (mut logits, mut logp, mut g, mut ell) = (
            r.logits,
            bufs.logp.as_raw(),
            bufs.dlogp.as_raw(),
            bufs.ell.as_raw(),
        );
        let (mut other, mut rt, mut ot, mut loss) = (
            bufs.other.as_raw(),
            bufs.resp_t.as_raw(),
            bufs.others_t.as_raw(),
            bufs.loss.as_raw(),
        );
        let (mut targets, mut weights, mut ref_logp, mut grad) =
            (r.targets, a.weights, a.ref_logp, a.grad);
        let (mut vocab, mut rows, mut n) = (r.vocab, r.rows, a.num_responses);
        let (rows_launch, threads_launch) = (naive::per_row(r.rows), naive::per_thread(r.rows));
        self.launch(
            Module::Naive,
            k.naive_log_softmax,
            rows_launch,
            &kernel_args!(logits, logp, vocab),
            stream,
        )?;
        self.launch(
            Module::Naive,
            naive::GATHER,
            threads_launch,
            &kernel_args!(logp, targets, vocab, rows, ell),
            stream,
        )?;
        self.launch(
            Module::Naive,
            naive::OTHER_SUM,
            rows_launch,
            &kernel_args!(logp, ell, vocab, other),
            stream,
        )?;
        let scalars = kernel_args!(ell, ref_logp, weights, other, rows, rt, ot, loss);
        self.launch(
            Module::Naive,
            naive::SCALARS,
            threads_launch,
            &scalars,
            stream,
        )?;
        let dlogp = kernel_args!(logp, targets, weights, rt, ot, vocab, n, g);
        self.launch(Module::Naive, naive::DLOGP, rows_launch, &dlogp, stream)?;
        self.launch(
            Module::Naive,
            k.naive_log_softmax_bwd,
            rows_launch,
            &kernel_args!(logp, g, vocab, grad),
            stream,
        )
    }
}
