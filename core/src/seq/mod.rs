//! Sequence-level objectives (the baselines of `losses.md`) as scalar functions of per-response
//! sums: given `lp_i` (the policy's summed log-prob of response `i`), `rp_i` (the reference's),
//! `|y_i|` and the labels and pairs, the batch loss and `g_i = dL/dlp_i` ([`sequence_loss`], or
//! term by term [`sequence_terms`]), from the per-pair functions in [`pair`] and the per-response
//! ones in [`kto`] (batch loss: mean over pairs, or over responses for KTO).
//!
//! The batch driver that gets these sums from logits and writes the row gradients
//! `-g_i (pi - onehot)` is `objective/sequence.rs` ([`crate::objective_forward_backward`], and
//! [`crate::forward_from_stats`] for row statistics computed elsewhere).

pub mod kto;
pub mod pair;

use alloc::vec;
use alloc::vec::Vec;

pub use kto::{kto_loss, kto_z0, ResponseLoss};
pub use pair::{
    cpo_loss, dpo_loss, ipo_loss, nll_pll_loss, orpo_loss, rdpo_loss, simpo_loss, slic_hf_loss,
    PairInput, PairLoss, ORPO_MAX_MEAN_LOGP,
};

use crate::check;
use crate::error::{BnfError, Site};
use crate::objective::config::KtoConfig;
use crate::objective::kind::Objective;

/// The error for a row-local objective given to a sequence-level entry.
pub(crate) fn row_local_error(obj: &Objective) -> BnfError {
    BnfError::InvalidConfig {
        objective: obj.name(),
        what: "objective (row-local, not sequence-level)",
        value: f32::NAN,
    }
}

/// Per-response inputs of a sequence-level loss (step 3 on its own, for callers whose rows
/// run elsewhere, e.g. on a GPU, and who reduce `ell` to `lp` themselves).
#[derive(Clone, Copy, Debug)]
pub struct SeqInputs<'a> {
    /// `lp_i`: the policy's summed log-prob of response `i` over its scored rows.
    pub logp: &'a [f32],
    /// `rp_i`: the reference's summed log-prob; empty when the objective uses no reference.
    pub ref_logp: &'a [f32],
    /// `|y_i|`: the number of scored rows of response `i` (at least 1).
    pub lengths: &'a [usize],
    /// One per response: `> 0` preferred, `< 0` dispreferred.
    pub labels: &'a [f32],
    /// `[chosen, rejected]` response indices (empty for KTO).
    pub pairs: &'a [[usize; 2]],
}

impl SeqInputs<'_> {
    fn rp(&self, i: usize) -> f32 {
        self.ref_logp.get(i).copied().unwrap_or(0.0)
    }
}

/// A sequence-level objective's batch loss and its derivatives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeqLoss {
    /// The mean of `terms`, summed in `f64`.
    pub loss: f32,
    /// One per pair (pairwise objectives) or per response (KTO).
    pub terms: Vec<f32>,
    /// `dloss / dlp_i` per response; the row gradient of response `i` is
    /// `-dloss_dlogp[i] * (pi - onehot)` on each of its scored rows.
    pub dloss_dlogp: Vec<f32>,
    /// KTO's reference point `z0` as used; `None` for other objectives.
    pub kl_estimate: Option<f32>,
}

/// Step 3 alone: the batch loss of a sequence-level objective (not BNF or NLL, which are
/// row-local) from per-response sums, exactly as [`crate::objective_forward_backward`] computes
/// it (same order, same bits).
///
/// Errors: `InvalidConfig` for a bad configuration or a row-local objective, `LengthMismatch`
/// for per-response slices of different lengths, `EmptyResponse` for a zero length,
/// `MissingReference` when the objective needs `ref_logp` and it is empty, `InvalidLabel` for
/// a non-finite value, `MissingPairs` / `InvalidPair` as for the batch functions.
pub fn sequence_loss(obj: &Objective, s: &SeqInputs<'_>) -> Result<SeqLoss, BnfError> {
    check_inputs(obj, s)?;
    reduce(obj, s)
}

