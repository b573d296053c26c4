//! Issue 20's findings, each as a test: finite inputs whose exact result does not fit `f32`
//! (or the gradient's dtype) are an `Overflow` error naming the site and quantity, and every
//! output keeps what it held. The expected overflow is established independently, in `f64`
//! from the definitions (e.g. NLL's loss `-s log pi_y`), not from the code under test.

use bnf_core::{
    bf16, f16, forward, forward_backward, forward_backward_in_place, objective_forward_backward,
    row_grad, row_stats, Batch, BnfError, IpoConfig, Objective, PrefBatch, RowDiag, RowLoss, Site,
};

/// `-log pi_y` in `f64`, literally.
fn nll_f64(z: &[f32], y: usize) -> f64 {
    let m = z.iter().fold(f64::MIN, |a, &b| a.max(b as f64));
    let lse = m + z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
    lse - z[y] as f64
}

fn batch<'a>(t: &'a [u32], w: &'a [f32], vocab: usize) -> Batch<'a> {
    Batch {
        vocab,
        targets: t,
        weights: w,
        scored: None,
        num_responses: 1,
    }
}

#[test]
fn huge_weights_overflow_the_loss_and_nothing_is_written() {
    let z = [0.0f32, 100.0];
    // NLL's loss is 1e37 * 100 = 1e39 in f64: beyond f32.
    assert!(1e37 * nll_f64(&z, 0) > f32::MAX as f64);
    let (t, w) = ([0u32], [1e37f32]);
    // BNF with `rho = -inf` has `f = onehot`: its loss is NLL's. (With `rho = -1`, `f_y` is
    // `e^-99` and the loss is tiny: no overflow, rightly.)
    let ref_logp = [f32::NEG_INFINITY];
    for loss in [
        RowLoss::Nll,
        RowLoss::Bnf {
            ref_logp: &ref_logp,
        },
    ] {
        let mut diag = [RowDiag::default(); 1];
        let mut grad = [7.0f32; 2];
        let e = forward_backward(&z, &batch(&t, &w, 2), loss, &mut grad, &mut diag);
        assert!(
            matches!(
                e,
                Err(BnfError::Overflow {
                    at: Site::Row(0),
                    dtype: "f32",
                    ..
                })
            ),
            "{e:?}"
        );
        assert_eq!(grad, [7.0; 2]);
        assert_eq!(diag, [RowDiag::default(); 1]);
        let mut zz = z;
        let e = forward_backward_in_place(&mut zz, &batch(&t, &w, 2), loss, &mut diag);
        assert!(matches!(e, Err(BnfError::Overflow { .. })), "{e:?}");
        assert_eq!(zz, z);
        let e = forward(&z, &batch(&t, &w, 2), loss, &mut diag);
        assert!(matches!(e, Err(BnfError::Overflow { .. })), "{e:?}");
    }
    // Opposite weights: each term is +-1e39 (their sum would be inf - inf = NaN in f32).
    let z2 = [0.0f32, 100.0, 0.0, 100.0];
    let (t2, w2) = ([0u32, 0], [1e37f32, -1e37]);
    let mut diag = [RowDiag::default(); 2];
    let mut grad = [7.0f32; 4];
    let e = forward_backward(&z2, &batch(&t2, &w2, 2), RowLoss::Nll, &mut grad, &mut diag);
    assert!(
        matches!(
            e,
            Err(BnfError::Overflow {
                at: Site::Row(0),
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(grad, [7.0; 4]);
}

/// A weight that fits `f32` with a loss that fits too (the exact check, past the bound):
/// accepted, with the loss of the definition.
#[test]
fn huge_weights_whose_results_fit_are_accepted() {
    let z = [0.0f32, 0.0];
    let want = 1e37 * nll_f64(&z, 0); // 6.9e36
    let (t, w) = ([0u32], [1e37f32]);
    let mut diag = [RowDiag::default(); 1];
    let mut grad = [0.0f32; 2];
    let loss = forward_backward(&z, &batch(&t, &w, 2), RowLoss::Nll, &mut grad, &mut diag).unwrap();
    assert!(
        ((loss as f64 - want) / want).abs() < 1e-5,
        "{loss} vs {want}"
    );
    assert!(grad.iter().all(|g| g.is_finite()));
}

/// The bf16 case: the gradient at column 1 would be `FLT_MAX pi_1 ~ FLT_MAX`, above
/// bf16's largest (3.39e38), and the loss `FLT_MAX * 30` is beyond f32 too (NLL's loss is
/// always at least the gradient's magnitude, `-ln p >= 1 - p`): an overflow of row 0.
#[test]
fn bf16_gradient_of_flt_max_weight_is_an_overflow() {
    let z = [bf16::from_f32(0.0), bf16::from_f32(30.0)];
    let (t, w) = ([0u32], [f32::MAX]);
    let mut grad = [bf16::from_f32(7.0); 2];
    let mut diag = [RowDiag::default(); 1];
    let e = forward_backward(&z, &batch(&t, &w, 2), RowLoss::Nll, &mut grad, &mut diag);
    assert!(f32::MAX > bf16::MAX.to_f32());
    assert!(
        matches!(
            e,
            Err(BnfError::Overflow {
                at: Site::Row(0),
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(grad, [bf16::from_f32(7.0); 2]);
}

/// A gradient beyond f16 with a loss that fits f32: weight 2e5, two equal logits, so the
/// gradient is `2e5 * 0.5 = 1e5 > 65504` (f16's largest) while the loss is `2e5 ln 2`.
#[test]
fn f16_gradient_beyond_65504_is_an_overflow_naming_f16() {
    let z = [f16::from_f32(0.0); 2];
    let (t, w) = ([0u32], [2e5f32]);
    let mut grad = [f16::from_f32(7.0); 2];
    let mut diag = [RowDiag::default(); 1];
    let e = forward_backward(&z, &batch(&t, &w, 2), RowLoss::Nll, &mut grad, &mut diag);
    assert!(
        matches!(
            e,
            Err(BnfError::Overflow {
                at: Site::Row(0),
                dtype: "f16",
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(grad, [f16::from_f32(7.0); 2]);
    // Loss only: no gradient, no overflow; the loss is the definition's.
    let loss = forward(&z, &batch(&t, &w, 2), RowLoss::Nll, &mut diag).unwrap();
    let want = 2e5 * std::f64::consts::LN_2;
    assert!(((loss as f64 - want) / want).abs() < 1e-5, "{loss}");
    // Half the weight: 5e4 fits.
    let w = [1e5f32];
    forward_backward(&z, &batch(&t, &w, 2), RowLoss::Nll, &mut grad, &mut diag).unwrap();
    assert!(grad.iter().all(|g| g.to_f32().is_finite()));
}

#[test]
fn row_grad_of_a_max_weight_is_finite_or_an_overflow() {
    let z = [8.68102f32, -60.063267, 23.358229, 22.11928];
    let s = row_stats(&z, 1).unwrap();
    let mut out = [7.0f32; 4];
    match row_grad(&z, 1, &s, 3.4e38, &mut out) {
        Ok(()) => assert!(out.iter().all(|g| g.is_finite()), "{out:?}"),
        Err(e) => {
            assert!(
                matches!(e, BnfError::Overflow { dtype: "f32", .. }),
                "{e:?}"
            );
            assert_eq!(out, [7.0; 4]);
        }
    }
    // The weight: the target's entry -(w/S) S' rounds past FLT_MAX.
    let e = row_grad(&z, 1, &s, 3.4e38, &mut out);
    assert!(e.is_err() || out[1].is_finite());
}

#[test]
fn finite_logits_spanning_more_than_f32_are_an_overflow_not_non_finite() {
    let e = row_stats(&[3e38f32, -1e38], 1).unwrap_err();
    match e {
        BnfError::Overflow {
            at: Site::Row(0),
            value,
            dtype: "f32",
            ..
        } => {
            assert_eq!(value, -1e38f32 as f64 - 3e38f32 as f64)
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("must be finite"), "{e}");
    // Within f32's span: fine.
    assert!(row_stats(&[3e38f32, -3e37], 1).is_ok());
}

#[test]
fn ipo_with_a_huge_log_ratio_names_the_pair() {
    // Two responses of one row each; the chosen row's target is 1e20 below its max.
    let z = [0.0f32, 1e20, 0.0, 0.0];
    let pb = PrefBatch {
        vocab: 2,
        targets: &[0, 0],
        scored: None,
        offsets: &[0, 1, 2],
        labels: &[1.0, -1.0],
        pairs: Some(&[[0, 1]]),
        ref_logp: Some(&[-0.5, -0.5]),
    };
    // u = (lp_w - rp_w) - (lp_l - rp_l) - 1/(2 tau) ~ -1e20, so u^2 ~ 1e40 > FLT_MAX.
    assert!((1e20f64).powi(2) > f32::MAX as f64);
    let mut grad = [7.0f32; 4];
    let ipo = Objective::Ipo(IpoConfig::DEFAULT);
    let e = objective_forward_backward(&z, &pb, &ipo, &mut grad);
    assert!(
        matches!(
            e,
            Err(BnfError::Overflow {
                at: Site::Pair(0),
                what: "loss term",
                ..
            })
        ),
        "{e:?}"
    );
    assert!(!e.unwrap_err().to_string().contains("weight"));
    assert_eq!(grad, [7.0; 4]);
}
