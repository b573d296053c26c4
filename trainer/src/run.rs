//! Training from memory, for programs (the experiments) rather than the command line: a model,
//! a [`TrainConfig`] (objective and hyperparameters), the responses of a data file and, for the
//! objectives that read it, the reference log-probs; out come the trained model and one
//! [`StepLog`] per step. The command line (`sft`, `align`) goes through the same
//! [`training_responses`] and [`train`].
//!
//! ```no_run
//! use bnf_trainer::data::{parse_jsonl, responses};
//! use bnf_trainer::model::{Model, ModelConfig};
//! use bnf_trainer::objective::{build, Objective};
//! use bnf_trainer::optim::AdamWConfig;
//! use bnf_trainer::reference::RefLogps;
//! use bnf_trainer::run::train_run;
//! use bnf_trainer::train::{RunControl, TrainConfig};
//!
//! let data = responses(&parse_jsonl(&std::fs::read_to_string("d.jsonl")?)?);
//! let shape = ModelConfig { vocab: bnf_trainer::tokenizer::VOCAB, block_size: 32, channels: 64, heads: 4, layers: 2 };
//! let sft = TrainConfig { objective: Objective::Nll, steps: 100, ..TrainConfig::DEFAULT };
//! let sft = train_run(Model::new(shape, 0)?, AdamWConfig::default(), sft, &data, None, RunControl::default())?;
//! let mut reference = sft.model.clone(); // the SFT model is the reference
//! let refs = RefLogps::compute(&mut reference, &data, 64)?;
//! let dpo = TrainConfig { objective: build("dpo", &[("beta", 0.1)])?, lr: 3e-4, ..TrainConfig::DEFAULT };
//! let aligned = train_run(sft.model, AdamWConfig::default(), dpo, &data, Some(&refs), RunControl::default())?;
//! println!("final loss {}", aligned.logs.last().unwrap().loss);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::data::{apply_pairing_ratio, Response};
use crate::model::params::Params;
use crate::model::Model;
use crate::names::Names;
use crate::objective::check::check_pairing_ratio;
use crate::objective::Objective;
use crate::optim::{AdamW, AdamWConfig};
use crate::reference::RefLogps;
use crate::seq::check_lengths;
use crate::train::{train, RunControl, StepLog, TrainConfig, TrainState};

/// The responses a run with `config` trains on, from all the responses of a data file: NLL
/// (SFT) keeps the preferred ones, each alone (data without any is an error that says so);
/// the other objectives apply the pairing ratio (a pairwise objective with a ratio below 1 is
/// an error, naming the ratio as the caller does: `names`).
pub fn training_responses(
    all: Vec<Response>,
    config: &TrainConfig,
    names: Names,
) -> Result<Vec<Response>, String> {
    match config.objective {
        Objective::Nll => {
            let n = all.len();
            let kept: Vec<Response> = all
                .into_iter()
                .filter(|r| r.label > 0.0)
                .map(|mut r| {
                    r.partner = None;
                    r
                })
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "sft (objective nll) trains on the preferred responses, \"chosen\" or a \
                     \"completion\" with \"label\": true, and none of the {n} responses is \
                     one; give data with preferred responses (or align with an objective that \
                     also learns from dispreferred ones, such as bnf or kto)"
                ));
            }
            Ok(kept)
        }
        obj => {
            check_pairing_ratio(&obj, config.pairing_ratio, names)?;
            apply_pairing_ratio(all, config.pairing_ratio, config.seed)
        }
    }
}

/// What [`train_run`] returns.
pub struct RunOutput {
    /// The trained model.
    pub model: Model,
    /// The optimizer's state at the end.
    pub optimizer: AdamW,
    /// Where the run stands (its config, the steps done).
    pub state: TrainState,
    /// One log per step.
    pub logs: Vec<StepLog>,
}

/// Train `model` from scratch state (a fresh AdamW with `optimizer`) with `config` on `all`,
/// every response of a data file in [`crate::data::responses`] order (so `refs`, indexed by
/// response id, line up). `refs` is needed by the objectives that read the reference
/// (`Objective::needs_reference`). `control` says where to save, where to stop and on which
/// device the loss runs.
pub fn train_run(
    model: Model,
    optimizer: AdamWConfig,
    config: TrainConfig,
    all: &[Response],
    refs: Option<&RefLogps>,
    control: RunControl<'_>,
) -> Result<RunOutput, String> {
    let responses = training_responses(all.to_vec(), &config, control.names)?;
    check_lengths(&responses, model.config.block_size)?;
    let mut model = model;
    let mut opt = AdamW::new(optimizer, Params::NAMES, model.param_sizes());
    let label = config.objective.name();
    let mut state = TrainState::new(config, responses.len());
    let logs = train(
        &mut model, &mut opt, &responses, refs, &mut state, control, label,
    )?;
    Ok(RunOutput {
        model,
        optimizer: opt,
        state,
        logs,
    })
}
