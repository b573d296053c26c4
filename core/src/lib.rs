//! # bnf-core
//!
//! The BNF loss (Bidirectional Negative Feedback, "As Simple as Fine-tuning: LLM Alignment via
//! Bidirectional Negative Feedback Loss") over plain slices, exactly as the paper defines it
//! (eqs. 4, 6 and 8), plus NLL, on `f32`, `half::f16` and `half::bf16` logits with `f32`
//! accumulation. `#![no_std]` when the default `std` feature is off.
//!
//! One scored response token is one *row*: logits `z` (length `V`), target `y`, the reference
//! log-prob `rho = log pi_ref(y)`, and a weight `s = label / |y|`. Everything is built from two
//! row primitives:
//!
//! - [`row_stats`]: `max`, `lse`, `ell = log pi_y` and the sums over the other tokens, in one
//!   read of the row;
//! - [`row_grad`] / [`row_grad_in_place`]: write `w * (softmax(z) - onehot(y))`.
//!
//! BNF's gradient is a scaled cross-entropy gradient, `s c (pi - onehot)` with
//! `c = min(1, odds(pi_y) / odds(pi_ref))` ([`bnf_scalars`]), and its loss needs only the
//! running sums, so BNF costs what a fused cross-entropy costs.
//!
//! The paper's baselines (NLL+PLL, DPO, IPO, SLiC-HF, SimPO, R-DPO, CPO, ORPO, KTO) run on the
//! same two primitives through one API: pick an [`Objective`], describe the responses in a
//! [`PrefBatch`] and call [`objective_forward_backward`]. Sequence-level losses reduce each
//! response's `ell` to `lp = log pi(y)`, take `g = dL/dlp` from a scalar function in [`seq`],
//! and write `-g (pi - onehot)` per row, reusing the row statistics. Every input check lives
//! in [`check`], which the GPU driver and the C ABI run too.
//!
//! ```
//! use bnf_core::{bnf, response_weights, Batch, PREFERRED, DISPREFERRED};
//!
//! // Two responses of two scored tokens each, vocabulary of 4.
//! let logits: Vec<f32> = vec![
//!     1.0, 2.0, 0.5, -1.0,   2.0, 0.0, 0.0, 1.0,   // preferred response
//!     0.0, 0.0, 3.0, 1.0,   -2.0, 1.0, 1.0, 0.0,   // dispreferred response
//! ];
//! let targets = [1, 0, 2, 1];
//! let ref_logp = [-0.9, -0.5, -0.4, -1.2];
//! let mut weights = [0.0; 4];
//! let n = response_weights(&[0, 2, 4], &[PREFERRED, DISPREFERRED], None, &mut weights).unwrap();
//! let batch = Batch { vocab: 4, targets: &targets, weights: &weights, scored: None, num_responses: n };
//! let out = bnf(&logits, &batch, &ref_logp).unwrap();
//! assert!(out.loss.is_finite());
//! assert_eq!(out.grad.len(), logits.len());
//! println!("pi_y = {}, f_y = {}, c = {}", out.rows[0].pi_y, out.rows[0].f_y, out.rows[0].c);
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod batch;
pub mod check;
mod dtype;
mod error;
mod exec;
mod local;
pub mod math;
mod objective;
mod pass;
mod row;
pub mod seq;
mod simd;
mod stats;
mod target;
mod weights;

pub use batch::{Batch, Rows};
pub use check::{ref_logp as check_ref_logp, REF_LOGP_TOLERANCE};
pub use dtype::Logit;
pub use error::{BnfError, Site};
pub use exec::{num_threads, set_num_threads};
#[cfg(feature = "parallel")]
pub use exec::{set_parallel_runner, ParallelRunner};
#[cfg(feature = "std")]
pub use local::{bnf, nll, Output};
pub use local::{forward, forward_backward, forward_backward_in_place, RowDiag, RowLoss};
pub use objective::{
    forward_from_rows, forward_from_stats, objective_forward, objective_forward_backward,
    objective_forward_backward_in_place, CpoConfig, DpoConfig, IpoConfig, KtoConfig, Objective,
    ObjectiveOutput, OrpoConfig, PrefBatch, RDpoConfig, SimPoConfig, SlicConfig, OBJECTIVE_NAMES,
};
pub use row::{bad_logit, row_grad, row_grad_in_place, row_stats, BLOCK, D_FLOOR};
pub use simd::{set_simd, simd_avx2};
pub use stats::RowStats;
pub use target::{bnf_scalars, dynamic_target, BnfScalars};
pub use weights::{response_weights, DISPREFERRED, PREFERRED};

pub use half::{bf16, f16};
