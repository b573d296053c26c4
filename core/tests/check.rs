//! [`bnf_core::check`] run on its own (as the GPU driver runs it before a launch, and the C ABI
//! at its boundary) gives the first error the passes themselves give, row for row.

use bnf_core::{
    check, forward, row_grad, row_stats, Batch, BnfError, RowDiag, RowLoss, RowStats, Rows,
};

const ROWS: usize = 4;
const VOCAB: usize = 3;

fn logits() -> Vec<f32> {
    (0..ROWS * VOCAB)
        .map(|i| (i % 5) as f32 * 0.3 - 0.5)
        .collect()
}

/// The checks a host runs before handing the batch to a device: batch-wide, then per row.
fn host(b: &Batch<'_>, loss: &RowLoss<'_>, logits_len: usize) -> Result<(), BnfError> {
    check::batch(b, loss.ref_logp(), logits_len)?;
    check::scored_rows(b, loss.ref_logp())
}

/// Core's verdict on the same batch (finite logits, so every error is one the host sees).
/// Errors are compared as printed: a NaN value inside one never equals itself.
fn core(b: &Batch<'_>, loss: &RowLoss<'_>, logits: &[f32]) -> Result<(), BnfError> {
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
fn row_checks_give_the_passes_first_error() {
    let z = logits();
    let mut cases = 0;
    for (a, b) in (0..ROWS).flat_map(|a| (a + 1..ROWS).map(move |b| (a, b))) {
        for (da, db) in (0..DEFECTS.len()).flat_map(|i| (0..DEFECTS.len()).map(move |j| (i, j))) {
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
fn batch_checks_give_the_passes_first_error() {
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
fn grad_row_checks_give_row_grads_first_error() {
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
                    row_grad(zr, t[r] as usize, &stats[r], w[r], &mut out).map_err(|e| e.at_row(r))
                });
                assert_eq!(
                    format!("{:?}", check::grad_rows::<f32>(&rows, &stats, &w)),
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
    assert_eq!(check::batch(&b, None, 4), Ok(()));
    assert_eq!(check::scored_rows(&b, None), Ok(()));
    let stats = [RowStats::default(); 2];
    let rows = Rows::from(&b);
    let good = row_stats(&[0.0f32, 1.0], 0).unwrap();
    assert_eq!(
        check::grad_rows::<f32>(&rows, &[stats[0], good], &w),
        Ok(())
    );
}
