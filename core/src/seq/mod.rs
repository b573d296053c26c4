//! Sequence-level objectives (the baselines of `losses.md`), on the same row primitives as BNF:
//!
//! 1. row statistics pass ([`crate::row_stats`] per scored row; each row's statistics, `lse`
//!    among them, are kept so the gradient pass needs no second reduction);
//! 2. per-response sums: `lp_i = sum ell_r` over the response's scored rows (and the reference's
//!    `rp_i` when the objective uses one), in `f64`;
//! 3. the sequence loss and `g_i = dL/dlp_i` of the batch loss, from the pure scalar functions
//!    in [`pair`] and [`kto`] (batch loss: mean over pairs, or over responses for KTO);
//! 4. gradient pass: row `r` of response `i` gets `w_r (pi - onehot(y_r))` with `w_r = -g_i`,
//!    because `d ell_r / dz = onehot(y_r) - pi`.

pub mod kto;
pub mod pair;

use alloc::vec;
use alloc::vec::Vec;

pub use kto::{kto_loss, kto_z0, ResponseLoss};
pub use pair::{
    cpo_loss, dpo_loss, ipo_loss, nll_pll_loss, orpo_loss, rdpo_loss, simpo_loss, slic_hf_loss,
    PairInput, PairLoss, ORPO_MAX_MEAN_LOGP,
};

use crate::dtype::Logit;
use crate::error::{check_len, BnfError};
use crate::objective::{
    check_pairs, per_response, to_f32, KtoConfig, Objective, ObjectiveOutput, PrefBatch, Prepared,
};
use crate::row::RowStats;
use crate::target::check_ref_logp;

/// A finished forward pass of a sequence-level objective, holding what the gradient pass needs.
pub(crate) struct SeqForward {
    prep: Prepared,
    stats: Vec<RowStats>,
    /// Loss and diagnostics (`row_weight` is what the gradient pass writes with).
    pub out: ObjectiveOutput,
}

/// Steps 1-3: check everything, compute row statistics, per-response sums, the loss and the
/// row weights. Reads `logits` only.
pub(crate) fn forward<T: Logit>(
    logits: &[T],
    pb: &PrefBatch<'_>,
    obj: &Objective,
) -> Result<SeqForward, BnfError> {
    let prep = Prepared::new(logits.len(), pb, obj)?;
    let ref_logp = reference_sums(pb, obj)?;
    let mut stats = vec![RowStats::default(); pb.rows()];
    prep.batch(pb)
        .stats_pass(logits, &mut stats, |_, s| Ok(s))?;
    let out = finish(pb, obj, &prep, ref_logp, &stats)?;
    Ok(SeqForward { prep, stats, out })
}

/// Steps 2-3 for row statistics computed elsewhere (a GPU's `row_stats`, say): everything
/// [`crate::objective_forward`] returns for a sequence-level objective, `row_weight` among it,
/// so the caller writes `row_weight[r] * (pi - onehot)` per row with its own row-gradient
/// primitive. The same bits as the host path for the same statistics.
///
/// `stats` has one entry per row (masked rows are ignored). Errors: as
/// [`crate::objective_forward`] for the batch, `LengthMismatch` for `stats`, `InvalidConfig`
/// for BNF and NLL (row-local: use their fused kernels), `InvalidStats` for a scored row whose
/// `ell` is not a finite log-prob (NaN, infinite or above 0), and, as [`sequence_loss`],
/// `InvalidLabel` for a response whose summed log-prob is not finite.
pub fn forward_from_stats(
    pb: &PrefBatch<'_>,
    obj: &Objective,
    stats: &[RowStats],
) -> Result<ObjectiveOutput, BnfError> {
    if matches!(obj, Objective::Bnf | Objective::Nll) {
        return Err(row_local_error(obj));
    }
    let logits_len = pb.rows().saturating_mul(pb.vocab);
    let prep = Prepared::new(logits_len, pb, obj)?;
    check_len("row stats", pb.rows(), stats.len())?;
    let bad_ell = |ell: f32| !ell.is_finite() || ell > 0.0;
    if let Some(r) = (0..pb.rows()).find(|&r| pb.is_scored(r) && bad_ell(stats[r].ell)) {
        return Err(BnfError::InvalidStats {
            row: r,
            what: "ell",
            value: stats[r].ell,
        });
    }
    let ref_logp = reference_sums(pb, obj)?;
    finish(pb, obj, &prep, ref_logp, stats)
}