/// [`sequence_loss`]'s checks of its inputs.
fn check_inputs(obj: &Objective, s: &SeqInputs<'_>) -> Result<(), BnfError> {
    obj.validate()?;
    if matches!(obj, Objective::Bnf | Objective::Nll) {
        return Err(row_local_error(obj));
    }
    let n = s.logp.len();
    check::len("lengths", n, s.lengths.len())?;
    check::len("labels", n, s.labels.len())?;
    if obj.needs_reference() {
        if s.ref_logp.is_empty() && n > 0 {
            return Err(BnfError::MissingReference {
                objective: obj.name(),
            });
        }
        check::len("ref_logp", n, s.ref_logp.len())?;
    }
    if let Some(i) = s.lengths.iter().position(|&l| l == 0) {
        return Err(BnfError::EmptyResponse { response: i });
    }
    check_values(obj, s)?;
    let pairs = (!s.pairs.is_empty()).then_some(s.pairs);
    check::pairs(pairs, s.labels, obj)
}

/// The per-response values are usable (lengths already match): `lp_i` and `rp_i` finite, the
/// label finite (and not 0 for KTO). `InvalidLabel` names the first bad response and value.
/// Shared by [`sequence_loss`] and the batch path, which runs it on the sums it computed from
/// row statistics: a sum of finite log-probs can still overflow to `-inf`, and a NaN or
/// infinite `lp` would make the loss and the row weights NaN.
pub(crate) fn check_values(obj: &Objective, s: &SeqInputs<'_>) -> Result<(), BnfError> {
    let kto = matches!(obj, Objective::Kto(_));
    for i in 0..s.logp.len() {
        let bad_label = !s.labels[i].is_finite() || (kto && s.labels[i] == 0.0);
        let bad = [s.logp[i], s.rp(i)].into_iter().find(|v| !v.is_finite());
        if let Some(value) = bad.or(bad_label.then_some(s.labels[i])) {
            return Err(BnfError::InvalidLabel { response: i, value });
        }
    }
    Ok(())
}

/// One term of a sequence-level batch loss (one pair, or one KTO response) with its
/// derivatives with respect to the summed log-probs of the responses it reads.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SeqTerm {
    /// The term's loss.
    pub loss: f32,
    /// The responses it reads: `[chosen, rejected]` for a pair, `[i, i]` for KTO's response `i`.
    pub responses: [usize; 2],
    /// `d loss / d lp` of `responses[0]` and of `responses[1]` (KTO: `[d, 0]`).
    pub d: [f32; 2],
}

/// A sequence-level objective's terms, each with its own derivatives: what a caller that
/// weights or reduces the terms itself (per-term gradients, a sum instead of the mean) needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeqTerms {
    /// One per pair (pairwise objectives) or per response (KTO), in order.
    pub terms: Vec<SeqTerm>,
    /// KTO's reference point `z0` as used; `None` for other objectives.
    pub kl_estimate: Option<f32>,
}

/// Step 3 per term: [`sequence_loss`]'s checks, then each term and its derivatives. The
/// batch loss is the mean of the terms' losses, and `g_i = dL/dlp_i` collects `d / terms`
/// from every term that reads response `i` ([`sequence_loss`] does exactly that).
pub fn sequence_terms(obj: &Objective, s: &SeqInputs<'_>) -> Result<SeqTerms, BnfError> {
    check_inputs(obj, s)?;
    terms(obj, s)
}

/// Step 3 on checked inputs. Every objective is named, so a new one must be routed here; the
/// row-local ones (BNF, NLL) are an error value, never a silently empty loss.
///
/// Finite inputs can still give a term, a derivative or the batch loss beyond `f32` (IPO's
/// square of a huge log-ratio, say): `Overflow` naming the pair (or KTO's response), the
/// response, or the batch, before anything is returned.
pub(crate) fn reduce(obj: &Objective, s: &SeqInputs<'_>) -> Result<SeqLoss, BnfError> {
    let SeqTerms { terms, kl_estimate } = terms(obj, s)?;
    let kto = matches!(obj, Objective::Kto(_));
    for (k, t) in terms.iter().enumerate() {
        let at = if kto {
            Site::Response(k)
        } else {
            Site::Pair(k)
        };
        check::fits_f32(at, "loss term", t.loss as f64)?;
        check::fits_f32(
            at,
            "d loss / d lp (chosen, or KTO's response)",
            t.d[0] as f64,
        )?;
        check::fits_f32(at, "d loss / d lp (rejected)", t.d[1] as f64)?;
    }
    let dloss_dlogp = match obj {
        // KTO: the mean over responses, each term reading its own response.
        Objective::Kto(_) => {
            let n = s.logp.len();
            terms.iter().map(|t| t.d[0] / n as f32).collect()
        }
        // Pairwise: the mean over pairs; a response in several pairs collects from each.
        _ => {
            let n_pairs = terms.len() as f64;
            let mut g = vec![0.0f64; s.logp.len()];
            for t in &terms {
                g[t.responses[0]] += t.d[0] as f64 / n_pairs;
                g[t.responses[1]] += t.d[1] as f64 / n_pairs;
            }
            g.into_iter()
                .enumerate()
                .map(|(i, x)| check::fits_f32(Site::Response(i), "d loss / d lp", x))
                .collect::<Result<_, _>>()?
        }
    };
    let losses: Vec<f32> = terms.iter().map(|t| t.loss).collect();
    let loss = mean(&losses);
    if !loss.is_finite() {
        let total: f64 = losses.iter().map(|&t| t as f64).sum();
        let value = total / losses.len() as f64;
        check::fits_f32(Site::Batch, "batch loss (mean of the terms)", value)?;
    }
    Ok(SeqLoss {
        loss,
        terms: losses,
        dloss_dlogp,
        kl_estimate,
    })
}

