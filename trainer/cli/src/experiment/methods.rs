//! The methods the experiment compares: every objective of the paper's Table 4 with the usual
//! hyperparameters of `losses.md` (DPO at two betas, after the paper's section 2.3), BNF at
//! pairing ratios of its Table 6, and two controls: SFT on the chosen responses only, and KTO on
//! the same unpaired data as BNF at 0% pairing. Redundant cells are left out: DPO b=0.01 (a near
//! duplicate of b=0.1 in the previous run) and R-DPO on math, whose pairs are mostly of equal
//! length, where R-DPO is DPO. The objectives and their configurations are `bnf-core`'s;
//! nothing here computes a loss.

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
    /// Fraction of pairs kept as pairs (paper section 5.2); 1 except for BNF's Table 6 runs
    /// and the unpaired KTO control.
    pub pairing_ratio: f64,
    /// Whether it runs on the math pairs (R-DPO does not: see the module doc).
    pub on_math: bool,
}

const fn m(label: &'static str, key: &'static str, objective: Objective) -> Method {
    Method {
        label,
        key,
        objective,
        pairing_ratio: 1.0,
        on_math: true,
    }
}

const fn unpaired(
    label: &'static str,
    key: &'static str,
    objective: Objective,
    ratio: f64,
) -> Method {
    Method {
        label,
        key,
        objective,
        pairing_ratio: ratio,
        on_math: true,
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

/// SFT on the chosen responses only (`nll` drops the rejected ones): the control for what
/// preference data adds.
pub const SFT_CHOSEN: Method = m("SFT chosen", "sft_chosen", Objective::Nll);

/// KTO on the data of BNF at 0% pairing: the control for BNF without pairs.
pub const KTO_UNPAIRED: Method = unpaired(
    "KTO pairs 0%",
    "kto_pair0",
    Objective::Kto(KtoConfig::DEFAULT),
    0.0,
);

/// BNF with no pairs at all (paper Table 6's 0%).
pub const BNF_UNPAIRED: Method = unpaired("BNF pairs 0%", "bnf_pair0", Objective::Bnf, 0.0);

/// Every method, in report order. Labels and keys are unique.
pub const METHODS: &[Method] = &[
    BNF,
    m("NLL+PLL", "nll_pll", Objective::NllPll),
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
    m("CPO", "cpo", Objective::Cpo(CpoConfig::DEFAULT)),
    Method {
        on_math: false,
        ..m("R-DPO", "rdpo", Objective::RDpo(RDpoConfig::DEFAULT))
    },
    SFT_CHOSEN,
    KTO_UNPAIRED,
    unpaired("BNF pairs 50%", "bnf_pair50", Objective::Bnf, 0.5),
    BNF_UNPAIRED,
];

/// Whether `method` is one of BNF's rows (any pairing ratio).
pub fn is_bnf(method: &Method) -> bool {
    method.objective == Objective::Bnf
}

/// Whether `method` is a control rather than a method of the paper's comparison.
pub fn is_control(method: &Method) -> bool {
    *method == SFT_CHOSEN || *method == KTO_UNPAIRED
}

/// The hyperparameters of `method` as one short string, for the report.
pub fn describe(method: &Method) -> String {
    match method.objective {
        Objective::Bnf => format!("pairing ratio {}", method.pairing_ratio),
        Objective::Nll => "chosen responses only".into(),
        Objective::NllPll => "none".into(),
        Objective::Dpo(c) => format!("beta {}", c.beta),
        Objective::Ipo(c) => format!("tau {}", c.tau),
        Objective::SlicHf(c) => format!("margin {}, lambda {}", c.margin, c.lambda),
        Objective::SimPo(c) => format!("beta {}, gamma {}", c.beta, c.gamma),
        Objective::RDpo(c) => format!("beta {}, alpha {}", c.beta, c.alpha),
        Objective::Cpo(c) => format!("beta {}", c.beta),
        Objective::Orpo(c) => format!("lambda {}", c.lambda),
        Objective::Kto(c) => format!(
            "beta {}, z0 {}, pairing ratio {}",
            c.beta,
            c.z0.map_or("batch estimate".into(), |z| z.to_string()),
            method.pairing_ratio
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
            .filter(|m| is_bnf(m))
            .map(|m| m.pairing_ratio)
            .collect();
        assert_eq!(ratios, vec![1.0, 0.5, 0.0]);
        // The unpaired control sees the same data as BNF at 0%.
        assert_eq!(KTO_UNPAIRED.pairing_ratio, BNF_UNPAIRED.pairing_ratio);
        assert!(METHODS.contains(&SFT_CHOSEN) && METHODS.contains(&KTO_UNPAIRED));
        assert_eq!(METHODS.iter().filter(|m| !m.on_math).count(), 1);
        assert!(METHODS.contains(&DPO) && METHODS[0] == BNF);
    }
}
