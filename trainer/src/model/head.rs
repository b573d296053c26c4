//! The LM head, tied to the token embedding: `logits = x W^T` over the final LayerNorm's
//! output `x (N, C)` with `W = wte (V, C)`, and its backward `dx += G W`, `dW += G^T x` for
//! `G = dloss/dlogits`. Whole ([`head_forward`] / [`head_backward`], for `Model::forward` and
//! `Model::backward` with the `(N, V)` logits in the model's buffer) or chunk by chunk
//! ([`TiedHead`], for the fused head and loss of `objective::fused`: one chunk of rows' logits
//! at a time, never `N x V`). The chunk size rule is [`chunk_rows`].

use super::config::gib;
use super::layers::{matmul_backward, matmul_forward};
use std::ops::Range;

/// The most logits one chunk holds when its size is chosen by [`chunk_rows`] (1 GiB of f32).
pub const MAX_CHUNK_ELEMENTS: usize = 1 << 28;

/// Rows per chunk of the fused head for `rows` rows, a vocabulary of `vocab` and `channels`
/// hidden units (the same rule as the PyTorch package's `bnf.fused.chunk_rows`): a logits chunk
/// about as large as the larger of the hidden states and the head, `chunk x V ~ max(N C, V C)`,
/// so `chunk ~ max(N C / V, C)` rows, rounded up to a power of two, at least 1, at most `rows`
/// and at most [`MAX_CHUNK_ELEMENTS`]` / V`. The chunk's memory is then of the order of what is
/// held anyway (`x`, `dx` and `dW`), and each chunk is tall enough that reading `W` again for
/// every chunk costs little.
pub fn chunk_rows(rows: usize, vocab: usize, channels: usize) -> usize {
    let v = vocab.max(1);
    let want = rows.saturating_mul(channels).div_ceil(v).max(channels);
    let pow2 = want.checked_next_power_of_two().unwrap_or(want);
    pow2.min(rows).min(MAX_CHUNK_ELEMENTS / v).max(1)
}

/// `logits (N, V) = x (N, C) W^T` with `W (V, C)`.
pub fn head_forward(logits: &mut [f32], x: &[f32], w: &[f32], c: usize, v: usize) {
    matmul_forward(logits, x, w, None, c, v);
}

/// Backward of [`head_forward`] for the gradient `g (N, V)`: `dx += g W`, `dw += g^T x`.
pub fn head_backward(dx: &mut [f32], dw: &mut [f32], g: &[f32], x: &[f32], w: &[f32], c: usize) {
    matmul_backward(dx, dw, None, g, x, w, c, w.len() / c);
}

/// The tied head of the last forward, run chunk by chunk: [`TiedHead::forward`] makes the
/// logits of a range of rows in one chunk buffer, the loss writes its gradient over them, and
/// [`TiedHead::backward`] adds that chunk's `dx` and `dW`. Given out by
/// `Model::backward_with_head`, which then backpropagates `dx` through the blocks.
pub struct TiedHead<'a> {
    /// The final LayerNorm's output `(N, C)`.
    x: &'a [f32],
    /// The token embedding `(V, C)`.
    w: &'a [f32],
    /// `dloss/dx`, `(N, C)`, added to.
    dx: &'a mut [f32],
    /// `dloss/dW`, `(V, C)`, added to.
    dw: &'a mut [f32],
    /// One chunk's logits (then its gradient), `rows x V`; kept by the model across steps.
    chunk: &'a mut Vec<f32>,
    channels: usize,
}

impl<'a> TiedHead<'a> {
    /// The head over `x (N, C)` and `w (V, C)`, adding into `dx` and `dw`, with `chunk` as
    /// its logits buffer.
    pub(crate) fn new(
        x: &'a [f32],
        w: &'a [f32],
        dx: &'a mut [f32],
        dw: &'a mut [f32],
        chunk: &'a mut Vec<f32>,
        channels: usize,
    ) -> Self {
        TiedHead {
            x,
            w,
            dx,
            dw,
            chunk,
            channels,
        }
    }

    /// Number of rows `N = B T`.
    pub fn rows(&self) -> usize {
        self.x.len() / self.channels
    }

    /// Vocabulary size `V` (the length of a logits row).
    pub fn vocab(&self) -> usize {
        self.w.len() / self.channels
    }

    /// Hidden size `C`.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The logits of `rows` (`rows.len() x V`, row-major) in the chunk buffer, for the loss to
    /// overwrite with `dloss/dlogits` before [`TiedHead::backward`]. An error (not an abort)
    /// when the chunk's memory cannot be had.
    pub fn forward(&mut self, rows: Range<usize>) -> Result<&mut [f32], String> {
        let (c, v) = (self.channels, self.vocab());
        let n = rows.len() * v;
        self.chunk
            .try_reserve_exact(n.saturating_sub(self.chunk.len()))
            .map_err(|e| {
                format!(
                    "model: a head chunk of {} rows ({}): {e}",
                    rows.len(),
                    gib(n)
                )
            })?;
        self.chunk.resize(n, 0.0);
        let x = &self.x[rows.start * c..rows.end * c];
        head_forward(self.chunk, x, self.w, c, v);
        Ok(&mut self.chunk[..])
    }

    /// Backpropagate the chunk buffer, now `dloss/dlogits` of `rows` (the range given to the
    /// last [`TiedHead::forward`]): `dx[rows] += G W`, `dW += G^T x[rows]`.
    pub fn backward(&mut self, rows: Range<usize>) {
        let c = self.channels;
        assert_eq!(
            self.chunk.len(),
            rows.len() * self.vocab(),
            "head backward: not the rows of the last chunk"
        );
        let (x, dx) = (
            &self.x[rows.start * c..rows.end * c],
            &mut self.dx[rows.start * c..rows.end * c],
        );
        head_backward(dx, self.dw, self.chunk, x, self.w, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_rule() {
        // The bench shape: N = 1024, V = 259, C = 128: ceil(1024 * 128 / 259) = 507 -> 512.
        assert_eq!(chunk_rows(1024, 259, 128), 512);
        // Fewer rows than C: one chunk.
        assert_eq!(chunk_rows(100, 259, 128), 100);
        // A large vocabulary: about C rows.
        assert_eq!(chunk_rows(32768, 128256, 1024), 1024);
        // Never empty, never more than the cap.
        assert_eq!(chunk_rows(0, 10, 4), 1);
        assert_eq!(chunk_rows(1 << 40, 1 << 27, 1 << 20), 2);
    }
}
