//! The typed configuration of each baseline objective, with the usual defaults from
//! `losses.md` (TRL's defaults; SimPO's published Llama-3-8B-Instruct setting), and the checks
//! that keep each parameter in its domain.

use crate::error::BnfError;

/// DPO: `-logsig(beta * ((lp_w - rp_w) - (lp_l - rp_l)))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpoConfig {
    /// Inverse temperature `beta > 0` (default 0.1).
    pub beta: f32,
}

/// IPO (length-averaged, as TRL): `(cl / L_w - rl / L_l - 1 / (2 tau))^2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IpoConfig {
    /// Regularisation `tau >= IpoConfig::MIN_TAU` (default 0.1); the target margin is
    /// `1 / (2 tau)`.
    pub tau: f32,
}

/// SLiC-HF: `max(0, margin - lp_w + lp_l) - lambda * lp_w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlicConfig {
    /// Hinge margin (default 1).
    pub margin: f32,
    /// Weight of the NLL regulariser on the chosen response, `>= 0` (default 0.1).
    pub lambda: f32,
}

/// SimPO: `-logsig(beta * (lp_w / L_w - lp_l / L_l) - gamma)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimPoConfig {
    /// Reward scale `beta > 0` (default 2.5).
    pub beta: f32,
    /// Absolute target margin `gamma` (default 1.375, that is `gamma / beta = 0.55`).
    pub gamma: f32,
}

/// R-DPO: `-logsig(beta * delta + alpha * (L_w - L_l))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RDpoConfig {
    /// Inverse temperature `beta > 0` (default 0.1).
    pub beta: f32,
    /// Length term weight `alpha` (default 0.05).
    pub alpha: f32,
}

/// CPO: `-logsig(beta * (lp_w - lp_l)) - lp_w / L_w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpoConfig {
    /// Inverse temperature `beta > 0` (default 0.1).
    pub beta: f32,
}

/// ORPO: `-lp_w / L_w - lambda * logsig(log_odds(a_w) - log_odds(a_l))`, `a = lp / L`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrpoConfig {
    /// Weight of the odds-ratio term, `>= 0` (default 0.1).
    pub lambda: f32,
}

/// KTO: preferred `w_D (1 - sigma(beta (cl - z0)))`, dispreferred `w_U (1 - sigma(beta (z0 - rl)))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KtoConfig {
    /// Inverse temperature `beta > 0` (default 0.1).
    pub beta: f32,
    /// Weight `w_D >= 0` of desirable (preferred) responses (default 1).
    pub desirable_weight: f32,
    /// Weight `w_U >= 0` of undesirable (dispreferred) responses (default 1).
    pub undesirable_weight: f32,
    /// The reference point `z0`, held constant (no gradient). `None` (default): estimate it
    /// from the batch as `max(0, mean over responses of (lp - rp))`, a simpler estimate than
    /// TRL's (which scores completions under mismatched prompts). `Some(v)`: use `v`, e.g. an
    /// estimate the caller computed TRL's way; `v` must be finite and `>= 0` (`losses.md`:
    /// `z0 = max(0, KL estimate)`), else `InvalidConfig`.
    pub z0: Option<f32>,
}

impl DpoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: DpoConfig = DpoConfig { beta: 0.1 };
}
impl Default for DpoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl IpoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: IpoConfig = IpoConfig { tau: 0.1 };
    /// The smallest `tau` accepted, `1e-18`: the target margin is then `5e17`, and its square
    /// `2.5e35` leaves `f32` room below its overflow at `3.4e38` (below about `2.7e-20` the
    /// loss of every pair would be infinite).
    pub const MIN_TAU: f32 = 1e-18;
}
impl Default for IpoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl SlicConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: SlicConfig = SlicConfig {
        margin: 1.0,
        lambda: 0.1,
    };
}
impl Default for SlicConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl SimPoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: SimPoConfig = SimPoConfig {
        beta: 2.5,
        gamma: 1.375,
    };
}
impl Default for SimPoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RDpoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: RDpoConfig = RDpoConfig {
        beta: 0.1,
        alpha: 0.05,
    };
}
impl Default for RDpoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl CpoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: CpoConfig = CpoConfig { beta: 0.1 };
}
impl Default for CpoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl OrpoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: OrpoConfig = OrpoConfig { lambda: 0.1 };
}
impl Default for OrpoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl KtoConfig {
    /// The usual defaults (`losses.md`).
    pub const DEFAULT: KtoConfig = KtoConfig {
        beta: 0.1,
        desirable_weight: 1.0,
        undesirable_weight: 1.0,
        z0: None,
    };
}
impl Default for KtoConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Checks one parameter of `objective`.
pub(crate) struct Param {
    pub objective: &'static str,
}

impl Param {
    fn err(&self, what: &'static str, value: f32) -> BnfError {
        BnfError::InvalidConfig {
            objective: self.objective,
            what,
            value,
        }
    }

    /// Finite and `> 0`.
    pub fn positive(&self, what: &'static str, v: f32) -> Result<(), BnfError> {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(self.err(what, v))
        }
    }

    /// Finite and `>= min`.
    pub fn at_least(&self, what: &'static str, v: f32, min: f32) -> Result<(), BnfError> {
        if v.is_finite() && v >= min {
            Ok(())
        } else {
            Err(self.err(what, v))
        }
    }

    /// Finite and `>= 0`.
    pub fn non_negative(&self, what: &'static str, v: f32) -> Result<(), BnfError> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(self.err(what, v))
        }
    }

    /// Finite.
    pub fn finite(&self, what: &'static str, v: f32) -> Result<(), BnfError> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(self.err(what, v))
        }
    }
}
