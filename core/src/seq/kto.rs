//! KTO as a pure scalar function of one response, and the reference point `z0` it is measured
//! against. `z0` is held constant (no gradient flows through it).

use crate::math;
use crate::objective::config::KtoConfig;

/// One response's KTO loss and its derivative with respect to its summed log-prob `lp`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResponseLoss {
    /// The response's loss.
    pub loss: f32,
    /// `d loss / d lp`.
    pub d: f32,
}

/// KTO for one response with log-ratio `r = lp - rp`:
/// desirable `w_D (1 - sigma(beta (r - z0)))`, undesirable `w_U (1 - sigma(beta (z0 - r)))`.
/// `1 - sigma(x)` is computed as `sigma(-x)` (no cancellation).
pub fn kto_loss(lp: f32, rp: f32, desirable: bool, z0: f32, cfg: &KtoConfig) -> ResponseLoss {
    let r = lp - rp;
    // x is the argument of sigma; dx = dx/dlp.
    let (x, dx, weight) = if desirable {
        (cfg.beta * (r - z0), cfg.beta, cfg.desirable_weight)
    } else {
        (cfg.beta * (z0 - r), -cfg.beta, cfg.undesirable_weight)
    };
    let (s, s_neg) = (math::sigmoid(x), math::sigmoid(-x));
    ResponseLoss {
        loss: weight * s_neg,
        d: -weight * s * s_neg * dx,
    }
}

/// KTO's batch estimate of `KL(policy || reference)`: `max(0, mean_i (lp_i - rp_i))`, summed
/// in `f64` in the given order. 0 for no responses.
pub fn kto_z0(log_ratios: impl Iterator<Item = f32>) -> f32 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for r in log_ratios {
        sum += r as f64;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    ((sum / n as f64) as f32).max(0.0)
}
