//! What `sft`, `align`, `precompute-ref` and `eval` do: the checks before any work (outputs,
//! flags that do not apply, a resumed run's flags and data, sequence lengths), then the work.

use super::args::{EvalArgs, RefArgs, TrainArgs, FLAGS};
use bnf_trainer::checkpoint;
use bnf_trainer::data::{self, Response};
use bnf_trainer::eval::evaluate;
use bnf_trainer::fingerprint::model_fingerprint;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::Model;
use bnf_trainer::objective::params::display;
use bnf_trainer::objective::Objective;
use bnf_trainer::optim::AdamW;
use bnf_trainer::paths;
use bnf_trainer::reference::{path_or_default, RefLogps};
use bnf_trainer::run::training_responses;
use bnf_trainer::seq::{check_lengths, sequence_len};
use bnf_trainer::train::{train, RunControl, StepLog, TrainState};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Load a data file's responses.
pub fn load_responses(path: &str) -> Result<Vec<Response>, String> {
    Ok(data::responses(&data::load(path)?))
}

/// Check the outputs of `sft`/`align` before any work: `--out` and its JSON copy can be
/// written, and neither is one of the inputs (`--resume` excepted: a resumed run saves over
/// its checkpoint). The reference file is an input when `objective` reads it.
fn check_training_paths(args: &TrainArgs, objective: &Objective) -> Result<(), String> {
    let json = paths::json_copy_path(&args.out);
    paths::check_output("--out", &args.out)?;
    paths::check_output("--out's JSON copy", &json)?;
    let reference = path_or_default(args.reference.as_deref(), &args.data);
    let mut inputs = vec![("--data", args.data.as_str())];
    if objective.needs_reference() {
        inputs.push(match &args.reference {
            Some(_) => ("--ref", reference.as_str()),
            None => ("the reference file of --data", reference.as_str()),
        });
    }
    if let Some(init) = &args.init {
        inputs.push(("--init", init));
    }
    paths::check_not_input("--out", &args.out, &inputs)?;
    if let Some(resume) = &args.resume {
        inputs.push(("--resume", resume));
    }
    paths::check_not_input("--out's JSON copy", &json, &inputs)
}

/// Where a model's block size comes from, for the advice when a response does not fit.
enum BlockFrom<'a> {
    /// `--block-size` (a new model).
    Flag,
    /// A checkpoint, as given (`--init x.safetensors`): its block size is fixed.
    Checkpoint(&'a str),
}

/// [`check_lengths`] with the data file's name and what to do: raise `--block-size`, or (the
/// block size of a checkpoint being fixed) shorten the data or train another model.
fn check_fit(
    data: &str,
    responses: &[Response],
    block_size: usize,
    from: BlockFrom<'_>,
) -> Result<(), String> {
    check_lengths(responses, block_size).map_err(|e| {
        let longest = responses.iter().map(sequence_len).max().unwrap_or(0);
        let fix = match from {
            BlockFrom::Flag => format!(
                "raise --block-size to at least {longest} (the longest sequence of the data)"
            ),
            BlockFrom::Checkpoint(source) => format!(
                "that is the block size of the model from {source}, fixed when it was \
                 trained: shorten the line, or train a model with --block-size {longest} or more"
            ),
        };
        format!("{data}: {e}; {fix}")
    })
}

/// `sft`: NLL on the preferred responses of the data (`--objective` may only name nll, and
/// `--resume` continues only an SFT run). Returns the step logs.
pub fn run_sft(args: &TrainArgs) -> Result<Vec<StepLog>, String> {
    let objective = args.objective.resolve_sft()?;
    training(args, objective, true)
}

/// `align` (and `sft` with `objective = nll`): train with `objective`, or on `--resume` with
/// the checkpoint's. Returns the step logs.
pub fn run_training(args: &TrainArgs, objective: Objective) -> Result<Vec<StepLog>, String> {
    training(args, objective, false)
}

/// Refuse the flags `objective` has no use for (they would be ignored): `--pairing-ratio`
/// with nll (it trains on the preferred responses alone), `--ref` with an objective that does
/// not read the reference. `sft` says which command runs, for the message.
fn check_applies(args: &TrainArgs, objective: &Objective, sft: bool) -> Result<(), String> {
    let who = if sft {
        "sft".to_string()
    } else {
        format!("objective {}", objective.name())
    };
    if *objective == Objective::Nll && args.pairing_ratio.is_some() {
        return Err(format!(
            "--pairing-ratio does not apply to {who}: it trains on the preferred responses \
             alone, each without its partner; leave it out (or align with an objective that \
             uses it)"
        ));
    }
    if args.reference.is_some() && !objective.needs_reference() {
        return Err(format!(
            "--ref does not apply to {who}: it does not read the reference model's log-probs; \
             leave it out"
        ));
    }
    Ok(())
}

