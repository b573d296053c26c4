//! The model's shape: everything needed to lay out parameters and activations.

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

impl ModelConfig {
    /// The most parameters a model may have, `2^30` (4 GiB of f32; training holds four such
    /// buffers: the weights, their gradients and AdamW's two moments). Far above what this CPU
    /// trainer can train, and low enough that a mistyped shape is an error, not an abort on a
    /// failed allocation.
    pub const MAX_PARAMS: usize = 1 << 30;
    /// The most activation values one forward may hold, `2^31` (8 GiB of f32, and as much
    /// again for their gradients).
    pub const MAX_ACTIVATIONS: usize = 1 << 31;

    /// Check that the shape is usable; the message names the offending field and value.
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            ("vocab", self.vocab),
            ("block_size", self.block_size),
            ("channels", self.channels),
            ("heads", self.heads),
            ("layers", self.layers),
        ];
        for (name, v) in fields {
            if v == 0 {
                return Err(format!("model config: {name} must be positive, got 0"));
            }
        }
        if self.channels % self.heads != 0 {
            return Err(format!(
                "model config: channels ({}) must be a multiple of heads ({})",
                self.channels, self.heads
            ));
        }
        let count = super::params::param_count(self);
        if count.is_none_or(|n| n > Self::MAX_PARAMS) {
            let n = count.map_or("more than 2^64 parameters".into(), |n| {
                format!("{n} parameters ({})", gib(n))
            });
            return Err(format!(
                "model config: vocab {}, block_size {}, channels {}, layers {} give {n}, more \
                 than the limit of {} parameters ({} of f32, and four times that to train)",
                self.vocab,
                self.block_size,
                self.channels,
                self.layers,
                Self::MAX_PARAMS,
                gib(Self::MAX_PARAMS)
            ));
        }
        Ok(())
    }

    /// Check that a forward of `b` sequences of length `t` fits [`Self::MAX_ACTIVATIONS`];
    /// returns its number of activation values.
    pub fn check_activations(&self, b: usize, t: usize) -> Result<usize, String> {
        match super::acts::act_count(self, b, t) {
            Some(n) if n <= Self::MAX_ACTIVATIONS => Ok(n),
            count => {
                let n = count.map_or("more than 2^64".into(), |n| format!("{n} ({})", gib(n)));
                Err(format!(
                    "a forward of {b} sequences of {t} tokens (channels {}, heads {}, layers {}) \
                     needs {n} activation values and as many gradients, more than the limit of \
                     {} ({})",
                    self.channels,
                    self.heads,
                    self.layers,
                    Self::MAX_ACTIVATIONS,
                    gib(Self::MAX_ACTIVATIONS)
                ))
            }
        }
    }
}
