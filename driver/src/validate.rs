//! The driver's own checks, and the translation of the kernels' per-row statuses back into
//! core's errors. Every rule on the inputs is core's ([`bnf_core::check`]), run before any
//! launch so that the device gives core's error for the same row; what is added here is
//! device-specific: sizes that fit the kernels' `u32` indices, and the status codes.

use crate::error::GpuError;
use bnf_core::{check, Batch, BnfError, RowLoss, Rows};
use bnf_kernels::status;

/// Core's [`check::rows`] (a vocabulary, the logits' and mask's lengths) and sizes that fit
/// the kernels' `u32` indices. Returns `(rows, vocab)` as `u32`s. Per-row targets are checked
/// by the kernels (and, where something is written, by core's [`check::scored_rows`] or
/// [`check::grad_rows`] first).
pub fn check_rows(rows: &Rows<'_>, logits_len: usize) -> Result<(u32, u32), GpuError> {
    fits(rows.len(), rows.vocab)?;
    check::rows(rows, logits_len)?;
    kernel_sizes(rows.len(), rows.vocab)
}

/// Core's [`check::batch`] for `loss` (in its order: vocabulary, the lengths of logits,
/// weights, mask and reference log-probs, and responses) and sizes that fit the kernels.
/// Returns `(rows, vocab)` as `u32`s.
pub fn check_batch(
    batch: &Batch<'_>,
    loss: &RowLoss<'_>,
    logits_len: usize,
) -> Result<(u32, u32), GpuError> {
    fits(batch.rows(), batch.vocab)?;
    check::batch(batch, loss.ref_logp(), logits_len)?;
    kernel_sizes(batch.rows(), batch.vocab)
}

/// `rows x vocab` logits can be addressed at all (`TooLarge` where core would report a
/// length it cannot state). A zero vocabulary passes, for core's `EmptyVocab`.
fn fits(rows: usize, vocab: usize) -> Result<(), GpuError> {
    match rows.checked_mul(vocab) {
        Some(_) => Ok(()),
        None => Err(GpuError::TooLarge {
            what: "rows x vocab",
            value: rows,
        }),
    }
}

fn kernel_sizes(rows: usize, vocab: usize) -> Result<(u32, u32), GpuError> {
    let rows32 = u32::try_from(rows).map_err(|_| GpuError::TooLarge {
        what: "rows",
        value: rows,
    })?;
    let vocab32 = u32::try_from(vocab).map_err(|_| GpuError::TooLarge {
        what: "vocab",
        value: vocab,
    })?;
    Ok((rows32, vocab32))
}

/// The error of the first row whose kernel status is not OK. `weights` and `ref_logp` give the
/// offending values where the error carries one; `row_error(r)` is core's error for row `r`
/// for a `NonFiniteLogits` status (called only then: the status says which row, not where in
/// it, nor whether its logits are not finite or only span more than `f32`).
pub fn status_error(
    statuses: &[i32],
    rows: &Rows<'_>,
    weights: Option<&[f32]>,
    ref_logp: Option<&[f32]>,
    row_error: &dyn Fn(usize) -> Result<BnfError, GpuError>,
) -> Result<(), GpuError> {
    let Some((r, &code)) = statuses.iter().enumerate().find(|(_, &s)| s != status::OK) else {
        return Ok(());
    };
    let value = |v: Option<&[f32]>| v.and_then(|v| v.get(r).copied()).unwrap_or(f32::NAN);
    let e = match code {
        status::TARGET_OUT_OF_RANGE => BnfError::TargetOutOfRange {
            row: r,
            target: rows.targets.get(r).copied().unwrap_or(u32::MAX),
            vocab: rows.vocab,
        },
        status::INVALID_WEIGHT => BnfError::InvalidWeight {
            row: r,
            value: value(weights),
        },
        status::NON_FINITE_LOGITS => row_error(r)?,
        status::INVALID_REF_LOGP => BnfError::InvalidRefLogProb {
            row: r,
            value: value(ref_logp),
        },
        // The status names no field. The host runs core's same check before every launch
        // (core's `check::grad_rows`), so the detailed error comes from there; this is the backstop.
        status::INVALID_STATS => BnfError::InvalidStats {
            row: r,
            what: "statistics (kernel status)",
            value: f32::NAN,
        },
        code => return Err(GpuError::UnknownStatus { row: r, code }),
    };
    Err(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_around_cores_checks() {
        let t = [0u32; 2];
        let rows = |vocab| Rows {
            vocab,
            targets: &t,
            scored: None,
        };
        assert_eq!(check_rows(&rows(3), 6), Ok((2, 3)));
        assert_eq!(check_rows(&rows(0), 0), Err(BnfError::EmptyVocab.into()));
        assert_eq!(
            check_rows(&rows(usize::MAX), 0),
            Err(GpuError::TooLarge {
                what: "rows x vocab",
                value: 2
            })
        );
        assert_eq!(
            check_rows(&rows(3), 5),
            Err(BnfError::LengthMismatch {
                what: "logits",
                expected: 6,
                found: 5
            }
            .into())
        );
        let big = 1usize << 33;
        assert_eq!(
            check_rows(&rows(big), 2 * big),
            Err(GpuError::TooLarge {
                what: "vocab",
                value: big
            })
        );
        let (w, rho) = ([1.0f32; 2], [-1.0f32; 1]);
        let b = Batch {
            vocab: 3,
            targets: &t,
            weights: &w,
            scored: None,
            num_responses: 1,
        };
        let bnf = RowLoss::Bnf { ref_logp: &rho };
        assert_eq!(
            check_batch(&b, &bnf, 6),
            Err(BnfError::LengthMismatch {
                what: "ref_logp",
                expected: 2,
                found: 1
            }
            .into())
        );
        assert_eq!(check_batch(&b, &RowLoss::Nll, 6), Ok((2, 3)));
    }

    #[test]
    fn statuses_map_to_the_first_failing_row() {
        let t = [0u32, 1, 2];
        let rows = Rows {
            vocab: 3,
            targets: &t,
            scored: None,
        };
        // Row r's error, as the GPU context would find it on a copy of the row.
        let at = |r: usize| {
            Ok(BnfError::NonFiniteLogits {
                row: r,
                col: r + 6,
                value: f32::INFINITY,
            })
        };
        assert_eq!(status_error(&[0, 0, 0], &rows, None, None, &at), Ok(()));
        assert_eq!(
            status_error(
                &[0, status::NON_FINITE_LOGITS, status::INVALID_WEIGHT],
                &rows,
                None,
                None,
                &at
            ),
            Err(BnfError::NonFiniteLogits {
                row: 1,
                col: 7,
                value: f32::INFINITY
            }
            .into())
        );
        let rho = [0.0f32, 0.0, 2.0];
        assert_eq!(
            status_error(
                &[0, 0, status::INVALID_REF_LOGP],
                &rows,
                None,
                Some(&rho),
                &at
            ),
            Err(BnfError::InvalidRefLogProb { row: 2, value: 2.0 }.into())
        );
        let e = status_error(&[0, status::INVALID_STATS, 0], &rows, None, None, &at);
        assert!(
            matches!(
                e,
                Err(GpuError::Input(BnfError::InvalidStats { row: 1, .. }))
            ),
            "{e:?}"
        );
        assert_eq!(
            status_error(&[0, 0, 77], &rows, None, None, &at),
            Err(GpuError::UnknownStatus { row: 2, code: 77 })
        );
    }
}