/// Per-response sums, the sequence loss and the row weights `w_r = -dL/dlp_i`. The sums go
/// through [`sequence_loss`]'s value check ([`check_values`]) before the loss is taken.
fn finish(
    pb: &PrefBatch<'_>,
    obj: &Objective,
    prep: &Prepared,
    ref_logp: Vec<f32>,
    stats: &[RowStats],
) -> Result<ObjectiveOutput, BnfError> {
    let logp = to_f32(per_response(pb, |r| stats[r].ell as f64));
    let inputs = SeqInputs {
        logp: &logp,
        ref_logp: &ref_logp,
        lengths: &prep.lengths,
        labels: pb.labels,
        pairs: pb.pairs.unwrap_or(&[]),
    };
    check_values(obj, &inputs)?;
    let seq = reduce(obj, &inputs)?;
    let mut row_weight = vec![0.0f32; pb.rows()];
    for (i, w) in pb.offsets.windows(2).enumerate() {
        for r in (w[0]..w[1]).filter(|&r| pb.is_scored(r)) {
            row_weight[r] = -seq.dloss_dlogp[i];
        }
    }
    Ok(ObjectiveOutput {
        loss: seq.loss,
        terms: seq.terms,
        logp,
        ref_logp,
        lengths: prep.lengths.clone(),
        dloss_dlogp: seq.dloss_dlogp,
        row_weight,
        kl_estimate: seq.kl_estimate,
    })
}

/// The error for a row-local objective given to a sequence-level entry.
fn row_local_error(obj: &Objective) -> BnfError {
    BnfError::InvalidConfig {
        objective: obj.name(),
        what: "objective (row-local, not sequence-level)",
        value: f32::NAN,
    }
}

impl SeqForward {
    /// Step 4 into a separate buffer (its length is checked by the caller).
    pub(crate) fn grad_pass<T: Logit>(
        &self,
        logits: &[T],
        pb: &PrefBatch<'_>,
        grad: &mut [T],
    ) -> Result<(), BnfError> {
        let w = &self.out.row_weight;
        self.prep.batch(pb).grad_pass(logits, grad, |r| {
            pb.is_scored(r).then(|| (self.stats[r], w[r]))
        })
    }

    /// Step 4 over the logits themselves.
    pub(crate) fn grad_pass_in_place<T: Logit>(
        &self,
        logits: &mut [T],
        pb: &PrefBatch<'_>,
    ) -> Result<(), BnfError> {
        let w = &self.out.row_weight;
        self.prep
            .batch(pb)
            .grad_pass_in_place(logits, |r| pb.is_scored(r).then(|| (self.stats[r], w[r])))
    }
}

/// The reference's summed log-prob per response (empty when `obj` uses no reference). Each
/// scored row's value must pass [`check_ref_logp`] and be finite: a reference that gives a
/// completion token zero mass makes every log-ratio infinite.
fn reference_sums(pb: &PrefBatch<'_>, obj: &Objective) -> Result<Vec<f32>, BnfError> {
    if !obj.needs_reference() {
        return Ok(Vec::new());
    }
    // Presence and length were checked by `Prepared::new`.
    let rp = pb.ref_logp.unwrap_or(&[]);
    for r in (0..pb.rows()).filter(|&r| pb.is_scored(r)) {
        let v = check_ref_logp(rp[r]).map_err(|e| e.at_row(r))?;
        if !v.is_finite() {
            return Err(BnfError::InvalidRefLogProb { row: r, value: v });
        }
    }
    Ok(to_f32(per_response(pb, |r| rp[r].min(0.0) as f64)))
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
    check_len("lengths", n, s.lengths.len())?;
    check_len("labels", n, s.labels.len())?;
    if obj.needs_reference() {
        if s.ref_logp.is_empty() && n > 0 {
            return Err(BnfError::MissingReference {
                objective: obj.name(),
            });
        }
        check_len("ref_logp", n, s.ref_logp.len())?;
    }
    if let Some(i) = s.lengths.iter().position(|&l| l == 0) {
        return Err(BnfError::EmptyResponse { response: i });
    }
    check_values(obj, s)?;
    let pairs = (!s.pairs.is_empty()).then_some(s.pairs);
    check_pairs(pairs, s.labels, obj)
}

/// The per-response values are usable (lengths already match): `lp_i` and `rp_i` finite, the
/// label finite (and not 0 for KTO). `InvalidLabel` names the first bad response and value.
/// Shared by [`sequence_loss`] and the batch path, which runs it on the sums it computed from
/// row statistics: a sum of finite log-probs can still overflow to `-inf`, and a NaN or
/// infinite `lp` would make the loss and the row weights NaN.
fn check_values(obj: &Objective, s: &SeqInputs<'_>) -> Result<(), BnfError> {
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
fn reduce(obj: &Objective, s: &SeqInputs<'_>) -> Result<SeqLoss, BnfError> {
    let SeqTerms { terms, kl_estimate } = terms(obj, s)?;
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
            g.into_iter().map(|x| x as f32).collect()
        }
    };
    let losses: Vec<f32> = terms.iter().map(|t| t.loss).collect();
    Ok(SeqLoss {
        loss: mean(&losses),
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
