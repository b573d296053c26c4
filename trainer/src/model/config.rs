//! The model's shape: everything needed to lay out parameters and activations. Its limits are
//! checked where the layouts are: `ModelConfig::validate` (the parameter count) in `params.rs`,
//! `ModelConfig::check_activations` in `acts.rs`.

use serde::{Deserialize, Serialize};

/// Shape of the decoder-only transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Vocabulary size `V` (rows of the tied token embedding / LM head).
    pub vocab: usize,
    /// Longest sequence the position embedding covers (`maxT`).
    pub block_size: usize,
    /// Residual width `C`.
    pub channels: usize,
    /// Attention heads `NH` (`C` must be a multiple of it).
    pub heads: usize,
    /// Transformer blocks `L`.
    pub layers: usize,
}

/// The product of `dims`, or `None` when it does not fit in `usize` (a tensor's element
/// count, for shapes from the command line).
pub fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |p, &d| p.checked_mul(d))
}

/// `n` f32 values in GiB, for messages.
pub fn gib(n: usize) -> String {
    format!("{:.1} GiB", n as f64 * 4.0 / (1u64 << 30) as f64)
}
