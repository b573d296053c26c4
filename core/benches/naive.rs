//! A naive multi-pass BNF that mirrors the paper's appendix B code op by op (materialised
//! log-softmax, gather, exp, products, then the backward autograd would run), for benchmarks
//! and for a test that it agrees with the fused path. It materialises the `rows x vocab` tensors
//! a framework would (f32 logits, log-softmax, probabilities, the log-softmax gradient) in a
//! [`Workspace`] allocated once and reused, as a caching allocator would: the timing then holds
//! the passes and their memory traffic but no page faults, whose cost depends on the allocator's
//! history and made the baseline's time unstable. It uses the same `exp` as the fused path, so
//! the comparison measures passes, not a different `exp`.

use bnf_core::{math, Logit};

/// The `rows x vocab` tensors of the naive code, allocated once.
pub struct Workspace {
    z: Vec<f32>,
    logp: Vec<f32>,
    probs: Vec<f32>,
    g_logp: Vec<f32>,
}

impl Workspace {
    /// Buffers for `len = rows x vocab` logits.
    pub fn new(len: usize) -> Self {
        Workspace {
            z: vec![0.0; len],
            logp: vec![0.0; len],
            probs: vec![0.0; len],
            g_logp: vec![0.0; len],
        }
    }
}

/// [`naive_bnf_loops`] with the instruction set `bnf-core` uses for its own row loops: on
/// x86-64 with AVX2 (and `bnf_core::simd_avx2()` true) the same code compiled with AVX2, so
/// the comparison with the fused path measures passes, not vector width.
#[allow(clippy::too_many_arguments)]
pub fn naive_bnf<T: Logit>(
    logits: &[T],
    vocab: usize,
    targets: &[u32],
    ref_logp: &[f32],
    weights: &[f32],
    num_responses: usize,
    ws: &mut Workspace,
    grad: &mut [T],
) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        fn wide<T: Logit>(
            logits: &[T],
            vocab: usize,
            targets: &[u32],
            ref_logp: &[f32],
            weights: &[f32],
            num_responses: usize,
            ws: &mut Workspace,
            grad: &mut [T],
        ) -> f32 {
            naive_bnf_loops(
                logits,
                vocab,
                targets,
                ref_logp,
                weights,
                num_responses,
                ws,
                grad,
            )
        }
        if bnf_core::simd_avx2() {
            // SAFETY: the CPU has AVX2 (`simd_avx2` checked it).
            return unsafe {
                wide(
                    logits,
                    vocab,
                    targets,
                    ref_logp,
                    weights,
                    num_responses,
                    ws,
                    grad,
                )
            };
        }
    }
    naive_bnf_loops(
        logits,
        vocab,
        targets,
        ref_logp,
        weights,
        num_responses,
        ws,
        grad,
    )
}

/// Forward and backward of BNF for a batch: returns the loss and writes the gradient into
/// `grad`. `weights` are `label / |y|`; the loss is divided by `num_responses` like the fused
/// path. `ws` must have been made for `logits.len()`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn naive_bnf_loops<T: Logit>(
    logits: &[T],
    vocab: usize,
    targets: &[u32],
    ref_logp: &[f32],
    weights: &[f32],
    num_responses: usize,
    ws: &mut Workspace,
    grad: &mut [T],
) -> f32 {
    let rows = targets.len();
    let Workspace {
        z,
        logp,
        probs,
        g_logp,
    } = ws;
    let n = rows * vocab;
    let (z, logp, probs, g_logp) = (
        &mut z[..n],
        &mut logp[..n],
        &mut probs[..n],
        &mut g_logp[..n],
    );
    // policy_logp = logits.log_softmax(-1)
    for (o, v) in z.iter_mut().zip(logits) {
        *o = v.to_f32();
    }
    for r in 0..rows {
        let zr = &z[r * vocab..(r + 1) * vocab];
        let m = zr.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = zr.iter().map(|v| math::exp(v - m)).sum();
        let lse = m + math::ln(s);
        for (o, v) in logp[r * vocab..(r + 1) * vocab].iter_mut().zip(zr) {
            *o = v - lse;
        }
    }
    // response_logp = gather(policy_logp, targets)
    let resp: Vec<f32> = (0..rows)
        .map(|r| logp[r * vocab + targets[r] as usize])
        .collect();
    // probs = policy_logp.exp().detach()
    for (p, &l) in probs.iter_mut().zip(logp.iter()) {
        *p = math::exp(l);
    }
    // other_logp_sum = (probs * policy_logp).sum(-1) - resp.exp() * resp
    let other: Vec<f32> = (0..rows)
        .map(|r| {
            let a = r * vocab;
            let dot: f32 = probs[a..a + vocab]
                .iter()
                .zip(&logp[a..a + vocab])
                .map(|(p, l)| p * l)
                .sum();
            dot - math::exp(resp[r]) * resp[r]
        })
        .collect();
    // responses_target = clamp(resp.exp() / ref.exp(), max = 1); others_target = (1 - t) / (1 - resp.exp())
    let t: Vec<f32> = (0..rows)
        .map(|r| (math::exp(resp[r]) / math::exp(ref_logp[r])).min(1.0))
        .collect();
    let o: Vec<f32> = (0..rows)
        .map(|r| (1.0 - t[r]) / (1.0 - math::exp(resp[r])))
        .collect();
    // loss = -(t * resp + o * other) * labels / lengths, summed, over responses
    let loss: f32 = (0..rows)
        .map(|r| -(t[r] * resp[r] + o[r] * other[r]) * weights[r])
        .sum::<f32>()
        / num_responses as f32;
    // Backward as autograd would run it: d loss / d logp, then through log_softmax.
    for r in 0..rows {
        let a = r * vocab;
        let k = -weights[r] / num_responses as f32;
        for j in 0..vocab {
            g_logp[a + j] = k * o[r] * probs[a + j];
        }
        g_logp[a + targets[r] as usize] = k * t[r];
    }
    for r in 0..rows {
        let a = r * vocab;
        let sum_g: f32 = g_logp[a..a + vocab].iter().sum();
        for j in 0..vocab {
            grad[a + j] = T::from_f32(g_logp[a + j] - probs[a + j] * sum_g);
        }
    }
    loss
}
