//! Bad input gets an error value naming the row (or buffer) and value, never a panic, and
//! nothing already written is touched.

use bnf_core::{
    dynamic_target, forward, forward_backward, forward_backward_in_place, response_weights,
    row_stats, Batch, BnfError, RowDiag, RowLoss, REF_LOGP_TOLERANCE,
};

const V: usize = 5;

struct Case {
    z: Vec<f32>,
    y: Vec<u32>,
    s: Vec<f32>,
    rho: Vec<f32>,
    scored: Option<Vec<bool>>,
    n: usize,
}

impl Case {
    /// The case's rows as a batch (its own mask, if any).
    fn batch(&self) -> Batch<'_> {
        Batch {
            vocab: V,
            targets: &self.y,
            weights: &self.s,
            scored: self.scored.as_deref(),
            num_responses: self.n,
        }
    }
}

fn good() -> Case {
    Case {
        z: (0..3 * V).map(|i| (i as f32 * 0.37).sin() * 3.0).collect(),
        y: vec![0, 4, 2],
        s: vec![0.5, 0.5, -1.0],
        rho: vec![-1.0, -0.2, -3.0],
        scored: None,
        n: 2,
    }
}

/// A row record no pass would write (so that overwriting it shows).
const DIAG_SENTINEL: RowDiag = RowDiag {
    scored: true,
    stats: bnf_core::RowStats {
        max: 1.0,
        lse: 2.0,
        ell: -3.0,
        sum: 4.0,
        others_sum: 5.0,
        others_dot: -6.0,
    },
    pi_y: 7.0,
    f_y: 8.0,
    c: 9.0,
    loss: 10.0,
};

/// Run the loss alone, out of place and in place; all must fail the same way and leave every
/// buffer (the gradient, the logits, the row records) untouched.
fn fails(c: &Case) -> BnfError {
    let batch = c.batch();
    let loss = RowLoss::Bnf { ref_logp: &c.rho };
    let sentinel = 12345.0f32;
    let untouched = vec![DIAG_SENTINEL; c.y.len()];
    let mut diag = untouched.clone();
    let e0 = forward(&c.z, &batch, loss, &mut diag).unwrap_err();
    assert_eq!(diag, untouched, "diag written on error (forward)");
    let mut grad = vec![sentinel; c.z.len()];
    let e1 = forward_backward(&c.z, &batch, loss, &mut grad, &mut diag).unwrap_err();
    assert!(grad.iter().all(|&g| g == sentinel), "grad written on error");
    assert_eq!(diag, untouched, "diag written on error (forward_backward)");
    let mut z = c.z.clone();
    let e2 = forward_backward_in_place(&mut z, &batch, loss, &mut diag).unwrap_err();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&z), bits(&c.z), "logits changed on error");
    assert_eq!(diag, untouched, "diag written on error (in place)");
    assert_eq!(format!("{e0:?}"), format!("{e1:?}"));
    assert_eq!(format!("{e1:?}"), format!("{e2:?}"));
    assert!(!e1.to_string().is_empty());
    e1
}

/// `forward` (the loss alone) checks every row before it writes a record: a bad last row
/// leaves the earlier rows' records as they were.
#[test]
fn forward_with_a_bad_last_row_leaves_diag_untouched() {
    for bnf in [true, false] {
        let mut c = good();
        c.z[2 * V + 1] = f32::NAN;
        let batch = c.batch();
        let loss = if bnf {
            RowLoss::Bnf { ref_logp: &c.rho }
        } else {
            RowLoss::Nll
        };
        let mut diag = vec![DIAG_SENTINEL; 3];
        let e = forward(&c.z, &batch, loss, &mut diag).unwrap_err();
        assert!(
            matches!(e, BnfError::NonFiniteLogits { row: 2, col: 1, value } if value.is_nan()),
            "{e:?}"
        );
        assert_eq!(diag, vec![DIAG_SENTINEL; 3]);
    }
    // And a bad reference log-prob on the last row (BNF's own check).
    let mut c = good();
    c.rho[2] = f32::NAN;
    let batch = c.batch();
    let mut diag = vec![DIAG_SENTINEL; 3];
    let e = forward(&c.z, &batch, RowLoss::Bnf { ref_logp: &c.rho }, &mut diag).unwrap_err();
    assert!(matches!(e, BnfError::InvalidRefLogProb { row: 2, value } if value.is_nan()));
    assert_eq!(diag, vec![DIAG_SENTINEL; 3]);
}

