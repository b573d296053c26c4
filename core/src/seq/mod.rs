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
use crate::error::BnfError;
use crate::objective::{
    per_response, to_f32, KtoConfig, Objective, ObjectiveOutput, PrefBatch, Prepared,
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
    let ref_logp = if obj.needs_reference() {
        reference_sums(pb)?
    } else {
        Vec::new()
    };
    let mut stats = vec![RowStats::default(); pb.rows()];
    prep.batch(pb)
        .stats_pass(logits, &mut stats, |_, s| Ok(s))?;
    let logp = to_f32(per_response(pb, |r| stats[r].ell as f64));
    let seq = SeqInputs {
        logp: &logp,
        ref_logp: &ref_logp,
        lengths: &prep.lengths,
    };
    let (terms, g, kl_estimate) = match obj {
        Objective::Kto(cfg) => kto_terms(&seq, pb.labels, cfg),
        _ => {
            let (t, g) = pair_terms(&seq, pb.pairs.unwrap_or(&[]), obj);
            (t, g, None)
        }
    };
    let loss = mean(&terms);
    let mut row_weight = vec![0.0f32; pb.rows()];
    for (i, w) in pb.offsets.windows(2).enumerate() {
        for r in (w[0]..w[1]).filter(|&r| pb.is_scored(r)) {
            row_weight[r] = -g[i];
        }
    }
    let out = ObjectiveOutput {
        loss,
        terms,
        logp,
        ref_logp,
        lengths: prep.lengths.clone(),
        dloss_dlogp: g,
        row_weight,
        kl_estimate,
    };
    Ok(SeqForward { prep, stats, out })
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

/// Per-response quantities the scalar losses read.
struct SeqInputs<'a> {
    logp: &'a [f32],
    /// Empty when the objective has no reference (read as 0).
    ref_logp: &'a [f32],
    lengths: &'a [usize],
}

impl SeqInputs<'_> {
    fn rp(&self, i: usize) -> f32 {
        self.ref_logp.get(i).copied().unwrap_or(0.0)
    }
}

/// The reference's summed log-prob per response. Each scored row's value must pass
/// [`check_ref_logp`] and be finite: a reference that gives a completion token zero mass makes
/// every log-ratio infinite.
fn reference_sums(pb: &PrefBatch<'_>) -> Result<Vec<f32>, BnfError> {
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

/// The pair loss of a pairwise objective.
fn pair_loss(obj: &Objective, p: &PairInput) -> PairLoss {
    match obj {
        Objective::NllPll => nll_pll_loss(p),
        Objective::Dpo(c) => dpo_loss(p, c),
        Objective::Ipo(c) => ipo_loss(p, c),
        Objective::SlicHf(c) => slic_hf_loss(p, c),
        Objective::SimPo(c) => simpo_loss(p, c),
        Objective::RDpo(c) => rdpo_loss(p, c),
        Objective::Cpo(c) => cpo_loss(p, c),
        Objective::Orpo(c) => orpo_loss(p, c),
        // The dispatch in `objective` sends only pairwise objectives here.
        Objective::Bnf | Objective::Nll | Objective::Kto(_) => {
            unreachable!("not a pairwise objective")
        }
    }
}

/// One term per pair and `g_i = dL/dlp_i` of the mean over pairs (a response in several pairs
/// collects from each).
fn pair_terms(seq: &SeqInputs<'_>, pairs: &[[usize; 2]], obj: &Objective) -> (Vec<f32>, Vec<f32>) {
    let n_pairs = pairs.len() as f64;
    let mut g = vec![0.0f64; seq.logp.len()];
    let terms = pairs
        .iter()
        .map(|&[c, r]| {
            let input = PairInput {
                lp_w: seq.logp[c],
                lp_l: seq.logp[r],
                rp_w: seq.rp(c),
                rp_l: seq.rp(r),
                len_w: seq.lengths[c],
                len_l: seq.lengths[r],
            };
            let pl = pair_loss(obj, &input);
            g[c] += pl.d_w as f64 / n_pairs;
            g[r] += pl.d_l as f64 / n_pairs;
            pl.loss
        })
        .collect();
    (terms, g.into_iter().map(|x| x as f32).collect())
}

/// One KTO term per response, `g_i = dL/dlp_i` of their mean, and the `z0` used.
fn kto_terms(
    seq: &SeqInputs<'_>,
    labels: &[f32],
    cfg: &KtoConfig,
) -> (Vec<f32>, Vec<f32>, Option<f32>) {
    let n = seq.logp.len();
    let z0 = cfg
        .z0
        .unwrap_or_else(|| kto_z0((0..n).map(|i| seq.logp[i] - seq.rp(i))));
    let (terms, g) = (0..n)
        .map(|i| {
            let l = kto_loss(seq.logp[i], seq.rp(i), labels[i] > 0.0, z0, cfg);
            (l.loss, l.d / n as f32)
        })
        .unzip();
    (terms, g, Some(z0))
}

/// Mean in `f64`, 0 for no terms.
fn mean(terms: &[f32]) -> f32 {
    if terms.is_empty() {
        return 0.0;
    }
    (terms.iter().map(|&t| t as f64).sum::<f64>() / terms.len() as f64) as f32
}
