//! Evaluation against the reference model (DESIGN.md, issue 6): preference accuracy (the
//! chosen response's summed log-prob margin over the reference beats the rejected one's; a
//! tie counts as half a win), mean log-prob shift of chosen and rejected responses against the
//! reference, the same accuracy on raw log-probs, and greedy-generation task accuracy (the
//! generated completion's tokens equal the preferred one's).

use crate::data::Response;
use crate::generate::greedy;
use crate::model::Model;
use crate::names::Names;
use crate::objective::{row_logps, sequence_logps};
use crate::progress::Progress;
use crate::reference::RefLogps;
use crate::seq::TokenBatch;
use std::collections::BTreeMap;

/// The metrics of one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalReport {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Fraction of pairs whose chosen margin over the reference beats the rejected one's, a
    /// tie counting 1/2 (so the reference itself scores 0.5, as a coin would); `None` without
    /// pairs or without a reference.
    pub pref_accuracy: Option<f64>,
    /// Fraction of pairs whose chosen log-prob beats the rejected one's (no reference), a tie
    /// counting 1/2; `None` without pairs.
    pub raw_pref_accuracy: Option<f64>,
    /// Mean `log pi(y) - log pi_ref(y)` over preferred responses.
    pub chosen_shift: Option<f64>,
    /// Mean `log pi(y) - log pi_ref(y)` over dispreferred responses.
    pub rejected_shift: Option<f64>,
    /// Mean per-token log-prob of preferred responses.
    pub chosen_token_logp: f64,
    /// Mean per-token log-prob of dispreferred responses.
    pub rejected_token_logp: f64,
    /// Greedy generations equal to the preferred completion (token for token), and prompts
    /// tried.
    pub task: (usize, usize),
    /// Prompts whose preferred completion is longer than the generation budget (`max_new`),
    /// so they can never count as solved (a warning is printed when there are any).
    pub task_too_long: usize,
}

/// Whether a greedy generation solves the task: the same tokens as the preferred completion
/// (not the same decoded text, which drops special tokens and merges invalid UTF-8).
fn solved(want: &[u32], got: &[u32]) -> bool {
    want == got
}