/// Set by the command line's Ctrl-C handler (`main.rs`): training stops after the step that
/// is running, saves its checkpoint and says how to resume.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// What [`run_sft`] and [`run_training`] share; `sft` says which command runs.
fn training(args: &TrainArgs, objective: Objective, sft: bool) -> Result<Vec<StepLog>, String> {
    if args.init.is_some() && args.resume.is_some() {
        return Err(
            "--init and --resume exclude each other: --resume continues a run with its own \
             weights"
                .into(),
        );
    }
    if sft && args.from_scratch {
        return Err(
            "--from-scratch applies to `bnf align`; sft starts from scratch unless \
                    --init is given"
                .into(),
        );
    }
    if !sft && args.init.is_none() && args.resume.is_none() && !args.from_scratch {
        return Err(
            "align: no model to align: give --init with the SFT model (the one that computed \
             the reference log-probs), or --resume to continue a run; --from-scratch aligns a \
             freshly initialised model instead"
                .into(),
        );
    }
    let (mut model, mut opt, mut state) = match &args.resume {
        Some(path) => {
            let ck = checkpoint::load(path)?;
            let opt = ck
                .optimizer
                .ok_or_else(|| format!("{path}: no optimizer state to resume from"))?;
            let state = ck
                .train
                .ok_or_else(|| format!("{path}: no training state to resume from"))?;
            if state.data_fingerprint.is_none() {
                return Err(format!(
                    "{path}: a checkpoint of the first format (written by an older version), \
                     without a fingerprint of its training data, so --resume cannot check that \
                     it continues on the same data; start a new run from its weights with \
                     --init {path}"
                ));
            }
            let saved = state.config.objective;
            let asked = args.objective.objective.is_some() || !args.objective.given().is_empty();
            if asked && objective != saved {
                return Err(format!(
                    "{path}: the run was started with objective {}; --resume continues it as \
                     it was, so leave out --objective and its hyperparameters (asked for {})",
                    display(&saved),
                    display(&objective)
                ));
            }
            if sft && saved != Objective::Nll {
                return Err(format!(
                    "{path}: the run was started by `bnf align` with objective {}, and sft \
                     continues only SFT (nll) runs; resume it with `bnf align --resume {path}`",
                    display(&saved)
                ));
            }
            check_applies(args, &saved, sft)?;
            args.check_resume(path, &state.config, &opt.config)?;
            args.shape
                .check_matches(&ck.model.config, &format!("--resume {path}"))?;
            if state.step >= state.config.steps {
                return Err(format!(
                    "{path}: the run is finished (step {} of {}), so there is nothing to \
                     resume; to train further, start a new run from it with --init {path}",
                    state.step, state.config.steps
                ));
            }
            (ck.model, opt, state)
        }
        None => {
            check_applies(args, &objective, sft)?;
            let config = args.config(objective);
            let opt_cfg = args.adamw();
            // Before any work: a bad value fails here, not at step 2 or in a checkpoint.
            config.validate(FLAGS)?;
            opt_cfg.validate(FLAGS)?;
            let model = match &args.init {
                Some(path) => {
                    let model = checkpoint::load(path)?.model;
                    args.shape
                        .check_matches(&model.config, &format!("--init {path}"))?;
                    model
                }
                None => Model::new(args.shape.config(), config.seed)
                    .map_err(|e| format!("{}: {e}", args.shape.flags()))?,
            };
            let opt = AdamW::new(opt_cfg, Params::NAMES, model.param_sizes());
            let state = TrainState::new(config, 0);
            (model, opt, state)
        }
    };
    let objective = state.config.objective;
    check_training_paths(args, &objective)?;
    // A run whose checkpoint could not be written fails now, not at its first save.
    checkpoint::config_json(&args.out, &model, Some(&opt), Some(&state))?;
    let all = load_responses(&args.data)?;
    // NLL's only refusal is about the data: name the file.
    let responses =
        training_responses(all.clone(), &state.config, FLAGS).map_err(|e| match objective {
            Objective::Nll => format!("{}: {e}", args.data),
            _ => e,
        })?;
    // Checked on the file's responses (each still with its partner, so the message names the
    // field it came from), those that train.
    let trained: HashSet<usize> = responses.iter().map(|r| r.id).collect();
    let fit: Vec<Response> = all
        .into_iter()
        .filter(|r| trained.contains(&r.id))
        .collect();
    let source = match (&args.resume, &args.init) {
        (Some(path), _) => format!("--resume {path}"),
        (None, Some(path)) => format!("--init {path}"),
        (None, None) => String::new(),
    };
    let from = match source.is_empty() {
        true => BlockFrom::Flag,
        false => BlockFrom::Checkpoint(&source),
    };
    check_fit(&args.data, &fit, model.config.block_size, from)?;
    if args.resume.is_none() {
        state.responses = responses.len();
    }
    // Only the objectives that read the reference load it; a missing file is reported with
    // the objective's name before any step.
    let refs = if objective.needs_reference() {
        let path = path_or_default(args.reference.as_deref(), &args.data);
        let refs = RefLogps::load(&path, FLAGS)
            .map_err(|e| format!("objective {}: {e}", objective.name()))?;
        refs.check_file(&path, &args.data, &responses, FLAGS)?;
        if let (Some(init), None) = (&args.init, &args.resume) {
            let whose = format!("the --init model {init}");
            refs.check_model(&model_fingerprint(&model.params), &whose, FLAGS)
                .map_err(|e| format!("{path}: {}", e.trim_start_matches("reference file: ")))?;
        }
        Some(refs)
    } else {
        None
    };
    let metrics_path = format!("{}.metrics.jsonl", args.out);
    let control = RunControl {
        checkpoint: Some(&args.out),
        until: args.until,
        device: args.device,
        fused_head: args.fused_head,
        names: FLAGS,
        stop: Some(&STOP),
        metrics: Some(&metrics_path),
    };
    let logs = train(
        &mut model,
        &mut opt,
        &responses,
        refs.as_ref(),
        &mut state,
        control,
        objective.name(),
    )?;
    if STOP.load(Ordering::SeqCst) && state.step < state.config.steps {
        let command = if sft { "sft" } else { "align" };
        let reference = match &args.reference {
            Some(r) => format!(" --ref {r}"),
            None => String::new(),
        };
        return Err(format!(
            "interrupted at step {} of {}; saved {out} (loss curve in {metrics_path}); resume \
             with: bnf {command} --resume {out} --data {}{reference} --out {out}",
            state.step,
            state.config.steps,
            args.data,
            out = args.out,
        ));
    }
    if let Some(last) = logs.last() {
        eprintln!(
            "{}: step {} loss {:.4}; saved {}",
            objective.name(),
            last.step,
            last.loss,
            args.out
        );
    }
    Ok(logs)
}

