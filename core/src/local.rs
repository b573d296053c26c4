//! Row-local objectives: BNF (paper eq. 4) and NLL, whose gradient weight on a row depends on
//! that row alone, so statistics and gradient fuse into one sweep of the batch.
//!
//! Per scored row `r` with weight `s_r` and `n = num_responses`:
//! BNF: loss term `s_r * CE(f, pi)`, gradient `(s_r c_r / n) (pi - onehot)` (eq. 8);
//! NLL: loss term `-s_r ell_r`, gradient `(s_r / n) (pi - onehot)` (BNF with `f = onehot`).

use crate::batch::Batch;
use crate::check;
use crate::dtype::Logit;
use crate::error::{BnfError, Site};
use crate::pass::{mean_over, RowIo};
use crate::stats::RowStats;
use crate::target::bnf_scalars;

/// Which row-local objective to run.
#[derive(Clone, Copy, Debug)]
pub enum RowLoss<'a> {
    /// BNF with the reference model's log-prob of each row's target, `rho_r = log pi_ref(y_r)`.
    Bnf {
        /// One per row; checked with [`check::ref_logp`] on scored rows.
        ref_logp: &'a [f32],
    },
    /// Negative log-likelihood (the SFT cross-entropy).
    Nll,
}

/// Per-row diagnostics of a row-local objective.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowDiag {
    /// Whether the row counted (masked rows leave every other field 0).
    pub scored: bool,
    /// The row statistics (`lse` among them).
    pub stats: RowStats,
    /// `pi_y`, the policy's probability of the target.
    pub pi_y: f32,
    /// The target's mass in the target distribution (`f_y`; 1 for NLL).
    pub f_y: f32,
    /// The gradient scale `c` of `s c (pi - onehot)` (1 for NLL).
    pub c: f32,
    /// The row's term in the batch sum: `s * CE(f, pi)`, before dividing by `num_responses`.
    pub loss: f32,
}

impl<'a> RowLoss<'a> {
    /// The reference log-probs the loss reads (BNF's), `None` for NLL.
    pub fn ref_logp(&self) -> Option<&'a [f32]> {
        match *self {
            RowLoss::Bnf { ref_logp } => Some(ref_logp),
            RowLoss::Nll => None,
        }
    }

    /// The objective's own check of scored row `r` (BNF: its reference log-prob).
    fn check_row(&self, r: usize) -> Result<(), BnfError> {
        match self {
            RowLoss::Bnf { ref_logp } => check::ref_logp(ref_logp[r])
                .map(|_| ())
                .map_err(|e| e.at_row(r)),
            RowLoss::Nll => Ok(()),
        }
    }

    /// `(f_y, c, CE(f, pi))` of scored row `r`.
    fn scalars(&self, r: usize, stats: &RowStats) -> Result<(f32, f32, f32), BnfError> {
        Ok(match self {
            RowLoss::Bnf { ref_logp } => {
                let rho = check::ref_logp(ref_logp[r]).map_err(|e| e.at_row(r))?;
                let b = bnf_scalars(stats, rho);
                (b.f_y, b.c, b.cross_entropy)
            }
            RowLoss::Nll => (1.0, 1.0, -stats.ell),
        })
    }

    fn diag(&self, r: usize, stats: RowStats, s: f32) -> Result<RowDiag, BnfError> {
        let (f_y, c, ce) = self.scalars(r, &stats)?;
        Ok(RowDiag {
            scored: true,
            stats,
            pi_y: stats.pi_y(),
            f_y,
            c,
            loss: s * ce,
        })
    }
}

/// The loss only: fills `diag` (one per row) and returns the batch loss. Every scored row is
/// checked before the first record is written, so on error `diag` is untouched.
///
/// Errors: as [`forward_backward`], without the gradient's.
pub fn forward<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    forward_in(logits, batch, loss, diag, None)
}

/// [`forward`], also checking that the per-response sums of the rows' losses and `ell` fit
/// `f32` for the responses at `offsets` (the objective API's output).
pub(crate) fn forward_in<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
    offsets: Option<&[usize]>,
) -> Result<f32, BnfError> {
    check::batch(batch, loss.ref_logp(), logits.len())?;
    check::len("diag", batch.rows(), diag.len())?;
    // Records go to a scratch first (rows records, not rows x vocab), so that a failing row
    // leaves the caller's `diag` as it was.
    let records = records(logits, batch, loss)?;
    let value = losses_fit(batch, loss, &records, offsets)?;
    diag.copy_from_slice(&records);
    Ok(value)
}