/// Two wins for `a > b`, one for a tie (half a win), none otherwise: the preference-accuracy
/// count of one pair, shared with the experiment's measurements.
pub fn half_wins(a: f64, b: f64) -> usize {
    match a.partial_cmp(&b) {
        Some(std::cmp::Ordering::Greater) => 2,
        Some(std::cmp::Ordering::Equal) => 1,
        _ => 0,
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Summed log-prob of every response under `model`.
pub fn response_logps(
    model: &mut Model,
    responses: &[Response],
    batch: usize,
) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(responses.len());
    let mut bar = Progress::new("eval", 0, responses.len().div_ceil(batch.max(1)));
    for chunk in responses.chunks(batch.max(1)) {
        let rs: Vec<&Response> = chunk.iter().collect();
        let tb = TokenBatch::new(&rs);
        model.forward(&tb.tokens, tb.b, tb.t)?;
        let rows = row_logps(model.logits(), model.config.vocab, &tb)?;
        out.extend(sequence_logps(&rows, &tb));
        bar.tick(tb.b * tb.t);
    }
    bar.finish();
    Ok(out)
}

/// Evaluate `model` on `responses` (all of one data file, in order); `refs` enables the
/// reference-relative metrics; `max_new = 0` skips generation. The messages (and the warning
/// printed when some completion is longer than `max_new`) name values and steps as the caller
/// does (`names`).
pub fn evaluate(
    model: &mut Model,
    responses: &[Response],
    refs: Option<&RefLogps>,
    max_new: usize,
    names: Names,
) -> Result<EvalReport, String> {
    if let Some(r) = refs {
        r.check(responses, names)?;
    }
    let batch = 64;
    let lp = response_logps(model, responses, batch)?;
    let shift = |i: usize| refs.map(|r| lp[i] - r.sequence(responses[i].id));
    let index: BTreeMap<usize, usize> = responses
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    let mut rep = EvalReport::default();
    // In half wins: a tie is worth 1, a win 2.
    let (mut wins, mut raw_wins) = (0usize, 0usize);
    let (mut cs, mut rs, mut ct, mut rt) = (vec![], vec![], vec![], vec![]);
    for (i, r) in responses.iter().enumerate() {
        let per_token = lp[i] / (r.completion.len() + 1) as f64;
        if r.label > 0.0 {
            cs.extend(shift(i));
            ct.push(per_token);
        } else {
            rs.extend(shift(i));
            rt.push(per_token);
        }
        if let (true, Some(&j)) = (r.label > 0.0, r.partner.and_then(|p| index.get(&p))) {
            rep.pairs += 1;
            raw_wins += half_wins(lp[i], lp[j]);
            if let (Some(a), Some(b)) = (shift(i), shift(j)) {
                wins += half_wins(a, b);
            }
        }
    }
    // The half wins of winning every pair.
    let all = 2.0 * rep.pairs as f64;
    if rep.pairs > 0 {
        rep.raw_pref_accuracy = Some(raw_wins as f64 / all);
    }
    if refs.is_some() {
        rep.pref_accuracy = (rep.pairs > 0).then(|| wins as f64 / all);
        rep.chosen_shift = Some(mean(&cs));
        rep.rejected_shift = Some(mean(&rs));
    }
    rep.chosen_token_logp = mean(&ct);
    rep.rejected_token_logp = mean(&rt);
    if max_new > 0 {
        // One task per distinct prompt with a preferred answer.
        let mut tasks: BTreeMap<&[u32], &[u32]> = BTreeMap::new();
        for r in responses.iter().filter(|r| r.label > 0.0) {
            tasks.entry(&r.prompt).or_insert(&r.completion);
        }
        let prompts: Vec<Vec<u32>> = tasks.keys().map(|p| p.to_vec()).collect();
        rep.task_too_long = tasks.values().filter(|want| want.len() > max_new).count();
        if rep.task_too_long > 0 {
            let longest = tasks.values().map(|w| w.len()).max().unwrap_or(0);
            let budget = names.of("max_new");
            eprintln!(
                "eval: warning: {} of {} preferred completions are longer than {budget} \
                 {max_new} tokens and can never count as solved (the longest has {longest}; \
                 raise {budget})",
                rep.task_too_long,
                prompts.len()
            );
        }
        let gens = greedy(model, &prompts, max_new, batch)?;
        let correct = tasks
            .values()
            .zip(&gens)
            .filter(|(want, got)| solved(want, got))
            .count();
        rep.task = (correct, prompts.len());
    }
    Ok(rep)
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt =
            |x: Option<f64>| x.map_or("n/a (no reference)".to_string(), |v| format!("{v:+.4}"));
        writeln!(f, "pairs: {}", self.pairs)?;
        writeln!(
            f,
            "preference accuracy (margin vs reference): {}",
            self.pref_accuracy
                .map_or("n/a".into(), |a| format!("{:.1}%", 100.0 * a))
        )?;
        writeln!(
            f,
            "preference accuracy (raw log-prob): {}",
            self.raw_pref_accuracy
                .map_or("n/a".into(), |a| format!("{:.1}%", 100.0 * a))
        )?;
        writeln!(
            f,
            "mean log-prob shift, chosen:   {}",
            opt(self.chosen_shift)
        )?;
        writeln!(
            f,
            "mean log-prob shift, rejected: {}",
            opt(self.rejected_shift)
        )?;
        writeln!(
            f,
            "mean token log-prob, chosen {:.4}, rejected {:.4}",
            self.chosen_token_logp, self.rejected_token_logp
        )?;
        let (c, n) = self.task;
        if n > 0 {
            writeln!(
                f,
                "task accuracy (greedy): {c}/{n} = {:.1}%",
                100.0 * c as f64 / n as f64
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{parse_jsonl, responses};
    use crate::model::ModelConfig;
    use crate::tokenizer::{decode, BOS, PAD};

    #[test]
    fn generations_are_compared_as_tokens() {
        // Decoded, these pairs read the same; as tokens they differ.
        for (want, got) in [
            (&[0xff][..], &[0xfe][..]),
            (&[65], &[65, PAD]),
            (&[65], &[BOS, 65]),
        ] {
            assert_eq!(decode(want), decode(got));
            assert!(!solved(want, got));
        }
        assert!(solved(&[65, 66], &[65, 66]));
    }

    #[test]
    fn ties_count_half_and_long_answers_are_counted() {
        assert_eq!(
            [
                half_wins(1.0, 0.0),
                half_wins(0.5, 0.5),
                half_wins(0.0, 1.0)
            ],
            [2, 1, 0]
        );
        let cfg = ModelConfig {
            vocab: crate::tokenizer::VOCAB,
            block_size: 16,
            channels: 8,
            heads: 2,
            layers: 1,
        };
        let mut model = Model::new(cfg, 3).unwrap();
        let text = "{\"prompt\":\"1+1=\",\"chosen\":\"2\",\"rejected\":\"333\"}\n\
                    {\"prompt\":\"2+2=\",\"chosen\":\"444\",\"rejected\":\"5\"}\n\
                    {\"prompt\":\"3+3=\",\"chosen\":\"66\",\"rejected\":\"7\"}\n";
        let rs = responses(&parse_jsonl(text).unwrap());
        // The model against itself as the reference (one batch, as `evaluate` runs it): every
        // margin ties.
        let refs = RefLogps::compute(&mut model, &rs, 64).unwrap();
        let rep = evaluate(&mut model, &rs, Some(&refs), 2, Names::FIELDS).unwrap();
        assert_eq!(rep.pairs, 3);
        assert_eq!(rep.pref_accuracy, Some(0.5));
        assert_eq!(rep.chosen_shift, Some(0.0));
        assert_eq!(rep.task.1, 3);
        // "444" is longer than 2 tokens; "2" and "66" are not.
        assert_eq!(rep.task_too_long, 1);
        assert_eq!(
            evaluate(&mut model, &rs, None, 3, Names::FIELDS)
                .unwrap()
                .task_too_long,
            0
        );
    }
}
