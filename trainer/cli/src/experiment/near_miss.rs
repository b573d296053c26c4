//! Math preference pairs built from the reference model's own mistakes (paper section 2.3: pairs
//! of a correct and an incorrect response that differ in few tokens). Per seed, after SFT: greedy
//! decoding of the reference on each problem; where it is wrong, the pair is (correct solution,
//! the reference's own output). Training pairs come only from such mistakes. Held-out problems
//! all become pairs, so that the math task is measured on every one of them: where the reference
//! is right, the rejected side is its solution with one digit changed
//! ([`super::tasks::one_wrong_digit`]).

use super::measure::score;
use super::tasks::{math_prompt, math_solution, one_wrong_digit};
use bnf_trainer::data::Response;
use bnf_trainer::generate::greedy;
use bnf_trainer::model::Model;
use bnf_trainer::rng::Rng;
use bnf_trainer::tokenizer::encode;

/// Sequences per forward pass.
const BATCH: usize = 64;

/// One set of pairs and where its rejected sides came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MathPairs {
    /// Pairs (chosen then rejected, ids = positions).
    pub pairs: Vec<Response>,
    /// Problems looked at.
    pub problems: usize,
    /// Pairs whose rejected side is the reference's own wrong output.
    pub own_errors: usize,
    /// Mean number of differing tokens between the sides of the own-error pairs (position by
    /// position, plus the difference in length).
    pub mean_diff: f64,
}

/// Tokens at which `a` and `b` differ, position by position, plus the difference in length.
pub fn token_diff(a: &[u32], b: &[u32]) -> usize {
    let common = a.iter().zip(b).filter(|(x, y)| x != y).count();
    common + a.len().abs_diff(b.len())
}

/// The reference's greedy output for each problem where it is wrong (`None` where greedy
/// decoding reproduces the correct solution).
pub fn own_errors(
    model: &mut Model,
    problems: &[(usize, usize)],
) -> Result<Vec<Option<Vec<u32>>>, String> {
    let right: Vec<Response> = problems
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| Response {
            id: i,
            line: i + 1,
            prompt: encode(&math_prompt(a, b)),
            completion: encode(&math_solution(a, b)),
            label: 1.0,
            partner: None,
        })
        .collect();
    let scores = score(model, &right, BATCH)?;
    let wrong: Vec<usize> = (0..right.len())
        .filter(|&i| !scores[i].greedy_match())
        .collect();
    let prompts: Vec<Vec<u32>> = wrong.iter().map(|&i| right[i].prompt.clone()).collect();
    // Outputs are cut at the solution's length (every solution has the same), so that a pair
    // fits the block the model was built for.
    let max_new = right.iter().map(|r| r.completion.len()).max().unwrap_or(0);
    let outputs = greedy(model, &prompts, max_new, BATCH)?;
    let mut out = vec![None; right.len()];
    for (&i, o) in wrong.iter().zip(outputs) {
        // Teacher forcing said greedy decoding does not give the solution and its EOS; cut to
        // the solution's length, a run-on output can equal the solution, and is left out.
        if o != right[i].completion {
            out[i] = Some(o);
        }
    }
    Ok(out)
}

/// Pairs for `problems`: (correct solution, the reference's own wrong output) where it is wrong;
/// where it is right, (correct solution, one digit changed) if `fill` and no pair otherwise.
pub fn math_pairs(
    model: &mut Model,
    problems: &[(usize, usize)],
    fill: bool,
    rng: &mut Rng,
) -> Result<MathPairs, String> {
    let errors = own_errors(model, problems)?;
    let mut out = MathPairs {
        problems: problems.len(),
        ..MathPairs::default()
    };
    let mut diff = 0usize;
    for (&(a, b), err) in problems.iter().zip(errors) {
        let solution = math_solution(a, b);
        let rejected = match err {
            Some(tokens) => {
                out.own_errors += 1;
                diff += token_diff(&encode(&solution), &tokens);
                tokens
            }
            None if fill => encode(&one_wrong_digit(&solution, rng)?),
            None => continue,
        };
        let (id, line) = (out.pairs.len(), out.pairs.len() / 2 + 1);
        let prompt = encode(&math_prompt(a, b));
        for (k, completion) in [encode(&solution), rejected].into_iter().enumerate() {
            out.pairs.push(Response {
                id: id + k,
                line,
                prompt: prompt.clone(),
                completion,
                label: if k == 0 { 1.0 } else { -1.0 },
                partner: Some(id + 1 - k),
            });
        }
    }
    out.mean_diff = diff as f64 / out.own_errors.max(1) as f64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::tasks::check_math;
    use bnf_trainer::model::ModelConfig;
    use bnf_trainer::tokenizer::{decode, VOCAB};

    #[test]
    fn token_diff_counts_positions_and_length() {
        assert_eq!(token_diff(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(token_diff(&[1, 2, 3], &[1, 5, 3]), 1);
        assert_eq!(token_diff(&[1, 2, 3], &[1, 2]), 1);
        assert_eq!(token_diff(&[9, 2], &[1, 2, 3, 4]), 3);
    }

    /// An untrained model is wrong on every problem: every pair's rejected side is its own
    /// greedy output (checked against real generation), the chosen side is correct, and with
    /// `fill` off the pairs are exactly those.
    #[test]
    fn pairs_hold_the_models_own_mistakes() {
        let cfg = ModelConfig {
            vocab: VOCAB,
            block_size: 48,
            channels: 16,
            heads: 2,
            layers: 1,
        };
        let mut model = Model::new(cfg, 3).unwrap();
        let problems = [(12, 345), (999, 1), (500, 500)];
        let mut rng = Rng::new(1);
        let p = math_pairs(&mut model, &problems, false, &mut rng).unwrap();
        assert_eq!((p.problems, p.own_errors, p.pairs.len()), (3, 3, 6));
        let prompts: Vec<Vec<u32>> = problems
            .iter()
            .map(|&(a, b)| encode(&math_prompt(a, b)))
            .collect();
        let gens = greedy(&mut model, &prompts, math_solution(0, 0).len(), 1).unwrap();
        for (k, pair) in p.pairs.chunks(2).enumerate() {
            let prompt = decode(&pair[0].prompt);
            assert!(check_math(&prompt, &decode(&pair[0].completion)));
            assert_eq!(pair[1].completion, gens[k]);
            assert_eq!((pair[0].id, pair[1].partner), (2 * k, Some(2 * k)));
            assert_eq!((pair[0].label, pair[1].label), (1.0, -1.0));
        }
    }
}
