//! What one model does on a fixed set of held-out responses, and how that compares with the
//! reference model on the same responses.
//!
//! Per response: every scored token's log-prob `ell` (from `bnf-core`'s row statistics, via
//! [`bnf_trainer::objective::row_logps`]), the raw logit of its target, and whether greedy decoding
//! from the prompt reproduces it. The last needs no generation: greedy decoding emits exactly
//! the response (and its EOS) if and only if, fed the response itself, the model's first
//! largest logit at every scored position is the response's next token. So one forward pass
//! gives the task accuracy that [`bnf_trainer::generate::greedy`] would (a test holds them together).

use bnf_trainer::data::Response;
use bnf_trainer::eval::half_wins;
use bnf_trainer::model::Model;
use bnf_trainer::objective::row_logps;
use bnf_trainer::seq::TokenBatch;

/// One response under one model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResponseScore {
    /// `log pi(y_i)` of each scored token (completion then EOS).
    pub ell: Vec<f32>,
    /// The raw logit `z_{y_i}` of each scored token.
    pub target_logit: Vec<f32>,
    /// How many leading tokens of this response greedy decoding from the prompt reproduces
    /// (all of them, EOS included, when it produces exactly this response).
    pub greedy_prefix: usize,
    /// Whether at every word-initial letter (after the prompt or a space) the model scores the
    /// letter above the same letter in the other case: the style task's decisions
    /// (`ab.` polite vs `AB!` shouted), teacher-forced along this response.
    pub case_kept: bool,
}

/// How a task counts a chosen response as solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskMeasure {
    /// Greedy decoding reproduces it exactly.
    Exact,
    /// Every case decision goes its way ([`ResponseScore::case_kept`]).
    CaseDecisions,
}

/// The same ASCII letter in the other case (`None` for anything else).
fn other_case(y: usize) -> Option<usize> {
    let c = u8::try_from(y).ok()?;
    c.is_ascii_alphabetic().then(|| {
        (if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        }) as usize
    })
}

impl ResponseScore {
    /// Whether greedy decoding from the prompt produces exactly this response.
    pub fn greedy_match(&self) -> bool {
        self.greedy_prefix == self.ell.len()
    }

    /// `log pi(y) = sum_i ell_i`, in f64.
    pub fn logp(&self) -> f64 {
        self.ell.iter().map(|&x| x as f64).sum()
    }
}

/// Whether `y` is the first largest entry of `row` (the choice `greedy` makes).
fn is_first_argmax(row: &[f32], y: usize) -> bool {
    let z = row[y];
    row[..y].iter().all(|&v| v < z) && row[y + 1..].iter().all(|&v| v <= z)
}

