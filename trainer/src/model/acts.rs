//! The activation layout for a batch of `B` sequences of length `T`: every intermediate the
//! backward pass needs, in one flat buffer (the activation gradients share the layout).

use super::buffer::named_tensors;
use super::config::ModelConfig;

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
        /// Logits `(N, V)`; after the loss, overwritten in place by `dloss/dlogits`.
        logits,
    }
}

/// The number of elements of each activation tensor for `b` sequences of length `t`.
pub fn act_sizes(c: &ModelConfig, b: usize, t: usize) -> Vec<usize> {
    let (v, ch, l, nh) = (c.vocab, c.channels, c.layers, c.heads);
    let n = b * t;
    vec![
        n * ch,
        l * n * ch,
        l * n,
        l * n,
        l * n * 3 * ch,
        l * n * ch,
        l * b * nh * t * t,
        l * n * ch,
        l * n * ch,
        l * n * ch,
        l * n,
        l * n,
        l * n * 4 * ch,
        l * n * 4 * ch,
        l * n * ch,
        l * n * ch,
        n * ch,
        n,
        n,
        n * v,
    ]
}
