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

impl ModelConfig {
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
        Ok(())
    }
}
