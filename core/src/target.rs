//! The paper's dynamic target distribution (eq. 6) and what BNF needs from it per row: the
//! target's mass `f_y`, the gradient scale `c` (so that eq. 8 is `s c (pi - onehot)`), and the
//! row's cross-entropy against `f`.

use crate::check;
use crate::dtype::Logit;
use crate::error::BnfError;
use crate::math;
use crate::row::row_stats;
use crate::stats::RowStats;

/// BNF's per-row scalars, from the row statistics and `rho`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnfScalars {
    /// `f_y = min(pi_y / pi_ref, 1)`.
    pub f_y: f32,
    /// `1 - f_y`, computed as `-expm1(log f_y)` (exact when `f_y` is close to 1): the mass eq. 6
    /// spreads over the other tokens. The loss and [`dynamic_target`] both use this value.
    pub one_minus_f_y: f32,
    /// `c = (f_y - pi_y) / (1 - pi_y) = min(1, odds(pi_y) / odds(pi_ref))`, in `[0, 1]`.
    pub c: f32,
    /// `-sum_j f_j log pi_j` (the row's cross-entropy against `f`, before the weight `s`).
    pub cross_entropy: f32,
}

/// Eq. 6's `f_y` and eq. 8's scale `c` in log space, and the row loss from the running sums:
/// `-(f_y ell + (1 - f_y)(T'/S' - lse))`.
///
/// Precondition: `rho` is the output of [`check::ref_logp`] (not NaN, `<= 0`). Nothing here
/// rejects other values, and they give meaningless scalars: a NaN `rho` reads as plain NLL,
/// and `rho > 0` gives an `f_y` below 1 with `c = 1`, so loss and gradient disagree. Debug
/// builds assert the precondition; every batch function checks `rho` before calling this.
///
/// Edge cases: `rho = -inf` gives `f_y = 1`, `c = 1` (plain NLL); `rho = 0` gives `f = pi` and
/// `c = 0` (no gradient); `pi_y = 1` in `f32` (`S' = 0`) gives `c = 1`, whose gradient is 0 anyway.
pub fn bnf_scalars(stats: &RowStats, rho: f32) -> BnfScalars {
    debug_assert!(
        rho <= 0.0,
        "bnf_scalars: rho = {rho} was not checked with check_ref_logp (NaN or above 0)"
    );
    let gap = stats.ell - rho; // log(pi_y / pi_ref); +inf when rho = -inf
    let log_f_y = if gap < 0.0 { gap } else { 0.0 };
    let f_y = math::exp_precise(log_f_y);
    let one_minus_f_y = -math::exp_m1(log_f_y);
    let lo = stats.log_odds_y();
    let lo_ref = math::log_odds(rho);
    let c = if lo == f32::INFINITY || lo_ref == f32::NEG_INFINITY {
        1.0
    } else if lo_ref == f32::INFINITY {
        0.0
    } else {
        let log_c = lo - lo_ref;
        math::exp_precise(if log_c < 0.0 { log_c } else { 0.0 })
    };
    let others = if one_minus_f_y > 0.0 {
        one_minus_f_y * stats.others_mean_logp()
    } else {
        0.0
    };
    BnfScalars {
        f_y,
        one_minus_f_y,
        c,
        cross_entropy: -(f_y * stats.ell + others),
    }
}

/// Materialise eq. 6's target distribution `f` for one row into `out` (for inspection and
/// tests; the loss never needs it): `f_y = min(pi_y / pi_ref, 1)` and
/// `f_j = (1 - f_y) pi_j / (1 - pi_y) = (1 - f_y) e^(z_j - m) / S'` for `j != y`, with `f_y`
/// and `1 - f_y` taken from [`bnf_scalars`] (the values the loss uses).
/// Returns the row statistics. Errors as [`row_stats`] and [`check::ref_logp`], plus a length
/// mismatch between `z` and `out`.
pub fn dynamic_target<T: Logit>(
    z: &[T],
    y: usize,
    rho: f32,
    out: &mut [f32],
) -> Result<RowStats, BnfError> {
    check::len("dynamic_target out", z.len(), out.len())?;
    let stats = row_stats(z, y)?;
    let rho = check::ref_logp(rho)?;
    let b = bnf_scalars(&stats, rho);
    for (o, v) in out.iter_mut().zip(z) {
        let e = math::exp_precise(v.to_f32() - stats.max);
        *o = if stats.others_sum > 0.0 {
            b.one_minus_f_y * (e / stats.others_sum)
        } else {
            0.0
        };
    }
    out[y] = b.f_y;
    Ok(stats)
}
