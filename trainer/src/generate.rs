//! Greedy generation: feed `BOS prompt`, append the most likely next token, stop at EOS, the
//! token budget or the block size. Prompts of equal length run as one batch; a progress bar
//! counts the batches with tokens/s.

use crate::model::Model;
use crate::progress::Progress;
use crate::tokenizer::{BOS, EOS};

/// Greedy completions (tokens, without EOS) of `prompts`, at most `max_new` tokens each (fewer
/// when the block size is reached). A prompt that leaves no room for a token (`BOS prompt`
/// longer than the block size) is an error naming it.
pub fn greedy(
    model: &mut Model,
    prompts: &[Vec<u32>],
    max_new: usize,
    batch: usize,
) -> Result<Vec<Vec<u32>>, String> {
    let block = model.config.block_size;
    if let Some((i, p)) = prompts.iter().enumerate().find(|(_, p)| p.len() >= block) {
        return Err(format!(
            "generate: prompt {i} has {} tokens; with BOS that is more than the model's block \
             size {block}, so no token can follow it (give at most {} prompt tokens)",
            p.len(),
            block - 1
        ));
    }
    let mut out = vec![Vec::new(); prompts.len()];
    let mut by_len: Vec<usize> = (0..prompts.len()).collect();
    by_len.sort_by_key(|&i| prompts[i].len());
    // Groups of at most `batch` prompts of one length, in order of length.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in by_len {
        match groups.last_mut() {
            Some(g) if g.len() < batch.max(1) && prompts[g[0]].len() == prompts[i].len() => {
                g.push(i)
            }
            _ => groups.push(vec![i]),
        }
    }
    let v = model.config.vocab;
    let mut bar = Progress::new("generate", 0, groups.len());
    for group in &groups {
        let mut seqs: Vec<Vec<u32>> = group
            .iter()
            .map(|&g| {
                std::iter::once(BOS)
                    .chain(prompts[g].iter().copied())
                    .collect()
            })
            .collect();
        let mut done = vec![false; group.len()];
        let mut tokens_run = 0;
        for _ in 0..max_new {
            let t = seqs[0].len();
            if t > model.config.block_size || done.iter().all(|&d| d) {
                break;
            }
            let tokens: Vec<u32> = seqs.iter().flatten().copied().collect();
            model.forward(&tokens, seqs.len(), t)?;
            tokens_run += tokens.len();
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
        bar.tick(tokens_run);
    }
    bar.finish();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    /// Grouping prompts by length into batches changes nothing: each prompt gets what it gets
    /// alone, in its own place.
    #[test]
    fn batched_generation_equals_one_prompt_at_a_time() {
        let cfg = ModelConfig {
            vocab: 259,
            block_size: 12,
            channels: 16,
            heads: 2,
            layers: 1,
        };
        let mut model = Model::new(cfg, 7).unwrap();
        let mut rng = crate::rng::Rng::new(3);
        let prompts: Vec<Vec<u32>> = [3, 1, 3, 5, 1, 3, 2]
            .iter()
            .map(|&n| (0..n).map(|_| rng.below(256) as u32).collect())
            .collect();
        let alone: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| greedy(&mut model, std::slice::from_ref(p), 6, 1).unwrap()[0].clone())
            .collect();
        assert_eq!(greedy(&mut model, &prompts, 6, 2).unwrap(), alone);
        assert!(alone.iter().all(|g| !g.is_empty()));
        // The block size caps a sequence: BOS + 5 prompt tokens + at most 7 more.
        assert!(greedy(&mut model, &prompts[3..4], 100, 1).unwrap()[0].len() <= 7);
    }

    /// A prompt of the block size or more has no room for a token: an error, not nothing.
    #[test]
    fn prompt_too_long_is_an_error() {
        let cfg = ModelConfig {
            vocab: 259,
            block_size: 8,
            channels: 8,
            heads: 2,
            layers: 1,
        };
        let mut model = Model::new(cfg, 1).unwrap();
        let fits = vec![65; 7];
        assert!(greedy(&mut model, std::slice::from_ref(&fits), 5, 1).unwrap()[0].len() <= 1);
        for n in [8, 9] {
            let err = greedy(&mut model, &[fits.clone(), vec![65; n]], 5, 1).unwrap_err();
            assert!(
                err.contains(&format!("prompt 1 has {n} tokens")) && err.contains("block size 8"),
                "{err}"
            );
        }
    }
}