/// `precompute-ref`.
pub fn run_precompute(args: &RefArgs) -> Result<String, String> {
    let out = path_or_default(args.out.as_deref(), &args.data);
    let what = if args.out.is_some() {
        "--out"
    } else {
        "the reference file (<data>.ref.json)"
    };
    paths::check_output(what, &out)?;
    paths::check_not_input(
        what,
        &out,
        &[("--model", &args.model), ("--data", &args.data)],
    )?;
    let mut model = checkpoint::load(&args.model)?.model;
    let responses = load_responses(&args.data)?;
    let source = format!("--model {}", args.model);
    let from = BlockFrom::Checkpoint(&source);
    check_fit(&args.data, &responses, model.config.block_size, from)?;
    let refs = RefLogps::compute(&mut model, &responses, 64)?;
    refs.save(&out)?;
    Ok(out)
}

/// `eval`.
pub fn run_eval(args: &EvalArgs) -> Result<bnf_trainer::eval::EvalReport, String> {
    let ck = checkpoint::load(&args.model)?;
    let mut model = ck.model;
    let responses = load_responses(&args.data)?;
    let source = format!("--model {}", args.model);
    let from = BlockFrom::Checkpoint(&source);
    check_fit(&args.data, &responses, model.config.block_size, from)?;
    let path = path_or_default(args.reference.as_deref(), &args.data);
    let refs = if args.reference.is_some() || std::path::Path::new(&path).exists() {
        let refs = RefLogps::load(&path, FLAGS)?;
        refs.check_file(&path, &args.data, &responses, FLAGS)?;
        // An aligned model is compared with its own reference model.
        if let Some(f) = ck.train.as_ref().and_then(|t| t.ref_model.as_deref()) {
            let whose = format!(
                "the reference model that --model {} was aligned against",
                args.model
            );
            refs.check_model(f, &whose, FLAGS)
                .map_err(|e| format!("{path}: {}", e.trim_start_matches("reference file: ")))?;
        }
        Some(refs)
    } else {
        None
    };
    evaluate(&mut model, &responses, refs.as_ref(), args.max_new, FLAGS)
}
