//! The two row primitives every objective is built from (DESIGN.md section 2):
//!
//! 1. [`row_stats`]: one read of a row gives `m = max z`, `S = sum e^(z_j - m)`, the sums over
//!    the *other* tokens `S'` and `T'` (two contiguous ranges, `[0, y)` and `(y, V)`), and from
//!    them `lse` and `ell = log pi_y`;
//! 2. [`row_grad`] / [`row_grad_in_place`]: write `w * (pi - onehot(y))`.
//!
//! Reductions use 8 `f32` lanes inside blocks of [`BLOCK`] elements and an `f64` total across
//! blocks, always in the same order, so results never depend on threads or call sites.

use crate::check;
use crate::dtype::Logit;
use crate::error::BnfError;
use crate::math;
use crate::simd::dispatch;
use crate::stats::RowStats;

/// Elements per inner reduction block (its 8 lanes are summed in `f32`, blocks in `f64`).
pub const BLOCK: usize = 512;
const LANES: usize = 8;
/// Logit differences below this are clamped, so that a `-inf` logit (a token masked out of the
/// vocabulary) gives `e = 0` and `e * d = 0` instead of NaN. NaN is not clamped. The kernels'
/// `BNF_D_FLOOR` (a test in `kernels/tests/core.rs` holds them equal).
pub const D_FLOOR: f32 = -f32::MAX;

/// Lane-wise max of a slice, as `f32`, and whether it holds a NaN (which the max skips).
#[inline(always)]
fn max_of_loop<T: Logit>(z: &[T]) -> (f32, bool) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut nan = [false; LANES];
    let chunks = z.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            let v = c[k].to_f32();
            lanes[k] = if v > lanes[k] { v } else { lanes[k] };
            nan[k] |= v.is_nan();
        }
    }
    let mut m = f32::NEG_INFINITY;
    let mut any_nan = nan.iter().any(|&n| n);
    for v in rest.iter().map(|v| v.to_f32()).chain(lanes) {
        m = if v > m { v } else { m };
        any_nan |= v.is_nan();
    }
    (m, any_nan)
}

/// `out[j] = e^(z_j - m)`, with `z_j - m` clamped at [`D_FLOOR`].
#[inline(always)]
fn fill_exps<T: Logit>(z: &[T], m: f32, out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(z) {
        *o = exp_clamped(v.to_f32() - m);
    }
}

/// `(sum e_j, sum e_j d_j)` over one block, `d_j = z_j - m` clamped, `e_j = e^(d_j)` given in
/// `e`: 8 lanes, then the lanes in order.
#[inline(always)]
fn block_sums<T: Logit>(z: &[T], m: f32, e: &[f32]) -> (f32, f32) {
    let mut s = [0.0f32; LANES];
    let mut t = [0.0f32; LANES];
    let zc = z.chunks_exact(LANES);
    let (z_rest, e_rest) = (zc.remainder(), &e[e.len() - zc.remainder().len()..]);
    for (cz, ce) in zc.zip(e.chunks_exact(LANES)) {
        for k in 0..LANES {
            let d = clamp_d(cz[k].to_f32() - m);
            s[k] += ce[k];
            t[k] += ce[k] * d;
        }
    }
    for (k, (v, &ek)) in z_rest.iter().zip(e_rest).enumerate() {
        let d = clamp_d(v.to_f32() - m);
        s[k] += ek;
        t[k] += ek * d;
    }
    let (mut bs, mut bt) = (0.0f32, 0.0f32);
    for k in 0..LANES {
        bs += s[k];
        bt += t[k];
    }
    (bs, bt)
}

/// `(sum e^(z_j - m), sum e^(z_j - m) (z_j - m))` over a contiguous range, in a fixed order
/// (blocks of [`BLOCK`] summed in `f64`). The exponentials go to `exps` (same length as `z`)
/// when given, else to a block-sized buffer on the stack; the sums are the same bits either way.
#[inline(always)]
fn exp_sums_loop<T: Logit>(z: &[T], m: f32, mut exps: Option<&mut [f32]>) -> (f64, f64) {
    let (mut s_total, mut t_total) = (0.0f64, 0.0f64);
    let mut local = [0.0f32; BLOCK];
    for (i, block) in z.chunks(BLOCK).enumerate() {
        let e = match exps.as_deref_mut() {
            Some(all) => &mut all[i * BLOCK..i * BLOCK + block.len()],
            None => &mut local[..block.len()],
        };
        fill_exps(block, m, e);
        let (bs, bt) = block_sums(block, m, e);
        s_total += bs as f64;
        t_total += bt as f64;
    }
    (s_total, t_total)
}

