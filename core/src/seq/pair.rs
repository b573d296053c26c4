//! The pairwise sequence losses of `losses.md` as pure scalar functions of one pair's
//! per-response quantities: each returns the pair's loss and its derivatives with respect to
//! the two summed policy log-probs `lp_w` and `lp_l`. Nothing here sees a logit; the batch
//! driver (`objective/sequence.rs`) turns the derivatives into row weights.

use crate::math;
use crate::objective::config::{
    CpoConfig, DpoConfig, IpoConfig, OrpoConfig, RDpoConfig, SimPoConfig, SlicConfig,
};

/// One preference pair: summed log-probs of the chosen (`w`) and rejected (`l`) completions
/// under the policy (`lp`) and the reference (`rp`, 0 for objectives without a reference), and
/// their lengths in scored tokens (at least 1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairInput {
    /// `log pi(y_w)`, summed over the chosen completion's tokens.
    pub lp_w: f32,
    /// `log pi(y_l)`, summed over the rejected completion's tokens.
    pub lp_l: f32,
    /// `log pi_ref(y_w)`.
    pub rp_w: f32,
    /// `log pi_ref(y_l)`.
    pub rp_l: f32,
    /// `L_w = |y_w|`.
    pub len_w: usize,
    /// `L_l = |y_l|`.
    pub len_l: usize,
}

impl PairInput {
    /// DPO's `delta = (lp_w - rp_w) - (lp_l - rp_l)`.
    fn delta(&self) -> f32 {
        (self.lp_w - self.rp_w) - (self.lp_l - self.rp_l)
    }
}

/// One pair's loss and its derivatives with respect to `lp_w` and `lp_l`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairLoss {
    /// The pair's loss.
    pub loss: f32,
    /// `d loss / d lp_w`.
    pub d_w: f32,
    /// `d loss / d lp_l`.
    pub d_l: f32,
}

/// `(-logsig(x), d/dx) = (-logsig(x), -sigma(-x))`, both stable for any finite `x`.
fn neg_log_sigmoid(x: f32) -> (f32, f32) {
    (-math::log_sigmoid(x), -math::sigmoid(-x))
}

/// NLL+PLL (paper eq. 1): `-lp_w + lp_l`.
pub fn nll_pll_loss(p: &PairInput) -> PairLoss {
    PairLoss {
        loss: -p.lp_w + p.lp_l,
        d_w: -1.0,
        d_l: 1.0,
    }
}

/// DPO: `-logsig(beta * delta)`. `d_w = -C_DPO`, `d_l = +C_DPO` with
/// `C_DPO = beta * sigma(-beta * delta)` (the paper's Table 2 constraint).
pub fn dpo_loss(p: &PairInput, cfg: &DpoConfig) -> PairLoss {
    let (loss, dx) = neg_log_sigmoid(cfg.beta * p.delta());
    PairLoss {
        loss,
        d_w: cfg.beta * dx,
        d_l: -cfg.beta * dx,
    }
}

/// IPO, length-averaged as TRL: `u^2` with `u = cl / L_w - rl / L_l - 1 / (2 tau)`.
pub fn ipo_loss(p: &PairInput, cfg: &IpoConfig) -> PairLoss {
    let (lw, ll) = (p.len_w as f32, p.len_l as f32);
    let u = (p.lp_w - p.rp_w) / lw - (p.lp_l - p.rp_l) / ll - 1.0 / (2.0 * cfg.tau);
    PairLoss {
        loss: u * u,
        d_w: 2.0 * u / lw,
        d_l: -2.0 * u / ll,
    }
}

/// SLiC-HF: `max(0, margin - lp_w + lp_l) - lambda * lp_w`. At the hinge's kink the
/// subgradient of the hinge is taken as 0.
pub fn slic_hf_loss(p: &PairInput, cfg: &SlicConfig) -> PairLoss {
    let h = cfg.margin - p.lp_w + p.lp_l;
    let active = if h > 0.0 { 1.0 } else { 0.0 };
    PairLoss {
        loss: h.max(0.0) - cfg.lambda * p.lp_w,
        d_w: -active - cfg.lambda,
        d_l: active,
    }
}

