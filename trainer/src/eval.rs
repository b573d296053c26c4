//! Evaluation against the reference model (DESIGN.md, issue 6): preference accuracy (the
//! chosen response's summed log-prob margin over the reference beats the rejected one's),
//! mean log-prob shift of chosen and rejected responses against the reference, the same
//! accuracy on raw log-probs, and greedy-generation task accuracy (the generated completion
//! equals the preferred one).

use crate::data::Response;
use crate::generate::greedy;
use crate::model::Model;
use crate::objective::{row_logps, sequence_logps};
use crate::progress::Progress;
use crate::reference::RefLogps;
use crate::seq::TokenBatch;
use crate::tokenizer::decode;
use std::collections::BTreeMap;

/// The metrics of one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalReport {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Fraction of pairs whose chosen margin over the reference beats the rejected one's;
    /// `None` without pairs or without a reference.
    pub pref_accuracy: Option<f64>,
    /// Fraction of pairs whose chosen log-prob beats the rejected one's (no reference);
    /// `None` without pairs.
    pub raw_pref_accuracy: Option<f64>,
    /// Mean `log pi(y) - log pi_ref(y)` over preferred responses.
    pub chosen_shift: Option<f64>,
    /// Mean `log pi(y) - log pi_ref(y)` over dispreferred responses.
    pub rejected_shift: Option<f64>,
    /// Mean per-token log-prob of preferred responses.
    pub chosen_token_logp: f64,
    /// Mean per-token log-prob of dispreferred responses.
    pub rejected_token_logp: f64,
    /// Greedy generations equal to the preferred completion, and prompts tried.
    pub task: (usize, usize),
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
/// reference-relative metrics; `max_new = 0` skips generation.
pub fn evaluate(
    model: &mut Model,
    responses: &[Response],
    refs: Option<&RefLogps>,
    max_new: usize,
) -> Result<EvalReport, String> {
    if let Some(r) = refs {
        r.check(responses)?;
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
            raw_wins += usize::from(lp[i] > lp[j]);
            if let (Some(a), Some(b)) = (shift(i), shift(j)) {
                wins += usize::from(a > b);
            }
        }
    }
    let pairs = rep.pairs as f64;
    if rep.pairs > 0 {
        rep.raw_pref_accuracy = Some(raw_wins as f64 / pairs);
    }
    if refs.is_some() {
        rep.pref_accuracy = (rep.pairs > 0).then(|| wins as f64 / pairs);
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
        let gens = greedy(model, &prompts, max_new, batch)?;
        let correct = tasks
            .values()
            .zip(&gens)
            .filter(|(want, got)| decode(want) == decode(got))
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
