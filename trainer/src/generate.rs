//! Greedy generation: feed `BOS prompt`, append the most likely next token, stop at EOS, the
//! token budget or the block size. Prompts of equal length run as one batch.

use crate::model::Model;
use crate::tokenizer::{BOS, EOS};

/// Greedy completions (tokens, without EOS) of `prompts`, at most `max_new` tokens each.
pub fn greedy(
    model: &mut Model,
    prompts: &[Vec<u32>],
    max_new: usize,
    batch: usize,
) -> Result<Vec<Vec<u32>>, String> {
    let mut out = vec![Vec::new(); prompts.len()];
    let mut by_len: Vec<usize> = (0..prompts.len()).collect();
    by_len.sort_by_key(|&i| prompts[i].len());
    let v = model.config.vocab;
    let mut i = 0;
    while i < by_len.len() {
        let len = prompts[by_len[i]].len();
        let mut group = Vec::new();
        while i < by_len.len() && prompts[by_len[i]].len() == len && group.len() < batch.max(1) {
            group.push(by_len[i]);
            i += 1;
        }
        let mut seqs: Vec<Vec<u32>> = group
            .iter()
            .map(|&g| {
                std::iter::once(BOS)
                    .chain(prompts[g].iter().copied())
                    .collect()
            })
            .collect();
        let mut done = vec![false; group.len()];
        for _ in 0..max_new {
            let t = seqs[0].len();
            if t > model.config.block_size || done.iter().all(|&d| d) {
                break;
            }
            let tokens: Vec<u32> = seqs.iter().flatten().copied().collect();
            model.forward(&tokens, seqs.len(), t)?;
            let logits = model.logits();
            for (k, s) in seqs.iter_mut().enumerate() {
                let row = &logits[(k * t + t - 1) * v..][..v];
                let next = argmax(row) as u32;
                if !done[k] {
                    if next == EOS {
                        done[k] = true;
                    } else {
                        out[group[k]].push(next);
                    }
                }
                s.push(next);
            }
        }
    }
    Ok(out)
}

/// Index of the largest value (the first one on ties).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = j;
        }
    }
    best
}
