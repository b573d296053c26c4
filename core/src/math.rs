//! Scalar maths shared by every loss: the vectorisable `exp` used in the hot loops, and the
//! stable one-off functions (`ln`, `log1mexp`, `log_sigmoid`) used once per row or per response.
//!
//! Everything here goes through `libm`, so `std` and `no_std` builds give the same bits.

/// `exp(x)` for `f32`, branch-free so that loops over a row auto-vectorise.
///
/// Range reduction `x = n ln2 + r` with `|r| <= ln2 / 2`, a degree-7 Taylor polynomial for
/// `e^r` (truncation error below 2^-26), and `2^n` built from the exponent bits. Results below
/// `e^-87.3` (the smallest normal `f32`) flush to 0; inputs above 88.7 saturate at
/// `f32::MAX`-scale values. Relative error is within a few ulp of the correctly rounded result
/// (checked against `f64` in the tests). NaN in gives NaN out.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // ln 2 rounded so that n * LN2_HI is exact for |n| <= 128
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 * 2^23: adding it rounds to the nearest integer and leaves that integer in the
    // low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let xc = if x > 88.7 { 88.7 } else { x };
    let xc = if xc < -87.5 { -87.5 } else { xc };
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32) - 0x4B40_0000;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    // Horner form of 1 + r + r^2/2! + ... + r^7/7!
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // n is in [-126, 128]; 2^n as two normal factors 2^(n/2) * 2^(n - n/2).
    let h = ni >> 1;
    let a = f32::from_bits(((h + 127) as u32) << 23);
    let b = f32::from_bits(((ni - h + 127) as u32) << 23);
    let y = p * a * b;
    // NaN compares false everywhere, so it flows through p and comes out NaN.
    if x < -87.33 {
        0.0
    } else {
        y
    }
}

/// Natural logarithm.
#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// `e^x` through `libm` (used once per row, where exactness matters more than speed).
#[inline]
pub fn exp_precise(x: f32) -> f32 {
    libm::expf(x)
}

/// `e^x - 1`, exact near 0.
#[inline]
pub fn exp_m1(x: f32) -> f32 {
    libm::expm1f(x)
}

/// `ln(1 + x)`, exact near 0.
#[inline]
pub fn ln_1p(x: f32) -> f32 {
    libm::log1pf(x)
}

/// `log(1 - e^x)` for `x <= 0`, stable at both ends (Maechler's rule):
/// `log(-expm1(x))` near 0, `log1p(-exp(x))` below `-ln 2`. `log1mexp(0) = -inf`,
/// `log1mexp(-inf) = 0`.
#[inline]
pub fn log1mexp(x: f32) -> f32 {
    if x > -core::f32::consts::LN_2 {
        ln(-exp_m1(x))
    } else {
        ln_1p(-exp_precise(x))
    }
}

/// `log(q / (1 - q))` from `x = log q <= 0`: `x - log1mexp(x)`. `+inf` at `x = 0`, `-inf` at
/// `x = -inf`.
#[inline]
pub fn log_odds(x: f32) -> f32 {
    if x == f32::NEG_INFINITY {
        return f32::NEG_INFINITY;
    }
    x - log1mexp(x)
}

/// `log(sigmoid(x)) = -log(1 + e^-x)`, stable for any finite `x` (never `-inf` for finite
/// input above `-f32::MAX`).
#[inline]
pub fn log_sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        -ln_1p(exp_precise(-x))
    } else {
        x - ln_1p(exp_precise(x))
    }
}

/// The logistic function `1 / (1 + e^-x)`, stable for any `x`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + exp_precise(-x))
    } else {
        let e = exp_precise(x);
        e / (1.0 + e)
    }
}
