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

/// The length of a response's sequence, `BOS prompt completion EOS`.
pub fn sequence_len(r: &Response) -> usize {
    r.prompt.len() + r.completion.len() + 2
}

/// The field of a data line a response comes from: `"chosen"` or `"rejected"` for a side of
/// a pair (by its label), `"completion"` for an unpaired example.
pub fn side(r: &Response) -> &'static str {
    match (r.partner.is_some(), r.label > 0.0) {
        (true, true) => "chosen",
        (true, false) => "rejected",
        (false, _) => "completion",
    }
}

/// Check that every response fits the model's block size; the message names the line, the
/// field ([`side`]) and the token counts.
pub fn check_lengths(responses: &[Response], block_size: usize) -> Result<(), String> {
    for r in responses {
        let n = sequence_len(r);
        if n > block_size {
            return Err(format!(
                "line {}: the \"{}\" response has {n} tokens (BOS, {} of prompt, {} of \
                 completion, EOS), more than the block size {block_size}",
                r.line,
                side(r),
                r.prompt.len(),
                r.completion.len()
            ));
        }
    }
    Ok(())
}

impl TokenBatch {
    /// Lay out `responses` (each must fit the block size, see [`check_lengths`]); a preferred
    /// response is paired with the first response of the batch whose `id` is its partner's.
    /// For batches that hold each response at most once (evaluation, reference log-probs); a
    /// training micro-batch, where a unit may repeat, is laid out by [`TokenBatch::from_units`].
    pub fn new(responses: &[&Response]) -> Self {
        let mut batch = Self::layout(responses);
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

    /// Lay out the units of a training micro-batch: each unit is one response or both sides of
    /// a pair (indices into `responses`), in order, so a 2-unit at local positions `k, k + 1`
    /// becomes the pair of those two sequences. A unit may appear more than once (a
    /// micro-batch that spans an epoch boundary, or holds more units than there are): each
    /// copy of a pair is a pair of its own. Errors name the unit and what is wrong with it: an
    /// index out of range, an empty or larger unit, or two responses that are not each other's
    /// partners with one preferred and one dispreferred.
    pub fn from_units(responses: &[Response], units: &[&[usize]]) -> Result<Self, String> {
        let mut chosen_first = Vec::with_capacity(units.len());
        for (u, unit) in units.iter().enumerate() {
            if let Some(&i) = unit.iter().find(|&&i| i >= responses.len()) {
                return Err(format!(
                    "micro-batch unit {u}: response index {i} is out of range ({} responses)",
                    responses.len()
                ));
            }
            match **unit {
                [_] => chosen_first.push(None),
                [a, b] => {
                    let (ra, rb) = (&responses[a], &responses[b]);
                    if ra.partner != Some(rb.id) || rb.partner != Some(ra.id) {
                        return Err(format!(
                            "micro-batch unit {u}: responses {} (line {}) and {} (line {}) are \
                             not each other's partners",
                            ra.id, ra.line, rb.id, rb.line
                        ));
                    }
                    let first = match (ra.label > 0.0, rb.label > 0.0) {
                        (true, false) if rb.label < 0.0 => true,
                        (false, true) if ra.label < 0.0 => false,
                        _ => {
                            return Err(format!(
                                "micro-batch unit {u}: the pair of line {} has labels {} and \
                                 {}, not one preferred (> 0) and one dispreferred (< 0)",
                                ra.line, ra.label, rb.label
                            ))
                        }
                    };
                    chosen_first.push(Some(first));
                }
                _ => {
                    return Err(format!(
                        "micro-batch unit {u} has {} responses, not 1 or 2",
                        unit.len()
                    ))
                }
            }
        }
        let rs: Vec<&Response> = units
            .iter()
            .flat_map(|unit| unit.iter().map(|&i| &responses[i]))
            .collect();
        let mut batch = Self::layout(&rs);
        let mut k = 0;
        for (unit, first) in units.iter().zip(chosen_first) {
            match first {
                Some(true) => batch.pairs.push([k, k + 1]),
                Some(false) => batch.pairs.push([k + 1, k]),
                None => {}
            }
            k += unit.len();
        }
        Ok(batch)
    }

    /// Tokens, targets, scored rows, offsets, labels and ids of `responses`, without pairs.
    fn layout(responses: &[&Response]) -> Self {
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

    /// A unit that repeats (across an epoch boundary, or more units than there are) pairs each
    /// copy with its own partner copy; `new` pairs by id, so its second copy of the rejected
    /// response would have no chosen partner.
    #[test]
    fn repeated_units_pair_copy_with_copy() {
        let rs = [
            resp(0, &[10], &[20], 1.0, Some(1)),
            resp(1, &[10], &[21], -1.0, Some(0)),
            resp(2, &[11], &[22], -1.0, None),
        ];
        let units: [&[usize]; 4] = [&[0, 1], &[2], &[0, 1], &[1, 0]];
        let batch = TokenBatch::from_units(&rs, &units).unwrap();
        assert_eq!(batch.ids, vec![0, 1, 2, 0, 1, 1, 0]);
        assert_eq!(batch.pairs, vec![[0, 1], [3, 4], [6, 5]]);
        assert_eq!(batch.labels, vec![1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0]);
        // By id, the copies all pair with the first rejected response.
        let by_id: Vec<&Response> = [0, 1, 0, 1].iter().map(|&i| &rs[i]).collect();
        assert_eq!(TokenBatch::new(&by_id).pairs, vec![[0, 1], [2, 1]]);
        // Without repeats both layouts agree.
        let once = TokenBatch::from_units(&rs, &units[..2]).unwrap();
        let flat: Vec<&Response> = rs.iter().collect();
        let by_id = TokenBatch::new(&flat);
        assert_eq!(
            (&once.tokens, &once.pairs, &once.ids),
            (&by_id.tokens, &by_id.pairs, &by_id.ids)
        );
    }

    #[test]
    fn bad_units_are_errors() {
        let rs = [
            resp(0, &[10], &[20], 1.0, Some(1)),
            resp(1, &[10], &[21], -1.0, Some(0)),
            resp(2, &[11], &[22], -1.0, None),
            resp(3, &[11], &[23], 1.0, Some(4)),
            resp(4, &[11], &[24], 1.0, Some(3)),
        ];
        let cases: [(&[usize], &str); 5] = [
            (&[5], "index 5 is out of range"),
            (&[], "has 0 responses"),
            (&[0, 1, 2], "has 3 responses"),
            (&[0, 2], "not each other's partners"),
            (&[3, 4], "labels 1 and 1"),
        ];
        for (unit, want) in cases {
            let err = TokenBatch::from_units(&rs, &[&[2], unit]).unwrap_err();
            assert!(err.contains("unit 1") && err.contains(want), "{err}");
        }
    }
}
