//! Host-side checks, run before any launch with the same errors `bnf-core` gives, and the
//! translation of the kernels' per-row statuses back into those errors.

use crate::error::GpuError;
use bnf_core::{check_ref_logp, row_grad_in_place, Batch, BnfError, RowLoss, RowStats};
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

/// The batch-wide checks of every primitive: a vocabulary, the logits' and mask's lengths, and
/// sizes that fit the kernels' `u32` indices. Returns `(rows, vocab)` as `u32`s. Per-row
/// targets are checked by the kernels (and, where something is written, by
/// [`check_batch_rows`] or [`check_grad_rows`] first).
pub fn check_rows(rows: &Rows<'_>, logits_len: usize) -> Result<(u32, u32), GpuError> {
    let n = rows.len();
    check_logits(rows.vocab, n, logits_len)?;
    if let Some(m) = rows.scored {
        len("scored", n, m.len())?;
    }
    kernel_sizes(n, rows.vocab)
}

/// A vocabulary, and `rows x vocab` logits.
fn check_logits(vocab: usize, rows: usize, logits_len: usize) -> Result<(), GpuError> {
    if vocab == 0 {
        return Err(BnfError::EmptyVocab.into());
    }
    let expected = rows.checked_mul(vocab).ok_or(GpuError::TooLarge {
        what: "rows x vocab",
        value: rows,
    })?;
    Ok(len("logits", expected, logits_len)?)
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

/// The batch-wide checks of core's `forward`, in its order: vocabulary, the lengths of logits,
/// weights, mask and reference log-probs, and responses. Returns `(rows, vocab)` as `u32`s.
pub fn check_batch(
    batch: &Batch<'_>,
    loss: &RowLoss<'_>,
    logits_len: usize,
) -> Result<(u32, u32), GpuError> {
    let n = batch.rows();
    check_logits(batch.vocab, n, logits_len)?;
    len("weights", n, batch.weights.len())?;
    if let Some(m) = batch.scored {
        len("scored", n, m.len())?;
    }
    if batch.num_responses == 0 && (0..n).any(|r| batch.is_scored(r)) {
        return Err(BnfError::NoResponses.into());
    }
    if let RowLoss::Bnf { ref_logp } = loss {
        len("ref_logp", n, ref_logp.len())?;
    }
    kernel_sizes(n, batch.vocab)
}

/// What core's `forward` checks per scored row before it reads the logits, in its order:
/// target, weight, reference log-prob. The first failing row's error. (A row with non-finite
/// logits, which only the device sees, may come before it: see `Gpu::forward`.) Call after
/// [`check_batch`].
pub fn check_batch_rows(batch: &Batch<'_>, loss: &RowLoss<'_>) -> Result<(), BnfError> {
    for r in (0..batch.rows()).filter(|&r| batch.is_scored(r)) {
        check_target(r, batch.targets[r], batch.vocab)?;
        let w = batch.weights[r];
        if !w.is_finite() {
            return Err(BnfError::InvalidWeight { row: r, value: w });
        }
        if let RowLoss::Bnf { ref_logp } = loss {
            check_ref_logp(ref_logp[r]).map_err(|e| e.at_row(r))?;
        }
    }
    Ok(())
}

fn check_target(row: usize, target: u32, vocab: usize) -> Result<(), BnfError> {
    if (target as usize) < vocab {
        Ok(())
    } else {
        Err(BnfError::TargetOutOfRange { row, target, vocab })
    }
}

/// What core's `row_grad` checks per scored row, in its order: target, weight, statistics.
/// The first failing row's error. Call after [`check_rows`] and the length checks of `stats`
/// and `w`.
pub fn check_grad_rows(rows: &Rows<'_>, stats: &[RowStats], w: &[f32]) -> Result<(), BnfError> {
    for r in (0..rows.len()).filter(|&r| rows.is_scored(r)) {
        check_target(r, rows.targets[r], rows.vocab)?;
        // Core's own weight and statistics checks, run on a one-element row (whose length and
        // target checks pass), so the rule lives in one place.
        row_grad_in_place(&mut [0.0f32], 0, &stats[r], w[r]).map_err(|e| e.at_row(r))?;
    }
    Ok(())
}

/// The error of the first row whose kernel status is not OK. `weights` and `ref_logp` give the
/// offending values where the error carries one; `bad_logit(r)` finds row `r`'s offending
/// logit, `(column, value)`, for `NonFiniteLogits` (called only then: the status says which
/// row, not where in it).
pub fn status_error(
    statuses: &[i32],
    rows: &Rows<'_>,
    weights: Option<&[f32]>,
    ref_logp: Option<&[f32]>,
    bad_logit: &dyn Fn(usize) -> Result<(usize, f32), GpuError>,
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
        status::NON_FINITE_LOGITS => {
            let (col, value) = bad_logit(r)?;
            BnfError::NonFiniteLogits { row: r, col, value }
        }
        status::INVALID_REF_LOGP => BnfError::InvalidRefLogProb {
            row: r,
            value: value(ref_logp),
        },
        // The status names no field. The host runs core's same check before every launch
        // (check_grad_rows), so the detailed error comes from there; this is the backstop.
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
    use bnf_core::{forward, row_grad, row_stats, RowDiag};

    const ROWS: usize = 4;
    const VOCAB: usize = 3;

    fn logits() -> Vec<f32> {
        (0..ROWS * VOCAB)
            .map(|i| (i % 5) as f32 * 0.3 - 0.5)
            .collect()
    }

    /// The GPU's host checks: batch-wide, then per row.
    fn host(b: &Batch<'_>, loss: &RowLoss<'_>, logits_len: usize) -> Result<(), GpuError> {
        check_batch(b, loss, logits_len)?;
        Ok(check_batch_rows(b, loss)?)
    }

    /// Core's verdict on the same batch (finite logits, so every error is one the host sees).
    /// Errors are compared as printed: a NaN value inside one never equals itself.
    fn core(b: &Batch<'_>, loss: &RowLoss<'_>, logits: &[f32]) -> Result<(), GpuError> {
        let mut diag = vec![RowDiag::default(); b.rows()];
        forward(logits, b, *loss, &mut diag)?;
        Ok(())
    }

    /// A row: (target, weight, reference log-prob). 0, 6 and 7 are fine; the last ones have
    /// several defects, so the order of the checks within a row shows.
    const DEFECTS: [(u32, f32, f32); 12] = [
        (1, 0.5, -1.0),
        (VOCAB as u32, 0.5, -1.0),
        (1, f32::NAN, -1.0),
        (1, f32::INFINITY, -1.0),
        (1, 0.5, f32::NAN),
        (1, 0.5, 0.5),
        (1, 0.5, 5e-4),
        (1, 0.5, f32::NEG_INFINITY),
        (VOCAB as u32, f32::NAN, 0.5),
        (1, f32::NAN, 0.5),
        (VOCAB as u32, 0.5, f32::NAN),
        (1, f32::INFINITY, f32::NAN),
    ];

    #[test]
    fn host_row_checks_give_cores_first_error() {
        let z = logits();
        let mut cases = 0;
        for (a, b) in (0..ROWS).flat_map(|a| (a + 1..ROWS).map(move |b| (a, b))) {
            for (da, db) in (0..DEFECTS.len()).flat_map(|i| (0..DEFECTS.len()).map(move |j| (i, j)))
            {
                let (mut t, mut w, mut rho) = ([1u32; ROWS], [0.5f32; ROWS], [-1.0f32; ROWS]);
                for (r, d) in [(a, DEFECTS[da]), (b, DEFECTS[db])] {
                    (t[r], w[r], rho[r]) = d;
                }
                let masked: Vec<bool> = (0..ROWS).map(|r| r != a).collect();
                for scored in [None, Some(&masked[..])] {
                    let batch = Batch {
                        vocab: VOCAB,
                        targets: &t,
                        weights: &w,
                        scored,
                        num_responses: 2,
                    };
                    for loss in [RowLoss::Bnf { ref_logp: &rho }, RowLoss::Nll] {
                        assert_eq!(
                            format!("{:?}", host(&batch, &loss, z.len())),
                            format!("{:?}", core(&batch, &loss, &z)),
                            "rows {a}, {b} defects {da}, {db}, mask {:?}",
                            scored.is_some()
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 6 * 144 * 4);
    }

    #[test]
    fn host_batch_checks_give_cores_first_error() {
        let z = logits();
        let (t, w, rho) = ([0u32; ROWS], [1.0f32; ROWS], [-1.0f32; ROWS]);
        let good = Batch {
            vocab: VOCAB,
            targets: &t,
            weights: &w,
            scored: None,
            num_responses: 1,
        };
        let short_w = [1.0f32; ROWS - 1];
        let short_rho = [-1.0f32; ROWS - 1];
        let mask = [true; ROWS + 1];
        let cases: [(Batch<'_>, &[f32], usize); 6] = [
            (good, &rho, z.len()),
            (good, &rho, z.len() - 1),
            (Batch { vocab: 0, ..good }, &rho, 0),
            (
                Batch {
                    weights: &short_w,
                    ..good
                },
                &short_rho,
                z.len(),
            ),
            (
                Batch {
                    scored: Some(&mask),
                    ..good
                },
                &short_rho,
                z.len(),
            ),
            (
                Batch {
                    num_responses: 0,
                    ..good
                },
                &short_rho,
                z.len(),
            ),
        ];
        for (i, (b, rho, n)) in cases.into_iter().enumerate() {
            let loss = RowLoss::Bnf { ref_logp: rho };
            let logits = &z[..n.min(z.len())];
            assert_eq!(host(&b, &loss, n), core(&b, &loss, logits), "case {i}");
        }
    }

    #[test]
    fn host_grad_checks_give_cores_first_error() {
        let z = logits();
        let t = [1u32; ROWS];
        let good: Vec<RowStats> = (0..ROWS)
            .map(|r| row_stats(&z[r * VOCAB..(r + 1) * VOCAB], 1).unwrap())
            .collect();
        let s = good[0];
        let defects: [(u32, f32, RowStats); 9] = [
            (1, 0.5, s),
            (VOCAB as u32, 0.5, s),
            (1, f32::NAN, s),
            (1, f32::NEG_INFINITY, s),
            (1, 0.5, RowStats { sum: 0.5, ..s }),
            (
                1,
                0.5,
                RowStats {
                    others_sum: s.sum * 2.0,
                    ..s
                },
            ),
            (
                1,
                0.5,
                RowStats {
                    others_sum: -1.0,
                    ..s
                },
            ),
            (1, 0.5, RowStats { max: f32::NAN, ..s }),
            (
                1,
                0.5,
                RowStats {
                    sum: f32::INFINITY,
                    ..s
                },
            ),
        ];
        for (a, b) in (0..ROWS).flat_map(|a| (a + 1..ROWS).map(move |b| (a, b))) {
            for da in 0..defects.len() {
                for db in 0..defects.len() {
                    let (mut t, mut w, mut stats) = (t, [0.5f32; ROWS], good.clone());
                    for (r, d) in [(a, defects[da]), (b, defects[db])] {
                        (t[r], w[r], stats[r]) = d;
                    }
                    let rows = Rows {
                        vocab: VOCAB,
                        targets: &t,
                        scored: None,
                    };
                    let mut out = vec![0.0f32; VOCAB];
                    let want = (0..ROWS).try_for_each(|r| {
                        let zr = &z[r * VOCAB..(r + 1) * VOCAB];
                        row_grad(zr, t[r] as usize, &stats[r], w[r], &mut out)
                            .map_err(|e| e.at_row(r))
                    });
                    assert_eq!(
                        format!("{:?}", check_grad_rows(&rows, &stats, &w)),
                        format!("{want:?}"),
                        "rows {a}, {b} defects {da}, {db}"
                    );
                }
            }
        }
    }

    #[test]
    fn masked_rows_are_not_validated() {
        let (t, w) = ([9u32, 0], [f32::NAN, 1.0]);
        let scored = [false, true];
        let b = Batch {
            vocab: 2,
            targets: &t,
            weights: &w,
            scored: Some(&scored),
            num_responses: 1,
        };
        assert_eq!(check_batch(&b, &RowLoss::Nll, 4), Ok((2, 2)));
        assert_eq!(check_batch_rows(&b, &RowLoss::Nll), Ok(()));
        let stats = [RowStats::default(); 2];
        let rows = Rows::from(&b);
        let good = row_stats(&[0.0f32, 1.0], 0).unwrap();
        assert_eq!(check_grad_rows(&rows, &[stats[0], good], &w), Ok(()));
    }

    #[test]
    fn statuses_map_to_the_first_failing_row() {
        let t = [0u32, 1, 2];
        let rows = Rows {
            vocab: 3,
            targets: &t,
            scored: None,
        };
        // Row r's bad logit, as the GPU context would find it on a copy of the row.
        let at = |r: usize| Ok((r + 6, f32::INFINITY));
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
