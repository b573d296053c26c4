//! One batch API for every objective: [`Objective`] names the loss (BNF, NLL, or a baseline
//! with its typed configuration), [`PrefBatch`] holds the responses, and
//! [`objective_forward_backward`] (or its in-place and loss-only siblings) runs it, so a trainer
//! changes objective with one argument.
//!
//! BNF and NLL run the row-local path ([`crate::forward_backward`] with
//! [`crate::response_weights`]); every other objective runs the sequence path ([`crate::seq`]):
//! row statistics -> per-response summed log-probs -> sequence loss and `dL/dlp` per response ->
//! row gradient `w (pi - onehot)` with `w = -dL/dlp`, reusing each row's statistics.

mod config;
mod params;
mod prepare;
mod rowlocal;

use alloc::vec::Vec;

pub use config::{
    CpoConfig, DpoConfig, IpoConfig, KtoConfig, OrpoConfig, RDpoConfig, SimPoConfig, SlicConfig,
};
pub(crate) use prepare::{check_pairs, per_response, to_f32, Prepared};

use crate::dtype::Logit;
use crate::error::{check_len, BnfError};
use crate::local;
use crate::seq;
use config::Param;

/// Which loss to train with. Unpaired objectives (BNF, NLL, KTO) take responses without
/// partners; the pairwise ones need [`PrefBatch::pairs`].
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

    /// Whether [`PrefBatch::ref_logp`] must be given.
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

    /// Whether [`PrefBatch::pairs`] must be given (and cover every response).
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

/// One batch for every objective. Rows are scored tokens laid out row-major (`rows x vocab`
/// logits, `rows = targets.len()`); response `i` owns rows `offsets[i]..offsets[i + 1]`, of
/// which the rows marked in `scored` are its completion tokens (`|y_i|` of them, at least 1).
#[derive(Clone, Copy, Debug)]
pub struct PrefBatch<'a> {
    /// Vocabulary size `V` (row length).
    pub vocab: usize,
    /// Target token id of each row (for a causal LM: the *next* token).
    pub targets: &'a [u32],
    /// Which rows are scored (`None`: all); the others (prompt, padding) contribute nothing and
    /// get a zero gradient row.
    pub scored: Option<&'a [bool]>,
    /// Response boundaries: length `responses + 1`, starts at 0, never decreases, ends at `rows`.
    pub offsets: &'a [usize],
    /// One per response: `+1` preferred / chosen, `-1` dispreferred / rejected.
    pub labels: &'a [f32],
    /// `(chosen, rejected)` response indices. `None`: unpaired data. Pairwise objectives need
    /// every response in at least one pair; unpaired objectives check pairs if given but do not
    /// use them.
    pub pairs: Option<&'a [[usize; 2]]>,
    /// One per row: the reference model's log-prob of the row's target. BNF uses it per row;
    /// sequence losses sum it over each response's scored rows.
    pub ref_logp: Option<&'a [f32]>,
}

impl PrefBatch<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.targets.len()
    }

    /// Number of responses (`offsets.len() - 1`; 0 for empty offsets, which are an error).
    pub fn responses(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether row `r` counts: `r` is a row of the batch and, when [`PrefBatch::scored`] is
    /// given, marked `true` there. Never panics: a row past the end (of the batch or of a
    /// too-short mask) does not count.
    #[inline]
    pub fn is_scored(&self, r: usize) -> bool {
        r < self.rows()
            && self
                .scored
                .is_none_or(|m| m.get(r).copied().unwrap_or(false))
    }
}