/// Every scored row's diagnostics (the statistics pass alone, into a new buffer).
fn records<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
) -> Result<alloc::vec::Vec<RowDiag>, BnfError> {
    let mut records = alloc::vec![RowDiag::default(); batch.rows()];
    batch.stats_pass(logits, &mut records, |r, stats| {
        loss.diag(r, stats, batch.weights[r])
    })?;
    Ok(records)
}

/// Sum `f(r)` over each response's scored rows at `offsets`, as
/// [`PrefBatch::per_response`](crate::PrefBatch::per_response) does.
fn per_response(
    batch: &Batch<'_>,
    offsets: &[usize],
    f: impl Fn(usize) -> f64,
) -> alloc::vec::Vec<f64> {
    let rows = batch.rows();
    offsets
        .windows(2)
        .map(|w| {
            (w[0]..w[1].min(rows))
                .filter(|&r| batch.is_scored(r))
                .map(&f)
                .sum()
        })
        .collect()
}

/// The results of finished records fit `f32`: each scored row's loss term, the batch loss
/// and, for the responses at `offsets`, each one's summed loss terms and `ell` (`Overflow`
/// naming the first that does not). Returns the batch loss.
pub(crate) fn losses_fit(
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    records: &[RowDiag],
    offsets: Option<&[usize]>,
) -> Result<f32, BnfError> {
    for (r, d) in records.iter().enumerate() {
        if d.scored && !d.loss.is_finite() {
            let ce = loss.scalars(r, &d.stats).map_or(f32::NAN, |(_, _, ce)| ce);
            return Err(BnfError::Overflow {
                at: Site::Row(r),
                what: "loss term (row weight x row cross-entropy)",
                value: batch.weights[r] as f64 * ce as f64,
                dtype: "f32",
            });
        }
    }
    if let Some(offsets) = offsets {
        let terms = per_response(batch, offsets, |r| records[r].loss as f64);
        for (i, t) in terms.into_iter().enumerate() {
            check::fits_f32(Site::Response(i), "sum of the response's loss terms", t)?;
        }
        let logp = per_response(batch, offsets, |r| records[r].stats.ell as f64);
        for (i, lp) in logp.into_iter().enumerate() {
            check::fits_f32(Site::Response(i), "summed log-prob log pi(y)", lp)?;
        }
    }
    let total: f64 = (0..batch.rows()).map(|r| records[r].loss as f64).sum();
    let mean = match batch.num_responses {
        0 => 0.0,
        n => total / n as f64,
    };
    check::fits_f32(Site::Batch, "batch loss (mean over responses)", mean)?;
    Ok(mean_over(batch.num_responses, batch.rows(), |r| {
        records[r].loss
    }))
}

/// Every scored row's gradient, written from finished records, fits `T`
/// ([`check::grad_fits`] on `s c / n`).
fn grads_fit<T: Logit>(batch: &Batch<'_>, records: &[RowDiag]) -> Result<(), BnfError> {
    for (r, d) in records.iter().enumerate() {
        if let Some((stats, w)) = grad_weight(batch, r, d) {
            check::grad_fits::<T>(&stats, w).map_err(|e| e.at_row(r))?;
        }
    }
    Ok(())
}

/// Whether the results of a fused pass surely fit their types, from what its first pass
/// knows: each scored row's maximum `m` and target logit. With `d = m - z_y`, a row's
/// cross-entropy is at most `max(d, 88) + ln V` (NLL's is `-ell = d + ln S`; BNF's mixes
/// `-ell` with the other tokens' mean `-log pi_j`, whose `z_j - m` is above `-87.4` wherever
/// `e^(z_j - m)` is not 0), `|ell| <= d + ln V`, and the gradient weight `|s c / n|` is at
/// most `|s| / n`. `false` only for weights or logits near the edge of `f32` (or of `T`);
/// the caller then checks the exact results.
fn bounds_fit<T: Logit>(logits: &[T], batch: &Batch<'_>, maxes: &[f32], logp: bool) -> bool {
    let v = batch.vocab;
    let ln_v = crate::math::ln(v as f32) as f64 + 1.0;
    let n = batch.num_responses.max(1) as f64;
    let (mut loss, mut ell) = (0.0f64, 0.0f64);
    for r in (0..batch.rows()).filter(|&r| batch.is_scored(r)) {
        let z_y = logits[r * v + batch.targets[r] as usize].to_f32();
        let d = maxes[r] as f64 - z_y as f64;
        let s = (batch.weights[r] as f64).abs();
        if !check::grad_bound_fits::<T>(s / n) {
            return false;
        }
        loss += s * (d.max(88.0) + ln_v);
        ell += d + ln_v;
    }
    check::f32_bound_fits(loss) && (!logp || check::f32_bound_fits(ell))
}

