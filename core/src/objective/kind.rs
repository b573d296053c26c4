//! [`Objective`]: which loss to train with, by name, with its typed configuration and what it
//! needs of a batch (reference log-probs, pairs).

use super::config::{
    CpoConfig, DpoConfig, IpoConfig, KtoConfig, OrpoConfig, Param, RDpoConfig, SimPoConfig,
    SlicConfig,
};
use crate::error::BnfError;

/// Which loss to train with. Unpaired objectives (BNF, NLL, KTO) take responses without
/// partners; the pairwise ones need [`PrefBatch::pairs`](crate::PrefBatch::pairs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// BNF (paper eq. 4), row-local, needs per-row reference log-probs.
    Bnf,
    /// NLL (SFT), row-local: each response contributes `-label * lp / |y|`, so give preferred
    /// responses (label +1) for SFT; a label -1 turns the response's term into unlikelihood.
    Nll,
    /// NLL+PLL (paper eq. 1): `-lp_w + lp_l`.
    NllPll,
    /// DPO.
    Dpo(DpoConfig),
    /// IPO (length-averaged).
    Ipo(IpoConfig),
    /// SLiC-HF.
    SlicHf(SlicConfig),
    /// SimPO.
    SimPo(SimPoConfig),
    /// R-DPO (length-regularised DPO).
    RDpo(RDpoConfig),
    /// CPO.
    Cpo(CpoConfig),
    /// ORPO.
    Orpo(OrpoConfig),
    /// KTO (unpaired; the sign of each response's label says desirable or not).
    Kto(KtoConfig),
}

/// The names [`Objective::parse`] accepts (one per objective; aliases are listed there).
pub const OBJECTIVE_NAMES: &[&str] = &[
    "bnf", "nll", "nll_pll", "dpo", "ipo", "slic_hf", "simpo", "rdpo", "cpo", "orpo", "kto",
];

impl Objective {
    /// The objective's canonical name (one of [`OBJECTIVE_NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Bnf => "bnf",
            Objective::Nll => "nll",
            Objective::NllPll => "nll_pll",
            Objective::Dpo(_) => "dpo",
            Objective::Ipo(_) => "ipo",
            Objective::SlicHf(_) => "slic_hf",
            Objective::SimPo(_) => "simpo",
            Objective::RDpo(_) => "rdpo",
            Objective::Cpo(_) => "cpo",
            Objective::Orpo(_) => "orpo",
            Objective::Kto(_) => "kto",
        }
    }

    /// Whether [`PrefBatch::ref_logp`](crate::PrefBatch::ref_logp) must be given.
    pub fn needs_reference(&self) -> bool {
        matches!(
            self,
            Objective::Bnf
                | Objective::Dpo(_)
                | Objective::Ipo(_)
                | Objective::RDpo(_)
                | Objective::Kto(_)
        )
    }

    /// Whether [`PrefBatch::pairs`](crate::PrefBatch::pairs) must be given (and cover every response).
    pub fn needs_pairs(&self) -> bool {
        !matches!(self, Objective::Bnf | Objective::Nll | Objective::Kto(_))
    }

    /// The objective called `name` with its default configuration. Case-insensitive; `-`, `+`
    /// and `_` are interchangeable; aliases: `sft` (NLL), `slic` (SLiC-HF), `r_dpo` (R-DPO).
    pub fn parse(name: &str) -> Option<Objective> {
        const TABLE: &[(&str, Objective)] = &[
            ("bnf", Objective::Bnf),
            ("nll", Objective::Nll),
            ("sft", Objective::Nll),
            ("nll_pll", Objective::NllPll),
            ("dpo", Objective::Dpo(DpoConfig::DEFAULT)),
            ("ipo", Objective::Ipo(IpoConfig::DEFAULT)),
            ("slic_hf", Objective::SlicHf(SlicConfig::DEFAULT)),
            ("slic", Objective::SlicHf(SlicConfig::DEFAULT)),
            ("simpo", Objective::SimPo(SimPoConfig::DEFAULT)),
            ("rdpo", Objective::RDpo(RDpoConfig::DEFAULT)),
            ("r_dpo", Objective::RDpo(RDpoConfig::DEFAULT)),
            ("cpo", Objective::Cpo(CpoConfig::DEFAULT)),
            ("orpo", Objective::Orpo(OrpoConfig::DEFAULT)),
            ("kto", Objective::Kto(KtoConfig::DEFAULT)),
        ];
        let norm = |c: u8| match c {
            b'-' | b'+' => b'_',
            c => c.to_ascii_lowercase(),
        };
        TABLE
            .iter()
            .find(|(n, _)| {
                n.len() == name.len() && n.bytes().zip(name.bytes()).all(|(a, b)| a == norm(b))
            })
            .map(|&(_, o)| o)
    }

    /// Check the configuration's parameters (`beta > 0`, `tau >= IpoConfig::MIN_TAU`, weights
    /// `>= 0`, a given KTO `z0 >= 0`, everything finite).
    pub fn validate(&self) -> Result<(), BnfError> {
        let p = Param {
            objective: self.name(),
        };
        match self {
            Objective::Bnf | Objective::Nll | Objective::NllPll => Ok(()),
            Objective::Dpo(c) => p.positive("beta", c.beta),
            Objective::Ipo(c) => p.at_least("tau", c.tau, IpoConfig::MIN_TAU),
            Objective::SlicHf(c) => {
                p.finite("margin", c.margin)?;
                p.non_negative("lambda", c.lambda)
            }
            Objective::SimPo(c) => {
                p.positive("beta", c.beta)?;
                p.finite("gamma", c.gamma)
            }
            Objective::RDpo(c) => {
                p.positive("beta", c.beta)?;
                p.finite("alpha", c.alpha)
            }
            Objective::Cpo(c) => p.positive("beta", c.beta),
            Objective::Orpo(c) => p.non_negative("lambda", c.lambda),
            Objective::Kto(c) => {
                p.positive("beta", c.beta)?;
                p.non_negative("desirable_weight", c.desirable_weight)?;
                p.non_negative("undesirable_weight", c.undesirable_weight)?;
                // losses.md: z0 = max(0, KL estimate), so a given z0 is never negative.
                c.z0.map_or(Ok(()), |z| p.non_negative("z0", z))
            }
        }
    }
}
