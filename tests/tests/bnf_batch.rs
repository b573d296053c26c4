//! Batch semantics: the loss is the mean over responses of each response's summed row losses,
//! each row carrying `label / |y|` with `|y|` the response's *own* scored length (not the
//! shortest in the batch); any mix of preferred and dispreferred responses, paired or not.

use bnf_core::{bnf, nll, response_weights, Batch, DISPREFERRED, PREFERRED};
use bnf_tests::gen::f64s;
use bnf_tests::oracle;

#[test]
fn batch_loss_is_mean_over_responses_with_own_lengths() {
    let v = 7;
    // Three responses: rows 0..4 (prompt row 0 masked, |y| = 3), 4..6 (|y| = 2), 6..7 (|y| = 1).
    let rows = 7;
    let z: Vec<f32> = (0..rows * v)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
        .collect();
    let y: Vec<u32> = (0..rows as u32).map(|r| (r * 3) % v as u32).collect();
    let rho: Vec<f32> = (0..rows).map(|r| -0.3 - r as f32 * 0.4).collect();
    let scored = [false, true, true, true, true, true, true];
    let offsets = [0, 4, 6, 7];
    let labels = [PREFERRED, DISPREFERRED, PREFERRED];
    let mut w = vec![0.0; rows];
    let n = response_weights(&offsets, &labels, Some(&scored), &mut w).unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        w,
        vec![0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, -0.5, -0.5, 1.0]
    );
    let batch = Batch {
        vocab: v,
        targets: &y,
        weights: &w,
        scored: Some(&scored),
        num_responses: n,
    };
    let out = bnf(&z, &batch, &rho).unwrap();

    // Oracle: per response, label/|y| * sum of its scored rows' cross-entropies; then the mean.
    let mut total = 0.0;
    let mut grads = vec![0.0f64; rows * v];
    for i in 0..3 {
        let rs: Vec<usize> = (offsets[i]..offsets[i + 1])
            .filter(|&r| scored[r])
            .collect();
        let s = labels[i] as f64 / rs.len() as f64;
        for &r in &rs {
            let zr = f64s(&z[r * v..(r + 1) * v]);
            total += oracle::bnf_row_loss(&zr, y[r] as usize, rho[r] as f64, s);
            let g = oracle::bnf_row_grad(&zr, y[r] as usize, rho[r] as f64, s / 3.0);
            grads[r * v..(r + 1) * v].copy_from_slice(&g);
        }
    }
    let want = total / 3.0;
    assert!(
        (out.loss as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
        "{} vs {want}",
        out.loss
    );
    for (g, w) in out.grad.iter().zip(&grads) {
        assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn nll_is_bnf_with_one_hot_target() {
    // NLL's loss is -sum s ell / n; its gradient is BNF's at rho = -inf (f = onehot, c = 1).
    let v = 9;
    let z: Vec<f32> = (0..3 * v)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) * 0.5)
        .collect();
    let y = [1u32, 8, 0];
    let w = [0.5f32, 0.5, 1.0];
    let batch = Batch {
        vocab: v,
        targets: &y,
        weights: &w,
        scored: None,
        num_responses: 2,
    };
    let a = nll(&z, &batch).unwrap();
    let b = bnf(&z, &batch, &[f32::NEG_INFINITY; 3]).unwrap();
    assert_eq!(a.grad, b.grad);
    let mut want = 0.0;
    for r in 0..3 {
        let lp = oracle::log_softmax(&f64s(&z[r * v..(r + 1) * v]));
        want -= w[r] as f64 * lp[y[r] as usize];
    }
    want /= 2.0;
    assert!((a.loss as f64 - want).abs() < 1e-5, "{} vs {want}", a.loss);
    assert!((b.loss as f64 - want).abs() < 1e-5);
}