/// The row maximum `m`, after the checks [`row_stats`] makes (`EmptyVocab`,
/// `TargetOutOfRange`, `NonFiniteLogits` for NaN or `+inf` anywhere or `-inf` at `y`,
/// `Overflow` for finite logits with `z_y - m` beyond `f32`). Once it succeeds,
/// [`row_stats_from_max`] cannot fail on the same row.
pub(crate) fn row_max<T: Logit>(z: &[T], y: usize) -> Result<f32, BnfError> {
    check::target(z.len(), y)?;
    let (m, nan) = max_of(z);
    let z_y = z[y].to_f32();
    if nan || !m.is_finite() || !z_y.is_finite() {
        return Err(non_finite(z, y));
    }
    if !(z_y - m).is_finite() {
        return Err(BnfError::Overflow {
            at: crate::error::Site::Row(0),
            what: "log pi_y = z_y - max (the target's logit is more than f32::MAX below the \
                   row's largest)",
            value: z_y as f64 - m as f64,
            dtype: "f32",
        });
    }
    Ok(m)
}

/// The logit that makes a row with target `y` unusable, as `(column, value)`: the first NaN or
/// `+inf`, else the target's logit when it is `-inf`; `None` for a usable row (or `y` out of
/// range). The row checks find that a row is bad without looking for where; this is where
/// (core's errors, and the GPU driver's after a kernel's status).
pub fn bad_logit<T: Logit>(z: &[T], y: usize) -> Option<(usize, f32)> {
    let at = |j: usize| z.get(j).map(|v| (j, v.to_f32()));
    (0..z.len())
        .filter_map(at)
        .find(|&(_, v)| v.is_nan() || v == f32::INFINITY)
        .or_else(|| at(y).filter(|&(_, v)| v == f32::NEG_INFINITY))
}

/// `NonFiniteLogits` for row 0 at [`bad_logit`]'s column (the target, should it find none).
fn non_finite<T: Logit>(z: &[T], y: usize) -> BnfError {
    let (col, value) = bad_logit(z, y).unwrap_or((y, z[y].to_f32()));
    BnfError::NonFiniteLogits { row: 0, col, value }
}

/// Row statistics given the row maximum `m` from [`row_max`], writing `e^(z_j - m)` for every
/// `j` into `exps` (length `V`) when given, for a gradient written without a second `exp`
/// ([`row_grad_from_exps`]).
pub(crate) fn row_stats_from_max<T: Logit>(
    z: &[T],
    y: usize,
    m: f32,
    mut exps: Option<&mut [f32]>,
) -> Result<RowStats, BnfError> {
    let (lo, hi) = match exps.as_deref_mut() {
        Some(e) => {
            let (lo, rest) = e.split_at_mut(y);
            (Some(lo), Some(&mut rest[1..]))
        }
        None => (None, None),
    };
    let (s_lo, t_lo) = exp_sums(&z[..y], m, lo);
    let (s_hi, t_hi) = exp_sums(&z[y + 1..], m, hi);
    let d_y = z[y].to_f32() - m;
    let e_y = math::exp(d_y);
    if let Some(e) = exps {
        e[y] = e_y;
    }
    let others_sum = (s_lo + s_hi) as f32;
    let others_dot = (t_lo + t_hi) as f32;
    let sum = (s_lo + s_hi + e_y as f64) as f32;
    // Unreachable after `row_max` (each e <= 1 and e * d is bounded); kept as the last guard.
    if !(m.is_finite() && d_y.is_finite() && sum.is_finite() && others_dot.is_finite()) {
        return Err(non_finite(z, y));
    }
    let ln_s = ln_sum(d_y, others_sum, sum);
    Ok(RowStats {
        max: m,
        lse: m + ln_s,
        ell: d_y - ln_s,
        sum,
        others_sum,
        others_dot,
    })
}

/// `ln S = ln(e^(d_y) + S')`, so that `ell = d_y - ln S` and `lse = m + ln S`, without the
/// bits that `S` rounded to `f32` loses.
///
/// When the target is a row maximum (`d_y = z_y - m = 0`, so `e^(d_y) = 1`), `S = 1 + S'`, and
/// `S'` is below `2^-24` of `S` as soon as `pi_y > 1 - 2^-24`: `ln S` is taken as
/// `log1p(S') = log1p(S' / e^(d_y))`, so that `ell = -log1p(S')` keeps `S'`'s relative
/// precision however close `pi_y` is to 1 (and `1 - f_y`, a cancellation of `ell` against `rho`,
/// inherits it). Elsewhere (`d_y < 0`) the maximum's own term is in `S'`, so `S' >= 1`,
/// `pi_y <= 1/2`, and `ell = d_y - ln S` is a sum of two non-positive terms with
/// `|ell| >= ln 2`: the rounding of `S` costs at most an ulp of `ln S`, nothing to recover.
/// The kernels' `row_stats` (`kernels/cuda/row.cuh`) takes the same branch.
#[inline]
fn ln_sum(d_y: f32, others_sum: f32, sum: f32) -> f32 {
    if d_y == 0.0 {
        math::ln_1p(others_sum)
    } else {
        math::ln(sum)
    }
}

/// Row statistics of `z` with target `y` (one read of the row, plus the max).
///
/// Errors (with `row: 0`; batch callers report their own row): `EmptyVocab` for an empty row,
/// `TargetOutOfRange` for `y >= z.len()`, `NonFiniteLogits` for NaN or `+inf` anywhere or
/// `-inf` at `y` (`-inf` elsewhere is a token with zero probability and is allowed), and
/// `Overflow` for finite logits whose `ell = z_y - lse` is beyond `f32` (the target's logit
/// more than `f32::MAX` below the row's largest, e.g. `[3e38, -1e38]` with `y = 1`).
pub fn row_stats<T: Logit>(z: &[T], y: usize) -> Result<RowStats, BnfError> {
    let m = row_max(z, y)?;
    row_stats_from_max(z, y, m, None)
}