/// `rows * vocab` past `usize::MAX` is a length error, not an overflow panic.
#[test]
fn rows_times_vocab_overflow_is_an_error() {
    let (y, s) = ([0u32, 0], [0.5f32, 0.5]);
    let batch = Batch {
        vocab: usize::MAX / 2 + 1,
        targets: &y,
        weights: &s,
        scored: None,
        num_responses: 1,
    };
    let z = [0.0f32; 4];
    let want = BnfError::LengthMismatch {
        what: "logits",
        expected: usize::MAX,
        found: 4,
    };
    let mut diag = vec![RowDiag::default(); 2];
    assert_eq!(forward(&z, &batch, RowLoss::Nll, &mut diag), Err(want));
    let mut grad = [0.0f32; 4];
    let rho = [-1.0f32; 2];
    let loss = RowLoss::Bnf { ref_logp: &rho };
    assert_eq!(
        forward_backward(&z, &batch, loss, &mut grad, &mut diag),
        Err(want)
    );
    let mut zz = z;
    assert_eq!(
        forward_backward_in_place(&mut zz, &batch, loss, &mut diag),
        Err(want)
    );
}

#[test]
fn good_case_passes() {
    let c = good();
    let batch = c.batch();
    let mut diag = vec![RowDiag::default(); 3];
    assert!(forward(&c.z, &batch, RowLoss::Bnf { ref_logp: &c.rho }, &mut diag).is_ok());
}

#[test]
fn target_out_of_range_names_row_and_value() {
    let mut c = good();
    c.y[2] = V as u32;
    assert_eq!(
        fails(&c),
        BnfError::TargetOutOfRange {
            row: 2,
            target: 5,
            vocab: V
        }
    );
}

#[test]
fn nan_and_inf_logits_name_the_row_column_and_value() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut c = good();
        c.z[V + 3] = bad;
        let e = fails(&c);
        assert!(
            matches!(e, BnfError::NonFiniteLogits { row: 1, col: 3, value }
                if value.to_bits() == bad.to_bits()),
            "{e:?}"
        );
        assert!(e.to_string().contains(&format!("logit 3 is {bad}")), "{e}");
        // The first bad column is named, NaN or +inf, whichever comes first.
        c.z[V + 1] = f32::INFINITY;
        let e = fails(&c);
        assert!(
            matches!(e, BnfError::NonFiniteLogits { row: 1, col: 1, value } if value == f32::INFINITY),
            "{e:?}"
        );
    }
    // -inf at the target: the target has no mass, its log-prob is -inf.
    let mut c = good();
    c.z[V + 4] = f32::NEG_INFINITY;
    let want = BnfError::NonFiniteLogits {
        row: 1,
        col: 4,
        value: f32::NEG_INFINITY,
    };
    assert_eq!(fails(&c), want);
    assert!(want
        .to_string()
        .contains("target's logit (column 4) is -inf"));
    // -inf elsewhere is a token without mass, allowed; a NaN after it is still found.
    c.z[V + 4] = 0.0;
    c.z[V] = f32::NEG_INFINITY;
    c.z[V + 2] = f32::NAN;
    let e = fails(&c);
    assert!(
        matches!(e, BnfError::NonFiniteLogits { row: 1, col: 2, value } if value.is_nan()),
        "{e:?}"
    );
}

