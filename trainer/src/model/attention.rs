//! Causal multi-head self-attention, forward beside backward. Each sequence of the batch is
//! independent, so the batch is cut into one run of sequences per thread ([`par`]); within a
//! sequence the arithmetic is the same on any thread count. The per-sequence loops are compiled
//! again for AVX2 and AVX-512 (`multiversion`, chosen at run time): wider registers for the same
//! IEEE operations in the same order (Rust never contracts into fused multiply-adds), so the
//! same bits on every CPU.

use super::par;
use multiversion::multiversion;

/// Causal multi-head self-attention. `qkv (B, T, 3C)` holds queries, keys and values; writes
/// `out (B, T, C)` and keeps the probabilities `att (B, NH, T, T)` (zero above the diagonal).
pub fn attention_forward(
    out: &mut [f32],
    att: &mut [f32],
    qkv: &[f32],
    t: usize,
    c: usize,
    nh: usize,
) {
    let per = par::part_len(qkv.len() / (t * 3 * c), 1);
    let parts: Vec<_> = out
        .chunks_mut(per * t * c)
        .zip(att.chunks_mut(per * nh * t * t))
        .zip(qkv.chunks(per * t * 3 * c))
        .collect();
    par::for_each_part(parts, |((out, att), qkv)| {
        let mut kt = vec![0.0f32; t * (c / nh)];
        let seqs = out.chunks_mut(t * c).zip(att.chunks_mut(nh * t * t));
        for ((o, a), q) in seqs.zip(qkv.chunks(t * 3 * c)) {
            forward_sequence(o, a, q, &mut kt, t, c, nh);
        }
    });
}

/// [`attention_forward`] of one sequence: `out (T, C)`, `att (NH, T, T)`, `qkv (T, 3C)`.
/// `kt` is scratch of `hs x T` floats for one head's keys, transposed.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq", "x86_64+avx2"))]
fn forward_sequence(
    out: &mut [f32],
    att: &mut [f32],
    qkv: &[f32],
    kt: &mut [f32],
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    for h in 0..nh {
        transpose_head(kt, qkv, c + h * hs, t, c, hs);
        for ti in 0..t {
            let q = &qkv[ti * 3 * c + h * hs..][..hs];
            let row = &mut att[(h * t + ti) * t..][..t];
            dot_rows(&mut row[..padded(ti, t)], q, kt, t);
            let mut max = f32::NEG_INFINITY;
            for a in row[..=ti].iter_mut() {
                *a *= scale;
                max = max.max(*a);
            }
            let mut sum = 0.0f32;
            for a in row[..=ti].iter_mut() {
                *a = (*a - max).exp();
                sum += *a;
            }
            for a in row[..=ti].iter_mut() {
                *a /= sum;
            }
            row[ti + 1..].fill(0.0);
            let o = &mut out[ti * c + h * hs..][..hs];
            o.fill(0.0);
            for (t2, &p) in row[..=ti].iter().enumerate() {
                axpy(o, p, &qkv[t2 * 3 * c + 2 * c + h * hs..][..hs]);
            }
        }
    }
}

/// `xt (hs, T)`: the `hs` columns from `col` on of each of the `T` rows of `qkv (T, 3C)`,
/// transposed, so that a dot product with every earlier position runs along a contiguous row.
#[inline(always)]
fn transpose_head(xt: &mut [f32], qkv: &[f32], col: usize, t: usize, c: usize, hs: usize) {
    for t2 in 0..t {
        for (i, &x) in qkv[t2 * 3 * c + col..][..hs].iter().enumerate() {
            xt[i * t + t2] = x;
        }
    }
}

/// `y += a x`, element by element, a block of [`LANES`] at a time (a loop of unknown length
/// as short as a head, 32, would be left to scalar code by a compiler that unrolls wide).
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let whole = y.len() - y.len() % LANES;
    let (blocks, rest) = y.split_at_mut(whole);
    for (yb, xb) in blocks.chunks_exact_mut(LANES).zip(x.chunks_exact(LANES)) {
        for (yi, xi) in yb.iter_mut().zip(xb) {
            *yi += a * xi;
        }
    }
    for (yi, xi) in rest.iter_mut().zip(&x[whole..]) {
        *yi += a * xi;
    }
}

/// Columns per block of [`dot_rows`]: one AVX2 register.
const LANES: usize = 8;

