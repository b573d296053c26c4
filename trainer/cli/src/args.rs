//! The flags of `sft`, `align`, `precompute-ref`, `eval` and `generate`, with their defaults
//! (applied after parsing, so that a flag given can be told from one left out) and the checks
//! that compare them with a checkpoint's (`--init`, `--resume`); the objective's flags
//! ([`ObjectiveArgs`]) and `--device`. The library names each value by its field and each step
//! by its function; the command line's names for them are [`FLAGS`], which the commands pass it.

use bnf_trainer::model::ModelConfig;
use bnf_trainer::names::Names;
use bnf_trainer::objective::params::build_named;
use bnf_trainer::objective::{Device, Objective};
use bnf_trainer::optim::AdamWConfig;
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::TrainConfig;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;

/// The command line's names for the library's fields and steps, passed to every library call
/// whose messages name them: a field's flag is its name with `--` and dashes (`weight_decay`:
/// `--weight-decay`), a step is the command that takes it (`precompute_ref`:
/// `` `bnf precompute-ref` ``).
pub const FLAGS: Names = Names::new(flag, command);

/// The flag of the library's field `field`.
fn flag(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// The command that takes the library's step `step`.
fn command(step: &str) -> String {
    format!("`bnf {}`", step.replace('_', "-"))
}

/// `--device`'s values: the name on the command line, the device, and its help.
const DEVICES: [(&str, Device, &str); 2] = [
    ("cpu", Device::Cpu, "`bnf-core` on the CPU"),
    (
        "gpu",
        Device::Gpu,
        "The CUDA kernels through `bnf-driver` (builds with the `cuda` or `emu` feature)",
    ),
];

/// The parser of `--device` (`cpu` or `gpu`), for `#[arg(value_parser = device_parser())]`.
pub fn device_parser() -> impl TypedValueParser<Value = Device> {
    PossibleValuesParser::new(DEVICES.map(|(name, _, help)| PossibleValue::new(name).help(help)))
        .map(|given| {
            let (_, device, _) = DEVICES
                .iter()
                .find(|(name, ..)| *name == given)
                .copied()
                .expect("clap passes only the possible values");
            device
        })
}

/// `--objective` and its hyperparameters on the command line. Every value given must belong to
/// the chosen objective. Values may be negative (`--gamma -0.5`); core checks each one's range.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct ObjectiveArgs {
    /// Objective, any of `bnf objectives` (default: bnf for align, nll for sft).
    #[arg(long)]
    pub objective: Option<String>,
    /// Inverse temperature / reward scale beta (dpo, simpo, rdpo, cpo, kto).
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f32>,
    /// IPO's tau (target margin 1 / (2 tau)).
    #[arg(long, allow_negative_numbers = true)]
    pub tau: Option<f32>,
    /// SimPO's target margin gamma.
    #[arg(long, allow_negative_numbers = true)]
    pub gamma: Option<f32>,
    /// R-DPO's length-difference weight alpha.
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f32>,
    /// Weight lambda (SLiC-HF's NLL term, ORPO's odds-ratio term).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f32>,
    /// SLiC-HF's hinge margin.
    #[arg(long, allow_negative_numbers = true)]
    pub margin: Option<f32>,
    /// KTO's weight of desirable (preferred) responses.
    #[arg(long, allow_negative_numbers = true)]
    pub desirable_weight: Option<f32>,
    /// KTO's weight of undesirable (dispreferred) responses.
    #[arg(long, allow_negative_numbers = true)]
    pub undesirable_weight: Option<f32>,
    /// KTO's reference point z0, held fixed (default: estimated from each micro-batch).
    #[arg(long, allow_negative_numbers = true)]
    pub z0: Option<f32>,
}

