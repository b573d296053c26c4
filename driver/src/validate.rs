//! Host-side checks, run before any launch with the same errors `bnf-core` gives, and the
//! translation of the kernels' per-row statuses back into those errors.

use crate::error::GpuError;
use bnf_core::{check_ref_logp, Batch, BnfError, RowLoss};
use bnf_kernels::status;

/// The rows a primitive runs over: vocabulary size, one target per row, and which rows count.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Target id of each row.
    pub targets: &'a [u32],
    /// Which rows count; `None`: all.
    pub scored: Option<&'a [bool]>,
}

impl<'a> From<&Batch<'a>> for Rows<'a> {
    fn from(b: &Batch<'a>) -> Self {
        Rows {
            vocab: b.vocab,
            targets: b.targets,
            scored: b.scored,
        }
    }
}

impl Rows<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Whether row `r` counts.
    pub fn is_scored(&self, r: usize) -> bool {
        self.scored.is_none_or(|m| m[r])
    }
}

pub(crate) fn len(what: &'static str, expected: usize, found: usize) -> Result<(), BnfError> {
    if expected == found {
        Ok(())
    } else {
        Err(BnfError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

/// Check lengths and scored targets; returns `(rows, vocab)` as the kernels' `u32`s.
pub fn check_rows(rows: &Rows<'_>, logits_len: usize) -> Result<(u32, u32), GpuError> {
    if rows.vocab == 0 {
        return Err(BnfError::EmptyVocab.into());
    }
    let n = rows.len();
    let expected = n.checked_mul(rows.vocab).ok_or(GpuError::TooLarge {
        what: "rows x vocab",
        value: n,
    })?;
    len("logits", expected, logits_len)?;
    if let Some(m) = rows.scored {
        len("scored", n, m.len())?;
    }
    for (r, &y) in rows.targets.iter().enumerate() {
        if rows.is_scored(r) && y as usize >= rows.vocab {
            return Err(BnfError::TargetOutOfRange {
                row: r,
                target: y,
                vocab: rows.vocab,
            }
            .into());
        }
    }
    let rows32 = u32::try_from(n).map_err(|_| GpuError::TooLarge {
        what: "rows",
        value: n,
    })?;
    let vocab32 = u32::try_from(rows.vocab).map_err(|_| GpuError::TooLarge {
        what: "vocab",
        value: rows.vocab,
    })?;
    Ok((rows32, vocab32))
}

/// Everything core's `forward` checks before reading logits: lengths, responses, and for each
/// scored row its target, weight and reference log-prob (in that order).
pub fn check_batch(
    batch: &Batch<'_>,
    loss: &RowLoss<'_>,
    logits_len: usize,
) -> Result<(u32, u32), GpuError> {
    let rows = Rows::from(batch);
    let shape = check_rows(&rows, logits_len)?;
    let n = rows.len();
    len("weights", n, batch.weights.len())?;
    let ref_logp = match loss {
        RowLoss::Bnf { ref_logp } => {
            len("ref_logp", n, ref_logp.len())?;
            Some(*ref_logp)
        }
        RowLoss::Nll => None,
    };
    let any_scored = (0..n).any(|r| rows.is_scored(r));
    if batch.num_responses == 0 && any_scored {
        return Err(BnfError::NoResponses.into());
    }
    for r in (0..n).filter(|&r| rows.is_scored(r)) {
        let w = batch.weights[r];
        if !w.is_finite() {
            return Err(BnfError::InvalidWeight { row: r, value: w }.into());
        }
        if let Some(rho) = ref_logp {
            check_ref_logp(rho[r]).map_err(|e| e.at_row(r))?;
        }
    }
    Ok(shape)
}

/// The error of the first row whose kernel status is not OK. `weights` and `ref_logp` give the
/// offending values where the error carries one.
pub fn status_error(
    statuses: &[i32],
    rows: &Rows<'_>,
    weights: Option<&[f32]>,
    ref_logp: Option<&[f32]>,
) -> Result<(), BnfError> {
    let Some((r, &code)) = statuses.iter().enumerate().find(|(_, &s)| s != status::OK) else {
        return Ok(());
    };
    let value = |v: Option<&[f32]>| v.and_then(|v| v.get(r).copied()).unwrap_or(f32::NAN);
    Err(match code {
        status::TARGET_OUT_OF_RANGE => BnfError::TargetOutOfRange {
            row: r,
            target: rows.targets.get(r).copied().unwrap_or(u32::MAX),
            vocab: rows.vocab,
        },
        status::INVALID_WEIGHT => BnfError::InvalidWeight {
            row: r,
            value: value(weights),
        },
        status::INVALID_REF_LOGP => BnfError::InvalidRefLogProb {
            row: r,
            value: value(ref_logp),
        },
        _ => BnfError::NonFiniteLogits { row: r },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch<'a>(targets: &'a [u32], weights: &'a [f32], vocab: usize) -> Batch<'a> {
        Batch {
            vocab,
            targets,
            weights,
            scored: None,
            num_responses: 1,
        }
    }

    #[test]
    fn host_checks_give_cores_errors() {
        let (t, w) = ([0u32, 3], [1.0f32, 1.0]);
        let b = batch(&t, &w, 4);
        assert_eq!(check_batch(&b, &RowLoss::Nll, 8), Ok((2, 4)));
        assert_eq!(
            check_batch(&b, &RowLoss::Nll, 7),
            Err(GpuError::Input(BnfError::LengthMismatch {
                what: "logits",
                expected: 8,
                found: 7
            }))
        );
        let b3 = batch(&t, &w, 3);
        assert_eq!(
            check_batch(&b3, &RowLoss::Nll, 6),
            Err(GpuError::Input(BnfError::TargetOutOfRange {
                row: 1,
                target: 3,
                vocab: 3
            }))
        );
        let rho = [-0.5f32, 0.5];
        assert_eq!(
            check_batch(&b, &RowLoss::Bnf { ref_logp: &rho }, 8),
            Err(GpuError::Input(BnfError::InvalidRefLogProb {
                row: 1,
                value: 0.5
            }))
        );
        let bad_w = [1.0f32, f32::NAN];
        let e = check_batch(&batch(&t, &bad_w, 4), &RowLoss::Nll, 8).unwrap_err();
        assert!(matches!(
            e,
            GpuError::Input(BnfError::InvalidWeight { row: 1, .. })
        ));
    }

    #[test]
    fn masked_rows_are_not_validated() {
        let (t, w) = ([9u32, 0], [f32::NAN, 1.0]);
        let scored = [false, true];
        let b = Batch {
            scored: Some(&scored),
            ..batch(&t, &w, 2)
        };
        assert_eq!(check_batch(&b, &RowLoss::Nll, 4), Ok((2, 2)));
    }

    #[test]
    fn statuses_map_to_the_first_failing_row() {
        let t = [0u32, 1, 2];
        let rows = Rows {
            vocab: 3,
            targets: &t,
            scored: None,
        };
        assert_eq!(status_error(&[0, 0, 0], &rows, None, None), Ok(()));
        assert_eq!(
            status_error(
                &[0, status::NON_FINITE_LOGITS, status::INVALID_WEIGHT],
                &rows,
                None,
                None
            ),
            Err(BnfError::NonFiniteLogits { row: 1 })
        );
        let rho = [0.0f32, 0.0, 2.0];
        assert_eq!(
            status_error(&[0, 0, status::INVALID_REF_LOGP], &rows, None, Some(&rho)),
            Err(BnfError::InvalidRefLogProb { row: 2, value: 2.0 })
        );
    }
}
