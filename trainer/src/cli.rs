//! The command line (`bnf`): argument definitions and what each command does.

use crate::checkpoint;
use crate::data::{self, Response};
use crate::eval::evaluate;
use crate::generate::greedy;
use crate::model::params::Params;
use crate::model::{Model, ModelConfig};
use crate::objective::params::{describe_all, display};
use crate::objective::{Device, Objective, ObjectiveArgs};
use crate::optim::{AdamW, AdamWConfig};
use crate::paths;
use crate::reference::{default_path, RefLogps};
use crate::run::training_responses;
use crate::seq::{check_lengths, sequence_len};
use crate::tokenizer::{decode, encode, VOCAB};
use crate::train::{train, RunControl, StepLog, TrainConfig, TrainState};
use clap::{Args, Parser, Subcommand};
use std::collections::HashSet;

/// Train a small transformer with SFT and align it with BNF.
#[derive(Parser, Debug)]
#[command(name = "bnf", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Supervised fine-tuning (NLL) on the preferred responses of a data file.
    #[command(mut_args(hide_align_only))]
    Sft(TrainArgs),
    /// Write the reference model's per-token target log-probs beside the data.
    PrecomputeRef(RefArgs),
    /// Align a model with a preference objective (BNF by default, or any of `bnf objectives`),
    /// reading precomputed reference log-probs when the objective uses them.
    Align(TrainArgs),
    /// Preference accuracy, log-prob shifts against the reference, greedy task accuracy.
    Eval(EvalArgs),
    /// Greedy generation from a prompt.
    Generate(GenerateArgs),
    /// End to end on built-in arithmetic data: SFT, reference, BNF, before/after metrics.
    Demo(crate::demo::DemoArgs),
    /// Training throughput (tokens/s) of a fixed small configuration.
    Bench(crate::bench::BenchArgs),
    /// List the objectives, what data each needs, and their hyperparameters with defaults.
    Objectives,
    /// The paper's findings at small scale: every method on math and style preferences, with
    /// a generated report (`results.md`) and plots.
    Experiment(crate::experiment::ExperimentArgs),
}

/// The shape of a model trained from scratch when no shape flag is given.
pub const DEFAULT_SHAPE: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 64,
    channels: 64,
    heads: 4,
    layers: 2,
};

/// `"{what} [default: {value}]"`, the help of a flag whose default is applied after parsing
/// (so that a flag given can be told from one left out, which `--resume` needs).
fn with_default(what: &str, value: impl std::fmt::Display) -> String {
    format!("{what} [default: {value}]")
}

/// The arguments of [`TrainArgs`] that only `align` uses: `sft` leaves them out of its help
/// (and refuses them, except `--objective nll`).
pub const ALIGN_ONLY: &[&str] = &[
    "objective",
    "beta",
    "tau",
    "gamma",
    "alpha",
    "lambda",
    "margin",
    "desirable_weight",
    "undesirable_weight",
    "z0",
    "reference",
    "pairing_ratio",
];

fn hide_align_only(arg: clap::Arg) -> clap::Arg {
    let hide = ALIGN_ONLY.contains(&arg.get_id().as_str());
    arg.hide(hide)
}

/// Shape of a model trained from scratch (a model from `--init` or `--resume` has its own: a
/// shape flag given with them must agree with it).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct ShapeArgs {
    /// Residual width.
    #[arg(long, help = with_default("Residual width", DEFAULT_SHAPE.channels))]
    pub channels: Option<usize>,
    /// Transformer blocks.
    #[arg(long, help = with_default("Transformer blocks", DEFAULT_SHAPE.layers))]
    pub layers: Option<usize>,
    /// Attention heads.
    #[arg(long, help = with_default("Attention heads", DEFAULT_SHAPE.heads))]
    pub heads: Option<usize>,
    /// Longest sequence (BOS + prompt + completion + EOS), in bytes.
    #[arg(long, help = with_default(
        "Longest sequence (BOS + prompt + completion + EOS), in bytes",
        DEFAULT_SHAPE.block_size
    ))]
    pub block_size: Option<usize>,
}

impl ShapeArgs {
    /// Every shape flag set (what tests and programs usually want).
    pub fn new(channels: usize, layers: usize, heads: usize, block_size: usize) -> Self {
        ShapeArgs {
            channels: Some(channels),
            layers: Some(layers),
            heads: Some(heads),
            block_size: Some(block_size),
        }
    }

