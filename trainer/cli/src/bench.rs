//! The training-throughput benchmark: tokens per second of full SFT steps (forward, NLL with
//! its in-place gradient, backward, AdamW) for a fixed small configuration on random bytes,
//! through the full LM head and through the fused one (`--fused-head`), timed step by step in
//! turn so that both see the same machine load.

use bnf_trainer::data::Response;
use bnf_trainer::model::head::chunk_rows;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::objective::{loss_and_grad, loss_and_grad_fused, Objective};
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

    /// One full training step through the full LM head; returns the tokens it processed.
    pub fn step(&mut self) -> usize {
        self.step_with(false)
    }

    /// One full training step, through the fused LM head when `fused_head` (the chunk rule of
    /// `model::head::chunk_rows`); returns the tokens it processed.
    pub fn step_with(&mut self, fused_head: bool) -> usize {
        let tb = &self.batch;
        let m = &mut self.model;
        m.zero_grad();
        let vocab = m.config.vocab;
        if fused_head {
            m.forward_hidden(&tb.tokens, tb.b, tb.t)
                .expect("bench forward");
            let chunk = chunk_rows(tb.b * tb.t, vocab, m.config.channels);
            m.backward_with_head(&tb.tokens, |head| {
                loss_and_grad_fused(&Objective::Nll, head, tb, None, 1.0, chunk)
            })
            .expect("bench loss");
        } else {
            m.forward(&tb.tokens, tb.b, tb.t).expect("bench forward");
            loss_and_grad(&Objective::Nll, m.logits_mut(), vocab, tb, None, 1.0)
                .expect("bench loss");
            m.backward(&tb.tokens).expect("bench backward");
        }
        self.opt.step(&mut m.params, &m.grads, 1e-4);
        tb.b * tb.t
    }
}

impl Default for BenchSetup {
    fn default() -> Self {
        Self::new()
    }
}

/// `bench`: print tokens/s through the full and the fused head. The two runs (each its own
/// model from the same initialisation) take their steps in turn, one step each, so that both
/// see the same load.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    if args.steps == 0 {
        return Err("bench: --steps is 0, so nothing would be timed; give at least 1".into());
    }
    let (cfg, b, t) = BENCH_CONFIG;
    let mut runs = [(BenchSetup::new(), false), (BenchSetup::new(), true)];
    for (s, fused) in runs.iter_mut() {
        for _ in 0..3 {
            s.step_with(*fused);
        }
    }
    let (mut secs, mut tokens) = ([0.0f64; 2], [0usize; 2]);
    for _ in 0..args.steps {
        for (i, (s, fused)) in runs.iter_mut().enumerate() {
            let start = Instant::now();
            tokens[i] += s.step_with(*fused);
            secs[i] += start.elapsed().as_secs_f64();
        }
    }
    println!(
        "bench: C={} L={} NH={} V={} B={b} T={t}, {} params: {} steps each, interleaved",
        cfg.channels,
        cfg.layers,
        cfg.heads,
        cfg.vocab,
        runs[0].0.model.params.len(),
        args.steps,
    );
    for (i, head) in ["full head ", "fused head"].iter().enumerate() {
        println!(
            "  {head}: {:.0} tokens/s ({:.1} ms/step)",
            tokens[i] as f64 / secs[i],
            1e3 * secs[i] / args.steps as f64
        );
    }
    println!("  fused / full time: {:.3}", secs[1] / secs[0]);
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