/// `bad_logit` against a plain scan: the first NaN or +inf, else the target's -inf, else none.
#[test]
fn bad_logit_finds_the_first_offender() {
    use bnf_core::bad_logit;
    let z = [0.0f32, f32::NEG_INFINITY, 1.0, f32::INFINITY, f32::NAN];
    assert_eq!(bad_logit(&z, 0), Some((3, f32::INFINITY)));
    assert_eq!(bad_logit(&z[..3], 0), None);
    assert_eq!(bad_logit(&z[..3], 1), Some((1, f32::NEG_INFINITY)));
    assert_eq!(bad_logit(&z[..3], 7), None);
    let (col, v) = bad_logit(&[1.0f32, f32::NAN, f32::INFINITY], 0).unwrap();
    assert!(col == 1 && v.is_nan());
    let h = [bnf_core::f16::from_f32(0.5), bnf_core::f16::INFINITY];
    assert_eq!(bad_logit(&h, 0), Some((1, f32::INFINITY)));
}

#[test]
fn bad_reference_log_probs() {
    let mut c = good();
    c.rho[1] = f32::NAN;
    assert!(matches!(fails(&c), BnfError::InvalidRefLogProb { row: 1, value } if value.is_nan()));
    let mut c = good();
    c.rho[2] = 2.0 * REF_LOGP_TOLERANCE;
    assert_eq!(
        fails(&c),
        BnfError::InvalidRefLogProb {
            row: 2,
            value: 2.0 * REF_LOGP_TOLERANCE
        }
    );
    // Within the rounding tolerance: accepted and read as 0 (f = pi, zero gradient).
    let mut c = good();
    c.rho[0] = 0.5 * REF_LOGP_TOLERANCE;
    let batch = c.batch();
    let out = bnf_core::bnf(&c.z, &batch, &c.rho).unwrap();
    assert_eq!(out.rows[0].c, 0.0);
    assert!(out.grad[..V].iter().all(|&g| g == 0.0));
}

#[test]
fn bad_weights() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut c = good();
        c.s[0] = bad;
        assert!(matches!(fails(&c), BnfError::InvalidWeight { row: 0, .. }));
    }
}

#[test]
fn length_mismatches_name_the_buffer() {
    let mut c = good();
    c.z.pop();
    assert_eq!(
        fails(&c),
        BnfError::LengthMismatch {
            what: "logits",
            expected: 15,
            found: 14
        }
    );
    let mut c = good();
    c.s.push(1.0);
    assert_eq!(
        fails(&c),
        BnfError::LengthMismatch {
            what: "weights",
            expected: 3,
            found: 4
        }
    );
    let mut c = good();
    c.rho.pop();
    assert_eq!(
        fails(&c),
        BnfError::LengthMismatch {
            what: "ref_logp",
            expected: 3,
            found: 2
        }
    );
    let mut c = good();
    c.scored = Some(vec![true; 2]);
    assert_eq!(
        fails(&c),
        BnfError::LengthMismatch {
            what: "scored",
            expected: 3,
            found: 2
        }
    );
    // Output buffers too.
    let c = good();
    let batch = Batch {
        vocab: V,
        targets: &c.y,
        weights: &c.s,
        scored: None,
        num_responses: 2,
    };
    let mut grad = vec![0.0f32; 3];
    let mut diag = vec![RowDiag::default(); 3];
    let e = forward_backward(&c.z, &batch, RowLoss::Nll, &mut grad, &mut diag).unwrap_err();
    assert_eq!(
        e,
        BnfError::LengthMismatch {
            what: "grad",
            expected: 15,
            found: 3
        }
    );
    let mut grad = vec![0.0f32; 15];
    let mut diag = vec![RowDiag::default(); 1];
    let e = forward_backward(&c.z, &batch, RowLoss::Nll, &mut grad, &mut diag).unwrap_err();
    assert_eq!(
        e,
        BnfError::LengthMismatch {
            what: "row records",
            expected: 3,
            found: 1
        }
    );
}

