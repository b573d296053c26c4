//! [`RowStats`]: what one read of a row of logits gives ([`crate::row_stats`]), and the
//! quantities BNF and the sequence objectives derive from it.

use crate::math;

/// The statistics of one row of logits `z` with target `y`.
///
/// `sum`, `others_sum` and `others_dot` are taken relative to the row maximum: with
/// `d_j = z_j - max`, `sum = S = sum_j e^(d_j)`, `others_sum = S' = sum_{j != y} e^(d_j)` and
/// `others_dot = sum_{j != y} e^(d_j) d_j` (DESIGN.md's `T'` less `max * S'`, which keeps the
/// sum free of cancellation when logits are large).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowStats {
    /// `m = max_j z_j`.
    pub max: f32,
    /// `lse = log sum_j e^(z_j) = m + ln S` (`ln S` as in `ell`).
    pub lse: f32,
    /// `ell = z_y - lse = log pi_y`, computed as `(z_y - m) - ln S`, with `ln S = log1p(S')`
    /// when the target is the row's maximum (`z_y = m`), so that `ell = -log1p(S')` keeps its
    /// relative precision as `pi_y -> 1` (`1 + S'` rounded to `f32` would lose `S'`'s low bits).
    pub ell: f32,
    /// `S = sum_j e^(z_j - m)`, at least 1.
    pub sum: f32,
    /// `S' = sum_{j != y} e^(z_j - m)`.
    pub others_sum: f32,
    /// `sum_{j != y} e^(z_j - m) (z_j - m)`, at most 0.
    pub others_dot: f32,
}

impl RowStats {
    /// `pi_y = e^ell`.
    #[inline]
    pub fn pi_y(&self) -> f32 {
        math::exp_precise(self.ell)
    }

    /// `1 - pi_y`, exactly `S' / S` (no cancellation near `pi_y = 1`).
    #[inline]
    pub fn one_minus_pi_y(&self) -> f32 {
        self.others_sum / self.sum
    }

    /// `log(pi_y / (1 - pi_y)) = (z_y - m) - ln S'`; `+inf` when `S' = 0`.
    #[inline]
    pub fn log_odds_y(&self) -> f32 {
        if self.others_sum > 0.0 {
            self.ell - (math::ln(self.others_sum) - math::ln(self.sum))
        } else {
            f32::INFINITY
        }
    }

    /// `sum_{j != y} (pi_j / (1 - pi_y)) log pi_j = T'/S' - lse` in DESIGN.md's notation: the
    /// mean log-prob of the other tokens under their own renormalised distribution. 0 when
    /// `S' = 0` (its weight `1 - f_y` is then 0 too).
    #[inline]
    pub fn others_mean_logp(&self) -> f32 {
        if self.others_sum > 0.0 {
            self.others_dot / self.others_sum - math::ln(self.sum)
        } else {
            0.0
        }
    }
}
