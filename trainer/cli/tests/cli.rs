//! The command-line pipeline through the library: SFT, reference log-probs, alignment with
//! every objective and evaluation on a few lines of data, and the errors a user sees for bad
//! input (before any training).

use bnf_cli::{
    run_eval, run_precompute, run_sft, run_training, Cli, EvalArgs, ObjectiveArgs, RefArgs,
    ShapeArgs, TrainArgs,
};
use bnf_core::OBJECTIVE_NAMES;
use bnf_trainer::checkpoint;
use bnf_trainer::objective::Objective;
use bnf_trainer::train::StepLog;
use std::path::{Path, PathBuf};

/// `bnf align` with `a`, from scratch where `a` names no model to start from (the tests of
/// other things than that refusal train tiny models from scratch).
fn align_run(a: &TrainArgs, objective: Objective) -> Result<Vec<StepLog>, String> {
    let mut a = a.clone();
    a.from_scratch = a.init.is_none() && a.resume.is_none();
    run_training(&a, objective)
}

fn args(data: &str, out: &str) -> TrainArgs {
    let mut a = TrainArgs::new(data, out);
    a.steps = Some(3);
    a.batch = Some(2);
    a.lr = Some(1e-2);
    a.shape = ShapeArgs::new(8, 1, 2, 32);
    a
}