/// The gradient weight `s c / n` of row `r` from its diagnostics (`None` for a masked row).
pub(crate) fn grad_weight(batch: &Batch<'_>, r: usize, d: &RowDiag) -> Option<(RowStats, f32)> {
    d.scored
        .then(|| (d.stats, batch.weights[r] * d.c / batch.num_responses as f32))
}

/// Loss and gradient: fills `diag`, writes `dloss/dz` into `grad` (same shape as `logits`) and
/// returns the batch loss. On error nothing is written to `grad` or `diag`.
///
/// Errors: the batch's ([`check::batch`]), each scored row's target, weight, logits and (BNF)
/// reference log-prob, and `Overflow` when finite inputs give a result too large for its type:
/// a row's `ell` (logits spanning more than `f32::MAX`), a row's loss term or the batch loss
/// beyond `f32`, or a row's gradient beyond `T` (a weight `|s| / num_responses` near or above
/// `T`'s largest value). The checks that need a row's `c` run only when a cheap bound from the
/// first pass (each row's `max - z_y` and weight) cannot rule the overflow out.
pub fn forward_backward<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    grad: &mut [T],
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    check::len("grad", logits.len(), grad.len())?;
    fused(batch, RowIo::Separate(logits, grad), loss, diag, None)
}

/// [`forward_backward`] with the gradient written over the logits (no second `rows x vocab`
/// buffer); bit for bit the same gradient. On error the logits and `diag` are untouched.
pub fn forward_backward_in_place<T: Logit>(
    logits: &mut [T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    fused(batch, RowIo::InPlace(logits), loss, diag, None)
}

/// Loss and gradient in the batch's fused pass (one `exp` per logit); the same bits as
/// [`forward`] followed by a gradient pass from `diag`.
///
/// `offsets`: the responses of the objective API, whose per-response sums must fit as well.
pub(crate) fn fused<T: Logit>(
    batch: &Batch<'_>,
    io: RowIo<'_, T>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
    offsets: Option<&[usize]>,
) -> Result<f32, BnfError> {
    let len = match &io {
        RowIo::Separate(z, _) => z.len(),
        RowIo::InPlace(z) => z.len(),
    };
    check::batch(batch, loss.ref_logp(), len)?;
    // Between the passes, before anything is written: the bound, and only where it cannot
    // rule an overflow out, the exact results (a statistics pass more, on such batches only).
    let results_fit = |logits: &[T], maxes: &[f32]| {
        if bounds_fit(logits, batch, maxes, offsets.is_some()) {
            return Ok(());
        }
        let records = records(logits, batch, loss)?;
        losses_fit(batch, loss, &records, offsets)?;
        grads_fit::<T>(batch, &records)
    };
    batch.fused_pass(
        io,
        diag,
        |r| loss.check_row(r),
        results_fit,
        |r, stats| loss.diag(r, stats, batch.weights[r]),
        |r, d| grad_weight(batch, r, d),
    )?;
    Ok(mean_over(batch.num_responses, batch.rows(), |r| {
        diag[r].loss
    }))
}

/// Loss, gradient and diagnostics returned by [`bnf`] and [`nll`].
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct Output<T> {
    /// The batch loss (mean over responses).
    pub loss: f32,
    /// `dloss/dz`, same shape as the logits.
    pub grad: std::vec::Vec<T>,
    /// One record per row.
    pub rows: std::vec::Vec<RowDiag>,
}

#[cfg(feature = "std")]
fn run<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
) -> Result<Output<T>, BnfError> {
    let mut grad = std::vec![T::from_f32(0.0); logits.len()];
    let mut rows = std::vec![RowDiag::default(); batch.rows()];
    let loss = forward_backward(logits, batch, loss, &mut grad, &mut rows)?;
    Ok(Output { loss, grad, rows })
}

/// BNF over a batch (paper eq. 4): loss, gradient (eq. 8) and per-row diagnostics.
#[cfg(feature = "std")]
pub fn bnf<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    ref_logp: &[f32],
) -> Result<Output<T>, BnfError> {
    run(logits, batch, RowLoss::Bnf { ref_logp })
}

/// NLL (SFT cross-entropy) over a batch through the same primitives.
#[cfg(feature = "std")]
pub fn nll<T: Logit>(logits: &[T], batch: &Batch<'_>) -> Result<Output<T>, BnfError> {
    run(logits, batch, RowLoss::Nll)
}
