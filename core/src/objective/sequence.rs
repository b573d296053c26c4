//! The sequence-level objectives' batch driver (the baselines, on the same row primitives as
//! BNF):
//!
//! 1. row statistics pass ([`crate::row_stats`] per scored row; each row's statistics, `lse`
//!    among them, are kept so the gradient pass needs no second reduction);
//! 2. per-response sums: `lp_i = sum ell_r` over the response's scored rows (and the reference's
//!    `rp_i` when the objective uses one), in `f64`;
//! 3. the sequence loss and `g_i = dL/dlp_i` of the batch loss, from [`crate::seq`]'s scalar
//!    functions;
//! 4. gradient pass: row `r` of response `i` gets `w_r (pi - onehot(y_r))` with `w_r = -g_i`,
//!    because `d ell_r / dz = onehot(y_r) - pi`.
//!
//! Steps 2-3 also run alone on statistics computed elsewhere: [`forward_from_stats`].

use alloc::vec;
use alloc::vec::Vec;

use super::kind::Objective;
use super::pref::{ObjectiveOutput, PrefBatch};
use super::prepare::Prepared;
use crate::check;
use crate::dtype::Logit;
use crate::error::{BnfError, Site};
use crate::seq::{check_values, reduce, row_local_error, SeqInputs};
use crate::stats::RowStats;

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
/// `ell` is not a finite log-prob (NaN, infinite or above 0), and, as [`crate::seq::sequence_loss`],
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
    check::len("row stats", pb.rows(), stats.len())?;
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
/// through [`crate::seq::sequence_loss`]'s value check ([`check_values`]) before the loss is taken.
fn finish(
    pb: &PrefBatch<'_>,
    obj: &Objective,
    prep: &Prepared,
    ref_logp: Vec<f32>,
    stats: &[RowStats],
) -> Result<ObjectiveOutput, BnfError> {
    let logp = sums_fit(
        pb.per_response(|r| stats[r].ell as f64),
        "summed log-prob log pi(y)",
    )?;
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

impl SeqForward {
    /// Every scored row's gradient `-g_i (pi - onehot)` fits `T` ([`check::grad_fits`]),
    /// or `Overflow` naming the row's response (its `g_i = dL/dlp_i` is the cause).
    fn grads_fit<T: Logit>(&self, pb: &PrefBatch<'_>) -> Result<(), BnfError> {
        let w = &self.out.row_weight;
        for (i, o) in pb.offsets.windows(2).enumerate() {
            for r in (o[0]..o[1]).filter(|&r| pb.is_scored(r)) {
                if let Err(BnfError::Overflow { value, dtype, .. }) =
                    check::grad_fits::<T>(&self.stats[r], w[r])
                {
                    return Err(BnfError::Overflow {
                        at: Site::Response(i),
                        what: "gradient -dL/dlp (pi - onehot) of its rows (largest entry)",
                        value,
                        dtype,
                    });
                }
            }
        }
        Ok(())
    }

    /// Step 4 into a separate buffer (its length is checked by the caller).
    pub(crate) fn grad_pass<T: Logit>(
        &self,
        logits: &[T],
        pb: &PrefBatch<'_>,
        grad: &mut [T],
    ) -> Result<(), BnfError> {
        self.grads_fit::<T>(pb)?;
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
        self.grads_fit::<T>(pb)?;
        let w = &self.out.row_weight;
        self.prep
            .batch(pb)
            .grad_pass_in_place(logits, |r| pb.is_scored(r).then(|| (self.stats[r], w[r])))
    }
}

/// The reference's summed log-prob per response (empty when `obj` uses no reference). Each
/// scored row's value must pass [`check::ref_logp`] and be finite: a reference that gives a
/// completion token zero mass makes every log-ratio infinite.
fn reference_sums(pb: &PrefBatch<'_>, obj: &Objective) -> Result<Vec<f32>, BnfError> {
    if !obj.needs_reference() {
        return Ok(Vec::new());
    }
    // Presence and length were checked by `Prepared::new`.
    let rp = pb.ref_logp.unwrap_or(&[]);
    for r in (0..pb.rows()).filter(|&r| pb.is_scored(r)) {
        let v = check::ref_logp(rp[r]).map_err(|e| e.at_row(r))?;
        if !v.is_finite() {
            return Err(BnfError::InvalidRefLogProb { row: r, value: v });
        }
    }
    sums_fit(
        pb.per_response(|r| rp[r].min(0.0) as f64),
        "summed reference log-prob log pi_ref(y)",
    )
}

/// Per-response `f64` sums rounded to `f32`, each checked to fit (`Overflow` naming the first
/// response whose sum of finite row values does not).
fn sums_fit(sums: Vec<f64>, what: &'static str) -> Result<Vec<f32>, BnfError> {
    sums.into_iter()
        .enumerate()
        .map(|(i, v)| check::fits_f32(Site::Response(i), what, v))
        .collect()
}
