//! Row-local objectives: BNF (paper eq. 4) and NLL, whose gradient weight on a row depends on
//! that row alone, so statistics and gradient fuse into one sweep of the batch.
//!
//! Per scored row `r` with weight `s_r` and `n = num_responses`:
//! BNF: loss term `s_r * CE(f, pi)`, gradient `(s_r c_r / n) (pi - onehot)` (eq. 8);
//! NLL: loss term `-s_r ell_r`, gradient `(s_r / n) (pi - onehot)` (BNF with `f = onehot`).

use crate::batch::Batch;
use crate::check;
use crate::dtype::Logit;
use crate::error::BnfError;
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

    fn diag(&self, r: usize, stats: RowStats, s: f32) -> Result<RowDiag, BnfError> {
        let (f_y, c, ce) = match self {
            RowLoss::Bnf { ref_logp } => {
                let rho = check::ref_logp(ref_logp[r]).map_err(|e| e.at_row(r))?;
                let b = bnf_scalars(&stats, rho);
                (b.f_y, b.c, b.cross_entropy)
            }
            RowLoss::Nll => (1.0, 1.0, -stats.ell),
        };
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
pub fn forward<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    check::batch(batch, loss.ref_logp(), logits.len())?;
    check::len("diag", batch.rows(), diag.len())?;
    // Records go to a scratch first (rows records, not rows x vocab), so that a failing row
    // leaves the caller's `diag` as it was.
    let mut records = alloc::vec![RowDiag::default(); batch.rows()];
    batch.stats_pass(logits, &mut records, |r, stats| {
        loss.diag(r, stats, batch.weights[r])
    })?;
    diag.copy_from_slice(&records);
    Ok(mean_over(batch.num_responses, batch.rows(), |r| {
        diag[r].loss
    }))
}

/// The gradient weight `s c / n` of row `r` from its diagnostics (`None` for a masked row).
pub(crate) fn grad_weight(batch: &Batch<'_>, r: usize, d: &RowDiag) -> Option<(RowStats, f32)> {
    d.scored
        .then(|| (d.stats, batch.weights[r] * d.c / batch.num_responses as f32))
}

/// Loss and gradient: fills `diag`, writes `dloss/dz` into `grad` (same shape as `logits`) and
/// returns the batch loss. On error nothing is written to `grad` or `diag`.
pub fn forward_backward<T: Logit>(
    logits: &[T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    grad: &mut [T],
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    check::len("grad", logits.len(), grad.len())?;
    fused(batch, RowIo::Separate(logits, grad), loss, diag)
}

/// [`forward_backward`] with the gradient written over the logits (no second `rows x vocab`
/// buffer); bit for bit the same gradient. On error the logits and `diag` are untouched.
pub fn forward_backward_in_place<T: Logit>(
    logits: &mut [T],
    batch: &Batch<'_>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    fused(batch, RowIo::InPlace(logits), loss, diag)
}

/// Loss and gradient in the batch's fused pass (one `exp` per logit); the same bits as
/// [`forward`] followed by a gradient pass from `diag`.
fn fused<T: Logit>(
    batch: &Batch<'_>,
    io: RowIo<'_, T>,
    loss: RowLoss<'_>,
    diag: &mut [RowDiag],
) -> Result<f32, BnfError> {
    let len = match &io {
        RowIo::Separate(z, _) => z.len(),
        RowIo::InPlace(z) => z.len(),
    };
    check::batch(batch, loss.ref_logp(), len)?;
    batch.fused_pass(
        io,
        diag,
        |r| loss.check_row(r),
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
