//! The layers of the transformer, each forward beside its backward (llm.c's layout).
//! Shapes: `n` positions (`B*T`), `c` channels. Backward functions *accumulate* into their
//! gradient outputs (`+=`), so the caller zeroes gradients once per step.

use super::par;
use multiversion::multiversion;

/// Small constant inside LayerNorm's square root.
const LN_EPS: f32 = 1e-5;
/// `sqrt(2 / pi)`, the tanh-GELU scale.
const GELU_SCALE: f32 = 0.797_884_6;
/// The cubic coefficient of the tanh-GELU.
const GELU_CUBE: f32 = 0.044715;

/// `out[p] = wte[tokens[p]] + wpe[p mod t]`.
pub fn encoder_forward(
    out: &mut [f32],
    tokens: &[u32],
    wte: &[f32],
    wpe: &[f32],
    t: usize,
    c: usize,
) {
    for (p, (o, &tok)) in out.chunks_exact_mut(c).zip(tokens).enumerate() {
        let te = &wte[tok as usize * c..][..c];
        let pe = &wpe[(p % t) * c..][..c];
        for i in 0..c {
            o[i] = te[i] + pe[i];
        }
    }
}

/// Scatter `dout` back into the rows of `dwte` and `dwpe` that [`encoder_forward`] read.
pub fn encoder_backward(
    dwte: &mut [f32],
    dwpe: &mut [f32],
    dout: &[f32],
    tokens: &[u32],
    t: usize,
    c: usize,
) {
    for (p, (d, &tok)) in dout.chunks_exact(c).zip(tokens).enumerate() {
        let te = &mut dwte[tok as usize * c..][..c];
        for i in 0..c {
            te[i] += d[i];
        }
        let pe = &mut dwpe[(p % t) * c..][..c];
        for i in 0..c {
            pe[i] += d[i];
        }
    }
}

/// LayerNorm over each row of `c`: `out = (x - mean) * rstd * w + b`; keeps mean and rstd.
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: &[f32],
    c: usize,
) {
    for (p, (o, x)) in out.chunks_exact_mut(c).zip(inp.chunks_exact(c)).enumerate() {
        let m = x.iter().sum::<f32>() / c as f32;
        let var = x.iter().map(|&v| (v - m) * (v - m)).sum::<f32>() / c as f32;
        let s = 1.0 / (var + LN_EPS).sqrt();
        for i in 0..c {
            o[i] = (x[i] - m) * s * w[i] + b[i];
        }
        mean[p] = m;
        rstd[p] = s;
    }
}

