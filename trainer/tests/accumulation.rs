//! Gradient accumulation: two micro-batches of 3 responses, each scaled by 1/2, give the
//! gradient of one batch of the same 6 responses (the mean over responses), up to rounding.

use bnf_trainer::data::{parse_jsonl, responses, Response};
use bnf_trainer::demo::arithmetic_data;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::{train, RunControl, TrainConfig, TrainState};

fn grads_after_one_step(rs: &[Response], batch: usize, accum: usize) -> Vec<f32> {
    let cfg = ModelConfig {
        vocab: VOCAB,
        block_size: 16,
        channels: 16,
        heads: 2,
        layers: 1,
    };
    let mut model = Model::new(cfg, 8).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes());
    let mut state = TrainState {
        config: TrainConfig {
            objective: bnf_trainer::objective::Objective::Nll,
            steps: 1,
            batch,
            accum,
            lr: 1e-3,
            grad_clip: 0.0,
            seed: 2,
            save_every: 0,
            pairing_ratio: 1.0,
        },
        step: 0,
        responses: rs.len(),
    };
    train(
        &mut model,
        &mut opt,
        rs,
        None,
        &mut state,
        RunControl::default(),
        "test",
    )
    .unwrap();
    model.grads
}

#[test]
fn accumulated_gradient_equals_the_large_batch_gradient() {
    let (_, eval) = arithmetic_data(4, 12);
    let rs: Vec<Response> = responses(&parse_jsonl(&eval).unwrap())
        .into_iter()
        .filter(|r| r.label > 0.0)
        .map(|mut r| {
            r.partner = None;
            r
        })
        .collect();
    let big = grads_after_one_step(&rs, 6, 1);
    let acc = grads_after_one_step(&rs, 3, 2);
    let norm = big.iter().map(|g| g * g).sum::<f32>().sqrt();
    let diff = big
        .iter()
        .zip(&acc)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        .sqrt();
    assert!(norm > 0.0);
    assert!(diff <= 1e-5 * norm, "difference {diff} vs norm {norm}");
    // A different set of responses gives a clearly different gradient.
    let other = grads_after_one_step(&rs, 3, 1);
    let d2 = big
        .iter()
        .zip(&other)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        .sqrt();
    assert!(d2 > 1e-2 * norm);
}
