//! What a training run is and where it stands: [`TrainConfig`] (its hyperparameters) and
//! [`TrainState`] (its step and the fingerprints of what it trains on), saved in training
//! checkpoints and read back to resume.

use crate::names::Names;
use crate::objective::Objective;
use serde::{Deserialize, Serialize};

/// Hyperparameters of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The objective with its hyperparameters (recorded in full in checkpoints).
    #[serde(with = "crate::objective::params::record")]
    pub objective: Objective,
    /// Optimizer steps.
    pub steps: usize,
    /// Units (a pair, or a lone response) per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimizer step.
    pub accum: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Maximum global gradient norm (0: no clipping).
    pub grad_clip: f32,
    /// Seed of the data order.
    pub seed: u64,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub save_every: usize,
    /// Fraction of pairs kept as pairs (the rest lose one side at random, seeded). Pairwise
    /// objectives need 1.
    pub pairing_ratio: f64,
}

impl TrainConfig {
    /// The command line's defaults (BNF).
    pub const DEFAULT: TrainConfig = TrainConfig {
        objective: Objective::Bnf,
        steps: 200,
        batch: 16,
        accum: 1,
        lr: 1e-3,
        grad_clip: 1.0,
        seed: 0,
        save_every: 100,
        pairing_ratio: 1.0,
    };
}

impl TrainConfig {
    /// Check the hyperparameters before any step: at least one step, unit per micro-batch and
    /// micro-batch per step, a finite learning rate above 0, a finite clipping norm of at least 0
    /// (0: no clipping) and a pairing ratio in [0, 1]. The message names the value as `names`
    /// does, and gives it (a NaN learning rate would otherwise train, and its checkpoint, with
    /// `null` in its JSON, would not load).
    pub fn validate(&self, names: Names) -> Result<(), String> {
        if self.steps == 0 {
            return Err(format!(
                "training: {} is 0, so nothing would be trained; give at least 1",
                names.of("steps")
            ));
        }
        for (field, v) in [("batch", self.batch), ("accum", self.accum)] {
            if v == 0 {
                return Err(format!(
                    "training: {} is 0; give at least 1",
                    names.of(field)
                ));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "training: {} {} is not a learning rate: it must be a finite number above 0",
                names.of("lr"),
                self.lr
            ));
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return Err(format!(
                "training: {} {} is not a gradient norm: it must be a finite number above 0, or \
                 0 for no clipping",
                names.of("grad_clip"),
                self.grad_clip
            ));
        }
        if !(0.0..=1.0).contains(&self.pairing_ratio) {
            return Err(format!(
                "training: {} {} must be in [0, 1]",
                names.of("pairing_ratio"),
                self.pairing_ratio
            ));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where a run stands; saved in training checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The run's hyperparameters (a resumed run uses these, not the command line's).
    pub config: TrainConfig,
    /// Optimizer steps done.
    pub step: usize,
    /// Number of training responses (checked on resume).
    pub responses: usize,
    /// [`crate::fingerprint::data_fingerprint`] of the training responses: set by the first call
    /// to [`crate::train::train`] (when `None` at step 0), checked by every later one, so that a run resumed
    /// on other data of the same size is refused. `None` in checkpoints of the first format.
    #[serde(default)]
    pub data_fingerprint: Option<u64>,
    /// [`crate::fingerprint::ref_fingerprint`] of the training responses' reference log-probs,
    /// for an objective that reads them: set and checked as `data_fingerprint`, so that a run
    /// resumed with another reference file (of the same data) is refused.
    #[serde(default)]
    pub ref_fingerprint: Option<u64>,
    /// The reference file's [`crate::fingerprint::model_fingerprint`] of the reference model,
    /// for an objective that reads it: recorded at the start of a run, so that evaluating the
    /// trained model against another model's reference file is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_model: Option<String>,
}

impl TrainState {
    /// A run of `config` on `responses` training responses, before its first step.
    pub fn new(config: TrainConfig, responses: usize) -> Self {
        TrainState {
            config,
            step: 0,
            responses,
            data_fingerprint: None,
            ref_fingerprint: None,
            ref_model: None,
        }
    }
}