    /// The model config (byte vocabulary; [`DEFAULT_SHAPE`] for what is not given).
    pub fn config(&self) -> ModelConfig {
        let d = DEFAULT_SHAPE;
        ModelConfig {
            vocab: VOCAB,
            block_size: self.block_size.unwrap_or(d.block_size),
            channels: self.channels.unwrap_or(d.channels),
            heads: self.heads.unwrap_or(d.heads),
            layers: self.layers.unwrap_or(d.layers),
        }
    }

    /// The shape as command-line flags, for messages.
    pub fn flags(&self) -> String {
        let c = self.config();
        format!(
            "--channels {} --layers {} --heads {} --block-size {}",
            c.channels, c.layers, c.heads, c.block_size
        )
    }

    /// Check that the shape flags given agree with `model`, the shape of the checkpoint
    /// `source` (e.g. `--init sft.safetensors`): a checkpoint's shape cannot change, and a
    /// flag that would be ignored is an error.
    pub fn check_matches(&self, model: &ModelConfig, source: &str) -> Result<(), String> {
        let pairs = [
            ("--channels", self.channels, model.channels),
            ("--layers", self.layers, model.layers),
            ("--heads", self.heads, model.heads),
            ("--block-size", self.block_size, model.block_size),
        ];
        let differ: Vec<String> = pairs
            .iter()
            .filter_map(|&(flag, given, has)| {
                given
                    .filter(|&g| g != has)
                    .map(|g| format!("{flag} {g} (the model's: {has})"))
            })
            .collect();
        if differ.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{source}: the model's shape is the checkpoint's and cannot change, but these shape \
             flags differ from it: {}; leave them out (or train a new model without {})",
            differ.join(", "),
            source.split(' ').next().unwrap_or(source)
        ))
    }
}

/// Arguments of `sft` and `align`. The training flags are `None` when not given: a new run
/// takes [`TrainConfig::DEFAULT`]'s value, a resumed run the checkpoint's (and refuses one
/// given that differs).
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// JSON Lines data (TRL paired or unpaired format).
    #[arg(long)]
    pub data: String,
    /// Checkpoint to write (safetensors; a `.json` copy of the config goes beside it).
    #[arg(long)]
    pub out: String,
    /// Start from this checkpoint's weights (for `align`: the SFT model).
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<String>,
    /// Continue the run saved in this checkpoint, bit for bit: its objective, training flags
    /// and shape are the run's (a flag given that differs is an error).
    #[arg(long)]
    pub resume: Option<String>,
    /// Stop (and save) after this step, to be continued later with `--resume`.
    #[arg(long)]
    pub until: Option<usize>,
    /// The objective and its hyperparameters (`sft`: nll only).
    #[command(flatten)]
    pub objective: ObjectiveArgs,
    /// Where the loss rows run: cpu, or gpu (needs a build with `--features cuda` and a GPU).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Reference log-probs, for the objectives that read them (default: `<data>.ref.json`).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// Fraction of pairs kept as pairs; the others lose one side at random (paper 5.2).
    #[arg(long, allow_negative_numbers = true, help = with_default(
        "Fraction of pairs kept as pairs; the others lose one side at random (paper 5.2)",
        TrainConfig::DEFAULT.pairing_ratio
    ))]
    pub pairing_ratio: Option<f64>,
    /// Optimizer steps.
    #[arg(long, help = with_default("Optimizer steps", TrainConfig::DEFAULT.steps))]
    pub steps: Option<usize>,
    /// Units (pairs or lone responses) per micro-batch.
    #[arg(long, help = with_default(
        "Units (pairs or lone responses) per micro-batch",
        TrainConfig::DEFAULT.batch
    ))]
    pub batch: Option<usize>,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long, help = with_default(
        "Micro-batches per optimizer step (gradient accumulation)",
        TrainConfig::DEFAULT.accum
    ))]
    pub accum: Option<usize>,
    /// Peak learning rate (cosine schedule, 10% warm-up).
    #[arg(long, allow_negative_numbers = true, help = with_default(
        "Peak learning rate (cosine schedule, 10% warm-up)",
        TrainConfig::DEFAULT.lr
    ))]
    pub lr: Option<f32>,
    /// AdamW weight decay on matrices.
    #[arg(long, allow_negative_numbers = true, help = with_default(
        "AdamW weight decay on matrices",
        AdamWConfig::default().weight_decay
    ))]
    pub weight_decay: Option<f32>,
    /// Maximum global gradient norm (0: off).
    #[arg(long, allow_negative_numbers = true, help = with_default(
        "Maximum global gradient norm (0: off)",
        TrainConfig::DEFAULT.grad_clip
    ))]
    pub grad_clip: Option<f32>,
    /// Seed (initialisation, data order, pairing-ratio masking).
    #[arg(long, help = with_default(
        "Seed (initialisation, data order, pairing-ratio masking)",
        TrainConfig::DEFAULT.seed
    ))]
    pub seed: Option<u64>,
    /// Save a checkpoint every this many steps (0: at the end only).
    #[arg(long, help = with_default(
        "Save a checkpoint every this many steps (0: at the end only)",
        TrainConfig::DEFAULT.save_every
    ))]
    pub save_every: Option<usize>,
    /// Model shape when training from scratch.
    #[command(flatten)]
    pub shape: ShapeArgs,
}