/// Each term of `obj` on checked inputs.
fn terms(obj: &Objective, s: &SeqInputs<'_>) -> Result<SeqTerms, BnfError> {
    Ok(match obj {
        Objective::Bnf | Objective::Nll => return Err(row_local_error(obj)),
        Objective::Kto(cfg) => kto_terms(s, cfg),
        Objective::NllPll
        | Objective::Dpo(_)
        | Objective::Ipo(_)
        | Objective::SlicHf(_)
        | Objective::SimPo(_)
        | Objective::RDpo(_)
        | Objective::Cpo(_)
        | Objective::Orpo(_) => SeqTerms {
            terms: pair_terms(s, obj)?,
            kl_estimate: None,
        },
    })
}

/// The loss of one pair under a pairwise objective (`None` for BNF, NLL and KTO).
pub fn pair_loss(obj: &Objective, p: &PairInput) -> Option<PairLoss> {
    Some(match obj {
        Objective::NllPll => nll_pll_loss(p),
        Objective::Dpo(c) => dpo_loss(p, c),
        Objective::Ipo(c) => ipo_loss(p, c),
        Objective::SlicHf(c) => slic_hf_loss(p, c),
        Objective::SimPo(c) => simpo_loss(p, c),
        Objective::RDpo(c) => rdpo_loss(p, c),
        Objective::Cpo(c) => cpo_loss(p, c),
        Objective::Orpo(c) => orpo_loss(p, c),
        Objective::Bnf | Objective::Nll | Objective::Kto(_) => return None,
    })
}

/// One term per pair. `obj` must be pairwise; otherwise an error (no pair is dropped).
fn pair_terms(s: &SeqInputs<'_>, obj: &Objective) -> Result<Vec<SeqTerm>, BnfError> {
    s.pairs
        .iter()
        .map(|&[c, r]| {
            let input = PairInput {
                lp_w: s.logp[c],
                lp_l: s.logp[r],
                rp_w: s.rp(c),
                rp_l: s.rp(r),
                len_w: s.lengths[c],
                len_l: s.lengths[r],
            };
            let pl = pair_loss(obj, &input).ok_or(BnfError::InvalidConfig {
                objective: obj.name(),
                what: "objective (not pairwise)",
                value: f32::NAN,
            })?;
            Ok(SeqTerm {
                loss: pl.loss,
                responses: [c, r],
                d: [pl.d_w, pl.d_l],
            })
        })
        .collect()
}

/// One KTO term per response, with the `z0` used.
fn kto_terms(s: &SeqInputs<'_>, cfg: &KtoConfig) -> SeqTerms {
    let n = s.logp.len();
    let z0 = cfg
        .z0
        .unwrap_or_else(|| kto_z0((0..n).map(|i| s.logp[i] - s.rp(i))));
    let terms = (0..n)
        .map(|i| {
            let l = kto_loss(s.logp[i], s.rp(i), s.labels[i] > 0.0, z0, cfg);
            SeqTerm {
                loss: l.loss,
                responses: [i, i],
                d: [l.d, 0.0],
            }
        })
        .collect();
    SeqTerms {
        terms,
        kl_estimate: Some(z0),
    }
}

/// Mean in `f64`, 0 for no terms.
fn mean(terms: &[f32]) -> f32 {
    if terms.is_empty() {
        return 0.0;
    }
    (terms.iter().map(|&t| t as f64).sum::<f64>() / terms.len() as f64) as f32
}
