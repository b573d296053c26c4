//! Issue 17, point 3: the loss value of confident rows (`pi_y > 0.99`) against the f64 oracle,
//! with a relative tolerance.
//!
//! `ell = log pi_y` is about `-(1 - pi_y)` there. Taken as `-ln S` with `S = 1 + S'` rounded to
//! `f32`, it carried an absolute error of up to `2^-24` (about `6e-8`), a relative error of
//! `6e-8 / (1 - pi_y)`: `6e-6` at `pi_y = 0.99`, 100% once `1 - pi_y < 2^-24` (`ell = 0`).
//! `1 - f_y = -expm1(ell - rho)` inherited it, and with it the row loss. Core now takes
//! `ell = -log1p(S')` when the target is the row's maximum, which keeps `S'`'s own relative
//! precision (a few ulp from the blocked sums): the tolerances below are relative, `2e-6` on
//! `ell` and `2e-5` on the row loss (whose `1 - f_y` term multiplies the error of `ell` by
//! the others' mean log-prob, up to about 40 here), and the old arithmetic fails them.

use bnf_core::{bnf_scalars, row_stats};
use bnf_tests::gen::{bnf_one, f64s, Row};
use bnf_tests::oracle;
use proptest::prelude::*;

const ELL_REL_TOL: f64 = 2e-6;
const LOSS_REL_TOL: f64 = 2e-5;

/// A confident row: `V` in `2..=1100` (across core's 512-logit reduction blocks), other logits
/// in `[-8, 8]`, the target's logit above their maximum by `ln V + margin` with `margin` in
/// `[5, 7]` (so `1 - pi_y` spans about `1e-6` to `7e-3`); `rho = t * ell` for `t` in `[0, 2]`
/// (`t < 1`: `pi_ref > pi_y`, so `f_y < 1`; `t > 1`: `f_y = 1`); weight `±1/len`.
///
/// Why not closer to 1: the oracle's literal `log_softmax` sums `1 + S'` in `f64`, whose
/// rounding (up to `V * 1.1e-16` absolute) would be a relative error above the tolerance once
/// `S'` is below about `1e-8`. [`ell_keeps_its_bits_as_pi_y_tends_to_one`] goes to
/// `1 - pi_y = 1e-12` with a closed form instead.
fn confident_row() -> impl Strategy<Value = Row> {
    (2usize..=1100)
        .prop_flat_map(|v| {
            (
                prop::collection::vec(-8.0f32..=8.0, v),
                0..v,
                5.0f64..=7.0,
                0.0f64..=2.0,
                prop::bool::ANY,
                1..=8usize,
            )
        })
        .prop_map(|(mut z, y, margin, t, preferred, len)| {
            let v = z.len();
            let others = z
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != y)
                .map(|(_, &x)| x)
                .fold(f32::NEG_INFINITY, f32::max);
            z[y] = (others as f64 + (v as f64).ln() + margin) as f32;
            let ell = oracle::log_softmax(&f64s(&z))[y];
            Row {
                z,
                y,
                rho: (t * ell) as f32,
                s: if preferred { 1.0 } else { -1.0 } / len as f32,
            }
        })
}

fn rel_err(got: f32, want: f64) -> f64 {
    (got as f64 - want).abs() / want.abs()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `ell`, `lse` and the row loss (through the batch path and through `bnf_scalars`) of a
    /// confident row, relative to the oracle's.
    #[test]
    fn confident_rows_keep_the_loss_precise(r in confident_row()) {
        let z = f64s(&r.z);
        let lp = oracle::log_softmax(&z);
        let want_ell = lp[r.y];
        prop_assume!((1e-6..0.01).contains(&-want_ell.exp_m1()));
        let st = row_stats(&r.z, r.y).unwrap();
        prop_assert!(
            rel_err(st.ell, want_ell) <= ELL_REL_TOL,
            "V {} y {}: ell {:e} vs {:e} (relative error {:e})",
            r.z.len(), r.y, st.ell, want_ell, rel_err(st.ell, want_ell)
        );
        let want_lse = z[r.y] - want_ell;
        prop_assert!(rel_err(st.lse, want_lse) <= 1e-6, "lse {} vs {}", st.lse, want_lse);

        let want_ce = oracle::bnf_row_loss(&z, r.y, r.rho as f64, 1.0);
        let ce = bnf_scalars(&st, r.rho).cross_entropy;
        prop_assert!(
            rel_err(ce, want_ce) <= LOSS_REL_TOL,
            "V {} y {} rho {:e}: cross-entropy {:e} vs {:e} (relative error {:e})",
            r.z.len(), r.y, r.rho, ce, want_ce, rel_err(ce, want_ce)
        );
        let want = oracle::bnf_row_loss(&z, r.y, r.rho as f64, r.s as f64);
        let out = bnf_one(&r);
        prop_assert!(
            rel_err(out.loss, want) <= LOSS_REL_TOL,
            "V {} y {} rho {:e}: loss {:e} vs {:e} (relative error {:e})",
            r.z.len(), r.y, r.rho, out.loss, want, rel_err(out.loss, want)
        );
    }
}

/// Fixed rows of `V = 32000` with `1 - pi_y` from `1e-2` to `1e-12`: the target (token 0) at
/// logit 0, the row's maximum, the `V - 1` others equal at `d`. The reference is the closed form
/// `ell = -log1p((V - 1) e^d)` in `f64` (the literal oracle's `f64` sum of `1 + S'` would lose
/// more than the tolerance here); `ell` must be within `ELL_REL_TOL` of it, and never 0.
#[test]
fn ell_keeps_its_bits_as_pi_y_tends_to_one() {
    let v = 32000;
    for k in 2..=12 {
        let one_minus = 10f64.powi(-k);
        let d = ((one_minus / (1.0 - one_minus)) / (v - 1) as f64).ln() as f32;
        let mut z = vec![d; v];
        z[0] = 0.0;
        let want = -((v - 1) as f64 * (d as f64).exp()).ln_1p();
        let st = row_stats(&z, 0).unwrap();
        assert!(st.ell < 0.0, "1 - pi_y = {one_minus:e}: ell rounded to 0");
        assert!(
            rel_err(st.ell, want) <= ELL_REL_TOL,
            "1 - pi_y = {one_minus:e}: ell {:e} vs {want:e} (relative error {:e})",
            st.ell,
            rel_err(st.ell, want)
        );
    }
}