/// The columns [`dot_rows`] computes for the positions `..=ti` of a row of `t`: rounded up to
/// whole blocks of [`LANES`] (the extra columns are computed and not used).
fn padded(ti: usize, t: usize) -> usize {
    (ti + 1).next_multiple_of(LANES).min(t)
}

/// `out[j] = sum_i a[i] xt[i, j]` for the `out.len()` first columns of `xt (hs, T)`, each sum
/// taken in order of `i` (the order of a dot product `a . x_j` summed left to right), a block
/// of [`LANES`] columns at a time held in registers, so that the loop vectorises.
#[inline(always)]
fn dot_rows(out: &mut [f32], a: &[f32], xt: &[f32], t: usize) {
    let whole = out.len() - out.len() % LANES;
    let (blocks, rest) = out.split_at_mut(whole);
    for (j, o) in blocks.chunks_exact_mut(LANES).enumerate() {
        let mut acc = [0.0f32; LANES];
        for (l, x) in acc.iter_mut().zip(&xt[j * LANES..][..LANES]) {
            *l = a[0] * x;
        }
        for (i, &ai) in a.iter().enumerate().skip(1) {
            for (l, x) in acc.iter_mut().zip(&xt[i * t + j * LANES..][..LANES]) {
                *l += ai * x;
            }
        }
        o.copy_from_slice(&acc);
    }
    for (j, o) in rest.iter_mut().enumerate() {
        let col = whole + j;
        *o = a[0] * xt[col];
        for (i, &ai) in a.iter().enumerate().skip(1) {
            *o += ai * xt[i * t + col];
        }
    }
}

/// Backward of [`attention_forward`], added into `dqkv`.
pub fn attention_backward(
    dqkv: &mut [f32],
    dout: &[f32],
    qkv: &[f32],
    att: &[f32],
    t: usize,
    c: usize,
    nh: usize,
) {
    let per = par::part_len(qkv.len() / (t * 3 * c), 1);
    let parts: Vec<_> = dqkv
        .chunks_mut(per * t * 3 * c)
        .zip(dout.chunks(per * t * c))
        .zip(qkv.chunks(per * t * 3 * c))
        .zip(att.chunks(per * nh * t * t))
        .collect();
    par::for_each_part(parts, |(((dqkv, dout), qkv), att)| {
        let (mut datt, mut vt) = (vec![0.0f32; t], vec![0.0f32; t * (c / nh)]);
        let seqs = dqkv.chunks_mut(t * 3 * c).zip(dout.chunks(t * c));
        for ((dq, d), (q, a)) in seqs.zip(qkv.chunks(t * 3 * c).zip(att.chunks(nh * t * t))) {
            backward_sequence(dq, d, q, a, (&mut datt, &mut vt), t, c, nh);
        }
    });
}

