//! BNF in `bnf-core` against the independent f64 oracle (paper eqs. 4, 6, 8, 9 and appendix A).
//!
//! Tolerances: core computes in f32 with a fast `exp` (a few ulp) and blocked sums, so
//! probabilities carry an absolute error of about 1e-6 and `c` a relative error of about 1e-5
//! for log-probs of moderate size. Gradients are compared with `|s| * 3e-5 + 1e-7` absolute;
//! losses with `3e-5` relative to `|s| * (1 + |loss|)`.

use bnf_core::{bnf_scalars, dynamic_target, row_stats, BLOCK};
use bnf_tests::gen::{bnf_one, f64s, row, row_with_target, Row};
use bnf_tests::oracle;
use proptest::prelude::*;

fn grad_tol(s: f32) -> f64 {
    s.abs() as f64 * 3e-5 + 1e-7
}

fn loss_tol(s: f32, want: f64) -> f64 {
    3e-5 * (s.abs() as f64 + want.abs())
}

/// A row whose vocabulary is just below, at, just above or over two reduction blocks (core
/// sums `BLOCK = 512` logits in `f32` lanes, then blocks in `f64`), with the target on a block
/// edge: the first or last token of a block or of the row, or their neighbours.
fn block_edge_row() -> impl Strategy<Value = Row> {
    prop::sample::select(vec![BLOCK - 1, BLOCK, BLOCK + 1, 1100]).prop_flat_map(|v| {
        let edges = [
            0,
            1,
            BLOCK - 2,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK - 1,
            2 * BLOCK,
        ];
        let mut ys: Vec<usize> = edges.into_iter().chain([v - 2, v - 1]).collect();
        ys.retain(|&y| y < v);
        row_with_target(v, 15.0, prop::sample::select(ys))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Eqs. 4 and 8 against the oracle where the row's sums cross block boundaries and the
    /// target (which the sums over the other tokens skip) sits on a block edge.
    #[test]
    fn loss_and_grad_match_oracle_at_block_edges(r in block_edge_row()) {
        let out = bnf_one(&r);
        let z = f64s(&r.z);
        let want = oracle::bnf_row_loss(&z, r.y, r.rho as f64, r.s as f64);
        prop_assert!(
            (out.loss as f64 - want).abs() <= loss_tol(r.s, want),
            "V {} y {}: loss {} vs {}", r.z.len(), r.y, out.loss, want
        );
        let g = oracle::bnf_row_grad(&z, r.y, r.rho as f64, r.s as f64);
        for (k, (got, w)) in out.grad.iter().zip(&g).enumerate() {
            prop_assert!(
                (*got as f64 - w).abs() <= grad_tol(r.s),
                "V {} y {}: grad[{}] {} vs {}", r.z.len(), r.y, k, got, w
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Appendix A.2: `f` is a distribution (non-negative, sums to 1), and it is eq. 6.
    #[test]
    fn f_is_a_distribution_and_matches_eq6(r in row(48, 15.0)) {
        let mut f = vec![0.0f32; r.z.len()];
        dynamic_target(&r.z, r.y, r.rho, &mut f).unwrap();
        let sum: f64 = f.iter().map(|&v| v as f64).sum();
        prop_assert!(f.iter().all(|&v| v >= 0.0));
        prop_assert!((sum - 1.0).abs() < 1e-5, "sum {}", sum);
        let want = oracle::dynamic_target(&f64s(&r.z), r.y, r.rho as f64);
        for (g, w) in f.iter().zip(&want) {
            prop_assert!((*g as f64 - w).abs() < 2e-6, "{} vs {}", g, w);
        }
    }

    /// Eq. 4: the loss equals `-s sum f log pi` with `f` materialised from eq. 6.
    #[test]
    fn loss_matches_oracle(r in row(48, 15.0)) {
        let out = bnf_one(&r);
        let want = oracle::bnf_row_loss(&f64s(&r.z), r.y, r.rho as f64, r.s as f64);
        prop_assert!((out.loss as f64 - want).abs() <= loss_tol(r.s, want), "{} vs {}", out.loss, want);
    }

    /// Eq. 8: the gradient is `s (pi - f)`.
    #[test]
    fn grad_matches_eq8(r in row(48, 15.0)) {
        let out = bnf_one(&r);
        let want = oracle::bnf_row_grad(&f64s(&r.z), r.y, r.rho as f64, r.s as f64);
        for (g, w) in out.grad.iter().zip(&want) {
            prop_assert!((*g as f64 - w).abs() <= grad_tol(r.s), "{} vs {}", g, w);
        }
    }

    /// The gradient is the derivative of the loss with `f` frozen (central differences in f64).
    #[test]
    fn grad_matches_finite_differences_with_f_frozen(r in row(16, 6.0)) {
        let out = bnf_one(&r);
        let z = f64s(&r.z);
        let f = oracle::dynamic_target(&z, r.y, r.rho as f64);
        let fd = oracle::central_diff(&z, 1e-5, |zz| oracle::row_loss_frozen(zz, &f, r.s as f64));
        for (g, w) in out.grad.iter().zip(&fd) {
            prop_assert!((*g as f64 - w).abs() <= grad_tol(r.s) + 1e-7, "{} vs {}", g, w);
        }
    }

    /// Eq. 9 on the target, and appendix A.4: the off-target magnitudes sum to the target's.
    #[test]
    fn eq9_and_appendix_a4(r in row(48, 15.0)) {
        let out = bnf_one(&r);
        let pi = oracle::softmax(&f64s(&r.z));
        let want = oracle::eq9_target_magnitude(pi[r.y], (r.rho as f64).exp(), r.s as f64);
        let g_y = out.grad[r.y].abs() as f64;
        prop_assert!((g_y - want).abs() <= grad_tol(r.s), "{} vs {}", g_y, want);
        let others: f64 = out.grad.iter().enumerate()
            .filter(|&(k, _)| k != r.y).map(|(_, g)| g.abs() as f64).sum();
        prop_assert!((others - g_y).abs() <= grad_tol(r.s) * 2.0, "{} vs {}", others, g_y);
    }

    /// The gradient is a scaled cross-entropy gradient: `s c (pi - onehot)`, with `c` from the
    /// oracle (`min(1, odds(pi_y) / odds(pi_ref))` on its own `log_softmax`), and the `c`
    /// reported per row equal to it.
    #[test]
    fn grad_is_scaled_cross_entropy(r in row(48, 15.0)) {
        let out = bnf_one(&r);
        let d = out.rows[0];
        let z = f64s(&r.z);
        let pi = oracle::softmax(&z);
        let c = oracle::gradient_scale(&z, r.y, r.rho as f64);
        if pi[r.y] < 0.999 && pi[r.y] > 1e-30 {
            prop_assert!((d.c as f64 - c).abs() <= 1e-4 * c + 1e-7, "c {} vs {}", d.c, c);
        }
        for (k, g) in out.grad.iter().enumerate() {
            let onehot = if k == r.y { 1.0 } else { 0.0 };
            let want = r.s as f64 * c * (pi[k] - onehot);
            prop_assert!((*g as f64 - want).abs() <= grad_tol(r.s), "{} vs {}", g, want);
        }
    }

    /// At `pi = pi_ref` BNF's gradient is NLL's times `label / |y|` (`rho` is the oracle's
    /// `log pi_y`, rounded to `f32`).
    #[test]
    fn at_reference_grad_equals_scaled_nll(mut r in row(48, 10.0)) {
        r.rho = oracle::log_softmax(&f64s(&r.z))[r.y] as f32;
        let out = bnf_one(&r);
        let pi = oracle::softmax(&f64s(&r.z));
        for (k, g) in out.grad.iter().enumerate() {
            let nll = pi[k] - if k == r.y { 1.0 } else { 0.0 };
            prop_assert!((*g as f64 - r.s as f64 * nll).abs() <= grad_tol(r.s), "{} vs {}", g, nll);
        }
    }

    /// The bidirectional negative feedback: along `z_y = t`, `|g_y|` rises while
    /// `pi_y < pi_ref` and falls once `pi_y >= pi_ref`, so it peaks at `pi_y = pi_ref`.
    #[test]
    fn target_gradient_peaks_at_reference(mut r in row(24, 4.0), rho in -6.0f32..-0.05) {
        prop_assume!(r.z.len() >= 2);
        r.rho = rho;
        let mut last: Option<(f64, f64)> = None;
        let mut peak = (0.0f64, 0.0f64);
        for i in 0..400 {
            r.z[r.y] = -20.0 + 0.1 * i as f32;
            let out = bnf_one(&r);
            let pi_y = out.rows[0].pi_y as f64;
            let g = out.grad[r.y].abs() as f64 / r.s.abs() as f64;
            let pi_ref = (rho as f64).exp();
            if let Some((p0, g0)) = last {
                if pi_y < pi_ref { prop_assert!(g >= g0 - 1e-6, "rising side: {} < {}", g, g0); }
                if p0 >= pi_ref { prop_assert!(g <= g0 + 1e-6, "falling side: {} > {}", g, g0); }
            }
            if g > peak.1 { peak = (pi_y, g); }
            last = Some((pi_y, g));
        }
        // The peak value is eq. 9 at pi_y = pi_ref: 1 - pi_ref (within one grid step).
        let pi_ref = (rho as f64).exp();
        prop_assert!(peak.1 <= 1.0 - pi_ref + 1e-5);
        prop_assert!((peak.0 - pi_ref).abs() < 0.1, "peak at pi_y={} ref={}", peak.0, pi_ref);
    }

    /// `bnf_scalars` reports `f_y = min(pi_y / pi_ref, 1)`. Tolerance: `f_y = e^(ell - rho)`,
    /// so an absolute error in the f32 `ell` becomes a relative error in `f_y`; `ell = z_y - lse`
    /// is rounded at the size of `lse` (a few ulp of `|ell| + |rho|`, 3 eps each), plus the
    /// exponential's own rounding (1e-6). A proptest run found `ell = -17.3`, `rho = -7.2` off by
    /// 2.2e-6 relative, which a flat 2e-6 rejected.
    #[test]
    fn f_y_is_clipped_ratio(r in row(48, 15.0)) {
        let stats = row_stats(&r.z, r.y).unwrap();
        let b = bnf_scalars(&stats, r.rho);
        let pi = oracle::softmax(&f64s(&r.z));
        let want = (pi[r.y] / (r.rho as f64).exp()).min(1.0);
        let size = stats.ell.abs() as f64 + r.rho.abs() as f64 + 1.0;
        let rel = 1e-6 + 3.0 * f32::EPSILON as f64 * size;
        prop_assert!((b.f_y as f64 - want).abs() <= rel * want.max(1e-30) + 1e-12, "{} vs {}", b.f_y, want);
    }
}

/// Section 2.3's numbers, worked by hand: a dispreferred token the policy has already pushed
/// from `pi_ref = 0.8` down to `pi_y = 0.05`, and a preferred one raised from 0.05 to 0.8.
#[test]
fn paper_section_2_3_numbers_by_hand() {
    // V = 2, so the "others" are a single token with probability 1 - pi_y.
    let row = |p: f32, rho: f32, s: f32| bnf_tests::gen::Row {
        z: vec![p.ln(), (1.0 - p).ln()],
        y: 0,
        rho,
        s,
    };
    // Dispreferred, |y| = 1: pi_y = 0.05 below pi_ref = 0.8.
    let out = bnf_one(&row(0.05, 0.8f32.ln(), -1.0));
    let d = out.rows[0];
    // f_y = 0.05 / 0.8 = 0.0625; c = (0.05/0.95) / (0.8/0.2) = 0.0131579;
    // |g_y| = pi_y (1 - pi_ref) / pi_ref = 0.05 * 0.2 / 0.8 = 0.0125 (eq. 9).
    assert!((d.f_y - 0.0625).abs() < 1e-6);
    assert!((d.c - 0.013_157_9).abs() < 1e-6);
    assert!((out.grad[0] - 0.0125).abs() < 1e-6, "{}", out.grad[0]);
    assert!((out.grad[1] + 0.0125).abs() < 1e-6);
    // loss = -s (f_y ln 0.05 + (1 - f_y) ln 0.95) = 0.0625 * -2.995732 + 0.9375 * -0.051293
    assert!(
        (out.loss - (-0.187_233 - 0.048_087)).abs() < 2e-6,
        "{}",
        out.loss
    );

    // Preferred: pi_y = 0.8 above pi_ref = 0.05: f = onehot, c = 1, |g_y| = 1 - 0.8 (NLL's).
    let out = bnf_one(&row(0.8, 0.05f32.ln(), 1.0));
    assert_eq!(out.rows[0].f_y, 1.0);
    assert_eq!(out.rows[0].c, 1.0);
    assert!((out.grad[0] + 0.2).abs() < 1e-6);
    assert!((out.loss + 0.8f32.ln()).abs() < 1e-6);

    // The same preferred token at the reference (pi_y = pi_ref = 0.8): the peak, 1 - 0.8.
    let out = bnf_one(&row(0.8, 0.8f32.ln(), 1.0));
    assert!((out.grad[0] + 0.2).abs() < 1e-6);
    // Preferred but below the reference (0.05 < 0.8): shrunk to 0.05 * 0.2 / 0.8 = 0.0125.
    let out = bnf_one(&row(0.05, 0.8f32.ln(), 1.0));
    assert!((out.grad[0] + 0.0125).abs() < 1e-6);
}
