//! The activation layout for a batch of `B` sequences of length `T`: every intermediate the
//! backward pass needs up to the final LayerNorm, in one flat buffer (the activation gradients
//! share the layout). The logits are not among them: the LM head (`head.rs`) owns its own
//! buffer, `(N, V)` for a full forward or one chunk of rows for the fused head.

use super::buffer::named_tensors;
use super::config::{checked_product, gib, ModelConfig};

named_tensors! {
    /// Named views of the activations (or their gradients). `N = B*T` positions.
    Acts {
        /// Token plus position embedding `(N, C)`.
        encoded,
        /// First LayerNorm output `(L, N, C)`.
        ln1,
        /// Its per-position mean `(L, N)`.
        ln1_mean,
        /// Its per-position reciprocal standard deviation `(L, N)`.
        ln1_rstd,
        /// Query/key/value `(L, N, 3C)`.
        qkv,
        /// Attention output before projection `(L, N, C)`.
        atty,
        /// Attention probabilities `(L, B, NH, T, T)`.
        att,
        /// Attention projection output `(L, N, C)`.
        attproj,
        /// Residual after attention `(L, N, C)`.
        residual2,
        /// Second LayerNorm output `(L, N, C)`.
        ln2,
        /// Its mean `(L, N)`.
        ln2_mean,
        /// Its reciprocal standard deviation `(L, N)`.
        ln2_rstd,
        /// MLP hidden layer before GELU `(L, N, 4C)`.
        fch,
        /// MLP hidden layer after GELU `(L, N, 4C)`.
        fch_gelu,
        /// MLP output `(L, N, C)`.
        fcproj,
        /// Residual after the MLP: the block's output `(L, N, C)`.
        residual3,
        /// Final LayerNorm output `(N, C)`.
        lnf,
        /// Its mean `(N)`.
        lnf_mean,
        /// Its reciprocal standard deviation `(N)`.
        lnf_rstd,
    }
}

/// The number of elements of each activation tensor ([`Acts`]) for `b` sequences of length
/// `t`, or `None` when one does not fit in `usize` (every product checked).
pub fn act_sizes(c: &ModelConfig, b: usize, t: usize) -> Option<Vec<usize>> {
    let (ch, l, nh) = (c.channels, c.layers, c.heads);
    let mul = checked_product;
    let n = mul(&[b, t])?;
    [
        mul(&[n, ch]),
        mul(&[l, n, ch]),
        mul(&[l, n]),
        mul(&[l, n]),
        mul(&[l, n, 3, ch]),
        mul(&[l, n, ch]),
        mul(&[l, b, nh, t, t]),
        mul(&[l, n, ch]),
        mul(&[l, n, ch]),
        mul(&[l, n, ch]),
        mul(&[l, n]),
        mul(&[l, n]),
        mul(&[l, n, 4, ch]),
        mul(&[l, n, 4, ch]),
        mul(&[l, n, ch]),
        mul(&[l, n, ch]),
        mul(&[n, ch]),
        Some(n),
        Some(n),
    ]
    .into_iter()
    .collect()
}

/// The number of activation values of a full forward of `b` sequences of length `t`, the
/// `(N, V)` logits included (the same again, less the logits, for their gradients), or `None`
/// when it does not fit in `usize`. The limit counts the logits also for the fused head, which
/// never holds them all: one limit for both paths.
pub fn act_count(c: &ModelConfig, b: usize, t: usize) -> Option<usize> {
    let logits = checked_product(&[b, t, c.vocab])?;
    act_sizes(c, b, t)?
        .into_iter()
        .try_fold(logits, |sum, n| sum.checked_add(n))
}

impl ModelConfig {
    /// The most activation values one forward may hold, `2^31` (8 GiB of f32, and as much
    /// again for their gradients).
    pub const MAX_ACTIVATIONS: usize = 1 << 31;

    /// Check that a forward of `b` sequences of length `t` fits [`Self::MAX_ACTIVATIONS`];
    /// returns its number of activation values.
    pub fn check_activations(&self, b: usize, t: usize) -> Result<usize, String> {
        match act_count(self, b, t) {
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