impl ObjectiveArgs {
    /// The hyperparameters given, by core's names.
    pub fn given(&self) -> Vec<(&'static str, f32)> {
        [
            ("beta", self.beta),
            ("tau", self.tau),
            ("gamma", self.gamma),
            ("alpha", self.alpha),
            ("lambda", self.lambda),
            ("margin", self.margin),
            ("desirable_weight", self.desirable_weight),
            ("undesirable_weight", self.undesirable_weight),
            ("z0", self.z0),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }

    /// The objective these arguments name (`default` when `--objective` is absent), with its
    /// hyperparameters set; the messages name the flags.
    pub fn resolve(&self, default: &str) -> Result<Objective, String> {
        build_named(
            self.objective.as_deref().unwrap_or(default),
            &self.given(),
            FLAGS,
        )
    }

    /// The objective of `sft`: NLL, which has no hyperparameters; any other objective or
    /// hyperparameter is an error.
    pub fn resolve_sft(&self) -> Result<Objective, String> {
        let obj = self.resolve("nll")?;
        if obj != Objective::Nll {
            return Err(format!(
                "sft trains with nll; to train with {} use `bnf align --objective {}`",
                obj.name(),
                obj.name()
            ));
        }
        Ok(obj)
    }
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

pub(super) fn hide_align_only(arg: clap::Arg) -> clap::Arg {
    let hide = ALIGN_ONLY.contains(&arg.get_id().as_str());
    arg.hide(hide)
}

/// `"{flag} {given} ({whose}: {saved})"` when a flag was given with a value other than the
/// checkpoint's `saved` (`whose`: "the run's", "the model's"), for the refusals of `--resume`
/// and `--init`.
fn differing<T: PartialEq + std::fmt::Display>(
    flag: &str,
    given: Option<T>,
    saved: T,
    whose: &str,
) -> Option<String> {
    given
        .filter(|g| *g != saved)
        .map(|g| format!("{flag} {g} ({whose}: {saved})"))
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
            .into_iter()
            .filter_map(|(flag, given, has)| differing(flag, given, has, "the model's"))
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
    /// `align` only: train a freshly initialised model instead of one from `--init` (the
    /// reference log-probs then come from another model than the one trained; refused
    /// without this flag).
    #[arg(long, conflicts_with_all = ["init", "resume"])]
    pub from_scratch: bool,
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
    #[arg(long, value_parser = device_parser(), default_value = "cpu")]
    pub device: Device,
    /// Run the LM head and the loss chunk by chunk, never holding the batch's logits (CPU).
    #[arg(long)]
    pub fused_head: bool,
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
        "Save a checkpoint every this many steps, and at the end and on Ctrl-C (0: at the end and on Ctrl-C only)",
        TrainConfig::DEFAULT.save_every
    ))]
    pub save_every: Option<usize>,
    /// Model shape when training from scratch.
    #[command(flatten)]
    pub shape: ShapeArgs,
}

