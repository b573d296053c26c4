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
use crate::seq::check_lengths;
use crate::tokenizer::{decode, encode, VOCAB};
use crate::train::{train, RunControl, StepLog, TrainConfig, TrainState};
use clap::{Args, Parser, Subcommand};

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

/// Shape of a model trained from scratch.
#[derive(Args, Debug, Clone)]
pub struct ShapeArgs {
    /// Residual width.
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Longest sequence (BOS + prompt + completion + EOS), in bytes.
    #[arg(long, default_value_t = 64)]
    pub block_size: usize,
}

impl ShapeArgs {
    /// The shape as command-line flags, for messages.
    pub fn flags(&self) -> String {
        format!(
            "--channels {} --layers {} --heads {} --block-size {}",
            self.channels, self.layers, self.heads, self.block_size
        )
    }

    /// The model config (byte vocabulary).
    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            vocab: VOCAB,
            block_size: self.block_size,
            channels: self.channels,
            heads: self.heads,
            layers: self.layers,
        }
    }
}

/// Arguments of `sft` and `align`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// JSON Lines data (TRL paired or unpaired format).
    #[arg(long)]
    pub data: String,
    /// Checkpoint to write (safetensors; a `.json` copy of the config goes beside it).
    #[arg(long)]
    pub out: String,
    /// Start from this checkpoint's weights (for `align`: the SFT model).
    #[arg(long)]
    pub init: Option<String>,
    /// Continue the run saved in this checkpoint, bit for bit (its hyperparameters win).
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
    /// Reference log-probs (default: `<data>.ref.json`).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// Fraction of pairs kept as pairs; the others lose one side at random (paper 5.2).
    #[arg(long, default_value_t = TrainConfig::DEFAULT.pairing_ratio)]
    pub pairing_ratio: f64,
    /// Optimizer steps.
    #[arg(long, default_value_t = TrainConfig::DEFAULT.steps)]
    pub steps: usize,
    /// Units (pairs or lone responses) per micro-batch.
    #[arg(long, default_value_t = TrainConfig::DEFAULT.batch)]
    pub batch: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long, default_value_t = TrainConfig::DEFAULT.accum)]
    pub accum: usize,
    /// Peak learning rate (cosine schedule, 10% warm-up).
    #[arg(long, default_value_t = TrainConfig::DEFAULT.lr)]
    pub lr: f32,
    /// AdamW weight decay on matrices.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Maximum global gradient norm (0: off).
    #[arg(long, default_value_t = TrainConfig::DEFAULT.grad_clip)]
    pub grad_clip: f32,
    /// Seed (initialisation, data order, pairing-ratio masking).
    #[arg(long, default_value_t = TrainConfig::DEFAULT.seed)]
    pub seed: u64,
    /// Save a checkpoint every this many steps (0: at the end only).
    #[arg(long, default_value_t = TrainConfig::DEFAULT.save_every)]
    pub save_every: usize,
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

/// `sft` (with `objective = nll`) and `align`: returns the step logs.
pub fn run_training(args: &TrainArgs, objective: Objective) -> Result<Vec<StepLog>, String> {
    check_training_paths(args)?;
    let all = load_responses(&args.data)?;
    let (mut model, mut opt, mut state) = match &args.resume {
        Some(path) => {
            let ck = checkpoint::load(path)?;
            let opt = ck
                .optimizer
                .ok_or_else(|| format!("{path}: no optimizer state to resume from"))?;
            let state = ck
                .train
                .ok_or_else(|| format!("{path}: no training state to resume from"))?;
            let asked = args.objective.objective.is_some() || !args.objective.given().is_empty();
            if asked && objective != state.config.objective {
                return Err(format!(
                    "{path}: the run was started with objective {}; --resume continues it as \
                     it was, so leave out --objective and its hyperparameters (asked for {})",
                    display(&state.config.objective),
                    display(&objective)
                ));
            }
            (ck.model, opt, state)
        }
        None => {
            let opt_cfg = AdamWConfig {
                weight_decay: args.weight_decay,
                ..AdamWConfig::default()
            };
            let config = TrainConfig {
                objective,
                steps: args.steps,
                batch: args.batch,
                accum: args.accum,
                lr: args.lr,
                grad_clip: args.grad_clip,
                seed: args.seed,
                save_every: args.save_every,
                pairing_ratio: args.pairing_ratio,
            };
            // Before any work: a bad value fails here, not at step 2 or in a checkpoint.
            config.validate()?;
            opt_cfg.validate()?;
            let model = match &args.init {
                Some(path) => checkpoint::load(path)?.model,
                None => Model::new(args.shape.config(), args.seed)
                    .map_err(|e| format!("{}: {e}", args.shape.flags()))?,
            };
            let opt = AdamW::new(opt_cfg, Params::NAMES, model.param_sizes());
            let state = TrainState {
                config,
                step: 0,
                responses: 0,
            };
            (model, opt, state)
        }
    };
    let objective = state.config.objective;
    let responses = training_responses(all, &state.config)?;
    check_lengths(&responses, model.config.block_size)?;
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
        Some(RefLogps::load(&path).map_err(|e| format!("objective {}: {e}", objective.name()))?)
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
    check_lengths(&responses, model.config.block_size)?;
    let refs = RefLogps::compute(&mut model, &responses, 64)?;
    refs.save(&out)?;
    Ok(out)
}

/// `eval`.
pub fn run_eval(args: &EvalArgs) -> Result<crate::eval::EvalReport, String> {
    let mut model = checkpoint::load(&args.model)?.model;
    let responses = load_responses(&args.data)?;
    check_lengths(&responses, model.config.block_size)?;
    let refs = match &args.reference {
        Some(p) => Some(RefLogps::load(p)?),
        None => {
            let p = default_path(&args.data);
            if std::path::Path::new(&p).exists() {
                Some(RefLogps::load(&p)?)
            } else {
                None
            }
        }
    };
    evaluate(&mut model, &responses, refs.as_ref(), args.max_new)
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Sft(args) => {
            let objective = args.objective.resolve_sft()?;
            run_training(&args, objective).map(|_| ())
        }
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
