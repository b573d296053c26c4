//! The training-throughput benchmark: tokens per second of full SFT steps (forward, NLL with
//! its in-place gradient, backward, AdamW) for a fixed small configuration on random bytes.

use bnf_trainer::data::Response;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::objective::{loss_and_grad, Objective};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::rng::Rng;
use bnf_trainer::seq::TokenBatch;
use bnf_trainer::tokenizer::VOCAB;
use clap::Args;
use std::time::Instant;

/// Arguments of `bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
}

/// The fixed benchmark configuration: `(model, sequences per step, sequence length)`.
pub const BENCH_CONFIG: (ModelConfig, usize, usize) = (
    ModelConfig {
        vocab: VOCAB,
        block_size: 64,
        channels: 128,
        heads: 4,
        layers: 4,
    },
    16,
    64,
);

/// A model, optimizer and one fixed batch, ready to time.
pub struct BenchSetup {
    model: Model,
    opt: AdamW,
    batch: TokenBatch,
}

impl BenchSetup {
    /// Build [`BENCH_CONFIG`].
    pub fn new() -> Self {
        let (cfg, b, t) = BENCH_CONFIG;
        let model = Model::new(cfg, 0).expect("valid bench config");
        let opt = AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes());
        let mut rng = Rng::new(1);
        let responses: Vec<Response> = (0..b)
            .map(|id| Response {
                id,
                line: id + 1,
                prompt: (0..8).map(|_| rng.below(256) as u32).collect(),
                completion: (0..t - 10).map(|_| rng.below(256) as u32).collect(),
                label: 1.0,
                partner: None,
            })
            .collect();
        let refs: Vec<&Response> = responses.iter().collect();
        BenchSetup {
            model,
            opt,
            batch: TokenBatch::new(&refs),
        }
    }

    /// One full training step; returns the tokens it processed.
    pub fn step(&mut self) -> usize {
        let tb = &self.batch;
        let m = &mut self.model;
        m.zero_grad();
        m.forward(&tb.tokens, tb.b, tb.t).expect("bench forward");
        let vocab = m.config.vocab;
        loss_and_grad(&Objective::Nll, m.logits_mut(), vocab, tb, None, 1.0).expect("bench loss");
        m.backward(&tb.tokens).expect("bench backward");
        self.opt.step(&mut m.params, &m.grads, 1e-4);
        tb.b * tb.t
    }
}

impl Default for BenchSetup {
    fn default() -> Self {
        Self::new()
    }
}

/// `bench`: print tokens/s.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    if args.steps == 0 {
        return Err("bench: --steps is 0, so nothing would be timed; give at least 1".into());
    }
    let (cfg, b, t) = BENCH_CONFIG;
    let mut s = BenchSetup::new();
    for _ in 0..3 {
        s.step();
    }
    let start = Instant::now();
    let tokens: usize = (0..args.steps).map(|_| s.step()).sum();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "bench: C={} L={} NH={} V={} B={b} T={t}, {} params: {} steps, {:.0} tokens/s ({:.1} ms/step)",
        cfg.channels,
        cfg.layers,
        cfg.heads,
        cfg.vocab,
        s.model.params.len(),
        args.steps,
        tokens as f64 / secs,
        1e3 * secs / args.steps as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No timed step would print a rate of infinity: refused.
    #[test]
    fn zero_steps_is_an_error() {
        let err = run(&BenchArgs { steps: 0 }).unwrap_err();
        assert!(err.contains("--steps is 0"), "{err}");
    }
}
