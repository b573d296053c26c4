//! The crate's own `exp` and stable helpers against `f64`.
use bnf_core::math;

#[test]
fn fast_exp_is_within_a_few_ulp_of_f64() {
    let mut worst = 0.0f64;
    let mut x = -87.3f32;
    while x < 88.5 {
        let got = math::exp(x) as f64;
        let want = (x as f64).exp();
        let rel = ((got - want) / want).abs();
        worst = worst.max(rel);
        x += 0.000_731;
    }
    assert!(
        worst < 4.0 * f32::EPSILON as f64,
        "worst relative error {worst}"
    );
}

#[test]
fn fast_exp_edges() {
    assert_eq!(math::exp(0.0), 1.0);
    assert_eq!(math::exp(-1e4), 0.0);
    assert_eq!(math::exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(math::exp(-f32::MAX), 0.0);
    assert!(math::exp(f32::NAN).is_nan());
    // Just above the flush threshold the result is a small normal number, not 0.
    let v = math::exp(-87.0);
    assert!(v > 0.0 && ((v as f64) / (-87.0f64).exp() - 1.0).abs() < 1e-6);
}

#[test]
fn log1mexp_and_log_odds_are_stable() {
    for &x in &[-1e-30f32, -1e-7, -0.1, -0.69, -0.7, -5.0, -50.0, -1e4] {
        let xd = x as f64;
        let want = if xd > -0.5 {
            (-xd.exp_m1()).ln()
        } else {
            (-xd.exp()).ln_1p()
        };
        let got = math::log1mexp(x) as f64;
        assert!(
            (got - want).abs() <= 1e-5 * want.abs(),
            "x={x} got={got} want={want}"
        );
    }
    assert_eq!(math::log1mexp(0.0), f32::NEG_INFINITY);
    assert_eq!(math::log1mexp(f32::NEG_INFINITY), 0.0);
    assert_eq!(math::log_odds(0.0), f32::INFINITY);
    assert_eq!(math::log_odds(f32::NEG_INFINITY), f32::NEG_INFINITY);
}

#[test]
fn log_sigmoid_is_stable() {
    for &x in &[-1e4f32, -100.0, -3.0, 0.0, 3.0, 100.0, 1e4] {
        let xd = x as f64;
        let want = if xd >= 0.0 {
            -(-xd).exp().ln_1p()
        } else {
            xd - xd.exp().ln_1p()
        };
        let got = math::log_sigmoid(x) as f64;
        assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-30), "x={x}");
        let s = math::sigmoid(x) as f64;
        assert!((s - 1.0 / (1.0 + (-xd).exp())).abs() < 1e-7);
    }
}
