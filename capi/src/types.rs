//! The C structs: the batch description, per-row diagnostics, row statistics and BNF's row
//! scalars, with their conversions from and to `bnf-core`'s types. Field meanings are core's.

use bnf_core::{check, BnfScalars as CoreScalars, RowDiag, RowStats};

use crate::status::{BnfStatus, Fail};

/// A batch of scored rows laid out row-major: `rows x vocab` logits, one target, weight and
/// (for BNF) reference log-prob per row.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BnfBatch {
    /// Vocabulary size `V` (row length), at least 1.
    pub vocab: usize,
    /// Number of rows, at least 1.
    pub rows: usize,
    /// `rows` target ids (for a causal LM: the *next* token), each below `vocab` on scored rows.
    pub targets: *const u32,
    /// `rows` row weights `s = label / |y|` (see `bnf_response_weights`); finite on scored rows.
    pub weights: *const f32,
    /// `rows` flags, nonzero = the row counts; NULL = every row counts. Masked rows are not
    /// validated, contribute nothing, and get a zero gradient row.
    pub scored: *const u8,
    /// The batch loss is the sum of row losses divided by this (the number of responses, as
    /// `bnf_response_weights` returns it). Refused when 0 with scored rows; otherwise not
    /// checked: a call may hold a chunk of a larger batch's rows and must then pass the whole
    /// batch's count, which its rows cannot tell (`bnf_objective_*` counts the responses from
    /// its offsets instead).
    pub num_responses: usize,
    /// `rows` reference log-probs `rho = log pi_ref(y)` (`<= 0`, `-inf` allowed; values in
    /// `(0, 1e-3]` are f32 rounding and read as 0); required by BNF, ignored (may be NULL) by
    /// NLL.
    pub ref_logp: *const f32,
}

/// Diagnostics of one row after a batch call. Masked rows have every field 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnfRowDiag {
    /// 1 if the row counted, 0 if it was masked.
    pub scored: u32,
    /// `pi_y`, the policy's probability of the target.
    pub pi_y: f32,
    /// `ell = log pi_y` (exact where `pi_y` underflows).
    pub ell: f32,
    /// The target's mass in the dynamic target distribution, `f_y` (1 for NLL).
    pub f_y: f32,
    /// The gradient scale `c` of `s c (pi - onehot)` (1 for NLL).
    pub c: f32,
    /// The row's term in the batch sum, `s * CE(f, pi)`, before dividing by `num_responses`.
    pub loss: f32,
    /// `lse = log sum_j exp(z_j)`.
    pub lse: f32,
}

impl From<&RowDiag> for BnfRowDiag {
    fn from(d: &RowDiag) -> Self {
        BnfRowDiag {
            scored: d.scored as u32,
            pi_y: d.pi_y,
            ell: d.stats.ell,
            f_y: d.f_y,
            c: d.c,
            loss: d.loss,
            lse: d.stats.lse,
        }
    }
}

/// The statistics of one row (what `bnf_row_stats_*` computes and `bnf_row_grad_*` consumes).
/// Sums are relative to the row maximum.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnfRowStats {
    /// `m = max_j z_j`.
    pub max: f32,
    /// `lse = log sum_j exp(z_j)`.
    pub lse: f32,
    /// `ell = log pi_y`.
    pub ell: f32,
    /// `S = sum_j exp(z_j - m)`, at least 1.
    pub sum: f32,
    /// `S' = sum_{j != y} exp(z_j - m)`.
    pub others_sum: f32,
    /// `sum_{j != y} exp(z_j - m) (z_j - m)`, at most 0.
    pub others_dot: f32,
}

impl From<RowStats> for BnfRowStats {
    fn from(s: RowStats) -> Self {
        BnfRowStats {
            max: s.max,
            lse: s.lse,
            ell: s.ell,
            sum: s.sum,
            others_sum: s.others_sum,
            others_dot: s.others_dot,
        }
    }
}

impl BnfRowStats {
    /// Back to core's type, rejecting values `row_stats` never produces (so a garbage struct
    /// cannot turn into NaN gradients): core's own check of statistics
    /// ([`bnf_core::check::stats`]: `S >= 1` and finite, `0 <= S' <= S`, a finite max), and,
    /// since a caller hands in every field, finite `lse`, `ell` and `others_dot` with neither
    /// `ell` nor `others_dot` above 0.
    pub fn to_core(&self, what: &str) -> Result<RowStats, Fail> {
        let s = self;
        let core = RowStats {
            max: s.max,
            lse: s.lse,
            ell: s.ell,
            sum: s.sum,
            others_sum: s.others_sum,
            others_dot: s.others_dot,
        };
        let rest_finite = [s.lse, s.ell, s.others_dot].iter().all(|v| v.is_finite());
        let ok = check::stats(&core).is_ok() && rest_finite && s.others_dot <= 0.0 && s.ell <= 0.0;
        if !ok {
            return Err(Fail::new(
                BnfStatus::BNF_ERR_INVALID_STATS,
                format!("argument `{what}` is not a result of bnf_row_stats: {s:?}"),
            ));
        }
        Ok(core)
    }
}

/// BNF's per-row scalars (paper eqs. 6 and 8).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnfScalars {
    /// `f_y = min(pi_y / pi_ref, 1)`.
    pub f_y: f32,
    /// `c = min(1, odds(pi_y) / odds(pi_ref))`, in `[0, 1]`.
    pub c: f32,
    /// `-sum_j f_j log pi_j`, the row's cross-entropy against `f` (before the weight `s`).
    pub cross_entropy: f32,
}

impl From<CoreScalars> for BnfScalars {
    fn from(b: CoreScalars) -> Self {
        BnfScalars {
            f_y: b.f_y,
            c: b.c,
            cross_entropy: b.cross_entropy,
        }
    }
}
