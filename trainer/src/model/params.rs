//! The parameter layout: every weight of the model in one flat buffer (gradients and AdamW
//! moments share the same layout), with names and shapes for checkpoints.

use super::buffer::named_tensors;
use super::config::{checked_product, gib, ModelConfig};

named_tensors! {
    /// Named views of the parameters (or of their gradients). Shapes are row-major; tensors
    /// with a leading `L` are stacked over layers. Linear weights are `(out, in)`.
    Params {
        /// Token embedding `(V, C)`, also the LM head (tied).
        wte,
        /// Position embedding `(maxT, C)`.
        wpe,
        /// First LayerNorm weight `(L, C)`.
        ln1w,
        /// First LayerNorm bias `(L, C)`.
        ln1b,
        /// Query/key/value projection `(L, 3C, C)`.
        qkvw,
        /// Its bias `(L, 3C)`.
        qkvb,
        /// Attention output projection `(L, C, C)`.
        attprojw,
        /// Its bias `(L, C)`.
        attprojb,
        /// Second LayerNorm weight `(L, C)`.
        ln2w,
        /// Second LayerNorm bias `(L, C)`.
        ln2b,
        /// MLP up projection `(L, 4C, C)`.
        fcw,
        /// Its bias `(L, 4C)`.
        fcb,
        /// MLP down projection `(L, C, 4C)`.
        fcprojw,
        /// Its bias `(L, C)`.
        fcprojb,
        /// Final LayerNorm weight `(C)`.
        lnfw,
        /// Final LayerNorm bias `(C)`.
        lnfb,
    }
}

/// The shape of each parameter tensor, in buffer order (`c` checked by
/// [`ModelConfig::validate`], so every size fits; see [`param_count`]).
pub fn param_shapes(c: &ModelConfig) -> Vec<Vec<usize>> {
    let (v, t, ch, l) = (c.vocab, c.block_size, c.channels, c.layers);
    let (ch3, ch4) = (ch.saturating_mul(3), ch.saturating_mul(4));
    vec![
        vec![v, ch],
        vec![t, ch],
        vec![l, ch],
        vec![l, ch],
        vec![l, ch3, ch],
        vec![l, ch3],
        vec![l, ch, ch],
        vec![l, ch],
        vec![l, ch],
        vec![l, ch],
        vec![l, ch4, ch],
        vec![l, ch4],
        vec![l, ch, ch4],
        vec![l, ch],
        vec![ch],
        vec![ch],
    ]
}

/// The number of parameters of `c`, or `None` when it does not fit in `usize` (every product
/// checked, so a huge shape is an error rather than a count that wrapped around).
pub fn param_count(c: &ModelConfig) -> Option<usize> {
    // A `4C` that saturated in `param_shapes` makes its tensor's product overflow too.
    param_shapes(c).iter().try_fold(0usize, |sum, shape| {
        let n = checked_product(shape)?;
        sum.checked_add(n)
    })
}

/// The number of elements of each parameter tensor, in buffer order.
pub fn param_sizes(c: &ModelConfig) -> Vec<usize> {
    param_shapes(c).iter().map(|s| s.iter().product()).collect()
}

/// Whether AdamW's weight decay applies to the tensor (matrices yes; biases and LayerNorm no).
pub fn is_decayed(name: &str) -> bool {
    matches!(
        name,
        "wte" | "wpe" | "qkvw" | "attprojw" | "fcw" | "fcprojw"
    )
}

impl ModelConfig {
    /// The most parameters a model may have, `2^30` (4 GiB of f32; training holds four such
    /// buffers: the weights, their gradients and AdamW's two moments). Far above what this CPU
    /// trainer can train, and low enough that a mistyped shape is an error, not an abort on a
    /// failed allocation.
    pub const MAX_PARAMS: usize = 1 << 30;
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
        let count = param_count(self);
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
}
