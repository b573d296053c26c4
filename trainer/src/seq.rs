//! Responses laid out as model input and loss rows (DESIGN.md section 2): each sequence is
//! `BOS prompt completion EOS`, padded to the longest in the batch. Row `(b, t)` has the
//! logits at position `t`, whose target is token `t + 1` (the causal shift). A row is scored
//! exactly when its target is a completion token or the EOS; prompt and padding never are.

use crate::data::Response;
use crate::tokenizer::{BOS, EOS, PAD};

/// A batch of responses as tokens and rows.
#[derive(Clone, Debug, Default)]
pub struct TokenBatch {
    /// Sequences.
    pub b: usize,
    /// Padded sequence length.
    pub t: usize,
    /// Input tokens `(b, t)`.
    pub tokens: Vec<u32>,
    /// Target of each row: the next token (PAD on the last position).
    pub targets: Vec<u32>,
    /// Whether each row is scored.
    pub scored: Vec<bool>,
    /// Rows of response `i` are `offsets[i]..offsets[i + 1]` (one sequence each).
    pub offsets: Vec<usize>,
    /// Label of each response (+1 preferred, -1 dispreferred).
    pub labels: Vec<f32>,
    /// Pairs `[chosen, rejected]` of responses that are both in the batch (local indices).
    pub pairs: Vec<[usize; 2]>,
    /// The `id` of each response.
    pub ids: Vec<usize>,
}

/// Tokens of one response and the number of its scored rows (`|y|`).
pub fn sequence(r: &Response) -> (Vec<u32>, usize) {
    let mut s = Vec::with_capacity(r.prompt.len() + r.completion.len() + 2);
    s.push(BOS);
    s.extend(&r.prompt);
    s.extend(&r.completion);
    s.push(EOS);
    (s, r.completion.len() + 1)
}

/// Check that every response fits the model's block size.
pub fn check_lengths(responses: &[Response], block_size: usize) -> Result<(), String> {
    for r in responses {
        let n = r.prompt.len() + r.completion.len() + 2;
        if n > block_size {
            return Err(format!(
                "line {}: response has {n} tokens (with BOS and EOS), more than the block size {block_size}",
                r.line
            ));
        }
    }
    Ok(())
}

impl TokenBatch {
    /// Lay out `responses` (each must fit the block size, see [`check_lengths`]).
    pub fn new(responses: &[&Response]) -> Self {
        let seqs: Vec<(Vec<u32>, usize)> = responses.iter().map(|r| sequence(r)).collect();
        let b = responses.len();
        let t = seqs.iter().map(|(s, _)| s.len()).max().unwrap_or(1);
        let mut batch = TokenBatch {
            b,
            t,
            tokens: vec![PAD; b * t],
            targets: vec![PAD; b * t],
            scored: vec![false; b * t],
            offsets: (0..=b).map(|i| i * t).collect(),
            labels: responses.iter().map(|r| r.label).collect(),
            pairs: Vec::new(),
            ids: responses.iter().map(|r| r.id).collect(),
        };
        for (i, (s, scored)) in seqs.iter().enumerate() {
            let row = i * t;
            batch.tokens[row..row + s.len()].copy_from_slice(s);
            batch.targets[row..row + s.len() - 1].copy_from_slice(&s[1..]);
            // The last `scored` targets are the completion and EOS: positions
            // len-1-scored ..= len-2.
            let first = s.len() - 1 - scored;
            batch.scored[row + first..row + s.len() - 1].fill(true);
        }
        for (i, r) in responses.iter().enumerate() {
            if r.label > 0.0 {
                if let Some(j) = r
                    .partner
                    .and_then(|p| batch.ids.iter().position(|&id| id == p))
                {
                    batch.pairs.push([i, j]);
                }
            }
        }
        batch
    }

    /// Number of scored rows (tokens that carry loss).
    pub fn scored_rows(&self) -> usize {
        self.scored.iter().filter(|&&s| s).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(
        id: usize,
        prompt: &[u32],
        completion: &[u32],
        label: f32,
        partner: Option<usize>,
    ) -> Response {
        Response {
            id,
            line: 1,
            prompt: prompt.to_vec(),
            completion: completion.to_vec(),
            label,
            partner,
        }
    }

    #[test]
    fn causal_shift_and_masks() {
        let a = resp(0, &[10, 11], &[20], 1.0, Some(1));
        let b = resp(1, &[10], &[21, 22, 23], -1.0, Some(0));
        let batch = TokenBatch::new(&[&a, &b]);
        assert_eq!((batch.b, batch.t), (2, 6));
        assert_eq!(&batch.tokens[..6], &[BOS, 10, 11, 20, EOS, PAD]);
        assert_eq!(&batch.tokens[6..], &[BOS, 10, 21, 22, 23, EOS]);
        // Row t's target is token t+1.
        assert_eq!(&batch.targets[..5], &batch.tokens[1..6]);
        // Sequence 0: rows whose targets are 20 and EOS.
        assert_eq!(
            &batch.scored[..6],
            &[false, false, true, true, false, false]
        );
        assert_eq!(&batch.scored[6..], &[false, true, true, true, true, false]);
        for r in 0..12 {
            if batch.scored[r] {
                assert_ne!(batch.targets[r], PAD);
            }
        }
        assert_eq!(batch.offsets, vec![0, 6, 12]);
        assert_eq!(batch.pairs, vec![[0, 1]]);
        assert_eq!(batch.scored_rows(), 2 + 4);
    }
}
