//! A naive multi-pass BNF that mirrors the paper's appendix B code op by op (materialised
//! log-softmax, gather, exp, products, then the backward autograd would run), for benchmarks
//! and for a test that it agrees with the fused path. It allocates `rows x vocab` buffers the
//! way a tensor framework would, and uses the same `exp` as the fused path so the comparison
//! measures passes and memory traffic, not a different `exp`.

use bnf_core::{math, Logit};

/// Forward and backward of BNF for a batch, returning `(loss, grad)`. `weights` are
/// `label / |y|`; the loss is divided by `num_responses` like the fused path.
pub fn naive_bnf<T: Logit>(
    logits: &[T],
    vocab: usize,
    targets: &[u32],
    ref_logp: &[f32],
    weights: &[f32],
    num_responses: usize,
) -> (f32, Vec<T>) {
    let rows = targets.len();
    // policy_logp = logits.log_softmax(-1)
    let z: Vec<f32> = logits.iter().map(|v| v.to_f32()).collect();
    let mut logp = vec![0.0f32; rows * vocab];
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
    let probs: Vec<f32> = logp.iter().map(|&l| math::exp(l)).collect();
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
    let mut g_logp = vec![0.0f32; rows * vocab];
    for r in 0..rows {
        let a = r * vocab;
        let k = -weights[r] / num_responses as f32;
        for j in 0..vocab {
            g_logp[a + j] = k * o[r] * probs[a + j];
        }
        g_logp[a + targets[r] as usize] = k * t[r];
    }
    let mut grad = vec![T::from_f32(0.0); rows * vocab];
    for r in 0..rows {
        let a = r * vocab;
        let sum_g: f32 = g_logp[a..a + vocab].iter().sum();
        for j in 0..vocab {
            grad[a + j] = T::from_f32(g_logp[a + j] - probs[a + j] * sum_g);
        }
    }
    (loss, grad)
}
