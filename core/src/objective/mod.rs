//! One batch API for every objective: [`Objective`] names the loss (BNF, NLL, or a baseline
//! with its typed configuration), [`PrefBatch`] holds the responses, and
//! [`objective_forward_backward`] (or its in-place and loss-only siblings) runs it, so a trainer
//! changes objective with one argument.
//!
//! BNF and NLL run the row-local path ([`rowlocal`]: [`crate::forward_backward`] with
//! [`crate::response_weights`]); every other objective runs the sequence path ([`sequence`]):
//! row statistics -> per-response summed log-probs -> sequence loss and `dL/dlp` per response
//! ([`crate::seq`]'s scalar functions) -> row gradient `w (pi - onehot)` with `w = -dL/dlp`,
//! reusing each row's statistics. Each path also builds its output from per-row values
//! computed elsewhere (a GPU's): [`forward_from_rows`] and [`forward_from_stats`].

pub(crate) mod config;
pub(crate) mod kind;
mod params;
mod pref;
mod prepare;
mod rowlocal;
mod sequence;

pub use config::{
    CpoConfig, DpoConfig, IpoConfig, KtoConfig, OrpoConfig, RDpoConfig, SimPoConfig, SlicConfig,
};
pub use kind::{Objective, OBJECTIVE_NAMES};
pub use pref::{ObjectiveOutput, PrefBatch};
pub use rowlocal::forward_from_rows;
pub use sequence::forward_from_stats;

use crate::check;
use crate::dtype::Logit;
use crate::error::BnfError;
use crate::local;
use crate::pass::RowIo;

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
    check::len("grad", logits.len(), grad.len())?;
    if let Some(loss) = rowlocal::row_loss(batch, obj)? {
        return rowlocal::run(logits.len(), batch, obj, |b, diag| {
            let io = RowIo::Separate(logits, grad);
            local::fused(b, io, loss, diag, Some(batch.offsets))
        });
    }
    let fw = sequence::forward(logits, batch, obj)?;
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
            local::fused(b, RowIo::InPlace(logits), loss, diag, Some(batch.offsets))
        });
    }
    let fw = sequence::forward(logits, batch, obj)?;
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
            local::forward_in(logits, b, loss, diag, Some(batch.offsets))
        });
    }
    Ok(sequence::forward(logits, batch, obj)?.out)
}
