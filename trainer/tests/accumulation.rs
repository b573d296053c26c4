//! Gradient accumulation: two micro-batches of 3 responses, each scaled by 1/2, give the
//! gradient of one batch of the same 6 responses (the mean over responses), up to rounding;
//! with micro-batches of different sizes each is weighted by its share of the step's
//! responses. And a micro-batch may hold a pair more than once (across an epoch boundary, or a
//! batch larger than the data): each copy is a pair of its own.

use bnf_trainer::arithmetic::arithmetic_data;
use bnf_trainer::data::{parse_jsonl, responses, Response};
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::objective::{build, Objective};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::run::{train_run, RunOutput};
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::{train, RunControl, TrainConfig, TrainState};

const CFG: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 16,
    channels: 16,
    heads: 2,
    layers: 1,
};

/// `|a - b| / |a|` (Euclidean norms), with `|a| > 0` checked.
fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    let norm = a.iter().map(|g| g * g).sum::<f32>().sqrt();
    assert!(norm > 0.0);
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt();
    diff / norm
}

/// Train a fresh model on `all` (every response of a data file; the pairing ratio applies)
/// with `objective` and the reference log-probs of a fixed random model.
fn run(
    objective: Objective,
    all: &[Response],
    pairing_ratio: f64,
    (batch, accum, steps, seed): (usize, usize, usize, u64),
) -> Result<RunOutput, String> {
    let refs = RefLogps::compute(&mut Model::new(CFG, 9).unwrap(), all, 8).unwrap();
    let config = TrainConfig {
        objective,
        steps,
        batch,
        accum,
        lr: 1e-3,
        grad_clip: 0.0,
        seed,
        save_every: 0,
        pairing_ratio,
    };
    let model = Model::new(CFG, 8).unwrap();
    train_run(
        model,
        AdamWConfig::default(),
        config,
        all,
        Some(&refs),
        RunControl::default(),
    )
}

fn grads_after_one_step(rs: &[Response], batch: usize, accum: usize) -> Vec<f32> {
    let mut model = Model::new(CFG, 8).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes());
    let mut state = TrainState::new(
        TrainConfig {
            objective: Objective::Nll,
            steps: 1,
            batch,
            accum,
            lr: 1e-3,
            grad_clip: 0.0,
            seed: 2,
            save_every: 0,
            pairing_ratio: 1.0,
        },
        rs.len(),
    );
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
    let d = relative_difference(&big, &acc);
    assert!(d <= 1e-5, "relative difference {d}");
    // A different set of responses gives a clearly different gradient.
    let other = grads_after_one_step(&rs, 3, 1);
    assert!(relative_difference(&big, &other) > 1e-2);
}

/// BNF averages over responses; with a pairing ratio of 0.5 the two micro-batches of a step
/// (3 units each) hold different numbers of responses, so each must be weighted by its share
/// of the step's responses (not 1/2) for the step to equal one micro-batch of all 6 units.
#[test]
fn unequal_micro_batches_are_weighted_by_their_responses() {
    let all = responses(&parse_jsonl(&arithmetic_data(4, 12).1).unwrap());
    for seed in [1, 2, 3] {
        let big = run(Objective::Bnf, &all, 0.5, (6, 1, 1, seed)).unwrap();
        let acc = run(Objective::Bnf, &all, 0.5, (3, 2, 1, seed)).unwrap();
        let d = relative_difference(&big.model.grads, &acc.model.grads);
        assert!(d <= 1e-5, "seed {seed}: relative difference {d}");
        assert!((big.logs[0].loss - acc.logs[0].loss).abs() <= 1e-5 * big.logs[0].loss.abs());
    }
    // The data does split some pairs (or the micro-batches would all be alike).
    let split = run(Objective::Bnf, &all, 0.5, (1, 1, 1, 1)).unwrap();
    assert!(split.state.responses < all.len() && split.state.responses > all.len() / 2);
}

/// Three pairs, batch 2, seed 5: a micro-batch across an epoch boundary holds a pair twice;
/// pairwise DPO trains on (it used to pair both chosen copies with the first rejected one and
/// fail with "response has no partner").
#[test]
fn pairwise_micro_batch_may_repeat_a_pair() {
    let all = responses(&parse_jsonl(&arithmetic_data(4, 3).1).unwrap());
    assert_eq!(all.len(), 6);
    let dpo = build("dpo", &[]).unwrap();
    let out = run(dpo, &all, 1.0, (2, 1, 6, 5)).unwrap();
    assert_eq!(out.logs.len(), 6);
    assert!(out
        .logs
        .iter()
        .all(|l| l.loss.is_finite() && l.grad_norm > 0.0));
    // Batch 6 on 3 pairs holds each pair exactly twice (two whole epochs), so its mean over
    // pairs, and the gradient, are those of batch 3 holding each pair once.
    for seed in [0, 5] {
        let twice = run(dpo, &all, 1.0, (6, 1, 1, seed)).unwrap();
        let once = run(dpo, &all, 1.0, (3, 1, 1, seed)).unwrap();
        let d = relative_difference(&once.model.grads, &twice.model.grads);
        assert!(d <= 1e-5, "seed {seed}: relative difference {d}");
        assert!((once.logs[0].loss - twice.logs[0].loss).abs() <= 1e-6);
    }
}
