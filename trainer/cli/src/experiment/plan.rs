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
    /// SFT optimizer steps.
    pub sft_steps: usize,
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
    /// Held-out pairs in each probe.
    pub probe_pairs: usize,
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
    /// The full experiment: 450 runs, 1715 s (28.6 minutes) of wall time on 2 quiet cores on
    /// 2026-12-01 (docs/results.md). The grid reaches down to 1e-5 because the DPO family's best
    /// rate was a 4-rate grid's smallest, 3e-5.
    pub fn full() -> Plan {
        Plan {
            name: "full",
            model: model(64, 2, 4),
            sizes: TaskSizes {
                sft_math: 30_000,
                sft_style: 5_000,
                math_pairs: 4_000,
                style_pairs: 4_000,
                val: 200,
                test: 500,
            },
            data_seed: 2024,
            sft_steps: 800,
            sft_batch: 32,
            sft_lr: 3e-3,
            align_steps: 150,
            align_batch: 16,
            lrs: vec![1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
            seeds: vec![0, 1, 2],
            probes: 10,
            probe_pairs: 32,
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
                math_pairs: 64,
                style_pairs: 64,
                val: 16,
                test: 24,
            },
            data_seed: 2024,
            sft_steps: 30,
            sft_batch: 16,
            sft_lr: 3e-3,
            align_steps: 6,
            align_batch: 4,
            lrs: vec![1e-3],
            seeds: vec![0, 1],
            probes: 2,
            probe_pairs: 8,
        }
    }

    /// Alignment runs: datasets x methods x learning rates x seeds.
    pub fn align_runs(&self, methods: usize) -> usize {
        2 * methods * self.lrs.len() * self.seeds.len()
    }
}