impl TrainArgs {
    /// The command line's defaults for training on `data` into `out` (what `bnf align --data
    /// DATA --out OUT` parses to), for the demo, programs and tests to adjust: a plain value,
    /// no parsing.
    pub fn new(data: &str, out: &str) -> Self {
        TrainArgs {
            data: data.into(),
            out: out.into(),
            init: None,
            from_scratch: false,
            resume: None,
            until: None,
            objective: ObjectiveArgs::default(),
            device: Device::Cpu,
            fused_head: false,
            reference: None,
            pairing_ratio: None,
            steps: None,
            batch: None,
            accum: None,
            lr: None,
            weight_decay: None,
            grad_clip: None,
            seed: None,
            save_every: None,
            shape: ShapeArgs::default(),
        }
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
        const RUN: &str = "the run's";
        let out: Vec<String> = [
            differing("--steps", self.steps, config.steps, RUN),
            differing("--batch", self.batch, config.batch, RUN),
            differing("--accum", self.accum, config.accum, RUN),
            differing("--lr", self.lr, config.lr, RUN),
            differing("--weight-decay", self.weight_decay, adamw.weight_decay, RUN),
            differing("--grad-clip", self.grad_clip, config.grad_clip, RUN),
            differing("--seed", self.seed, config.seed, RUN),
            differing("--save-every", self.save_every, config.save_every, RUN),
            differing(
                "--pairing-ratio",
                self.pairing_ratio,
                config.pairing_ratio,
                RUN,
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use bnf_core::{DpoConfig, OBJECTIVE_NAMES};
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ObjectiveArgs,
        #[arg(long, value_parser = device_parser(), default_value = "cpu")]
        device: Device,
    }

    fn try_parse(argv: &[&str]) -> Result<Cmd, clap::Error> {
        Cmd::try_parse_from(std::iter::once("x").chain(argv.iter().copied()))
    }

    fn parse(argv: &[&str]) -> ObjectiveArgs {
        try_parse(argv).unwrap().args
    }

    /// Every flag of `sft`/`align` is its field's name as [`FLAGS`] spells it (`--ref` excepted:
    /// the library calls that field `ref`), and the one step the library asks for is a command.
    #[test]
    fn flags_are_the_fields_spelled_for_the_command_line() {
        use clap::CommandFactory;
        let cmd = crate::Cli::command();
        let align = cmd.find_subcommand("align").unwrap();
        for arg in align.get_arguments() {
            let (id, long) = (arg.get_id().as_str(), arg.get_long().unwrap());
            let field = if id == "reference" { "ref" } else { id };
            assert_eq!(FLAGS.of(field), format!("--{long}"), "{id}");
        }
        assert_eq!(FLAGS.of("max_new"), "--max-new");
        let step = FLAGS.step("precompute_ref");
        assert_eq!(step, "`bnf precompute-ref`");
        assert!(cmd.find_subcommand("precompute-ref").is_some());
    }

    #[test]
    fn every_core_name_parses_with_its_defaults() {
        for name in OBJECTIVE_NAMES {
            let obj = parse(&["--objective", name]).resolve("bnf").unwrap();
            assert_eq!(Some(obj), Objective::parse(name), "{name}");
            assert_eq!(obj.name(), *name);
        }
        assert_eq!(parse(&[]).resolve("bnf").unwrap(), Objective::Bnf);
        assert_eq!(
            parse(&["--objective", "SLiC-HF"])
                .resolve("bnf")
                .unwrap()
                .name(),
            "slic_hf"
        );
        let err = parse(&["--objective", "zzz"]).resolve("bnf").unwrap_err();
        assert!(err.contains("unknown") && err.contains("kto"), "{err}");
    }

    /// Each parameter of each objective is reachable by its flag and lands in its own field.
    #[test]
    fn every_parameter_has_a_flag() {
        for name in OBJECTIVE_NAMES {
            let obj = Objective::parse(name).unwrap();
            for (i, (p, _)) in obj.params().iter().enumerate() {
                let value = 0.25 + i as f32;
                let got = parse(&["--objective", name, &flag(p), &value.to_string()])
                    .resolve("bnf")
                    .unwrap();
                let mut want = obj.params();
                want[i].1 = Some(value);
                assert_eq!(got.params(), want, "{name} {}", flag(p));
            }
        }
        // And every flag belongs to some objective.
        let all = ObjectiveArgs {
            beta: Some(1.0),
            tau: Some(1.0),
            gamma: Some(1.0),
            alpha: Some(1.0),
            lambda: Some(1.0),
            margin: Some(1.0),
            desirable_weight: Some(1.0),
            undesirable_weight: Some(1.0),
            z0: Some(1.0),
            objective: None,
        };
        for (p, _) in all.given() {
            assert!(
                OBJECTIVE_NAMES.iter().any(|n| Objective::parse(n)
                    .unwrap()
                    .params()
                    .iter()
                    .any(|(q, _)| *q == p)),
                "{p}"
            );
        }
    }

    /// The library's messages, as the command line shows them: with the flags.
    #[test]
    fn a_parameter_the_objective_lacks_is_an_error() {
        let err = parse(&["--objective", "dpo", "--gamma", "1"])
            .resolve("bnf")
            .unwrap_err();
        assert_eq!(
            err,
            "objective dpo does not use --gamma (its hyperparameters: --beta)"
        );
        let err = parse(&["--beta", "0.1"]).resolve("bnf").unwrap_err();
        assert_eq!(
            err,
            "objective bnf does not use --beta (it has no hyperparameters)"
        );
        let err = parse(&["--objective", "dpo", "--beta", "-1"])
            .resolve("bnf")
            .unwrap_err();
        assert_eq!(
            err,
            "objective dpo: beta = -1 is out of range (--beta must be finite and above 0)"
        );
        assert_eq!(
            parse(&["--objective", "dpo", "--beta", "0.5"])
                .resolve("bnf")
                .unwrap(),
            Objective::Dpo(DpoConfig { beta: 0.5 })
        );
    }

    #[test]
    fn sft_takes_only_nll() {
        assert_eq!(parse(&[]).resolve_sft().unwrap(), Objective::Nll);
        assert_eq!(
            parse(&["--objective", "sft"]).resolve_sft().unwrap(),
            Objective::Nll
        );
        let err = parse(&["--objective", "dpo"]).resolve_sft().unwrap_err();
        assert!(err.contains("align --objective dpo"), "{err}");
        assert!(parse(&["--beta", "1"]).resolve_sft().is_err());
    }

    #[test]
    fn device_parses_cpu_and_gpu_only() {
        assert_eq!(try_parse(&[]).unwrap().device, Device::Cpu);
        assert_eq!(try_parse(&["--device", "cpu"]).unwrap().device, Device::Cpu);
        assert_eq!(try_parse(&["--device", "gpu"]).unwrap().device, Device::Gpu);
        let err = try_parse(&["--device", "tpu"]).err().unwrap().to_string();
        assert!(err.contains("[possible values: cpu, gpu]"), "{err}");
    }

    /// `TrainArgs::new` is what the command line parses from `--data` and `--out` alone.
    #[test]
    fn new_train_args_are_the_parsed_defaults() {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: TrainArgs,
        }
        let parsed = Wrap::try_parse_from(["bnf", "--data=d.jsonl", "--out=o"]).unwrap();
        let built = TrainArgs::new("d.jsonl", "o");
        assert_eq!(format!("{:?}", parsed.args), format!("{built:?}"));
    }
}
