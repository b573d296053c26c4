//! The library entry for programs (`run::train_run`) trains exactly as the command line does:
//! SFT then DPO from memory give the same per-step losses and weights, bit for bit, as `sft`,
//! `precompute-ref` and `align` through files.

use bnf_cli::FLAGS;
use bnf_cli::{run_precompute, run_sft, run_training, RefArgs, ShapeArgs, TrainArgs};
use bnf_trainer::arithmetic::arithmetic_data;
use bnf_trainer::checkpoint;
use bnf_trainer::data::{parse_jsonl, responses};
use bnf_trainer::model::Model;
use bnf_trainer::objective::{build, Device, Objective};
use bnf_trainer::optim::AdamWConfig;
use bnf_trainer::reference::RefLogps;
use bnf_trainer::run::train_run;
use bnf_trainer::train::{RunControl, StepLog, TrainConfig};

fn shape() -> ShapeArgs {
    ShapeArgs::new(16, 1, 2, 16)
}

fn args(data: &str, out: &str, steps: usize) -> TrainArgs {
    let mut a = TrainArgs::new(data, out);
    a.steps = Some(steps);
    a.batch = Some(4);
    a.accum = Some(2);
    a.lr = Some(3e-3);
    a.seed = Some(5);
    a.shape = shape();
    a
}

fn config(objective: Objective, steps: usize) -> TrainConfig {
    TrainConfig {
        objective,
        steps,
        batch: 4,
        accum: 2,
        lr: 3e-3,
        seed: 5,
        ..TrainConfig::DEFAULT
    }
}

fn bits(logs: &[StepLog]) -> Vec<(u32, u32)> {
    logs.iter()
        .map(|l| (l.loss.to_bits(), l.grad_norm.to_bits()))
        .collect()
}

#[test]
fn train_run_matches_the_command_line() {
    let dir = std::env::temp_dir().join(format!("bnf-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (_, text) = arithmetic_data(2, 20);
    std::fs::write(p("d.jsonl"), &text).unwrap();
    let dpo = build("dpo", &[("beta", 0.5)]).unwrap();

    // Through files, as the command line runs.
    let sft_logs = run_sft(&args(&p("d.jsonl"), &p("sft.safetensors"), 4)).unwrap();
    run_precompute(&RefArgs {
        model: p("sft.safetensors"),
        data: p("d.jsonl"),
        out: None,
    })
    .unwrap();
    let mut align = args(&p("d.jsonl"), &p("dpo.safetensors"), 3);
    align.init = Some(p("sft.safetensors"));
    align.objective.objective = Some("dpo".into());
    align.objective.beta = Some(0.5);
    let dpo_logs = run_training(&align, dpo).unwrap();
    let file_model = checkpoint::load(&p("dpo.safetensors")).unwrap().model;

    // From memory.
    let data = responses(&parse_jsonl(&text).unwrap());
    let model = Model::new(shape().config(), 5).unwrap();
    let opt = AdamWConfig::default();
    let control = RunControl::default();
    let sft = train_run(model, opt, config(Objective::Nll, 4), &data, None, control).unwrap();
    assert_eq!(bits(&sft.logs), bits(&sft_logs));
    let refs = RefLogps::compute(&mut sft.model.clone(), &data, 64).unwrap();
    let aligned = train_run(sft.model, opt, config(dpo, 3), &data, Some(&refs), control).unwrap();
    assert_eq!(bits(&aligned.logs), bits(&dpo_logs));
    assert_eq!(aligned.state.step, 3);
    assert!(aligned
        .model
        .params
        .iter()
        .zip(&file_model.params)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The library's refusals name values by their fields (`RunControl::default()`), the command
/// line's by its flags (`bnf_cli::FLAGS`).
#[test]
fn train_run_refuses_what_the_objective_cannot_use() {
    let (_, text) = arithmetic_data(2, 6);
    let data = responses(&parse_jsonl(&text).unwrap());
    let model = || Model::new(shape().config(), 5).unwrap();
    let opt = AdamWConfig::default();
    let fields = RunControl::default();
    let flags = RunControl {
        names: FLAGS,
        ..fields
    };
    let dpo = build("dpo", &[]).unwrap();
    for (control, step) in [
        (fields, "run `RefLogps::compute` first"),
        (flags, "run `bnf precompute-ref` first"),
    ] {
        let err = train_run(model(), opt, config(dpo, 2), &data, None, control)
            .err()
            .unwrap();
        assert!(err.ends_with(step), "{err}");
    }
    let mut split = config(dpo, 2);
    split.pairing_ratio = 0.5;
    for (control, ratio) in [
        (fields, "pairing ratio 0.5 (pairing_ratio)"),
        (flags, "pairing ratio 0.5 (--pairing-ratio)"),
    ] {
        let err = train_run(model(), opt, split.clone(), &data, None, control)
            .err()
            .unwrap();
        assert!(err.contains(ratio), "{err}");
    }
    for (control, setting) in [(fields, "device gpu: "), (flags, "--device gpu: ")] {
        let gpu = RunControl {
            device: Device::Gpu,
            ..control
        };
        let err = train_run(model(), opt, config(Objective::Nll, 2), &data, None, gpu)
            .err()
            .unwrap();
        assert!(err.starts_with(setting), "{err}");
    }
}