#[test]
fn empty_vocab_and_no_responses() {
    let batch = Batch {
        vocab: 0,
        targets: &[],
        weights: &[],
        scored: None,
        num_responses: 0,
    };
    let e = forward::<f32>(&[], &batch, RowLoss::Nll, &mut []).unwrap_err();
    assert_eq!(e, BnfError::EmptyVocab);
    assert_eq!(row_stats::<f32>(&[], 0).unwrap_err(), BnfError::EmptyVocab);
    let mut c = good();
    c.n = 0;
    assert_eq!(fails(&c), BnfError::NoResponses);
}

#[test]
fn masked_rows_are_not_validated_and_contribute_nothing() {
    let mut c = good();
    c.y[1] = u32::MAX; // padding id
    c.z[V] = f32::NAN;
    c.rho[1] = f32::NAN;
    c.s[1] = f32::NAN;
    let scored = [true, false, true];
    let batch = Batch {
        vocab: V,
        targets: &c.y,
        weights: &c.s,
        scored: Some(&scored),
        num_responses: 2,
    };
    let out = bnf_core::bnf(&c.z, &batch, &c.rho).unwrap();
    assert!(!out.rows[1].scored);
    assert!(out.grad[V..2 * V].iter().all(|&g| g == 0.0));
    // The loss is that of the other two rows alone.
    let keep = |r: usize| r != 1;
    let z: Vec<f32> =
        c.z.chunks(V)
            .enumerate()
            .filter(|(r, _)| keep(*r))
            .flat_map(|(_, z)| z.to_vec())
            .collect();
    let sub = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .enumerate()
            .filter(|(r, _)| keep(*r))
            .map(|(_, x)| *x)
            .collect()
    };
    let y = [c.y[0], c.y[2]];
    let (s, rho) = (sub(&c.s), sub(&c.rho));
    let b2 = Batch {
        vocab: V,
        targets: &y,
        weights: &s,
        scored: None,
        num_responses: 2,
    };
    assert_eq!(bnf_core::bnf(&z, &b2, &rho).unwrap().loss, out.loss);
}

#[test]
fn dynamic_target_errors() {
    let mut f = [0.0f32; 3];
    assert!(matches!(
        dynamic_target(&[0.0f32; 3], 3, -1.0, &mut f),
        Err(BnfError::TargetOutOfRange { .. })
    ));
    assert!(matches!(
        dynamic_target(&[0.0f32; 3], 0, 1.0, &mut f),
        Err(BnfError::InvalidRefLogProb { .. })
    ));
    assert!(matches!(
        dynamic_target(&[0.0f32; 4], 0, -1.0, &mut f),
        Err(BnfError::LengthMismatch { .. })
    ));
}

#[test]
fn response_weight_errors() {
    let mut w = [7.0f32; 4];
    let e = response_weights(&[0, 2, 3], &[1.0, -1.0], None, &mut w).unwrap_err();
    assert_eq!(e, BnfError::InvalidOffsets { response: 1 });
    let e = response_weights(&[1, 4], &[1.0], None, &mut w).unwrap_err();
    assert_eq!(e, BnfError::InvalidOffsets { response: 0 });
    let e = response_weights(&[0, 3, 2, 4], &[1.0, 1.0, 1.0], None, &mut w).unwrap_err();
    assert_eq!(e, BnfError::InvalidOffsets { response: 1 });
    let scored = [true, true, false, false];
    let e = response_weights(&[0, 2, 4], &[1.0, -1.0], Some(&scored), &mut w).unwrap_err();
    assert_eq!(e, BnfError::EmptyResponse { response: 1 });
    let e = response_weights(&[0, 2, 4], &[1.0, f32::NAN], None, &mut w).unwrap_err();
    assert!(matches!(e, BnfError::InvalidLabel { response: 1, .. }));
    let e = response_weights(&[0, 2, 4], &[1.0], None, &mut w).unwrap_err();
    assert_eq!(
        e,
        BnfError::LengthMismatch {
            what: "labels",
            expected: 2,
            found: 1
        }
    );
    assert_eq!(w, [7.0; 4], "weights written on error");
}