/// Write `w * (softmax(z) - onehot(y))` into `out`, from `z`'s statistics.
///
/// `out[j] = (w / S) e^(z_j - m)` for `j != y` and `out[y] = -(w / S) S'` (that is,
/// `-w (1 - pi_y)` without cancellation). `stats` must be `row_stats(z, y)`.
///
/// Errors (with `row: 0`), before anything is written: `LengthMismatch` when `out` and `z`
/// differ in length, `EmptyVocab`, `TargetOutOfRange`, `InvalidWeight` for a non-finite `w`,
/// `InvalidStats` for statistics no row can have (`S < 1`, `S' > S`, non-finite), and
/// `Overflow` when the gradient does not fit `T` ([`check::grad_fits`]: a finite `w` of
/// magnitude near or above `T`'s largest value). With statistics of this row, every value
/// written is then finite.
pub fn row_grad<T: Logit>(
    z: &[T],
    y: usize,
    stats: &RowStats,
    w: f32,
    out: &mut [T],
) -> Result<(), BnfError> {
    check::len("row_grad out", z.len(), out.len())?;
    check::grad_inputs(z.len(), y, stats, w)?;
    check::grad_fits::<T>(stats, w)?;
    let scale = w / stats.sum;
    scale_exps(z, stats.max, scale, out);
    out[y] = T::from_f32(-scale * stats.others_sum);
    Ok(())
}

/// [`row_grad`] written over the logits themselves; bit for bit the same values. Errors as
/// [`row_grad`]; on error the logits are untouched.
pub fn row_grad_in_place<T: Logit>(
    z: &mut [T],
    y: usize,
    stats: &RowStats,
    w: f32,
) -> Result<(), BnfError> {
    check::grad_inputs(z.len(), y, stats, w)?;
    check::grad_fits::<T>(stats, w)?;
    let scale = w / stats.sum;
    scale_exps_in_place(z, stats.max, scale);
    z[y] = T::from_f32(-scale * stats.others_sum);
    Ok(())
}

/// [`row_grad`] from the row's exponentials `e^(z_j - m)` kept by [`row_stats_from_max`]:
/// the same bits, without a second `exp` per logit. `exps` and `out` have the row's length.
pub(crate) fn row_grad_from_exps<T: Logit>(
    exps: &[f32],
    y: usize,
    stats: &RowStats,
    w: f32,
    out: &mut [T],
) {
    let scale = w / stats.sum;
    scale_stored(exps, scale, out);
    out[y] = T::from_f32(-scale * stats.others_sum);
}

// The hot loops, each run with AVX2 where the CPU has it (see `simd`).
dispatch! {
    /// Lane-wise max of a slice and whether it holds a NaN.
    fn max_of<T: Logit>(z: &[T]) -> (f32, bool) = max_of_loop;
}
dispatch! {
    /// Blocked sums of `e^(z_j - m)` and `e^(z_j - m) (z_j - m)`, optionally keeping the terms.
    fn exp_sums<T: Logit>(z: &[T], m: f32, exps: Option<&mut [f32]>) -> (f64, f64) = exp_sums_loop;
}
dispatch! {
    /// `out[j] = scale e^(z_j - m)`.
    fn scale_exps<T: Logit>(z: &[T], m: f32, scale: f32, out: &mut [T]) -> () = scale_exps_loop;
}
dispatch! {
    /// `z[j] = scale e^(z_j - m)`, over the logits.
    fn scale_exps_in_place<T: Logit>(z: &mut [T], m: f32, scale: f32) -> () = scale_exps_in_place_loop;
}
dispatch! {
    /// `out[j] = scale exps[j]`.
    fn scale_stored<T: Logit>(exps: &[f32], scale: f32, out: &mut [T]) -> () = scale_stored_loop;
}

#[inline(always)]
fn scale_exps_loop<T: Logit>(z: &[T], m: f32, scale: f32, out: &mut [T]) {
    for (o, v) in out.iter_mut().zip(z) {
        *o = T::from_f32(scale * exp_clamped(v.to_f32() - m));
    }
}

#[inline(always)]
fn scale_exps_in_place_loop<T: Logit>(z: &mut [T], m: f32, scale: f32) {
    for v in z.iter_mut() {
        *v = T::from_f32(scale * exp_clamped(v.to_f32() - m));
    }
}

#[inline(always)]
fn scale_stored_loop<T: Logit>(exps: &[f32], scale: f32, out: &mut [T]) {
    for (o, &e) in out.iter_mut().zip(exps) {
        *o = T::from_f32(scale * e);
    }
}

#[inline(always)]
fn clamp_d(d: f32) -> f32 {
    if d < D_FLOOR {
        D_FLOOR
    } else {
        d
    }
}

#[inline(always)]
fn exp_clamped(d: f32) -> f32 {
    math::exp(clamp_d(d))
}
