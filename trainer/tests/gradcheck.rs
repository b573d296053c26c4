//! The model's backward against central finite differences of its forward, for every element
//! of every parameter tensor, on a tiny configuration.

#![allow(clippy::needless_range_loop)] // finite differences perturb parameters by index

use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::rng::Rng;

const CFG: ModelConfig = ModelConfig {
    vocab: 7,
    block_size: 5,
    channels: 8,
    heads: 2,
    layers: 2,
};
const B: usize = 2;
const T: usize = 4;

/// A model at a generic point (not GPT-2's tiny initialisation, which hides errors).
fn model() -> Model {
    let mut m = Model::new(CFG, 1).unwrap();
    let mut rng = Rng::new(2);
    for p in m.params.iter_mut() {
        *p += (rng.normal() * 0.3) as f32;
    }
    m
}

fn tokens() -> Vec<u32> {
    let mut rng = Rng::new(3);
    (0..B * T).map(|_| rng.below(CFG.vocab) as u32).collect()
}

/// `sum_k r_k logits_k` in f64: a loss whose `dloss/dlogits` is exactly `r`.
fn projected(m: &mut Model, tokens: &[u32], r: &[f32]) -> f64 {
    m.forward(tokens, B, T).unwrap();
    m.logits()
        .iter()
        .zip(r)
        .map(|(&z, &w)| z as f64 * w as f64)
        .sum()
}

#[test]
fn backward_matches_finite_differences_for_every_parameter_tensor() {
    let mut m = model();
    let toks = tokens();
    let mut rng = Rng::new(4);
    let r: Vec<f32> = (0..B * T * CFG.vocab)
        .map(|_| rng.normal() as f32)
        .collect();
    m.forward(&toks, B, T).unwrap();
    m.logits_mut().copy_from_slice(&r);
    m.zero_grad();
    m.backward(&toks).unwrap();
    let analytic = m.grads.clone();

    let eps = 1e-2f32;
    let sizes = m.param_sizes().to_vec();
    let mut start = 0;
    let mut worst_per_tensor = Vec::new();
    for (name, &n) in Params::NAMES.iter().zip(&sizes) {
        let mut worst = 0.0f64;
        let mut nonzero = 0;
        let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
        for i in start..start + n {
            let p0 = m.params[i];
            m.params[i] = p0 + eps;
            let up = projected(&mut m, &toks, &r);
            m.params[i] = p0 - eps;
            let down = projected(&mut m, &toks, &r);
            m.params[i] = p0;
            let fd = (up - down) / (2.0 * eps as f64);
            let an = analytic[i] as f64;
            let err = (fd - an).abs() / (fd.abs().max(an.abs()) + 1e-2);
            worst = worst.max(err);
            diff2 += (fd - an) * (fd - an);
            norm2 += fd * fd;
            if an.abs() > 1e-3 {
                nonzero += 1;
            }
        }
        worst_per_tensor.push((name, worst, (diff2 / norm2).sqrt()));
        // wpe row T (position 4) is never used with T = 4, so some tensors have exact zeros;
        // every tensor must still carry gradient somewhere.
        assert!(nonzero > 0, "{name}: no gradient at all");
        start += n;
    }
    // f32 rounding in the forward limits single elements to about 1% agreement; a wrong
    // backward is off by O(1). Over a whole tensor the agreement is much tighter.
    for (name, worst, whole) in &worst_per_tensor {
        assert!(
            *worst < 5e-2,
            "{name}: worst element relative error {worst:.3e}"
        );
        assert!(*whole < 2e-3, "{name}: tensor relative error {whole:.3e}");
    }
    eprintln!("{worst_per_tensor:?}");
}

/// The whole chain as training runs it: batch layout, NLL through `bnf-core` with its gradient
/// written over the logits, then the model backward; against finite differences of the loss.
#[test]
fn nll_through_core_matches_finite_differences() {
    use bnf_trainer::data::{parse_jsonl, responses};
    use bnf_trainer::objective::{loss_and_grad, Objective};
    use bnf_trainer::seq::TokenBatch;
    use bnf_trainer::tokenizer::VOCAB;

    let cfg = ModelConfig {
        vocab: VOCAB,
        block_size: 8,
        channels: 8,
        heads: 2,
        layers: 1,
    };
    let src = "{\"prompt\":\"ab\",\"chosen\":\"cd\",\"rejected\":\"e\"}\n{\"prompt\":\"x\",\"completion\":\"yz\",\"label\":true}\n";
    let rs = responses(&parse_jsonl(src).unwrap());
    let refs: Vec<_> = rs.iter().collect();
    let tb = TokenBatch::new(&refs);
    let mut m = Model::new(cfg, 1).unwrap();
    let mut rng = Rng::new(6);
    for p in m.params.iter_mut() {
        *p += (rng.normal() * 0.3) as f32;
    }
    let loss = |m: &mut Model| {
        m.forward(&tb.tokens, tb.b, tb.t).unwrap();
        loss_and_grad(Objective::Nll, m.logits_mut(), cfg.vocab, &tb, None, 1.0).unwrap() as f64
    };
    m.zero_grad();
    loss(&mut m);
    m.backward(&tb.tokens).unwrap();
    let analytic = m.grads.clone();
    let eps = 1e-2f32;
    let mut start = 0;
    for (name, &n) in Params::NAMES.iter().zip(&m.param_sizes().to_vec()) {
        let (mut diff2, mut norm2) = (0.0f64, 0.0f64);
        for i in start..start + n {
            let p0 = m.params[i];
            m.params[i] = p0 + eps;
            let up = loss(&mut m);
            m.params[i] = p0 - eps;
            let down = loss(&mut m);
            m.params[i] = p0;
            let fd = (up - down) / (2.0 * eps as f64);
            diff2 += (fd - analytic[i] as f64).powi(2);
            norm2 += fd * fd;
        }
        assert!(norm2 > 0.0, "{name}: no gradient");
        let rel = (diff2 / norm2).sqrt();
        assert!(rel < 1e-2, "{name}: tensor relative error {rel:.3e}");
        start += n;
    }
}
