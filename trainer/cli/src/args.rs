//! The flags of `sft`, `align`, `precompute-ref`, `eval` and `generate`, with their defaults
//! (applied after parsing, so that a flag given can be told from one left out) and the checks
//! that compare them with a checkpoint's (`--init`, `--resume`).

use bnf_trainer::model::ModelConfig;
use bnf_trainer::objective::{Device, Objective, ObjectiveArgs};
use bnf_trainer::optim::AdamWConfig;
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::TrainConfig;
use clap::Args;

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
        "Save a checkpoint every this many steps (0: at the end only)",
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
    use clap::Parser;

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