/// Backward of [`layernorm_forward`].
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    mean: &[f32],
    rstd: &[f32],
    c: usize,
) {
    let rows = dinp
        .chunks_exact_mut(c)
        .zip(dout.chunks_exact(c))
        .zip(inp.chunks_exact(c));
    for (p, ((di, d), x)) in rows.enumerate() {
        let (m, s) = (mean[p], rstd[p]);
        let mut dnorm_mean = 0.0f32;
        let mut dnorm_norm_mean = 0.0f32;
        for i in 0..c {
            let norm = (x[i] - m) * s;
            let dnorm = w[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= c as f32;
        dnorm_norm_mean /= c as f32;
        for i in 0..c {
            let norm = (x[i] - m) * s;
            let dnorm = w[i] * d[i];
            db[i] += d[i];
            dw[i] += norm * d[i];
            di[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

/// `c = alpha * a b + beta * c` for row-major `a (m, k)` and `c (m, n)`; `b (k, n)` is read
/// with the given strides, so a transposed matrix needs no copy.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    beta: f32,
    out: &mut [f32],
) {
    let last =
        |rs: usize, cs: usize, r: usize, col: usize| (r.max(1) - 1) * rs + (col.max(1) - 1) * cs;
    assert!(m * k == 0 || last(a_strides.0, a_strides.1, m, k) < a.len());
    assert!(k * n == 0 || last(b_strides.0, b_strides.1, k, n) < b.len());
    assert!(out.len() >= m * n);
    // SAFETY: the asserts above keep every index the strides reach inside the slices, and
    // `out` does not alias `a` or `b` (it is a unique borrow).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_strides.0 as isize,
            a_strides.1 as isize,
            b.as_ptr(),
            b_strides.0 as isize,
            b_strides.1 as isize,
            beta,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `out (n, oc) = inp (n, c) w^T + bias`, with `w (oc, c)`.
pub fn matmul_forward(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    c: usize,
    oc: usize,
) {
    let n = inp.len() / c;
    sgemm(n, c, oc, inp, (c, 1), w, (1, c), 0.0, out);
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(oc) {
            for (o, b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

/// Backward of [`matmul_forward`]: `dinp += dout w`, `dw += dout^T inp`, `dbias += sum dout`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    dinp: &mut [f32],
    dw: &mut [f32],
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    c: usize,
    oc: usize,
) {
    let n = inp.len() / c;
    sgemm(n, oc, c, dout, (oc, 1), w, (c, 1), 1.0, dinp);
    sgemm(oc, n, c, dout, (1, oc), inp, (c, 1), 1.0, dw);
    if let Some(dbias) = dbias {
        for row in dout.chunks_exact(oc) {
            for (db, d) in dbias.iter_mut().zip(row) {
                *db += d;
            }
        }
    }
}

/// `tanh(u)` as `1 - 2 / (1 + e^(2u))` through core's branch-free `exp`, so GELU's loops
/// vectorise (libm's `tanhf` took a third of a training step). Its error is absolute, below
/// `4e-7` (a test compares it with `f32::tanh`), which is all GELU needs: it uses `1 + tanh` and
/// `1 - tanh^2`. `|u|` is clamped at 10, where `tanh` is `1` in `f32`.
#[inline(always)]
pub fn tanh(u: f32) -> f32 {
    let u = u.clamp(-10.0, 10.0);
    1.0 - 2.0 / (1.0 + bnf_core::math::exp(2.0 * u))
}

/// Elements per thread below which GELU stays on one thread.
const GELU_MIN_PART: usize = 1 << 14;

/// Tanh-approximated GELU, on [`par::threads`] threads.
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    let len = par::part_len(out.len(), GELU_MIN_PART);
    let parts: Vec<_> = out.chunks_mut(len).zip(inp.chunks(len)).collect();
    par::for_each_part(parts, |(o, i)| gelu_forward_part(o, i));
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq", "x86_64+avx2"))]
fn gelu_forward_part(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        let u = GELU_SCALE * (x + GELU_CUBE * x * x * x);
        *o = 0.5 * x * (1.0 + tanh(u));
    }
}

/// Backward of [`gelu_forward`], on [`par::threads`] threads.
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    let len = par::part_len(dinp.len(), GELU_MIN_PART);
    let parts: Vec<_> = dinp
        .chunks_mut(len)
        .zip(inp.chunks(len))
        .zip(dout.chunks(len))
        .collect();
    par::for_each_part(parts, |((di, i), d)| gelu_backward_part(di, i, d));
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq", "x86_64+avx2"))]
fn gelu_backward_part(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    for ((di, &x), &d) in dinp.iter_mut().zip(inp).zip(dout) {
        let u = GELU_SCALE * (x + GELU_CUBE * x * x * x);
        let th = tanh(u);
        let sech2 = 1.0 - th * th;
        let local =
            0.5 * (1.0 + th) + 0.5 * x * sech2 * GELU_SCALE * (1.0 + 3.0 * GELU_CUBE * x * x);
        *di += local * d;
    }
}

/// `out = a + b`.
pub fn residual_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// Backward of [`residual_forward`]: both inputs receive `dout`.
pub fn residual_backward(da: &mut [f32], db: &mut [f32], dout: &[f32]) {
    for ((x, y), d) in da.iter_mut().zip(db.iter_mut()).zip(dout) {
        *x += d;
        *y += d;
    }
}

#[cfg(test)]
mod tests {
    use super::tanh;

    #[test]
    fn tanh_is_within_its_stated_absolute_error() {
        let mut worst = 0.0f64;
        for i in -300_000..=300_000 {
            let u = i as f32 * 5e-5;
            let err = (tanh(u) as f64 - (u as f64).tanh()).abs();
            worst = worst.max(err);
        }
        for u in [-1e30f32, -50.0, -10.0, 10.0, 50.0, 1e30] {
            let err = (tanh(u) as f64 - (u as f64).tanh()).abs();
            worst = worst.max(err);
        }
        assert!(worst < 4e-7, "worst absolute error {worst:e}");
        assert!(tanh(f32::NAN).is_nan());
    }
}
