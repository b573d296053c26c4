//! `bnf demo`: the project's end-to-end run on built-in data. Three-digit additions
//! (`"007+450="`) with the correct sum as the chosen answer and a one-digit-wrong sum as the
//! rejected one: SFT on the correct answers, reference log-probs from the SFT model, BNF
//! alignment on the pairs, and metrics before and after on held-out problems.

use crate::args::{EvalArgs, RefArgs, ShapeArgs, TrainArgs};
use crate::commands::{run_eval, run_precompute, run_sft, run_training};
use bnf_trainer::arithmetic::arithmetic_data;
use bnf_trainer::eval::EvalReport;
use bnf_trainer::objective::{Device, Objective};
use clap::Args;
use std::time::Instant;

/// Arguments of `demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Folder for the data, reference files and checkpoints.
    #[arg(long, default_value = "demo-out")]
    pub dir: String,
    /// SFT steps.
    #[arg(long, default_value_t = 600)]
    pub sft_steps: usize,
    /// BNF alignment steps.
    #[arg(long, default_value_t = 600)]
    pub align_steps: usize,
    /// Seed (data split, initialisation, order).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the loss rows run: cpu, or gpu (a build with `--features cuda` and a GPU).
    #[arg(long, value_parser = crate::args::device_parser(), default_value = "cpu")]
    pub device: Device,
}

fn train_args(data: &str, out: &str, steps: usize, seed: u64, device: Device) -> TrainArgs {
    let mut a = TrainArgs::new(data, out);
    a.device = device;
    a.steps = Some(steps);
    a.batch = Some(32);
    a.lr = Some(3e-3);
    a.seed = Some(seed);
    a.shape = ShapeArgs::new(64, 2, 4, 16);
    a
}

fn row(name: &str, before: String, after: String) {
    println!("{name:<44} {before:>12} {after:>12}");
}

fn report(before: &EvalReport, after: &EvalReport) {
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let opt = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{v:+.3}"));
    let task = |r: &EvalReport| pct(r.task.0 as f64 / r.task.1.max(1) as f64);
    println!();
    row("held-out metric", "SFT (ref)".into(), "BNF".into());
    row(
        "preference accuracy (margin vs reference)",
        before.pref_accuracy.map_or("n/a".into(), pct),
        after.pref_accuracy.map_or("n/a".into(), pct),
    );
    row(
        "preference accuracy (raw log-prob)",
        before.raw_pref_accuracy.map_or("n/a".into(), pct),
        after.raw_pref_accuracy.map_or("n/a".into(), pct),
    );
    row(
        "mean log-prob shift, chosen",
        opt(before.chosen_shift),
        opt(after.chosen_shift),
    );
    row(
        "mean log-prob shift, rejected",
        opt(before.rejected_shift),
        opt(after.rejected_shift),
    );
    row(
        "mean token log-prob, chosen",
        format!("{:.3}", before.chosen_token_logp),
        format!("{:.3}", after.chosen_token_logp),
    );
    row(
        "mean token log-prob, rejected",
        format!("{:.3}", before.rejected_token_logp),
        format!("{:.3}", after.rejected_token_logp),
    );
    row(
        "task accuracy (greedy answer = sum)",
        task(before),
        task(after),
    );
    println!(
        "(margins and shifts are measured against the SFT model, so they are 0 before alignment)"
    );
}

/// Check the arguments before any work: both step counts at least 1 (the second is not found
/// out after the first stage ran) and `--dir` a folder, or a path one can be made at.
fn check(args: &DemoArgs) -> Result<(), String> {
    for (flag, steps) in [
        ("--sft-steps", args.sft_steps),
        ("--align-steps", args.align_steps),
    ] {
        if steps == 0 {
            return Err(format!(
                "demo: {flag} is 0, so nothing would be trained; give at least 1"
            ));
        }
    }
    let dir = &args.dir;
    if std::path::Path::new(dir).exists() && !std::path::Path::new(dir).is_dir() {
        return Err(format!(
            "demo: --dir {dir} is a file, not a folder; give a folder (it is made if missing)"
        ));
    }
    Ok(())
}

/// Run the demo.
pub fn run(args: &DemoArgs) -> Result<(), String> {
    let start = Instant::now();
    check(args)?;
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("demo: --dir {dir}: {e}"))?;
    let (train, eval) = arithmetic_data(args.seed, 300);
    let train_path = format!("{dir}/train.jsonl");
    let eval_path = format!("{dir}/eval.jsonl");
    std::fs::write(&train_path, train).map_err(|e| format!("{train_path}: {e}"))?;
    std::fs::write(&eval_path, eval).map_err(|e| format!("{eval_path}: {e}"))?;
    println!("demo: data in {dir}/ (train.jsonl, eval.jsonl: 3-digit sums, chosen = right, rejected = one digit wrong)");

    let sft_path = format!("{dir}/sft.safetensors");
    println!("[1/4] SFT (nll) for {} steps", args.sft_steps);
    run_sft(&train_args(
        &train_path,
        &sft_path,
        args.sft_steps,
        args.seed,
        args.device,
    ))?;

    println!("[2/4] reference log-probs from the SFT model");
    for data in [&train_path, &eval_path] {
        let out = run_precompute(&RefArgs {
            model: sft_path.clone(),
            data: data.clone(),
            out: None,
        })?;
        println!("      wrote {out}");
    }
    let eval_of = |model: &str| {
        run_eval(&EvalArgs {
            model: model.into(),
            data: eval_path.clone(),
            reference: None,
            max_new: 4,
        })
    };
    let before = eval_of(&sft_path)?;

    let aligned_path = format!("{dir}/bnf.safetensors");
    println!("[3/4] BNF alignment for {} steps", args.align_steps);
    let mut align = train_args(
        &train_path,
        &aligned_path,
        args.align_steps,
        args.seed,
        args.device,
    );
    align.objective.objective = Some("bnf".into());
    align.init = Some(sft_path.clone());
    align.lr = Some(3e-4);
    align.batch = Some(16);
    run_training(&align, Objective::Bnf)?;

    println!("[4/4] evaluation on {eval_path}");
    let after = eval_of(&aligned_path)?;
    report(&before, &after);
    println!("\ndemo done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments that cannot work fail before anything is written or trained: a file given as
    /// `--dir`, and either step count 0 (named by its own flag, not as `--steps`).
    #[test]
    fn bad_arguments_fail_before_any_work() {
        let root = std::env::temp_dir().join(format!("bnf-demo-args-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("afile");
        std::fs::write(&file, b"x").unwrap();
        let args = |dir: &std::path::Path, sft_steps, align_steps| DemoArgs {
            dir: dir.to_str().unwrap().into(),
            sft_steps,
            align_steps,
            seed: 0,
            device: Device::Cpu,
        };
        let err = run(&args(&file, 1, 1)).unwrap_err();
        assert!(err.contains("--dir") && err.contains("is a file"), "{err}");
        let fresh = root.join("out");
        for (sft, align, flag) in [(0, 5, "--sft-steps is 0"), (5, 0, "--align-steps is 0")] {
            let err = run(&args(&fresh, sft, align)).unwrap_err();
            assert!(err.contains(flag), "{err}");
            assert!(!fresh.exists(), "{flag}: the demo started");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
