//! How big the experiment is: model shape, data sizes, steps, the learning-rate grid and the
//! seeds, as two presets (`full` for the report, `quick` for the CI smoke run).

use super::tasks::{max_sequence_len, TaskSizes};
use bnf_trainer::model::ModelConfig;
use bnf_trainer::tokenizer::VOCAB;

/// Everything that sets the experiment's size.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `full` or `quick`.
    pub name: &'static str,
    /// Model shape (byte vocabulary; block size fits the longest generated sequence).
    pub model: ModelConfig,
    /// Data sizes.
    pub sizes: TaskSizes,
    /// Seed of the data (the same data for every training seed).
    pub data_seed: u64,
    /// Most SFT optimizer steps.
    pub sft_steps: usize,
    /// SFT steps between checks of the math validation accuracy.
    pub sft_check: usize,
    /// SFT stops at the first check where the math validation accuracy reaches this.
    pub sft_stop: f64,
    /// SFT sequences per step.
    pub sft_batch: usize,
    /// SFT peak learning rate.
    pub sft_lr: f32,
    /// Alignment optimizer steps (the same for every method: matched budgets).
    pub align_steps: usize,
    /// Alignment units (pairs, or lone responses) per step.
    pub align_batch: usize,
    /// The learning-rate grid, the same for every method.
    pub lrs: Vec<f32>,
    /// Training seeds (each: its own SFT reference model, alignment order and pair masking).
    pub seeds: Vec<u64>,
    /// Probes of the training curves per run (besides step 0).
    pub probes: usize,
    /// Validation pairs in each probe.
    pub probe_pairs: usize,
    /// Test prompts whose greedy outputs each run generates (claim (e) on own outputs).
    pub own_outputs: usize,
}

fn model(channels: usize, layers: usize, heads: usize) -> ModelConfig {
    ModelConfig {
        vocab: VOCAB,
        block_size: max_sequence_len(),
        channels,
        heads,
        layers,
    }
}

impl Plan {
    /// The full experiment (issue 18): 928 alignment runs. Sized from a 2-seed trial of this
    /// design (about 3.3 s of one core per run, 30-45 s per reference) to take about 28 minutes
    /// of wall time on 2 quiet cores, about 35 on cores shared as during that trial.
    pub fn full() -> Plan {
        Plan {
            name: "full",
            model: model(64, 2, 4),
            sizes: TaskSizes {
                sft_math: 20_000,
                sft_style: 20_000,
                sft_reverse: 20_000,
                math_pool: 10_000,
                style_pairs: 3_000,
                val: 200,
                test: 400,
            },
            data_seed: 2024,
            sft_steps: 2000,
            sft_check: 25,
            sft_stop: 0.75,
            sft_batch: 32,
            sft_lr: 3e-3,
            align_steps: 150,
            align_batch: 16,
            lrs: vec![1e-5, 3e-5, 1e-4, 3e-4],
            seeds: (0..8).collect(),
            probes: 6,
            probe_pairs: 32,
            own_outputs: 64,
        }
    }

    /// The CI smoke run: every method, dataset, plot and table, on a tiny budget (numbers are
    /// meaningless, the shapes of the outputs are not).
    pub fn quick() -> Plan {
        Plan {
            name: "quick",
            model: model(16, 1, 2),
            sizes: TaskSizes {
                sft_math: 400,
                sft_style: 100,
                sft_reverse: 100,
                math_pool: 64,
                style_pairs: 64,
                val: 16,
                test: 24,
            },
            data_seed: 2024,
            sft_steps: 30,
            sft_check: 10,
            sft_stop: 0.8,
            sft_batch: 16,
            sft_lr: 3e-3,
            align_steps: 6,
            align_batch: 4,
            lrs: vec![1e-3, 3e-3],
            seeds: vec![0, 1],
            probes: 2,
            probe_pairs: 8,
            own_outputs: 8,
        }
    }

    /// Alignment runs: (methods on math + methods on style) x learning rates x seeds.
    pub fn align_runs(&self) -> usize {
        let per_rate: usize = super::methods::METHODS
            .iter()
            .map(|m| 1 + usize::from(m.on_math))
            .sum();
        per_rate * self.lrs.len() * self.seeds.len()
    }
}