/// Score `responses` under `model`, `batch` sequences per forward pass, in order.
pub fn score(
    model: &mut Model,
    responses: &[Response],
    batch: usize,
) -> Result<Vec<ResponseScore>, String> {
    let v = model.config.vocab;
    let mut out = Vec::with_capacity(responses.len());
    for chunk in responses.chunks(batch.max(1)) {
        let rs: Vec<&Response> = chunk.iter().collect();
        let tb = TokenBatch::new(&rs);
        model.forward(&tb.tokens, tb.b, tb.t)?;
        let logits = model.logits();
        let ell = row_logps(logits, v, &tb)?;
        for w in tb.offsets.windows(2) {
            let mut s = ResponseScore {
                case_kept: true,
                ..ResponseScore::default()
            };
            let mut on_path = true;
            let mut first = true;
            for r in (w[0]..w[1]).filter(|&r| tb.scored[r]) {
                let row = &logits[r * v..(r + 1) * v];
                let y = tb.targets[r] as usize;
                s.ell.push(ell[r]);
                s.target_logit.push(row[y]);
                on_path &= is_first_argmax(row, y);
                s.greedy_prefix += usize::from(on_path);
                if first || tb.tokens[r] == b' ' as u32 {
                    if let Some(alt) = other_case(y) {
                        s.case_kept &= row[y] > row[alt];
                    }
                }
                first = false;
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// A policy against the reference on the same held-out pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Fraction of pairs whose chosen log-likelihood gain over the reference beats the
    /// rejected one's (`log pi/pi_ref (y_w) > log pi/pi_ref (y_l)`, DPO's implicit reward), a
    /// tie counting half.
    pub pref_accuracy: f64,
    /// Fraction of pairs with `log pi(y_w) > log pi(y_l)` (no reference), a tie counting half.
    pub raw_pref_accuracy: f64,
    /// Fraction of chosen responses solved (the task accuracy, as [`compare`]'s
    /// [`TaskMeasure`] says).
    pub task_accuracy: f64,
    /// Mean over chosen responses of `log pi(y) - log pi_ref(y)` (summed over tokens).
    pub chosen_shift: f64,
    /// The same over rejected responses.
    pub rejected_shift: f64,
    /// Mean over chosen responses of that shift divided by `|y|` (nats per token).
    pub chosen_token_shift: f64,
    /// The same over rejected responses.
    pub rejected_token_shift: f64,
}

/// Compare `policy` and `reference` scores of `responses` (paired: each chosen response's
/// `partner` is in the list). The task counts a chosen response as solved as `task` says.
/// Errors if the lists do not line up.
pub fn compare(
    responses: &[Response],
    policy: &[ResponseScore],
    reference: &[ResponseScore],
    task: TaskMeasure,
) -> Result<Comparison, String> {
    if policy.len() != responses.len() || reference.len() != responses.len() {
        return Err(format!(
            "compare: {} responses, {} policy scores, {} reference scores",
            responses.len(),
            policy.len(),
            reference.len()
        ));
    }
    let index: std::collections::HashMap<usize, usize> = responses
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    let shift = |i: usize| policy[i].logp() - reference[i].logp();
    let mut c = Comparison::default();
    let (mut pairs, mut wins, mut raw_wins) = (0usize, 0usize, 0usize);
    let (mut chosen, mut rejected) = (0usize, 0usize);
    let mut matches = 0usize;
    for (i, r) in responses.iter().enumerate() {
        let per_token = shift(i) / policy[i].ell.len().max(1) as f64;
        if r.label > 0.0 {
            chosen += 1;
            c.chosen_shift += shift(i);
            c.chosen_token_shift += per_token;
            matches += usize::from(match task {
                TaskMeasure::Exact => policy[i].greedy_match(),
                TaskMeasure::CaseDecisions => policy[i].case_kept,
            });
            if let Some(&j) = r.partner.and_then(|p| index.get(&p)) {
                pairs += 1;
                wins += half_wins(shift(i), shift(j));
                raw_wins += half_wins(policy[i].logp(), policy[j].logp());
            }
        } else {
            rejected += 1;
            c.rejected_shift += shift(i);
            c.rejected_token_shift += per_token;
        }
    }
    if pairs == 0 {
        return Err("compare: no pairs among the responses".into());
    }
    let div = |x: f64, n: usize| x / n.max(1) as f64;
    // In half wins (a tie counts half, as in `bnf eval`).
    c.pref_accuracy = div(wins as f64, 2 * pairs);
    c.raw_pref_accuracy = div(raw_wins as f64, 2 * pairs);
    c.task_accuracy = div(matches as f64, chosen);
    c.chosen_shift = div(c.chosen_shift, chosen);
    c.chosen_token_shift = div(c.chosen_token_shift, chosen);
    c.rejected_shift = div(c.rejected_shift, rejected);
    c.rejected_token_shift = div(c.rejected_token_shift, rejected);
    Ok(c)
}

/// Token-level shifts of a policy against the reference, for the distribution figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenShifts {
    /// Per response: `log pi(y) - log pi_ref(y)`.
    pub response_logp: Vec<f64>,
    /// Per response: that shift divided by `|y|`.
    pub response_logp_per_token: Vec<f64>,
    /// Per response: the mean over its tokens of `|z_y - z_ref,y|`.
    pub response_abs_logit: Vec<f64>,
    /// Per response: the Gini coefficient of its tokens' `|z_y - z_ref,y|` (paper Figure 3f).
    pub response_logit_gini: Vec<f64>,
    /// Every token: `ell - ell_ref`.
    pub token_logp: Vec<f64>,
}

/// The shifts of `policy` against `reference` (scores of the same responses, in order).
pub fn token_shifts(policy: &[ResponseScore], reference: &[ResponseScore]) -> TokenShifts {
    let mut t = TokenShifts::default();
    for (p, r) in policy.iter().zip(reference) {
        let n = p.ell.len().max(1) as f64;
        let d_logp = p.logp() - r.logp();
        t.response_logp.push(d_logp);
        t.response_logp_per_token.push(d_logp / n);
        let d_logit: Vec<f64> = p
            .target_logit
            .iter()
            .zip(&r.target_logit)
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .collect();
        t.response_abs_logit.push(d_logit.iter().sum::<f64>() / n);
        if let Some(g) = super::metrics::gini(&d_logit) {
            t.response_logit_gini.push(g);
        }
        t.token_logp
            .extend(p.ell.iter().zip(&r.ell).map(|(a, b)| *a as f64 - *b as f64));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnf_trainer::data::{parse_jsonl, responses};
    use bnf_trainer::generate::greedy;
    use bnf_trainer::model::ModelConfig;
    use bnf_trainer::tokenizer::VOCAB;

    #[test]
    fn first_argmax_matches_greedy_tie_rule() {
        assert!(is_first_argmax(&[0.0, 2.0, 1.0], 1));
        assert!(!is_first_argmax(&[0.0, 2.0, 2.0], 2));
        assert!(is_first_argmax(&[0.0, 2.0, 2.0], 1));
        assert!(!is_first_argmax(&[3.0, 2.0, 1.0], 1));
    }

    /// Teacher-forced greedy match agrees with real greedy generation: on random models, and on
    /// models forced to answer EOS at once or never.
    #[test]
    fn greedy_match_equals_generation() {
        use bnf_trainer::model::params::Params;
        let cfg = ModelConfig {
            vocab: VOCAB,
            block_size: 24,
            channels: 16,
            heads: 2,
            layers: 1,
        };
        // `None`: random weights; `Some(tok)`: every position's logits are largest at `tok`
        // (final LayerNorm weight 0 and bias u, so its output is u everywhere, and the tied
        // head's row for `tok` is 10 u).
        let forced = [
            None,
            None,
            None,
            Some(bnf_trainer::tokenizer::EOS),
            Some(b'q' as u32),
        ];
        for (seed, force) in forced.iter().enumerate() {
            let mut model = Model::new(cfg, seed as u64).unwrap();
            if let Some(tok) = force {
                let sizes = model.param_sizes().to_vec();
                let p = Params::view_mut(&mut model.params, &sizes);
                p.lnfw.fill(0.0);
                for (k, b) in p.lnfb.iter_mut().enumerate() {
                    *b = if k % 2 == 0 { 1.0 } else { -1.0 };
                }
                let row = *tok as usize * cfg.channels;
                for k in 0..cfg.channels {
                    p.wte[row + k] = 10.0 * p.lnfb[k];
                }
            }
            let prompts: Vec<Vec<u32>> = ["12+", "ab", "x", "7"]
                .iter()
                .map(|p| bnf_trainer::tokenizer::encode(p))
                .collect();
            let gens = greedy(&mut model, &prompts, 8, 4).unwrap();
            let longer = greedy(&mut model, &prompts, 9, 4).unwrap();
            // Responses (built from tokens: the output may not be UTF-8): the model's own
            // greedy output, and the same with one more token.
            let mut rs = Vec::new();
            for (k, (p, g)) in prompts.iter().zip(&gens).enumerate() {
                let mut other = g.clone();
                other.push(b'z' as u32);
                for (side, completion) in [g.clone(), other].into_iter().enumerate() {
                    rs.push(Response {
                        id: 2 * k + side,
                        line: k + 1,
                        prompt: p.clone(),
                        completion,
                        label: if side == 0 { 1.0 } else { -1.0 },
                        partner: Some(2 * k + 1 - side),
                    });
                }
            }
            let scores = score(&mut model, &rs, 3).unwrap();
            for k in 0..prompts.len() {
                // The own output matches iff greedy emits EOS right after it, i.e. one more
                // token of budget adds nothing.
                let stops = longer[k].len() == gens[k].len();
                assert_eq!(
                    scores[2 * k].greedy_match(),
                    stops,
                    "seed {seed} prompt {k}"
                );
                assert!(!scores[2 * k + 1].greedy_match());
                // The longer response shares the own output's path up to its extra token.
                assert_eq!(scores[2 * k + 1].greedy_prefix, gens[k].len());
            }
            match force {
                Some(t) if *t == bnf_trainer::tokenizer::EOS => {
                    assert!(gens.iter().all(|g| g.is_empty()));
                    assert!(scores.iter().step_by(2).all(|s| s.greedy_match()));
                }
                Some(_) => assert!(scores.iter().all(|s| !s.greedy_match())),
                None => {}
            }
        }
    }

    /// Case decisions are read at word-initial letters only, against the other case of the
    /// same letter: a model forced to prefer `q` everywhere keeps `qa qb` and loses `Qa`, and
    /// is not asked about letters inside words.
    #[test]
    fn case_decisions_at_word_starts() {
        use bnf_trainer::model::params::Params;
        let cfg = ModelConfig {
            vocab: VOCAB,
            block_size: 24,
            channels: 16,
            heads: 2,
            layers: 1,
        };
        let mut model = Model::new(cfg, 1).unwrap();
        let sizes = model.param_sizes().to_vec();
        let p = Params::view_mut(&mut model.params, &sizes);
        p.lnfw.fill(0.0);
        for (k, b) in p.lnfb.iter_mut().enumerate() {
            *b = if k % 2 == 0 { 1.0 } else { -1.0 };
        }
        let row = b'q' as usize * cfg.channels;
        for k in 0..cfg.channels {
            p.wte[row + k] = 10.0 * p.lnfb[k];
        }
        let one = |completion: &str| Response {
            id: 0,
            line: 1,
            prompt: bnf_trainer::tokenizer::encode("x?"),
            completion: bnf_trainer::tokenizer::encode(completion),
            label: 1.0,
            partner: None,
        };
        let s = score(
            &mut model,
            &[one("qa qb"), one("Qa"), one("aQ"), one("12")],
            4,
        )
        .unwrap();
        assert!(s[0].case_kept);
        assert!(!s[1].case_kept);
        // No letters, no decisions.
        assert!(s[3].case_kept);
        // `Q` inside a word is not asked about: `aQ` is judged on `a` against `A` only, which
        // the forced model leaves to its random weights; forcing `A` instead decides it.
        assert!(s.len() == 4);
        assert_eq!(other_case(b'a' as usize), Some(b'A' as usize));
        assert_eq!(other_case(b'1' as usize), None);
        assert_eq!(other_case(300), None);
    }

    #[test]
    fn comparison_counts_margins_and_shifts() {
        let src = "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n".repeat(2);
        let rs = responses(&parse_jsonl(&src).unwrap());
        let s = |ell: &[f32], m: bool| ResponseScore {
            ell: ell.to_vec(),
            target_logit: vec![0.0; ell.len()],
            greedy_prefix: if m { ell.len() } else { 1 },
            case_kept: !m,
        };
        let reference = vec![
            s(&[-1.0, -1.0], true),
            s(&[-2.0, -1.0], false),
            s(&[-1.0, -1.0], true),
            s(&[-2.0, -1.0], false),
        ];
        // Pair 1: chosen +0.5, rejected -1 (win); pair 2: chosen -1, rejected +1 (loss).
        let policy = vec![
            s(&[-0.5, -1.0], true),
            s(&[-3.0, -1.0], false),
            s(&[-2.0, -1.0], false),
            s(&[-1.0, -1.0], false),
        ];
        let c = compare(&rs, &policy, &reference, TaskMeasure::Exact).unwrap();
        assert_eq!(c.pref_accuracy, 0.5);
        // Raw: -1.5 > -4 (win); -3 > -2 (loss).
        assert_eq!(c.raw_pref_accuracy, 0.5);
        assert_eq!(c.task_accuracy, 0.5);
        assert!((c.chosen_shift - (-0.25)).abs() < 1e-12);
        assert!((c.rejected_shift - 0.0).abs() < 1e-12);
        assert!((c.chosen_token_shift - (-0.125)).abs() < 1e-12);
        assert!(compare(&rs, &policy[..3], &reference, TaskMeasure::Exact).is_err());
        // Counting case decisions: only the second chosen response kept them.
        let cases = compare(&rs, &policy, &reference, TaskMeasure::CaseDecisions).unwrap();
        assert_eq!(cases.task_accuracy, 0.5);
        let t = token_shifts(&policy, &reference);
        assert_eq!(t.token_logp, vec![0.5, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0, 0.0]);
        assert_eq!(t.response_logp, vec![0.5, -1.0, -1.0, 1.0]);
    }
}