/// The row-gradient primitive rejects what it cannot use, before writing anything.
#[test]
fn row_grad_rejects_bad_input_untouched() {
    use bnf_core::{row_grad, row_grad_in_place};
    let z: Vec<f32> = (0..V).map(|i| i as f32 * 0.3).collect();
    let stats = row_stats(&z, 1).unwrap();
    let sentinel = 7.0f32;
    let check = |y: usize, s: &bnf_core::RowStats, w: f32, out_len: usize| -> BnfError {
        let mut out = vec![sentinel; out_len];
        let e = row_grad(&z, y, s, w, &mut out).unwrap_err();
        assert!(out.iter().all(|&g| g == sentinel), "out written on error");
        if out_len == V {
            let mut zz = z.clone();
            let e2 = row_grad_in_place(&mut zz, y, s, w).unwrap_err();
            assert_eq!(zz, z, "logits changed on error");
            assert_eq!(format!("{e:?}"), format!("{e2:?}"));
        }
        assert!(!e.to_string().is_empty());
        e
    };
    assert!(matches!(
        check(1, &stats, 1.0, V + 1),
        BnfError::LengthMismatch { expected: V, found, .. } if found == V + 1
    ));
    assert!(matches!(
        check(V, &stats, 1.0, V),
        BnfError::TargetOutOfRange { target, vocab: V, .. } if target as usize == V
    ));
    assert!(matches!(
        check(1, &stats, f32::NAN, V),
        BnfError::InvalidWeight { .. }
    ));
    // Each implausible field is named with its value (NaN included: it fails every test).
    type Field = fn(&mut bnf_core::RowStats) -> &mut f32;
    let cases: [(&str, Field, f32); 7] = [
        ("sum", |s| &mut s.sum, 0.5),
        ("sum", |s| &mut s.sum, f32::INFINITY),
        ("sum", |s| &mut s.sum, f32::NAN),
        ("others_sum", |s| &mut s.others_sum, -1.0),
        ("others_sum", |s| &mut s.others_sum, 1e30),
        ("others_sum", |s| &mut s.others_sum, f32::NAN),
        ("max", |s| &mut s.max, f32::NAN),
    ];
    for (field, place, v) in cases {
        let mut bad = stats;
        *place(&mut bad) = v;
        let e = check(1, &bad, 1.0, V);
        assert!(
            matches!(e, BnfError::InvalidStats { row: 0, what, value }
                if what == field && value.to_bits() == v.to_bits()),
            "{field} = {v}: {e:?}"
        );
    }
    // And the good call writes w * (pi - onehot).
    let mut out = vec![0.0f32; V];
    row_grad(&z, 1, &stats, 2.0, &mut out).unwrap();
    let total: f32 = out.iter().sum();
    assert!(total.abs() < 1e-5 && out[1] < 0.0);
}

/// `is_scored` is total: a row past the end of the batch, or of a too-short mask, does not
/// count (no index panic), for both batch types.
#[test]
fn is_scored_never_panics() {
    let (y, s, mask) = ([0u32; 3], [1.0f32; 3], [true, false]);
    let b = Batch {
        vocab: 2,
        targets: &y,
        weights: &s,
        scored: Some(&mask),
        num_responses: 1,
    };
    assert!(b.is_scored(0));
    assert!(!b.is_scored(1));
    assert!(!b.is_scored(2), "past the mask");
    assert!(!b.is_scored(usize::MAX));
    let all = Batch { scored: None, ..b };
    assert!(all.is_scored(2));
    assert!(!all.is_scored(3), "past the batch");
    let pb = bnf_core::PrefBatch {
        vocab: 2,
        targets: &y,
        scored: Some(&mask),
        offsets: &[0, 3],
        labels: &[1.0],
        pairs: None,
        ref_logp: None,
    };
    assert!(pb.is_scored(0) && !pb.is_scored(2) && !pb.is_scored(usize::MAX));
    let pb_all = bnf_core::PrefBatch { scored: None, ..pb };
    assert!(pb_all.is_scored(2) && !pb_all.is_scored(3));
}