#[test]
fn sft_reference_align_eval() {
    let dir = std::env::temp_dir().join(format!("bnf-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/tiny.jsonl"),
        p("d.jsonl"),
    )
    .unwrap();

    let sft = align_run(&args(&p("d.jsonl"), &p("sft.safetensors")), Objective::Nll).unwrap();
    assert_eq!(sft.len(), 3);
    // Aligning before the reference exists is refused.
    let mut align = args(&p("d.jsonl"), &p("bnf.safetensors"));
    align.init = Some(p("sft.safetensors"));
    align.objective.objective = Some("bnf".into());
    let err = align_run(&align, Objective::Bnf).unwrap_err();
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
    // The reference is the SFT model: every shift is 0, so every margin ties, and a tie
    // counts as half a win.
    assert_eq!(before.chosen_shift, Some(0.0));
    assert_eq!(before.rejected_shift, Some(0.0));
    assert_eq!(before.pref_accuracy, Some(0.5));
    assert_eq!(before.pairs, 3);
    assert_eq!(before.task.1, 5);

    let logs = align_run(&align, Objective::Bnf).unwrap();
    assert!(logs.iter().all(|l| l.loss.is_finite()));
    let after = eval(&p("bnf.safetensors"));
    assert!(after.chosen_shift.unwrap() != 0.0);

    // Align without a model to start from is refused, before anything is written.
    let mut bare = align.clone();
    bare.init = None;
    bare.out = p("bare.safetensors");
    let err = run_training(&bare, Objective::Bnf).unwrap_err();
    assert!(
        err.contains("--init") && err.contains("--from-scratch"),
        "{err}"
    );
    assert!(!Path::new(&p("bare.safetensors")).exists());
    // A reference file of another model: refused for align --init, and for eval of a model
    // aligned against the first one.
    let mut other = args(&p("d.jsonl"), &p("sft2.safetensors"));
    other.steps = Some(2);
    assert_eq!(align_run(&other, Objective::Nll).unwrap().len(), 2);
    let mut sft2 = align.clone();
    sft2.init = Some(p("sft2.safetensors"));
    sft2.out = p("bnf2.safetensors");
    let err = run_training(&sft2, Objective::Bnf).unwrap_err();
    assert!(
        err.contains("d.jsonl.ref.json") && err.contains("sft2.safetensors"),
        "{err}"
    );
    assert!(!Path::new(&p("bnf2.safetensors")).exists());
    run_precompute(&RefArgs {
        model: p("sft2.safetensors"),
        data: p("d.jsonl"),
        out: Some(p("other.ref.json")),
    })
    .unwrap();
    let err = run_eval(&EvalArgs {
        model: p("bnf.safetensors"),
        data: p("d.jsonl"),
        reference: Some(p("other.ref.json")),
        max_new: 2,
    })
    .err()
    .unwrap();
    assert!(
        err.contains("other.ref.json") && err.contains("aligned against"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_line_stops_before_training() {
    let dir = std::env::temp_dir().join(format!("bnf-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("x.safetensors").to_str().unwrap().to_string();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/bad.jsonl");
    let err = align_run(&args(data, &out), Objective::Nll).unwrap_err();
    assert!(err.contains("line 2") && err.contains("rejected"), "{err}");
    assert!(!std::path::Path::new(&out).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh folder with both tiny data files (`d.jsonl`: pairs and lone responses;
/// `pairs.jsonl`: its pairs only).
fn workdir(tag: &str) -> (PathBuf, impl Fn(&str) -> String) {
    let dir = std::env::temp_dir().join(format!("bnf-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    let p = move |name: &str| d.join(name).to_str().unwrap().to_string();
    for (from, to) in [
        ("tiny.jsonl", "d.jsonl"),
        ("tiny_pairs.jsonl", "pairs.jsonl"),
    ] {
        let src = format!("{}/../tests/data/{from}", env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(src, p(to)).unwrap();
    }
    (dir, p)
}

/// Reference log-probs of the SFT model for both data files of [`workdir`].
fn precompute_both(p: &impl Fn(&str) -> String) {
    for data in ["d.jsonl", "pairs.jsonl"] {
        run_precompute(&RefArgs {
            model: p("sft.safetensors"),
            data: p(data),
            out: None,
        })
        .unwrap();
    }
}

/// `align` with every objective core offers: unpaired ones on the mixed file, pairwise ones on
/// the pairs; each run saves its objective with every hyperparameter in the checkpoint.
#[test]
fn align_with_every_objective() {
    let (dir, p) = workdir("all");
    align_run(&args(&p("d.jsonl"), &p("sft.safetensors")), Objective::Nll).unwrap();
    precompute_both(&p);
    for name in OBJECTIVE_NAMES {
        let mut objective = ObjectiveArgs {
            objective: Some(name.to_string()),
            ..ObjectiveArgs::default()
        };
        let obj = objective.resolve("bnf").unwrap();
        if obj.params().iter().any(|(n, _)| *n == "beta") {
            objective.beta = Some(0.75);
        }
        let obj = objective.resolve("bnf").unwrap();
        let data = if obj.needs_pairs() {
            "pairs.jsonl"
        } else {
            "d.jsonl"
        };
        let out = p(&format!("{name}.safetensors"));
        let mut a = args(&p(data), &out);
        a.init = Some(p("sft.safetensors"));
        a.objective = objective;
        let logs = align_run(&a, obj).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(logs.len(), 3, "{name}");
        assert!(logs.iter().all(|l| l.loss.is_finite()), "{name}: {logs:?}");
        let saved = checkpoint::load(&out).unwrap().train.unwrap();
        assert_eq!(saved.config.objective, obj, "{name}");
        assert_eq!(saved.step, 3);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Everything an objective needs of the data is checked before the first step: no checkpoint
/// is written, and the message says what is wrong and what to do.
#[test]
fn objective_data_mismatches_fail_before_training() {
    let (dir, p) = workdir("mismatch");
    align_run(&args(&p("d.jsonl"), &p("sft.safetensors")), Objective::Nll).unwrap();
    let out = p("x.safetensors");
    let align = |data: &str, objective: &str, extra: fn(&mut TrainArgs)| {
        let mut a = args(&p(data), &out);
        a.init = Some(p("sft.safetensors"));
        a.objective.objective = Some(objective.into());
        extra(&mut a);
        let obj = a.objective.resolve("bnf")?;
        align_run(&a, obj)
    };
    let fails = |r: Result<Vec<_>, String>, words: &[&str]| {
        let err = r.unwrap_err();
        for w in words {
            assert!(err.contains(w), "{w:?} not in: {err}");
        }
        assert!(!Path::new(&out).exists(), "a checkpoint was written: {err}");
    };
    // Without reference log-probs, every objective that reads them refuses.
    for name in OBJECTIVE_NAMES {
        if Objective::parse(name).unwrap().needs_reference() {
            fails(align("d.jsonl", name, |_| {}), &[name, "precompute-ref"]);
        }
    }
    precompute_both(&p);
    // Pairwise objectives on data with lone responses (line 4 is the first unpaired example).
    for name in ["dpo", "simpo", "orpo", "nll_pll"] {
        fails(
            align("d.jsonl", name, |_| {}),
            &[name, "pairwise", "line 4", "no partner", "kto"],
        );
        fails(
            align("pairs.jsonl", name, |a| a.pairing_ratio = Some(0.5)),
            &[name, "pairwise", "pairing ratio 0.5", "bnf"],
        );
    }
    // A hyperparameter the objective does not have, or out of its range.
    fails(
        align("pairs.jsonl", "dpo", |a| a.objective.gamma = Some(1.0)),
        &["dpo does not use --gamma", "--beta"],
    );
    fails(
        align("d.jsonl", "kto", |a| a.objective.beta = Some(0.0)),
        &["kto", "beta", "out of range"],
    );
    // Resuming a run with another objective than the one it was started with is refused.
    let mut first = args(&p("d.jsonl"), &p("kto.safetensors"));
    first.init = Some(p("sft.safetensors"));
    first.objective.objective = Some("kto".into());
    first.until = Some(1);
    align_run(&first, first.objective.resolve("bnf").unwrap()).unwrap();
    let mut resume = args(&p("d.jsonl"), &p("kto.safetensors"));
    resume.resume = Some(p("kto.safetensors"));
    resume.objective.objective = Some("bnf".into());
    let err = align_run(&resume, Objective::Bnf).unwrap_err();
    assert!(err.contains("started with objective kto(beta=0.1"), "{err}");
    resume.objective = ObjectiveArgs::default();
    assert_eq!(align_run(&resume, Objective::Bnf).unwrap().len(), 2);

    // The same mixed data trains unpaired objectives at any pairing ratio.
    for name in ["bnf", "kto"] {
        let mut a = args(&p("d.jsonl"), &p(&format!("{name}.safetensors")));
        a.init = Some(p("sft.safetensors"));
        a.pairing_ratio = Some(0.5);
        a.objective.objective = Some(name.into());
        let obj = a.objective.resolve("bnf").unwrap();
        align_run(&a, obj).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Input the command line refuses with a message that says what and where: `--steps 0`, a
/// data file that is not UTF-8, and a reference file computed for other data (which `eval`
/// would otherwise load from beside the data and use).
#[test]
fn refused_input_says_what_and_where() {
    let (dir, p) = workdir("refused");
    let mut zero = args(&p("d.jsonl"), &p("x.safetensors"));
    zero.steps = Some(0);
    let err = align_run(&zero, Objective::Nll).unwrap_err();
    assert!(err.contains("--steps is 0"), "{err}");
    assert!(!Path::new(&p("x.safetensors")).exists());

    let mut bytes = std::fs::read(p("d.jsonl")).unwrap();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[second + 13] = 0xff; // inside line 2's prompt string
    std::fs::write(p("bad.jsonl"), &bytes).unwrap();
    let err = align_run(&args(&p("bad.jsonl"), &p("x.safetensors")), Objective::Nll).unwrap_err();
    assert!(
        err.contains("bad.jsonl: line 2: not valid UTF-8 (byte 0xff"),
        "{err}"
    );

    align_run(&args(&p("d.jsonl"), &p("sft.safetensors")), Objective::Nll).unwrap();
    precompute_both(&p);
    let eval = |data: &str| {
        run_eval(&EvalArgs {
            model: p("sft.safetensors"),
            data: p(data),
            reference: None,
            max_new: 0,
        })
    };
    eval("d.jsonl").unwrap();
    // The same lengths, one rejected answer changed (line 2): the old file is refused.
    let text = std::fs::read_to_string(p("d.jsonl")).unwrap();
    let edited = text.replacen("\"rejected\": \"5\"", "\"rejected\": \"9\"", 1);
    assert_ne!(edited, text);
    std::fs::write(p("d.jsonl"), edited).unwrap();
    let err = eval("d.jsonl").unwrap_err();
    let named = format!(
        "{} (the reference file for {}): response 3 (line 2 of the data file)",
        p("d.jsonl.ref.json"),
        p("d.jsonl")
    );
    assert!(
        err.contains(&named) && err.contains("precompute-ref"),
        "{err}"
    );
    let mut align = args(&p("d.jsonl"), &p("x.safetensors"));
    align.init = Some(p("sft.safetensors"));
    align.shape = ShapeArgs::default();
    let err = align_run(&align, Objective::Bnf).unwrap_err();
    assert!(
        err.contains(&named) && err.contains("precompute-ref"),
        "{err}"
    );
    assert!(!Path::new(&p("x.safetensors")).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Training hyperparameters a run cannot use (NaN, infinite, negative, a learning rate of 0)
/// are refused before any step, naming the flag and the value: a good checkpoint at `--out`
/// stays as it was (a NaN learning rate used to overwrite it with one that does not load).
#[test]
fn unusable_hyperparameters_are_refused_before_training() {
    let (dir, p) = workdir("hyper");
    align_run(&args(&p("d.jsonl"), &p("good.safetensors")), Objective::Nll).unwrap();
    let good = std::fs::read(p("good.safetensors")).unwrap();
    type Set = fn(&mut TrainArgs, f32);
    let cases: [(&str, Set, &[f32]); 3] = [
        (
            "--lr",
            |a, v| a.lr = Some(v),
            &[f32::NAN, f32::INFINITY, -1e-3, 0.0],
        ),
        (
            "--grad-clip",
            |a, v| a.grad_clip = Some(v),
            &[f32::NAN, f32::INFINITY, -1.0],
        ),
        (
            "--weight-decay",
            |a, v| a.weight_decay = Some(v),
            &[f32::NAN, f32::NEG_INFINITY, -0.1],
        ),
    ];
    for (flag, set, values) in cases {
        for &v in values {
            let mut a = args(&p("d.jsonl"), &p("good.safetensors"));
            a.save_every = Some(1);
            set(&mut a, v);
            let err = align_run(&a, Objective::Nll).unwrap_err();
            assert!(err.contains(&format!("{flag} {v} ")), "{flag} {v}: {err}");
            assert_eq!(
                std::fs::read(p("good.safetensors")).unwrap(),
                good,
                "{flag} {v}"
            );
        }
    }
    // Negative values reach these checks from the command line too (not clap's "unexpected
    // argument '-1'").
    for flag in ["--lr", "--grad-clip", "--weight-decay"] {
        let (data, out) = (p("d.jsonl"), p("x.safetensors"));
        let argv = ["bnf", "sft", "--data", &data, "--out", &out, flag, "-1"];
        let cli = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
        let err = bnf_cli::run(cli).unwrap_err();
        assert!(err.contains(&format!("{flag} -1 ")), "{err}");
    }
    // The documented "off" values still train.
    let mut a = args(&p("d.jsonl"), &p("off.safetensors"));
    a.grad_clip = Some(0.0);
    a.weight_decay = Some(0.0);
    align_run(&a, Objective::Nll).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Shapes and batches too large to allocate are errors that name the flags and the size,
/// before any step (they used to abort the process on a failed allocation, or let the
/// parameter count wrap around).
#[test]
fn huge_shapes_and_batches_are_errors_not_aborts() {
    let (dir, p) = workdir("huge");
    let shape = |channels, heads, block_size| ShapeArgs::new(channels, 1, heads, block_size);
    let cases = [
        (shape(1_000_000, 1, 64), "--channels 1000000"),
        (shape(1 << 32, 1, 64), "more than 2^64"),
        (shape(64, 4, 100_000_000), "--block-size 100000000"),
        (shape(usize::MAX / 2, 1, 64), "more than 2^64"),
    ];
    for (shape, words) in cases {
        let mut a = args(&p("d.jsonl"), &p("x.safetensors"));
        a.shape = shape;
        let err = align_run(&a, Objective::Nll).unwrap_err();
        assert!(
            err.contains(words) && err.contains("more than the limit of 1073741824 parameters"),
            "{words}: {err}"
        );
    }
    for (batch, accum, words) in [
        (1 << 24, 1, "--batch 16777216 is too large"),
        (
            100_000_000,
            1,
            "--batch 100000000 x --accum 1 units per step",
        ),
        (usize::MAX, 1, "--batch 18446744073709551615 x --accum 1"),
        (1 << 20, 1 << 20, "--accum 1048576 units per step"),
    ] {
        let mut a = args(&p("d.jsonl"), &p("x.safetensors"));
        a.batch = Some(batch);
        a.accum = Some(accum);
        let err = align_run(&a, Objective::Nll).unwrap_err();
        assert!(err.contains(words), "{words}: {err}");
    }
    let mut a = args(&p("d.jsonl"), &p("x.safetensors"));
    a.steps = Some(usize::MAX);
    a.batch = Some(4);
    let err = align_run(&a, Objective::Nll).unwrap_err();
    assert!(err.contains("--steps 18446744073709551615"), "{err}");
    assert!(!Path::new(&p("x.safetensors")).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An output that is one of the inputs is refused before anything is written: the data, the
/// `--init` model, the reference file, or (for `precompute-ref`) the model, also through
/// another name of the same file. `--resume X --out X` is how a run continues, and still works.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let (dir, p) = workdir("same");
    align_run(&args(&p("d.jsonl"), &p("sft.safetensors")), Objective::Nll).unwrap();
    let data = std::fs::read(p("d.jsonl")).unwrap();
    let model = std::fs::read(p("sft.safetensors")).unwrap();
    std::fs::hard_link(p("d.jsonl"), p("link.jsonl")).unwrap();
    for out in [
        p("d.jsonl"),
        p("link.jsonl"),
        format!("{}/./d.jsonl", dir.display()),
    ] {
        let err = align_run(&args(&p("d.jsonl"), &out), Objective::Nll).unwrap_err();
        assert!(err.contains("same file as --data"), "{err}");
    }
    let mut init = args(&p("d.jsonl"), &p("sft.safetensors"));
    init.init = Some(p("sft.safetensors"));
    let err = align_run(&init, Objective::Nll).unwrap_err();
    assert!(err.contains("same file as --init"), "{err}");
    // The data beside a checkpoint's JSON copy: `--out d` would write `d.json`.
    std::fs::copy(p("d.jsonl"), p("e.json")).unwrap();
    let err = align_run(&args(&p("e.json"), &p("e")), Objective::Nll).unwrap_err();
    assert!(
        err.contains("JSON copy") && err.contains("same file as --data"),
        "{err}"
    );
    let precompute = |out: &str| {
        run_precompute(&RefArgs {
            model: p("sft.safetensors"),
            data: p("d.jsonl"),
            out: Some(out.into()),
        })
    };
    let err = precompute(&p("sft.safetensors")).unwrap_err();
    assert!(err.contains("same file as --model"), "{err}");
    let err = precompute(&p("d.jsonl")).unwrap_err();
    assert!(err.contains("same file as --data"), "{err}");
    assert_eq!(std::fs::read(p("d.jsonl")).unwrap(), data);
    // An input where an output's temporary file goes: the write would truncate it, and the
    // rename take it away.
    std::fs::copy(p("d.jsonl"), p("t.tmp")).unwrap();
    let err = align_run(&args(&p("t.tmp"), &p("t")), Objective::Nll).unwrap_err();
    assert!(
        err.contains("its temporary file") && err.contains("same file as --data"),
        "{err}"
    );
    std::fs::copy(p("sft.safetensors"), p("m.tmp")).unwrap();
    let mut init = args(&p("d.jsonl"), &p("m"));
    init.init = Some(p("m.tmp"));
    let err = align_run(&init, Objective::Nll).unwrap_err();
    assert!(err.contains("same file as --init"), "{err}");
    let err = run_precompute(&RefArgs {
        model: p("sft.safetensors"),
        data: p("t.tmp"),
        out: Some(p("t")),
    })
    .unwrap_err();
    assert!(err.contains("same file as --data"), "{err}");
    assert_eq!(std::fs::read(p("t.tmp")).unwrap(), data);
    assert_eq!(std::fs::read(p("m.tmp")).unwrap(), model);
    // A reference file the objective does not read is not an input: sft may write over it.
    std::fs::write(p("d.jsonl.ref.json"), "stale").unwrap();
    let sft = args(&p("d.jsonl"), &p("d.jsonl.ref.json"));
    align_run(&sft, Objective::Nll).unwrap();
    assert_eq!(std::fs::read(p("sft.safetensors")).unwrap(), model);
    // Continuing a run into its own checkpoint is the point of --resume.
    let mut first = args(&p("d.jsonl"), &p("run.safetensors"));
    first.until = Some(1);
    align_run(&first, Objective::Nll).unwrap();
    let mut resume = args(&p("d.jsonl"), &p("run.safetensors"));
    resume.resume = Some(p("run.safetensors"));
    assert_eq!(align_run(&resume, Objective::Nll).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An output that cannot be written fails before step 1, naming the path given (not its
/// temporary file): a missing folder, a folder given as the file, a folder where the JSON copy
/// goes. Nothing is left behind.
#[test]
fn unwritable_outputs_fail_before_training() {
    let (dir, p) = workdir("outputs");
    std::fs::create_dir(p("adir")).unwrap();
    std::fs::create_dir(p("x.safetensors.json")).unwrap();
    let cases = [
        (
            p("nope/x.safetensors"),
            format!("the folder {} does not exist", p("nope")),
        ),
        (p("adir"), "names a folder".to_string()),
        (format!("{}/", p("adir")), "names a folder".to_string()),
        (
            p("x.safetensors"),
            format!("JSON copy {}.json: names a folder", p("x.safetensors")),
        ),
    ];
    for (out, words) in cases {
        let err = align_run(&args(&p("d.jsonl"), &out), Objective::Nll).unwrap_err();
        assert!(
            err.contains("--out") && err.contains(&words),
            "{out}: {err}"
        );
    }
    let err = run_precompute(&RefArgs {
        model: p("missing.safetensors"),
        data: p("d.jsonl"),
        out: Some(p("nope/r.json")),
    })
    .unwrap_err();
    assert!(
        err.contains("does not exist") && err.contains("nope/r.json"),
        "{err}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["adir", "d.jsonl", "pairs.jsonl", "x.safetensors.json"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--resume` continues the run as it was saved: a training or shape flag given that differs
/// from the run's is an error (it used to be ignored), one that agrees is fine, `--init` is
/// refused beside it, and a finished run says so. The checkpoint is untouched by a refusal.
#[test]
fn resume_refuses_flags_that_differ_from_the_run() {
    let (dir, p) = workdir("resume-flags");
    let mut first = args(&p("d.jsonl"), &p("run.safetensors"));
    first.until = Some(1);
    align_run(&first, Objective::Nll).unwrap();
    let saved = std::fs::read(p("run.safetensors")).unwrap();
    let resume = || {
        let mut a = args(&p("d.jsonl"), &p("run.safetensors"));
        a.resume = Some(p("run.safetensors"));
        a
    };
    type Set = fn(&mut TrainArgs);
    let cases: [(Set, &str); 10] = [
        (|a| a.lr = Some(0.5), "--lr 0.5 (the run's: 0.01)"),
        (|a| a.batch = Some(3), "--batch 3 (the run's: 2)"),
        (|a| a.steps = Some(40), "--steps 40 (the run's: 3)"),
        (|a| a.seed = Some(9), "--seed 9 (the run's: 0)"),
        (|a| a.accum = Some(2), "--accum 2 (the run's: 1)"),
        (|a| a.grad_clip = Some(0.0), "--grad-clip 0 (the run's: 1)"),
        (
            |a| a.weight_decay = Some(0.1),
            "--weight-decay 0.1 (the run's: 0)",
        ),
        (
            |a| a.save_every = Some(1),
            "--save-every 1 (the run's: 100)",
        ),
        (
            |a| a.shape.channels = Some(16),
            "--channels 16 (the model's: 8)",
        ),
        (
            |a| a.shape.block_size = Some(64),
            "--block-size 64 (the model's: 32)",
        ),
    ];
    for (set, words) in cases {
        let mut a = resume();
        set(&mut a);
        let err = align_run(&a, Objective::Nll).unwrap_err();
        assert!(err.contains(words), "{words}: {err}");
        assert_eq!(
            std::fs::read(p("run.safetensors")).unwrap(),
            saved,
            "{words}"
        );
    }
    let mut both = resume();
    both.init = Some(p("run.safetensors"));
    let err = align_run(&both, Objective::Nll).unwrap_err();
    assert!(
        err.contains("--init and --resume exclude each other"),
        "{err}"
    );
    // `--until` at or before the checkpoint's step would train nothing.
    for until in [0, 1] {
        let mut a = resume();
        a.until = Some(until);
        let err = align_run(&a, Objective::Nll).unwrap_err();
        assert!(
            err.contains(&format!("--until {until} is not after the run's step 1")),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(p("run.safetensors")).unwrap(), saved);
    // The flags the run was started with agree, and it runs to its end; then it is finished.
    assert_eq!(align_run(&resume(), Objective::Nll).unwrap().len(), 2);
    let err = align_run(&resume(), Objective::Nll).unwrap_err();
    assert!(
        err.contains("is finished (step 3 of 3)") && err.contains("--init"),
        "{err}"
    );
    // A new run with --until 0 trains nothing either.
    let mut zero = args(&p("d.jsonl"), &p("x.safetensors"));
    zero.until = Some(0);
    let err = align_run(&zero, Objective::Nll).unwrap_err();
    assert!(
        err.contains("--until 0 is not after the run's step 0"),
        "{err}"
    );
    assert!(!Path::new(&p("x.safetensors")).exists());
    // A model from --init keeps its shape: a shape flag that differs is refused.
    let mut init = args(&p("d.jsonl"), &p("x.safetensors"));
    init.init = Some(p("run.safetensors"));
    init.shape.heads = Some(4);
    let err = align_run(&init, Objective::Nll).unwrap_err();
    assert!(
        err.contains("--init") && err.contains("--heads 4 (the model's: 2)"),
        "{err}"
    );
    init.shape = ShapeArgs::default();
    align_run(&init, Objective::Nll).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sft` refuses what only `align` uses (`--pairing-ratio`, `--ref`, a run started by
/// `align`) instead of ignoring it, and its help does not offer those flags.
#[test]
fn sft_refuses_what_only_align_uses() {
    use clap::CommandFactory;
    let (dir, p) = workdir("sft-only");
    let mut ratio = args(&p("d.jsonl"), &p("x.safetensors"));
    ratio.pairing_ratio = Some(0.5);
    let err = run_sft(&ratio).unwrap_err();
    assert!(
        err.contains("--pairing-ratio does not apply to sft"),
        "{err}"
    );
    let mut reference = args(&p("d.jsonl"), &p("x.safetensors"));
    reference.reference = Some(p("d.jsonl.ref.json"));
    let err = run_sft(&reference).unwrap_err();
    assert!(err.contains("--ref does not apply to sft"), "{err}");
    // The same flags with an align objective that has no use for them.
    let mut simpo = args(&p("pairs.jsonl"), &p("x.safetensors"));
    simpo.objective.objective = Some("simpo".into());
    simpo.reference = Some(p("pairs.jsonl.ref.json"));
    let err = align_run(&simpo, simpo.objective.resolve("bnf").unwrap()).unwrap_err();
    assert!(
        err.contains("--ref does not apply to objective simpo"),
        "{err}"
    );
    assert!(!Path::new(&p("x.safetensors")).exists());

    // A run started by align is not continued by sft (it used to run DPO).
    run_sft(&args(&p("pairs.jsonl"), &p("sft.safetensors"))).unwrap();
    run_precompute(&RefArgs {
        model: p("sft.safetensors"),
        data: p("pairs.jsonl"),
        out: None,
    })
    .unwrap();
    let mut dpo = args(&p("pairs.jsonl"), &p("dpo.safetensors"));
    dpo.objective.objective = Some("dpo".into());
    dpo.init = Some(p("sft.safetensors"));
    dpo.until = Some(1);
    align_run(&dpo, dpo.objective.resolve("bnf").unwrap()).unwrap();
    let mut again = args(&p("pairs.jsonl"), &p("dpo.safetensors"));
    again.resume = Some(p("dpo.safetensors"));
    let err = run_sft(&again).unwrap_err();
    assert!(err.contains("bnf align --resume"), "{err}");
    // `sft` continues its own runs.
    let mut sft = args(&p("pairs.jsonl"), &p("sft2.safetensors"));
    sft.until = Some(1);
    run_sft(&sft).unwrap();
    sft.until = None;
    sft.resume = Some(p("sft2.safetensors"));
    assert_eq!(run_sft(&sft).unwrap().len(), 2);

    let mut cli = Cli::command();
    let help = |cli: &mut clap::Command, name: &str| {
        cli.find_subcommand_mut(name)
            .unwrap()
            .render_long_help()
            .to_string()
    };
    let (sft_help, align_help) = (help(&mut cli, "sft"), help(&mut cli, "align"));
    for flag in ["--objective", "--beta", "--z0", "--ref", "--pairing-ratio"] {
        assert!(!sft_help.contains(flag), "sft --help offers {flag}");
        assert!(align_help.contains(flag), "align --help lacks {flag}");
    }
    assert!(sft_help.contains("--steps") && sft_help.contains("[default: 200]"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run that reads reference log-probs is resumed only with the ones it started with: a
/// reference file of the same data from another model is refused, the run's own is taken.
#[test]
fn resume_with_another_reference_is_refused() {
    let (dir, p) = workdir("resume-ref");
    align_run(
        &args(&p("pairs.jsonl"), &p("sft.safetensors")),
        Objective::Nll,
    )
    .unwrap();
    let mut other = args(&p("pairs.jsonl"), &p("sft2.safetensors"));
    other.seed = Some(9);
    align_run(&other, Objective::Nll).unwrap();
    let reference = |model: &str, out: &str| {
        run_precompute(&RefArgs {
            model: p(model),
            data: p("pairs.jsonl"),
            out: Some(p(out)),
        })
        .unwrap();
    };
    reference("sft.safetensors", "r1.json");
    reference("sft2.safetensors", "r2.json");
    assert_ne!(
        std::fs::read(p("r1.json")).unwrap(),
        std::fs::read(p("r2.json")).unwrap()
    );
    let align = |resume: bool, r: &str| {
        let mut a = args(&p("pairs.jsonl"), &p("dpo.safetensors"));
        a.objective.objective = Some("dpo".into());
        a.reference = Some(p(r));
        if resume {
            a.resume = Some(p("dpo.safetensors"));
            a.objective = ObjectiveArgs::default();
        } else {
            a.init = Some(p("sft.safetensors"));
            a.until = Some(1);
        }
        align_run(&a, Objective::Dpo(Default::default()))
    };
    align(false, "r1.json").unwrap();
    let saved = checkpoint::load(&p("dpo.safetensors"))
        .unwrap()
        .train
        .unwrap();
    assert!(saved.ref_fingerprint.is_some());
    let err = align(true, "r2.json").unwrap_err();
    assert!(
        err.contains("reference log-probs are not the ones the run was started with"),
        "{err}"
    );
    assert_eq!(align(true, "r1.json").unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run resumed on other data with as many responses (one answer edited) is refused: the
/// checkpoint records a fingerprint of its training data. A checkpoint of the first format
/// (no format tag, no fingerprint) still loads, but is not resumed; an unknown format is
/// refused by name.
#[test]
fn resume_on_other_data_is_refused() {
    let (dir, p) = workdir("resume-data");
    let mut first = args(&p("d.jsonl"), &p("run.safetensors"));
    first.until = Some(1);
    align_run(&first, Objective::Nll).unwrap();
    let saved = checkpoint::load(&p("run.safetensors"))
        .unwrap()
        .train
        .unwrap();
    assert!(saved.data_fingerprint.is_some());
    let text = std::fs::read_to_string(p("d.jsonl")).unwrap();
    let edited = text.replacen("\"chosen\": \"4\"", "\"chosen\": \"7\"", 1);
    assert_ne!(edited, text);
    std::fs::write(p("edited.jsonl"), edited).unwrap();
    let mut resume = args(&p("edited.jsonl"), &p("run.safetensors"));
    resume.resume = Some(p("run.safetensors"));
    let err = align_run(&resume, Objective::Nll).unwrap_err();
    assert!(
        err.contains("not the data the run was started on") && err.contains("as many responses"),
        "{err}"
    );
    // Rewrite the checkpoint as the first format wrote it.
    let bytes = std::fs::read(p("run.safetensors")).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["bnf"]).unwrap();
    let write_with = |meta: &serde_json::Value, path: &str| {
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
        let m = std::collections::HashMap::from([("bnf".to_string(), meta.to_string())]);
        std::fs::write(path, safetensors::serialize(tensors, &Some(m)).unwrap()).unwrap();
    };
    let obj = meta.as_object_mut().unwrap();
    assert_eq!(obj.remove("format").unwrap(), checkpoint::FORMAT);
    obj["train"]
        .as_object_mut()
        .unwrap()
        .remove("data_fingerprint")
        .unwrap();
    write_with(&meta, &p("old.safetensors"));
    let old = checkpoint::load(&p("old.safetensors")).unwrap();
    assert_eq!(old.train.unwrap().data_fingerprint, None);
    let mut again = args(&p("d.jsonl"), &p("old.safetensors"));
    again.resume = Some(p("old.safetensors"));
    let err = align_run(&again, Objective::Nll).unwrap_err();
    assert!(
        err.contains("first format") && err.contains("--init"),
        "{err}"
    );
    let mut init = args(&p("d.jsonl"), &p("new.safetensors"));
    init.init = Some(p("old.safetensors"));
    align_run(&init, Objective::Nll).unwrap();
    meta["format"] = "bnf-checkpoint/9".into();
    write_with(&meta, &p("future.safetensors"));
    let err = checkpoint::load(&p("future.safetensors")).err().unwrap();
    assert!(err.contains("bnf-checkpoint/9"), "{err}");
    // The same data resumes.
    resume.data = p("d.jsonl");
    assert_eq!(align_run(&resume, Objective::Nll).unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A response longer than the block size is reported with the data file, its line, the field
/// it comes from (chosen, rejected or completion) and what to do, which depends on where the
/// block size comes from (`--block-size`, or a checkpoint whose block size is fixed).
#[test]
fn a_response_too_long_names_its_file_field_and_fix() {
    let (dir, p) = workdir("too-long");
    run_sft(&args(&p("d.jsonl"), &p("sft.safetensors"))).unwrap();
    let long = "9".repeat(40);
    let pair = format!("{{\"prompt\": \"1+1=\", \"chosen\": \"2\", \"rejected\": \"{long}\"}}\n");
    let lone = format!("{{\"prompt\": \"1+1=\", \"completion\": \"{long}\", \"label\": true}}\n");
    let text = std::fs::read_to_string(p("pairs.jsonl")).unwrap();
    std::fs::write(p("long-rejected.jsonl"), format!("{text}{pair}")).unwrap();
    std::fs::write(p("long-lone.jsonl"), format!("{text}{lone}")).unwrap();
    // sft trains on the chosen side only: a long rejected side does not matter.
    run_sft(&args(&p("long-rejected.jsonl"), &p("a.safetensors"))).unwrap();
    let err = run_sft(&args(&p("long-lone.jsonl"), &p("x.safetensors"))).unwrap_err();
    assert!(
        err.contains(&format!(
            "{}: line 4: the \"completion\" response has 46 tokens",
            p("long-lone.jsonl")
        )) && err.contains("block size 32; raise --block-size to at least 46"),
        "{err}"
    );
    let mut align = args(&p("long-rejected.jsonl"), &p("x.safetensors"));
    align.init = Some(p("sft.safetensors"));
    align.shape = ShapeArgs::default();
    let err = align_run(&align, Objective::Bnf).unwrap_err();
    assert!(
        err.contains("line 4: the \"rejected\" response has 46 tokens")
            && err.contains(&format!("model from --init {}", p("sft.safetensors")))
            && err.contains("--block-size 46 or more"),
        "{err}"
    );
    // A pair split by the pairing ratio still names the side its response came from (when
    // the long side is the one kept; otherwise training goes on to want a reference file).
    align.pairing_ratio = Some(0.0);
    let mut named = 0;
    for seed in 0..8 {
        align.seed = Some(seed);
        let err = align_run(&align, Objective::Bnf).unwrap_err();
        if err.contains("line 4") {
            assert!(err.contains("line 4: the \"rejected\" response"), "{err}");
            named += 1;
        }
    }
    assert!(named > 0);
    let err = run_eval(&EvalArgs {
        model: p("sft.safetensors"),
        data: p("long-lone.jsonl"),
        reference: None,
        max_new: 0,
    })
    .unwrap_err();
    assert!(err.contains("line 4") && err.contains("--model"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sft` on data without a preferred response says what sft trains on and that the file has
/// none (it used to say "training: no responses").
#[test]
fn sft_without_preferred_responses_says_so() {
    let (dir, p) = workdir("no-chosen");
    let lines = "{\"prompt\": \"2+3=\", \"completion\": \"6\", \"label\": false}\n".repeat(3);
    std::fs::write(p("bad-only.jsonl"), lines).unwrap();
    let err = run_sft(&args(&p("bad-only.jsonl"), &p("x.safetensors"))).unwrap_err();
    assert!(
        err.contains(&format!(
            "{}: sft (objective nll) trains on the preferred",
            p("bad-only.jsonl")
        )) && err.contains("none of the 3 responses"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
