//! The methods the experiment compares: every objective of the paper's Table 4 with the usual
//! hyperparameters of `losses.md` (DPO at three betas, after the paper's section 2.3), and BNF
//! at the pairing ratios of its Table 6. The objectives and their configurations are
//! `bnf-core`'s; nothing here computes a loss.

use bnf_core::{
    CpoConfig, DpoConfig, IpoConfig, KtoConfig, Objective, OrpoConfig, RDpoConfig, SimPoConfig,
    SlicConfig,
};

/// One aligned configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Method {
    /// Name in tables and legends.
    pub label: &'static str,
    /// Name in file names.
    pub key: &'static str,
    /// The objective and its hyperparameters.
    pub objective: Objective,
    /// Fraction of pairs kept as pairs (paper section 5.2); 1 except for BNF's Table 6 runs.
    pub pairing_ratio: f64,
}

const fn m(label: &'static str, key: &'static str, objective: Objective) -> Method {
    Method {
        label,
        key,
        objective,
        pairing_ratio: 1.0,
    }
}

const fn bnf_paired(label: &'static str, key: &'static str, ratio: f64) -> Method {
    Method {
        label,
        key,
        objective: Objective::Bnf,
        pairing_ratio: ratio,
    }
}

/// BNF on fully paired data: the main BNF row.
pub const BNF: Method = m("BNF", "bnf", Objective::Bnf);

/// DPO with the usual beta (the reference of the token-shift bins, paper Figure 4).
pub const DPO: Method = m(
    "DPO b=0.1",
    "dpo_0.1",
    Objective::Dpo(DpoConfig { beta: 0.1 }),
);

/// Every method, in report order. Labels and keys are unique.
pub const METHODS: &[Method] = &[
    BNF,
    m("NLL+PLL", "nll_pll", Objective::NllPll),
    m(
        "DPO b=0.01",
        "dpo_0.01",
        Objective::Dpo(DpoConfig { beta: 0.01 }),
    ),
    DPO,
    m(
        "DPO b=0.5",
        "dpo_0.5",
        Objective::Dpo(DpoConfig { beta: 0.5 }),
    ),
    m("IPO", "ipo", Objective::Ipo(IpoConfig::DEFAULT)),
    m("SimPO", "simpo", Objective::SimPo(SimPoConfig::DEFAULT)),
    m("KTO", "kto", Objective::Kto(KtoConfig::DEFAULT)),
    m("ORPO", "orpo", Objective::Orpo(OrpoConfig::DEFAULT)),
    m("SLiC-HF", "slic_hf", Objective::SlicHf(SlicConfig::DEFAULT)),
    m("R-DPO", "rdpo", Objective::RDpo(RDpoConfig::DEFAULT)),
    m("CPO", "cpo", Objective::Cpo(CpoConfig::DEFAULT)),
    bnf_paired("BNF pairs 50%", "bnf_pair50", 0.5),
    bnf_paired("BNF pairs 25%", "bnf_pair25", 0.25),
    bnf_paired("BNF pairs 0%", "bnf_pair0", 0.0),
];

/// The hyperparameters of `method` as one short string, for the report.
pub fn describe(method: &Method) -> String {
    match method.objective {
        Objective::Bnf => format!("pairing ratio {}", method.pairing_ratio),
        Objective::Nll | Objective::NllPll => "none".into(),
        Objective::Dpo(c) => format!("beta {}", c.beta),
        Objective::Ipo(c) => format!("tau {}", c.tau),
        Objective::SlicHf(c) => format!("margin {}, lambda {}", c.margin, c.lambda),
        Objective::SimPo(c) => format!("beta {}, gamma {}", c.beta, c.gamma),
        Objective::RDpo(c) => format!("beta {}, alpha {}", c.beta, c.alpha),
        Objective::Cpo(c) => format!("beta {}", c.beta),
        Objective::Orpo(c) => format!("lambda {}", c.lambda),
        Objective::Kto(c) => format!(
            "beta {}, z0 {}",
            c.beta,
            c.z0.map_or("batch estimate".into(), |z| z.to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_unique_valid_and_cover_the_paper() {
        for (i, a) in METHODS.iter().enumerate() {
            assert!(a.objective.validate().is_ok(), "{}", a.label);
            for b in &METHODS[i + 1..] {
                assert!(a.label != b.label && a.key != b.key);
            }
        }
        for name in bnf_core::OBJECTIVE_NAMES.iter().filter(|&&n| n != "nll") {
            assert!(
                METHODS.iter().any(|m| m.objective.name() == *name),
                "{name} missing"
            );
        }
        let ratios: Vec<f64> = METHODS
            .iter()
            .filter(|m| m.objective == Objective::Bnf)
            .map(|m| m.pairing_ratio)
            .collect();
        assert_eq!(ratios, vec![1.0, 0.5, 0.25, 0.0]);
        assert!(METHODS.contains(&DPO) && METHODS[0] == BNF);
    }
}