/// What an objective returns besides the gradient.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectiveOutput {
    /// The batch loss: the mean of [`ObjectiveOutput::terms`].
    pub loss: f32,
    /// One term per pair for pairwise objectives, one per response for unpaired ones.
    pub terms: Vec<f32>,
    /// Per response: the policy's summed log-prob over its scored rows, `lp_i = sum ell_r`.
    pub logp: Vec<f32>,
    /// Per response: the reference's summed log-prob (empty when the objective ignores the
    /// reference, and for BNF, which uses it per row).
    pub ref_logp: Vec<f32>,
    /// Per response: `|y_i|`, its number of scored rows.
    pub lengths: Vec<usize>,
    /// Per response: `dloss / dlp_i` of the batch loss. For BNF, whose loss is not a function of
    /// `lp` alone, it is the mean over the response's rows of `-row_weight` (the weight an
    /// NLL-style sequence gradient would need to match on average).
    pub dloss_dlogp: Vec<f32>,
    /// Per row: `w_r` in the row gradient `w_r (pi - onehot(y_r))` (0 for masked rows). For
    /// sequence losses `w_r = -dloss_dlogp` of the row's response.
    pub row_weight: Vec<f32>,
    /// KTO's reference point `z0` as used (estimated or given); `None` for other objectives.
    pub kl_estimate: Option<f32>,
}

/// Loss and gradient of `obj` on `batch`: writes `dloss/dz` into `grad` (same shape as
/// `logits`). On error nothing is written to `grad`.
///
/// ```
/// use bnf_core::{objective_forward_backward, Objective, PrefBatch};
///
/// // One pair: a chosen response of two scored tokens after a prompt row, a rejected one of one.
/// let logits: Vec<f32> = vec![
///     0.0, 0.0, 0.0, 0.0,   1.0, 2.0, 0.5, -1.0,   2.0, 0.0, 0.0, 1.0,   // chosen (row 0: prompt)
///     0.0, 0.0, 3.0, 1.0,                                                 // rejected
/// ];
/// let batch = PrefBatch {
///     vocab: 4,
///     targets: &[0, 1, 0, 2],
///     scored: Some(&[false, true, true, true]),
///     offsets: &[0, 3, 4],
///     labels: &[1.0, -1.0],
///     pairs: Some(&[[0, 1]]),
///     ref_logp: Some(&[0.0, -0.9, -0.5, -0.4]),
/// };
/// let mut grad = vec![0.0f32; logits.len()];
/// for name in ["dpo", "simpo", "bnf"] {
///     let obj = Objective::parse(name).unwrap();
///     let out = objective_forward_backward(&logits, &batch, &obj, &mut grad).unwrap();
///     assert!(out.loss.is_finite() && out.logp.len() == 2);
/// }
/// ```
pub fn objective_forward_backward<T: Logit>(
    logits: &[T],
    batch: &PrefBatch<'_>,
    obj: &Objective,
    grad: &mut [T],
) -> Result<ObjectiveOutput, BnfError> {
    check_len("grad", logits.len(), grad.len())?;
    if let Some(loss) = rowlocal::row_loss(batch, obj)? {
        return rowlocal::run(logits.len(), batch, obj, |b, diag| {
            local::forward_backward(logits, b, loss, grad, diag)
        });
    }
    let fw = seq::forward(logits, batch, obj)?;
    fw.grad_pass(logits, batch, grad)?;
    Ok(fw.out)
}

/// [`objective_forward_backward`] with the gradient written over the logits (no second
/// `rows x vocab` buffer); the same bits. On error the logits are untouched.
pub fn objective_forward_backward_in_place<T: Logit>(
    logits: &mut [T],
    batch: &PrefBatch<'_>,
    obj: &Objective,
) -> Result<ObjectiveOutput, BnfError> {
    if let Some(loss) = rowlocal::row_loss(batch, obj)? {
        return rowlocal::run(logits.len(), batch, obj, |b, diag| {
            local::forward_backward_in_place(logits, b, loss, diag)
        });
    }
    let fw = seq::forward(logits, batch, obj)?;
    fw.grad_pass_in_place(logits, batch)?;
    Ok(fw.out)
}

/// The loss (and every diagnostic) of `obj` on `batch`, without a gradient.
pub fn objective_forward<T: Logit>(
    logits: &[T],
    batch: &PrefBatch<'_>,
    obj: &Objective,
) -> Result<ObjectiveOutput, BnfError> {
    if let Some(loss) = rowlocal::row_loss(batch, obj)? {
        return rowlocal::run(logits.len(), batch, obj, |b, diag| {
            local::forward(logits, b, loss, diag)
        });
    }
    Ok(seq::forward(logits, batch, obj)?.out)
}
