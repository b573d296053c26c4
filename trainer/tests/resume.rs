//! `--resume` continues bit for bit: a run interrupted at a checkpoint and resumed from the
//! file gives the same per-step losses and final weights as the uninterrupted run.

use bnf_trainer::arithmetic::arithmetic_data;
use bnf_trainer::checkpoint;
use bnf_trainer::data::{apply_pairing_ratio, parse_jsonl, responses, Response};
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::objective::{build, Objective};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::{train, RunControl, StepLog, TrainConfig, TrainState};

const CFG: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 16,
    channels: 16,
    heads: 2,
    layers: 1,
};

fn data(pairing_ratio: f64) -> Vec<Response> {
    let (_, eval) = arithmetic_data(1, 24);
    apply_pairing_ratio(responses(&parse_jsonl(&eval).unwrap()), pairing_ratio, 9).unwrap()
}

fn fresh(objective: Objective, pairing_ratio: f64, n: usize) -> (Model, AdamW, TrainState) {
    let model = Model::new(CFG, 4).unwrap();
    let opt_cfg = AdamWConfig {
        weight_decay: 0.1,
        ..AdamWConfig::default()
    };
    let opt = AdamW::new(opt_cfg, Params::NAMES, model.param_sizes());
    let config = TrainConfig {
        objective,
        steps: 8,
        batch: 3,
        accum: 2,
        lr: 3e-3,
        grad_clip: 0.5,
        seed: 11,
        save_every: 0,
        pairing_ratio,
    };
    let state = TrainState::new(config, n);
    (model, opt, state)
}

fn bits(logs: &[StepLog]) -> Vec<(usize, u32, u32, u32)> {
    logs.iter()
        .map(|l| {
            (
                l.step,
                l.loss.to_bits(),
                l.lr.to_bits(),
                l.grad_norm.to_bits(),
            )
        })
        .collect()
}

/// Run 8 steps in one go, and 3 + 5 with a checkpoint between: same losses, weights and
/// optimizer state, bit for bit. The objective (with its hyperparameters) comes back from the
/// checkpoint, not from the caller.
fn check(objective: Objective, pairing_ratio: f64) {
    let rs = data(pairing_ratio);
    let refs = objective.needs_reference().then(|| {
        let mut reference = Model::new(CFG, 5).unwrap();
        RefLogps::compute(
            &mut reference,
            &responses(&parse_jsonl(&arithmetic_data(1, 24).1).unwrap()),
            7,
        )
        .unwrap()
    });
    let (mut m, mut o, mut s) = fresh(objective, pairing_ratio, rs.len());
    let whole = train(
        &mut m,
        &mut o,
        &rs,
        refs.as_ref(),
        &mut s,
        RunControl::default(),
        "test",
    )
    .unwrap();
    assert_eq!(whole.len(), 8);

    let dir = std::env::temp_dir().join(format!(
        "bnf-resume-{}-{}",
        std::process::id(),
        objective.name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    let path = path.to_str().unwrap();
    let (mut m1, mut o1, mut s1) = fresh(objective, pairing_ratio, rs.len());
    let control = RunControl {
        checkpoint: Some(path),
        until: Some(3),
        ..RunControl::default()
    };
    let first = train(
        &mut m1,
        &mut o1,
        &rs,
        refs.as_ref(),
        &mut s1,
        control,
        "test",
    )
    .unwrap();
    drop((m1, o1, s1));

    let ck = checkpoint::load(path).unwrap();
    let (mut m2, mut o2, mut s2) = (ck.model, ck.optimizer.unwrap(), ck.train.unwrap());
    assert_eq!(s2.step, 3);
    assert_eq!(s2.config.objective, objective);
    let rest = train(
        &mut m2,
        &mut o2,
        &rs,
        refs.as_ref(),
        &mut s2,
        RunControl::default(),
        "test",
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let resumed: Vec<StepLog> = first.into_iter().chain(rest).collect();
    assert_eq!(
        bits(&resumed),
        bits(&whole),
        "{}: per-step losses differ",
        objective.name()
    );
    assert!(m2
        .params
        .iter()
        .zip(&m.params)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(o2, o);
    // The losses must actually move, or the comparison would prove little.
    assert!(whole.windows(2).any(|w| w[0].loss != w[1].loss));
}

#[test]
fn resumed_sft_matches_uninterrupted() {
    check(Objective::Nll, 0.5);
}

#[test]
fn resumed_bnf_matches_uninterrupted() {
    check(Objective::Bnf, 0.5);
}

/// A sequence-level objective with non-default hyperparameters (the recorded ones must win).
#[test]
fn resumed_dpo_matches_uninterrupted() {
    check(build("dpo", &[("beta", 0.3)]).unwrap(), 1.0);
}

#[test]
fn resumed_kto_matches_uninterrupted() {
    check(
        build("kto", &[("beta", 0.2), ("undesirable_weight", 1.5)]).unwrap(),
        0.5,
    );
}

/// A call that would train nothing is an error, not a silent success: `until` at or before
/// the run's step, or a run that is finished.
#[test]
fn nothing_to_train_is_an_error() {
    let rs = data(1.0);
    let (mut m, mut o, mut s) = fresh(Objective::Nll, 1.0, rs.len());
    let mut run = |until: Option<usize>| {
        let control = RunControl {
            until,
            ..RunControl::default()
        };
        train(&mut m, &mut o, &rs, None, &mut s, control, "test")
    };
    let err = run(Some(0)).unwrap_err();
    assert!(
        err.contains("until 0 is not after the run's step 0"),
        "{err}"
    );
    assert_eq!(run(Some(3)).unwrap().len(), 3);
    for until in [2, 3] {
        let err = run(Some(until)).unwrap_err();
        assert!(
            err.contains(&format!("until {until} is not after the run's step 3")),
            "{err}"
        );
    }
    assert_eq!(run(None).unwrap().len(), 5);
    let err = run(None).unwrap_err();
    assert!(err.contains("finished (step 8 of 8)"), "{err}");
}