impl TrainArgs {
    /// The command line's defaults for training on `data` into `out` (as `bnf align --data
    /// DATA --out OUT` would parse), for programs and tests to adjust.
    pub fn new(data: &str, out: &str) -> Self {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: TrainArgs,
        }
        let argv = [
            "bnf".to_string(),
            format!("--data={data}"),
            format!("--out={out}"),
        ];
        Wrap::try_parse_from(argv)
            .expect("two string values and defaults always parse")
            .args
    }

    /// The configuration of a new run with `objective` ([`TrainConfig::DEFAULT`] for what is
    /// not given).
    pub fn config(&self, objective: Objective) -> TrainConfig {
        let d = TrainConfig::DEFAULT;
        TrainConfig {
            objective,
            steps: self.steps.unwrap_or(d.steps),
            batch: self.batch.unwrap_or(d.batch),
            accum: self.accum.unwrap_or(d.accum),
            lr: self.lr.unwrap_or(d.lr),
            grad_clip: self.grad_clip.unwrap_or(d.grad_clip),
            seed: self.seed.unwrap_or(d.seed),
            save_every: self.save_every.unwrap_or(d.save_every),
            pairing_ratio: self.pairing_ratio.unwrap_or(d.pairing_ratio),
        }
    }

    /// The optimizer of a new run.
    pub fn adamw(&self) -> AdamWConfig {
        let d = AdamWConfig::default();
        AdamWConfig {
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            ..d
        }
    }

    /// Check that the training flags given agree with the run saved in `path` (its `config`
    /// and optimizer `adamw`): `--resume` continues that run as it was, so a flag that
    /// differs would be ignored, and is an error instead.
    pub fn check_resume(
        &self,
        path: &str,
        config: &TrainConfig,
        adamw: &AdamWConfig,
    ) -> Result<(), String> {
        fn differs<T: PartialEq + std::fmt::Display>(
            out: &mut Vec<String>,
            flag: &str,
            given: Option<T>,
            saved: T,
        ) {
            if let Some(g) = given.filter(|g| *g != saved) {
                out.push(format!("{flag} {g} (the run's: {saved})"));
            }
        }
        let mut out = Vec::new();
        differs(&mut out, "--steps", self.steps, config.steps);
        differs(&mut out, "--batch", self.batch, config.batch);
        differs(&mut out, "--accum", self.accum, config.accum);
        differs(&mut out, "--lr", self.lr, config.lr);
        differs(
            &mut out,
            "--weight-decay",
            self.weight_decay,
            adamw.weight_decay,
        );
        differs(&mut out, "--grad-clip", self.grad_clip, config.grad_clip);
        differs(&mut out, "--seed", self.seed, config.seed);
        differs(&mut out, "--save-every", self.save_every, config.save_every);
        differs(
            &mut out,
            "--pairing-ratio",
            self.pairing_ratio,
            config.pairing_ratio,
        );
        if out.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{path}: --resume continues the run as it was saved, but these flags differ from \
             it: {}; leave them out (or start a new run from its weights with --init {path})",
            out.join(", ")
        ))
    }
}

/// Arguments of `precompute-ref`.
#[derive(Args, Debug)]
pub struct RefArgs {
    /// The reference model (usually the SFT checkpoint).
    #[arg(long)]
    pub model: String,
    /// JSON Lines data.
    #[arg(long)]
    pub data: String,
    /// Output (default: `<data>.ref.json`).
    #[arg(long)]
    pub out: Option<String>,
}

