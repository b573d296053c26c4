//! # bnf-kernels
//!
//! The BNF row primitives of `bnf-core` as CUDA kernels, shipped as PTX text: `row_stats`,
//! `row_grad`, the fused `bnf_fwd_bwd` and `gather_logp` (module [`BNF_PTX`]), plus the
//! unfused baseline of the paper's appendix code used by the GPU benchmark ([`NAIVE_PTX`]).
//!
//! The sources are in `kernels/cuda/`; `kernels/build_ptx.sh` regenerates `kernels/ptx/` with
//! a pinned `nvcc` 13.0.88 from PyPI. The PTX targets `compute_80` with PTX ISA 9.0: a driver
//! for CUDA 13.0 or newer (R580+) JIT-compiles it for any GPU of compute capability 8.0 or
//! higher (A100, H100, H200, ...). Older drivers reject it with
//! `CUDA_ERROR_UNSUPPORTED_PTX_VERSION`.
//!
//! Every kernel runs one block of [`THREADS`] threads per row (grid = rows), reads rows as
//! 16-byte packs (16-byte loads where a row starts on a 16-byte boundary) and reduces in a
//! fixed tree order, so results repeat bit for bit. [`launch`] gives the shape for a batch,
//! [`dynamic_shared_bytes`] what a launch of one kernel gets on a device, [`entry_params`] the
//! byte size of each parameter of a kernel as its PTX declares it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod params;
mod shape;

pub use params::entry_params;
pub use shape::{
    dynamic_shared_bytes, launch, uses_row_cache, Launch, DEFAULT_SHARED_BYTES,
    ROW_CACHE_MAX_BYTES, STATIC_SHARED_BYTES, THREADS,
};

/// PTX of `kernels/cuda/bnf.cu`: the row primitives for f32, f16 and bf16 logits.
pub const BNF_PTX: &str = include_str!("../ptx/bnf.ptx");

/// PTX of `kernels/cuda/naive.cu`: the paper's appendix code as separate kernels (benchmark
/// baseline only).
pub const NAIVE_PTX: &str = include_str!("../ptx/naive.ptx");

/// Floats per row written by the `row_stats_*` kernels, in `bnf_core::RowStats` field order:
/// max, lse, ell, sum, others_sum, others_dot.
pub const ROW_STATS_FLOATS: usize = 6;

/// Floats per row written by the `bnf_fwd_bwd_*` kernels: loss term `s * CE`, `pi_y`, `f_y`,
/// `c`, `lse`.
pub const BNF_OUT_FLOATS: usize = 5;

/// Row status codes every kernel writes (one `i32` per row), as `kernels/cuda/common.cuh`.
pub mod status {
    /// The row is fine (or masked).
    pub const OK: i32 = 0;
    /// The target id is not below the vocabulary size.
    pub const TARGET_OUT_OF_RANGE: i32 = 1;
    /// The row weight is NaN or infinite.
    pub const INVALID_WEIGHT: i32 = 2;
    /// NaN or `+inf` among the logits, or `-inf` at the target.
    pub const NON_FINITE_LOGITS: i32 = 3;
    /// The reference log-prob is NaN or above 0 by more than `bnf_core::REF_LOGP_TOLERANCE`.
    pub const INVALID_REF_LOGP: i32 = 4;
    /// `row_grad` only: statistics no row can have (`bnf_core::BnfError::InvalidStats`).
    pub const INVALID_STATS: i32 = 5;
}

/// Storage type of logits and gradients; each kernel of [`BNF_PTX`] exists once per type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `f32`.
    F32,
    /// IEEE half, `half::f16`.
    F16,
    /// bfloat16, `half::bf16`.
    Bf16,
}

/// The kernel names of one [`Dtype`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    /// `row_stats_*(logits, targets, scored, vocab, cached, stats, status)`.
    pub row_stats: &'static str,
    /// `row_grad_*(logits, out, targets, scored, stats, w, vocab, cached, status)`.
    pub row_grad: &'static str,
    /// `bnf_fwd_bwd_*(logits, grad, targets, weights, ref_logp, scored, vocab, num_responses,
    /// cached, out, status)`.
    pub bnf_fwd_bwd: &'static str,
    /// `gather_logp_*(logits, targets, scored, vocab, cached, logp, lse, status)`.
    pub gather_logp: &'static str,
    /// `naive_log_softmax_*(logits, logp, vocab)` in [`NAIVE_PTX`].
    pub naive_log_softmax: &'static str,
    /// `naive_log_softmax_bwd_*(logp, g, vocab, grad)` in [`NAIVE_PTX`].
    pub naive_log_softmax_bwd: &'static str,
}

/// The dtype-independent kernels of [`NAIVE_PTX`] and the launch shapes of that module: one
/// thread per row for `gather` and `scalars` ([`naive::per_thread`]), one block per row for the
/// others ([`naive::per_row`]).
pub mod naive {
    use crate::{Launch, THREADS};

    /// `naive_gather(logp, targets, vocab, rows, ell)`.
    pub const GATHER: &str = "naive_gather";
    /// `naive_other_sum(logp, ell, vocab, other)`.
    pub const OTHER_SUM: &str = "naive_other_sum";
    /// `naive_scalars(ell, ref_logp, weights, other, rows, resp_t, others_t, loss)`.
    pub const SCALARS: &str = "naive_scalars";
    /// `naive_dlogp(logp, targets, weights, resp_t, others_t, vocab, num_responses, g)`.
    pub const DLOGP: &str = "naive_dlogp";

    /// One block of [`THREADS`] per row, no dynamic shared memory (the row-wide kernels).
    pub fn per_row(rows: u32) -> Launch {
        Launch {
            blocks: rows,
            threads: THREADS,
            shared_bytes: 0,
            cached: 0,
        }
    }

    /// One thread per row ([`GATHER`], [`SCALARS`]).
    pub fn per_thread(rows: u32) -> Launch {
        Launch {
            blocks: rows.div_ceil(THREADS),
            ..per_row(rows)
        }
    }
}

impl Dtype {
    /// Every dtype, in the order the kernels are instantiated.
    pub const ALL: [Dtype; 3] = [Dtype::F32, Dtype::F16, Dtype::Bf16];

    /// Bytes per element.
    pub const fn size(self) -> u32 {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }

    /// The dtype whose `bnf_core::Logit::NAME` is `name` ("f32", "f16", "bf16").
    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The kernel name suffix, equal to `bnf_core::Logit::NAME`.
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        }
    }

    /// The names of this dtype's kernels.
    pub const fn kernels(self) -> Kernels {
        macro_rules! names {
            ($s:literal) => {
                Kernels {
                    row_stats: concat!("row_stats_", $s),
                    row_grad: concat!("row_grad_", $s),
                    bnf_fwd_bwd: concat!("bnf_fwd_bwd_", $s),
                    gather_logp: concat!("gather_logp_", $s),
                    naive_log_softmax: concat!("naive_log_softmax_", $s),
                    naive_log_softmax_bwd: concat!("naive_log_softmax_bwd_", $s),
                }
            };
        }
        match self {
            Dtype::F32 => names!("f32"),
            Dtype::F16 => names!("f16"),
            Dtype::Bf16 => names!("bf16"),
        }
    }
}
