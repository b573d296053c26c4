//! The command-line pipeline through the library: SFT, reference log-probs, BNF alignment and
//! evaluation on a few lines of data, and the errors a user sees for bad input.

use bnf_trainer::cli::{
    run_eval, run_precompute, run_training, EvalArgs, RefArgs, ShapeArgs, TrainArgs,
};
use bnf_trainer::objective::Objective;

fn args(data: &str, out: &str) -> TrainArgs {
    TrainArgs {
        data: data.into(),
        out: out.into(),
        init: None,
        resume: None,
        until: None,
        objective: "nll".into(),
        reference: None,
        pairing_ratio: 1.0,
        steps: 3,
        batch: 2,
        accum: 1,
        lr: 1e-2,
        weight_decay: 0.0,
        grad_clip: 1.0,
        seed: 0,
        save_every: 0,
        shape: ShapeArgs {
            channels: 8,
            layers: 1,
            heads: 2,
            block_size: 32,
        },
    }
}

#[test]
fn sft_reference_align_eval() {
    let dir = std::env::temp_dir().join(format!("bnf-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny.jsonl"),
        p("d.jsonl"),
    )
    .unwrap();

    let sft = run_training(&args(&p("d.jsonl"), &p("sft.safetensors")), Objective::Nll).unwrap();
    assert_eq!(sft.len(), 3);
    // Aligning before the reference exists is refused.
    let mut align = args(&p("d.jsonl"), &p("bnf.safetensors"));
    align.init = Some(p("sft.safetensors"));
    align.objective = "bnf".into();
    let err = run_training(&align, Objective::Bnf).unwrap_err();
    assert!(err.contains("precompute-ref"), "{err}");

    let refs = run_precompute(&RefArgs {
        model: p("sft.safetensors"),
        data: p("d.jsonl"),
        out: None,
    })
    .unwrap();
    assert_eq!(refs, p("d.jsonl.ref.json"));
    let eval = |model: &str| {
        run_eval(&EvalArgs {
            model: model.into(),
            data: p("d.jsonl"),
            reference: None,
            max_new: 2,
        })
        .unwrap()
    };
    let before = eval(&p("sft.safetensors"));
    // The reference is the SFT model: every shift is 0, so no margin beats another.
    assert_eq!(before.chosen_shift, Some(0.0));
    assert_eq!(before.rejected_shift, Some(0.0));
    assert_eq!(before.pref_accuracy, Some(0.0));
    assert_eq!(before.pairs, 3);
    assert_eq!(before.task.1, 5);

    let logs = run_training(&align, Objective::Bnf).unwrap();
    assert!(logs.iter().all(|l| l.loss.is_finite()));
    let after = eval(&p("bnf.safetensors"));
    assert!(after.chosen_shift.unwrap() != 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_line_stops_before_training() {
    let dir = std::env::temp_dir().join(format!("bnf-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("x.safetensors").to_str().unwrap().to_string();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bad.jsonl");
    let err = run_training(&args(data, &out), Objective::Nll).unwrap_err();
    assert!(err.contains("line 2") && err.contains("rejected"), "{err}");
    assert!(!std::path::Path::new(&out).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