/// SimPO: `-logsig(beta * (lp_w / L_w - lp_l / L_l) - gamma)`.
pub fn simpo_loss(p: &PairInput, cfg: &SimPoConfig) -> PairLoss {
    let (lw, ll) = (p.len_w as f32, p.len_l as f32);
    let (loss, dx) = neg_log_sigmoid(cfg.beta * (p.lp_w / lw - p.lp_l / ll) - cfg.gamma);
    PairLoss {
        loss,
        d_w: cfg.beta * dx / lw,
        d_l: -cfg.beta * dx / ll,
    }
}

/// R-DPO: `-logsig(beta * delta + alpha * (L_w - L_l))`.
pub fn rdpo_loss(p: &PairInput, cfg: &RDpoConfig) -> PairLoss {
    let len_gap = p.len_w as f32 - p.len_l as f32;
    let (loss, dx) = neg_log_sigmoid(cfg.beta * p.delta() + cfg.alpha * len_gap);
    PairLoss {
        loss,
        d_w: cfg.beta * dx,
        d_l: -cfg.beta * dx,
    }
}

/// CPO: `-logsig(beta * (lp_w - lp_l)) - lp_w / L_w`.
pub fn cpo_loss(p: &PairInput, cfg: &CpoConfig) -> PairLoss {
    let lw = p.len_w as f32;
    let (pref, dx) = neg_log_sigmoid(cfg.beta * (p.lp_w - p.lp_l));
    PairLoss {
        loss: pref - p.lp_w / lw,
        d_w: cfg.beta * dx - 1.0 / lw,
        d_l: -cfg.beta * dx,
    }
}

/// The largest mean log-prob ORPO uses: `-2^-23`. A mean log-prob closer to 0 than this is
/// `f32` rounding noise (every token has probability 1 to `f32` precision); clamping keeps the
/// log-odds below about 16 and their derivative below about `8.4e6` instead of infinite.
pub const ORPO_MAX_MEAN_LOGP: f32 = -f32::EPSILON;

/// ORPO's log-odds of a mean log-prob and its derivative: `(log_odds(a), 1 / (1 - e^a))`,
/// with `a` clamped to at most [`ORPO_MAX_MEAN_LOGP`] (derivative 0 where clamped).
fn orpo_log_odds(a: f32) -> (f32, f32) {
    if a > ORPO_MAX_MEAN_LOGP {
        (math::log_odds(ORPO_MAX_MEAN_LOGP), 0.0)
    } else {
        // d/da [a - log(1 - e^a)] = 1 + e^a / (1 - e^a) = 1 / (1 - e^a) = -1 / expm1(a).
        (math::log_odds(a), -1.0 / math::exp_m1(a))
    }
}

/// ORPO: `-a_w - lambda * logsig(log_odds(a_w) - log_odds(a_l))` with `a = lp / L` (the mean
/// log-prob) and `log_odds(a) = a - log1mexp(a)`, stable near `a = 0` (see
/// [`ORPO_MAX_MEAN_LOGP`]).
pub fn orpo_loss(p: &PairInput, cfg: &OrpoConfig) -> PairLoss {
    let (lw, ll) = (p.len_w as f32, p.len_l as f32);
    let (a_w, a_l) = (p.lp_w / lw, p.lp_l / ll);
    let (lo_w, dlo_w) = orpo_log_odds(a_w);
    let (lo_l, dlo_l) = orpo_log_odds(a_l);
    let (or_loss, dx) = neg_log_sigmoid(lo_w - lo_l);
    PairLoss {
        loss: -a_w + cfg.lambda * or_loss,
        d_w: (-1.0 + cfg.lambda * dx * dlo_w) / lw,
        d_l: -cfg.lambda * dx * dlo_l / ll,
    }
}