/// [`attention_backward`] of one sequence; `scratch` is `datt` (`T` floats) and one head's
/// values transposed (`hs x T`).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx512bw+avx512dq", "x86_64+avx2"))]
#[allow(clippy::too_many_arguments)]
fn backward_sequence(
    dqkv: &mut [f32],
    dout: &[f32],
    qkv: &[f32],
    att: &[f32],
    scratch: (&mut [f32], &mut [f32]),
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let (datt, vt) = scratch;
    for h in 0..nh {
        transpose_head(vt, qkv, 2 * c + h * hs, t, c, hs);
        for ti in 0..t {
            let row = &att[(h * t + ti) * t..][..t];
            let d = &dout[ti * c + h * hs..][..hs];
            // Through the weighted sum of values.
            dot_rows(&mut datt[..padded(ti, t)], d, vt, t);
            for (t2, &p) in row[..=ti].iter().enumerate() {
                axpy(&mut dqkv[t2 * 3 * c + 2 * c + h * hs..][..hs], p, d);
            }
            // Through the softmax: dpre_j = att_j (datt_j - sum_k att_k datt_k).
            let mean: f32 = (0..=ti).map(|t2| row[t2] * datt[t2]).sum();
            let q_at = ti * 3 * c + h * hs;
            for t2 in 0..=ti {
                let dpre = row[t2] * (datt[t2] - mean) * scale;
                let k_at = t2 * 3 * c + c + h * hs;
                axpy(&mut dqkv[q_at..][..hs], dpre, &qkv[k_at..][..hs]);
                axpy(&mut dqkv[k_at..][..hs], dpre, &qkv[q_at..][..hs]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The attention of one sequence and its backward in f64, written out from the formulas:
    /// `s = q.k / sqrt(hs)` for earlier positions, `p = softmax(s)`, `o = sum p v`; then
    /// `dv += p do`, `dp = do.v`, `ds = p (dp - sum p dp)`, `dq += ds k / sqrt(hs)`,
    /// `dk += ds q / sqrt(hs)`. Returns `(out, dqkv)`.
    fn reference(qkv: &[f32], dout: &[f32], t: usize, c: usize, nh: usize) -> (Vec<f64>, Vec<f64>) {
        let hs = c / nh;
        let scale = 1.0 / (hs as f64).sqrt();
        let at = |ti: usize, part: usize, h: usize, i: usize| ti * 3 * c + part * c + h * hs + i;
        let (mut out, mut dqkv) = (vec![0.0f64; t * c], vec![0.0f64; t * 3 * c]);
        for h in 0..nh {
            for ti in 0..t {
                let s: Vec<f64> = (0..=ti)
                    .map(|t2| {
                        let dot: f64 = (0..hs)
                            .map(|i| qkv[at(ti, 0, h, i)] as f64 * qkv[at(t2, 1, h, i)] as f64)
                            .sum();
                        dot * scale
                    })
                    .collect();
                let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - max).exp()).sum();
                let p: Vec<f64> = s.iter().map(|x| (x - max).exp() / z).collect();
                let d = |i: usize| dout[ti * c + h * hs + i] as f64;
                let dp: Vec<f64> = (0..=ti)
                    .map(|t2| (0..hs).map(|i| d(i) * qkv[at(t2, 2, h, i)] as f64).sum())
                    .collect();
                let mean: f64 = (0..=ti).map(|t2| p[t2] * dp[t2]).sum();
                for t2 in 0..=ti {
                    let ds = p[t2] * (dp[t2] - mean) * scale;
                    for i in 0..hs {
                        out[ti * c + h * hs + i] += p[t2] * qkv[at(t2, 2, h, i)] as f64;
                        dqkv[at(t2, 2, h, i)] += p[t2] * d(i);
                        dqkv[at(ti, 0, h, i)] += ds * qkv[at(t2, 1, h, i)] as f64;
                        dqkv[at(t2, 1, h, i)] += ds * qkv[at(ti, 0, h, i)] as f64;
                    }
                }
            }
        }
        (out, dqkv)
    }

    /// Forward and backward against the f64 formulas, at a shape whose rows are not whole
    /// blocks of [`LANES`] (T = 13, head size 12), so the block and the remainder code both run;
    /// and bitwise the same on 1, 2 and 3 threads.
    #[test]
    fn attention_matches_the_formulas_and_is_the_same_on_any_thread_count() {
        let (b, t, c, nh) = (3usize, 13usize, 24usize, 2usize);
        let mut rng = Rng::new(9);
        let qkv: Vec<f32> = (0..b * t * 3 * c).map(|_| rng.normal() as f32).collect();
        let dout: Vec<f32> = (0..b * t * c).map(|_| rng.normal() as f32).collect();
        let run = |threads: usize| {
            par::set_threads(threads);
            let (mut out, mut att) = (vec![0.0f32; b * t * c], vec![0.0f32; b * nh * t * t]);
            attention_forward(&mut out, &mut att, &qkv, t, c, nh);
            let mut dqkv = vec![0.0f32; b * t * 3 * c];
            attention_backward(&mut dqkv, &dout, &qkv, &att, t, c, nh);
            par::set_threads(0);
            (out, dqkv)
        };
        let (out, dqkv) = run(1);
        for threads in [2, 3] {
            let (o, d) = run(threads);
            assert!(o.iter().zip(&out).all(|(x, y)| x.to_bits() == y.to_bits()));
            assert!(d.iter().zip(&dqkv).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        for bi in 0..b {
            let seq = |x: &[f32], w: usize| x[bi * t * w..(bi + 1) * t * w].to_vec();
            let (want_out, want_d) = reference(&seq(&qkv, 3 * c), &seq(&dout, c), t, c, nh);
            for (got, want) in [(seq(&out, c), want_out), (seq(&dqkv, 3 * c), want_d)] {
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(&g, &w)| (g as f64 - w).abs() / (1.0 + w.abs()))
                    .fold(0.0f64, f64::max);
                assert!(worst < 2e-6, "sequence {bi}: worst error {worst:e}");
            }
        }
    }
}