/// Arguments of `eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model to evaluate.
    #[arg(long)]
    pub model: String,
    /// JSON Lines data.
    #[arg(long)]
    pub data: String,
    /// Reference log-probs (default: `<data>.ref.json` when it exists).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// Tokens to generate per prompt for task accuracy (0: skip).
    #[arg(long, default_value_t = 16)]
    pub max_new: usize,
}

/// Arguments of `generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The model.
    #[arg(long)]
    pub model: String,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 32)]
    pub max_new: usize,
}

/// Load a data file's responses.
pub fn load_responses(path: &str) -> Result<Vec<Response>, String> {
    Ok(data::responses(&data::load(path)?))
}

/// Check the outputs of `sft`/`align` before any work: `--out` and its JSON copy can be
/// written, and neither is one of the inputs (`--resume` excepted: a resumed run saves over
/// its checkpoint).
fn check_training_paths(args: &TrainArgs) -> Result<(), String> {
    let json = format!("{}.json", args.out);
    paths::check_output("--out", &args.out)?;
    paths::check_output("--out's JSON copy", &json)?;
    let default_ref = default_path(&args.data);
    let mut inputs = vec![
        ("--data", args.data.as_str()),
        match &args.reference {
            Some(r) => ("--ref", r.as_str()),
            None => ("the reference file of --data", default_ref.as_str()),
        },
    ];
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

/// What [`run_sft`] and [`run_training`] share; `sft` says which command runs.
fn training(args: &TrainArgs, objective: Objective, sft: bool) -> Result<Vec<StepLog>, String> {
    if args.init.is_some() && args.resume.is_some() {
        return Err(
            "--init and --resume exclude each other: --resume continues a run with its own \
             weights"
                .into(),
        );
    }
    check_training_paths(args)?;
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
            config.validate()?;
            opt_cfg.validate()?;
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
            let state = TrainState {
                config,
                step: 0,
                responses: 0,
                data_fingerprint: None,
            };
            (model, opt, state)
        }
    };
    let objective = state.config.objective;
    let all = load_responses(&args.data)?;
    // NLL's only refusal is about the data: name the file.
    let responses =
        training_responses(all.clone(), &state.config).map_err(|e| match objective {
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
        let path = args
            .reference
            .clone()
            .unwrap_or_else(|| default_path(&args.data));
        let refs =
            RefLogps::load(&path).map_err(|e| format!("objective {}: {e}", objective.name()))?;
        refs.check_file(&path, &args.data, &responses)?;
        Some(refs)
    } else {
        None
    };
    let control = RunControl {
        checkpoint: Some(&args.out),
        until: args.until,
        device: args.device,
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
    let out = args.out.clone().unwrap_or_else(|| default_path(&args.data));
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
pub fn run_eval(args: &EvalArgs) -> Result<crate::eval::EvalReport, String> {
    let mut model = checkpoint::load(&args.model)?.model;
    let responses = load_responses(&args.data)?;
    let source = format!("--model {}", args.model);
    let from = BlockFrom::Checkpoint(&source);
    check_fit(&args.data, &responses, model.config.block_size, from)?;
    let path = args
        .reference
        .clone()
        .unwrap_or_else(|| default_path(&args.data));
    let refs = if args.reference.is_some() || std::path::Path::new(&path).exists() {
        let refs = RefLogps::load(&path)?;
        refs.check_file(&path, &args.data, &responses)?;
        Some(refs)
    } else {
        None
    };
    evaluate(&mut model, &responses, refs.as_ref(), args.max_new)
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Sft(args) => run_sft(&args).map(|_| ()),
        Command::Align(args) => {
            let objective = args.objective.resolve("bnf")?;
            run_training(&args, objective).map(|_| ())
        }
        Command::PrecomputeRef(args) => {
            let out = run_precompute(&args)?;
            println!("wrote {out}");
            Ok(())
        }
        Command::Eval(args) => {
            print!("{}", run_eval(&args)?);
            Ok(())
        }
        Command::Generate(args) => {
            let mut model = checkpoint::load(&args.model)?.model;
            let gen = greedy(&mut model, &[encode(&args.prompt)], args.max_new, 1)?;
            println!("{}{}", args.prompt, decode(&gen[0]));
            Ok(())
        }
        Command::Demo(args) => crate::demo::run(&args),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Objectives => {
            print!("{}", describe_all());
            Ok(())
        }
        Command::Experiment(args) => crate::experiment::run(&args),
    }
}
