//! The paper's five claims, judged from the measured numbers by fixed rules (stated in each
//! verdict), never asserted in advance. Each verdict carries its evidence and the reason the
//! numbers suggest; a reader should check both against the tables.

use super::figures::{abs_shift_by_method, gini_by_method, shift_bins, PAPER_SET};
use super::methods::{BNF, METHODS};
use super::runner::Dataset;
use super::summary::{pct, points, DatasetSummary, Row, Stat};
use super::Outcome;
use bnf_core::Objective;

/// How a claim fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The numbers support it.
    Held,
    /// Some of it held.
    Partly,
    /// The numbers contradict it.
    NotHeld,
    /// The run could not test it (for example, nothing failed to compare against).
    NotTested,
}

impl Verdict {
    /// Text for the report.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::Partly => "partly held",
            Verdict::NotHeld => "did not hold",
            Verdict::NotTested => "not tested by this run",
        }
    }
}

/// One judged claim.
#[derive(Clone, Debug)]
pub struct Claim {
    /// `a` to `e`.
    pub id: char,
    /// The paper's claim.
    pub statement: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// The rule applied and the numbers it used.
    pub evidence: String,
    /// Why the numbers came out this way, as far as the measurements show.
    pub why: String,
}

fn row<'a>(s: &'a DatasetSummary, label: &str) -> Option<&'a Row> {
    s.rows.iter().find(|r| METHODS[r.method].label == label)
}

fn mean(x: Stat) -> f64 {
    x.map_or(f64::NAN, |v| v.0)
}

fn spread(x: Stat) -> f64 {
    x.map_or(0.0, |v| v.1)
}

/// BNF on fully paired data (the main BNF row).
fn is_main_bnf(r: &Row) -> bool {
    METHODS[r.method] == BNF
}

fn is_bnf(r: &Row) -> bool {
    METHODS[r.method].objective == Objective::Bnf
}

/// The pairwise-contrastive baselines (everything but BNF and NLL+PLL), KTO included.
fn dpo_family(r: &Row) -> bool {
    !is_bnf(r) && METHODS[r.method].objective != Objective::NllPll
}

fn collapsed_grid(sums: &[DatasetSummary], label: &str) -> (usize, usize) {
    sums.iter()
        .filter_map(|s| row(s, label))
        .fold((0, 0), |a, r| {
            (a.0 + r.collapsed_grid.0, a.1 + r.collapsed_grid.1)
        })
}

fn claim_a(sums: &[DatasetSummary]) -> Claim {
    let (b, bn) = collapsed_grid(sums, BNF.label);
    let (p, pn) = collapsed_grid(sums, "NLL+PLL");
    let pll_shifts: Vec<String> = sums
        .iter()
        .filter_map(|s| row(s, "NLL+PLL").map(|r| (s, r)))
        .map(|(s, r)| {
            format!(
                "{}: chosen {:+.2}, rejected {:+.2} nats",
                s.dataset.name(),
                mean(r.chosen_shift),
                mean(r.rejected_shift)
            )
        })
        .collect();
    let evidence = format!(
        "Rule: held if BNF collapsed in no run and NLL+PLL in at least one (both datasets, every \
         learning rate and seed); partly if BNF collapsed in fewer runs than NLL+PLL. BNF \
         collapsed in {b} of {bn} runs, NLL+PLL in {p} of {pn}. \
         NLL+PLL's final test shifts at its chosen rate: {}.",
        pll_shifts.join("; ")
    );
    let (verdict, why) = if b == 0 && p == 0 {
        (
            Verdict::NotTested,
            "NLL+PLL did not collapse within this budget, so there was no collapse for BNF to \
             avoid. The positive feedback of PLL (Figure 1) needs the rejected likelihood to fall \
             far before it dominates; a longer run or a larger learning rate would be needed."
                .to_string(),
        )
    } else if b == 0 {
        (
            Verdict::Held,
            "PLL's gradient on a dispreferred token grows as its probability falls (Figure 1), so \
             once the rejected responses are pushed down nothing stops the push, and the shared \
             parameters drag the preferred responses down with them. BNF's gradient on a \
             dispreferred token shrinks linearly to 0 below the reference probability, so the \
             push stops by itself."
                .to_string(),
        )
    } else if b < p {
        (
            Verdict::Partly,
            format!(
                "BNF collapsed less often than NLL+PLL ({b} vs {p} runs) but not never: its \
                 feedback bounds each dispreferred token's gradient, not the drift that the \
                 shared parameters carry over to the preferred responses, and at the largest \
                 learning rates that drift passed the threshold."
            ),
        )
    } else {
        (
            Verdict::NotHeld,
            format!(
                "BNF collapsed as often as or more often than NLL+PLL ({b} vs {p} runs): at these \
                 learning rates the per-token feedback did not keep the preferred responses' \
                 likelihood up."
            ),
        )
    };
    Claim {
        id: 'a',
        statement: "BNF avoids the collapse of naive likelihood losses (NLL+PLL).",
        verdict,
        evidence,
        why,
    }
}

fn claim_b(math: &DatasetSummary) -> Claim {
    let bnf = row(math, BNF.label);
    let b = bnf.map_or((0, 0), |r| r.collapsed_grid);
    let family: Vec<&Row> = math.rows.iter().filter(|r| dpo_family(r)).collect();
    let fraction = |c: (usize, usize)| c.0 as f64 / c.1.max(1) as f64;
    let failed: Vec<String> = family
        .iter()
        .filter(|r| r.collapsed_grid.0 > 0)
        .map(|r| {
            format!(
                "{} {}/{}",
                METHODS[r.method].label, r.collapsed_grid.0, r.collapsed_grid.1
            )
        })
        .collect();
    let more_stable = family
        .iter()
        .filter(|r| fraction(b) < fraction(r.collapsed_grid))
        .count();
    let deltas: Vec<String> = math
        .rows
        .iter()
        .filter(|r| dpo_family(r) || is_main_bnf(r))
        .map(|r| format!("{} {}", METHODS[r.method].label, points(r.math_delta)))
        .collect();
    let evidence =
        format!(
        "Rule: over the whole learning-rate grid on the near-duplicate math pairs, held if BNF \
         never collapsed while some pairwise baseline did; partly if BNF collapsed in a smaller \
         fraction of its runs than at least half of the baselines. BNF: {}/{} runs collapsed, a \
         smaller fraction than {more_stable} of {} baselines. Baselines with collapsed runs: {}. \
         Math task accuracy change at the chosen rates (points, mean ± sd): {}.",
        b.0,
        b.1,
        family.len(),
        if failed.is_empty() { "none".into() } else { failed.join(", ") },
        deltas.join(", ")
    );
    let (verdict, why) = if b.0 == 0 && !failed.is_empty() {
        (
            Verdict::Held,
            "One differing digit gives a pair a small log-likelihood gap, so sigmoid-type pairwise \
             losses keep a near-constant weight on both responses; since they share every other \
             token, lowering the rejected response lowers the chosen one too, and the pairwise \
             term does not stop it (paper section 2.3). BNF's target stops pushing each rejected \
             token once it is below its reference probability."
                .to_string(),
        )
    } else if b.0 == 0 {
        (
            Verdict::NotTested,
            "No pairwise baseline collapsed on these pairs within this budget, so there was no \
             failure to be stable against."
                .to_string(),
        )
    } else if 2 * more_stable >= family.len() {
        (
            Verdict::Partly,
            "BNF failed less often than most pairwise baselines, but it did fail at the largest \
             learning rates: its feedback fades the push on each rejected token, yet the tokens a \
             near-duplicate pair shares are pushed down by the rejected side and pulled up by the \
             chosen side with gradients that do not cancel exactly, and a large step lets that \
             drift through."
                .to_string(),
        )
    } else {
        (
            Verdict::NotHeld,
            "BNF collapsed in as large a fraction of its runs as most pairwise baselines: on these \
             pairs its per-token feedback did not make it more stable than the contrastive terms."
                .to_string(),
        )
    };
    Claim {
        id: 'b',
        statement: "BNF is stable where DPO-family losses fail on near-duplicate math pairs.",
        verdict,
        evidence,
        why,
    }
}

fn claim_c(style: &DatasetSummary) -> Claim {
    // BNF (paired) against the baselines; BNF's pairing-ratio variants are claim (d)'s.
    let mut ranked: Vec<&Row> = style
        .rows
        .iter()
        .filter(|r| (is_main_bnf(r) || !is_bnf(r)) && r.collapsed.0 == 0 && r.math_delta.is_some())
        .collect();
    ranked.sort_by(|a, b| mean(b.math_delta).total_cmp(&mean(a.math_delta)));
    let list: Vec<String> = ranked
        .iter()
        .map(|r| {
            format!(
                "{} {} (style pref. acc. {:.0}%)",
                METHODS[r.method].label,
                points(r.math_delta),
                100.0 * mean(r.pref)
            )
        })
        .collect();
    let evidence = format!(
        "Rule: after aligning on the style pairs, rank BNF and the baselines that did not collapse \
         by the change of held-out math task accuracy (points, mean ± sd over seeds; higher is \
         less tax). Held if BNF ranks first by more than the sum of its and the runner-up's \
         standard deviations; partly if it ranks first by less, or is within that margin of the \
         first; otherwise not. Ranking: {}.",
        list.join(", ")
    );
    let bnf = ranked.iter().position(|r| is_main_bnf(r));
    let (verdict, why) = match bnf {
        None => (
            Verdict::NotHeld,
            "BNF collapsed or has no measurement at its chosen rate on the style pairs.".into(),
        ),
        Some(k) => {
            let b = ranked[k];
            // Compare with the best other method.
            let other = ranked.iter().find(|r| !is_main_bnf(r));
            let gap = other.map_or(f64::INFINITY, |o| mean(b.math_delta) - mean(o.math_delta));
            let tol = other.map_or(0.0, |o| spread(o.math_delta) + spread(b.math_delta));
            let name = other.map_or("none", |o| METHODS[o.method].label);
            if gap > tol {
                (
                    Verdict::Held,
                    "BNF's push on a dispreferred token fades once the token is below its \
                     reference probability, and its pull on a preferred token is NLL's, which \
                     fades as the token nears certainty; nothing keeps widening a margin, so the \
                     shared parameters, and with them the math task the style pairs never show, \
                     move least."
                        .to_string(),
                )
            } else if gap >= -tol {
                (
                    Verdict::Partly,
                    format!(
                        "BNF and the best other method ({name}) differ by {:+.1} points, within \
                         the seeds' spread ({:.1} points): they cannot be told apart here.",
                        100.0 * gap,
                        100.0 * tol
                    ),
                )
            } else {
                (
                    Verdict::NotHeld,
                    format!(
                        "{name} kept the math task better by {:.1} points (spread {:.1}). The \
                         style pairs differ in almost every token, so every method moves many \
                         shared parameters; BNF's bound on each token's push did not make its \
                         total move the smallest here.",
                        -100.0 * gap,
                        100.0 * tol
                    ),
                )
            }
        }
    };
    Claim {
        id: 'c',
        statement: "BNF pays the least alignment tax (reasoning kept after preference alignment).",
        verdict,
        evidence,
        why,
    }
}

fn claim_d(sums: &[DatasetSummary]) -> Claim {
    let zero = |s: &DatasetSummary| row(s, "BNF pairs 0%").cloned();
    let collapsed: usize = sums.iter().filter_map(zero).map(|r| r.collapsed.0).sum();
    let mut parts: Vec<String> = sums
        .iter()
        .filter_map(|s| zero(s).map(|r| (s, r)))
        .map(|(s, r)| {
            format!(
                "{}: preference accuracy {}%, task accuracy {}% -> {}%, collapsed {}/{}",
                s.dataset.name(),
                pct(r.pref),
                pct(s.task_before),
                pct(r.task_after),
                r.collapsed.0,
                r.collapsed.1
            )
        })
        .collect();
    let style = sums.iter().find(|s| s.dataset == Dataset::Style);
    let gain = style.and_then(zero).map(|r| {
        let gain = mean(r.task_delta);
        let noise = (2.0 * spread(r.task_delta)).max(0.05);
        (gain, noise)
    });
    if let Some((g, n)) = gain {
        parts.push(format!(
            "style task gain per seed {:+.1} points on average (needed > {:.1})",
            100.0 * g,
            100.0 * n
        ));
    }
    let evidence = format!(
        "Rule: BNF with no pairs at all (every pair reduced to one random side, paper Table 6's \
         0%) must not collapse on either dataset and must raise the style task accuracy (the \
         share of held-out prompts answered in the preferred style) above the reference's by \
         more than twice the spread over seeds of the per-seed gain (each seed against its own \
         reference), and at least 5 points. {}.",
        parts.join("; ")
    );
    let verdict = match gain {
        None => Verdict::NotTested,
        Some((g, n)) if g > n && collapsed == 0 => Verdict::Held,
        Some((g, n)) if g > n || collapsed == 0 => Verdict::Partly,
        _ => Verdict::NotHeld,
    };
    let why = match verdict {
        Verdict::Held | Verdict::Partly => "Each BNF row needs only its own label and reference \
            log-prob, so a lone preferred response is pulled up and a lone dispreferred one pushed \
            down until it sits below the reference; pairs add no term to the loss."
            .to_string(),
        _ => "Without pairs each update sees only one side of a preference; within this budget \
            that was not enough to move the held-out style beyond the seeds' noise."
            .to_string(),
    };
    Claim {
        id: 'd',
        statement: "BNF works without preference pairs.",
        verdict,
        evidence,
        why,
    }
}

fn claim_e(outcome: &Outcome, sums: &[DatasetSummary]) -> Claim {
    let mut wins = 0;
    let mut total = 0;
    let mut parts = Vec::new();
    let mut lost = Vec::new();
    for s in sums {
        let name = |m: usize| METHODS[m].label;
        let in_set = |v: Vec<(usize, f64)>| -> Vec<(usize, f64)> {
            v.into_iter()
                .filter(|(m, _)| PAPER_SET.contains(&name(*m)))
                .collect()
        };
        for (what, v) in [
            (
                "mean |log-likelihood shift|",
                in_set(abs_shift_by_method(outcome, s)),
            ),
            ("Gini of |logit shifts|", in_set(gini_by_method(outcome, s))),
        ] {
            let Some(&(_, b)) = v.iter().find(|(m, _)| name(*m) == BNF.label) else {
                continue;
            };
            total += 1;
            // Strictly lowest: a tie is not a win.
            let won = v.iter().all(|&(m, x)| name(m) == BNF.label || b < x);
            wins += usize::from(won);
            if !won {
                lost.push(format!("{} {what}", s.dataset.name()));
            }
            let list: Vec<String> = v
                .iter()
                .map(|(m, x)| format!("{} {:.3}", name(*m), x))
                .collect();
            parts.push(format!(
                "{} {}: {}",
                s.dataset.name(),
                what,
                list.join(", ")
            ));
        }
        // Figure 4's reading, for context (not part of the rule): how many of each method's
        // token shifts fall in DPO's two extreme percentile bins (DPO itself: 20%).
        if let Some(bins) = shift_bins(outcome, s) {
            let extremes: Vec<String> = bins
                .iter()
                .map(|(m, f)| format!("{} {:.1}%", METHODS[*m].label, 100.0 * (f[0] + f[9])))
                .collect();
            parts.push(format!(
                "{} share of token shifts in DPO's extreme bins 1 and 10 (not in the rule): {}",
                s.dataset.name(),
                extremes.join(", ")
            ));
        }
    }
    let evidence = format!(
        "Rule: among the paper's comparison set ({}), BNF must have the strictly smallest mean \
         absolute per-response log-likelihood shift and the smallest mean per-response Gini coefficient of \
         absolute target-logit shifts, on each dataset (first seed, chosen rates, test \
         responses). BNF was lowest in {wins} of {total} comparisons. {}.",
        PAPER_SET.join(", "),
        parts.join("; ")
    );
    let verdict = match (wins, total) {
        (_, 0) => Verdict::NotTested,
        (w, t) if w == t => Verdict::Held,
        (0, _) => Verdict::NotHeld,
        _ => Verdict::Partly,
    };
    let why = match verdict {
        Verdict::Held => "BNF's gradient on a token fades as the token's probability moves \
            away from the reference in either direction, so no single token is pushed far: shifts \
            stay small and spread over many tokens."
            .to_string(),
        Verdict::Partly => format!(
            "BNF was lowest in {wins} of {total} comparisons and not in: {}. The per-token \
             feedback limits how far each token moves, which fits where BNF is lowest; where it \
             is not, compare the numbers above, which rest on one seed's test responses.",
            lost.join(", ")
        ),
        _ => "Here the baselines moved the likelihoods less or more evenly; their pairwise terms \
            stop growing once a pair's margin is large, which also limits the shift."
            .to_string(),
    };
    Claim {
        id: 'e',
        statement: "BNF shifts log-likelihoods least and most evenly across tokens.",
        verdict,
        evidence,
        why,
    }
}

/// Judge every claim from the summaries (`sums[0]` math, `sums[1]` style).
pub fn judge(outcome: &Outcome, sums: &[DatasetSummary; 2]) -> Vec<Claim> {
    vec![
        claim_a(sums),
        claim_b(&sums[0]),
        claim_c(&sums[1]),
        claim_d(sums),
        claim_e(outcome, sums),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::measure::Comparison;
    use crate::experiment::summary::summarize;
    use crate::experiment::summary::tests::synthetic;

    fn index(label: &str) -> usize {
        METHODS.iter().position(|m| m.label == label).unwrap()
    }

    fn verdicts(collapses: impl Fn(Dataset, usize, f32) -> bool) -> Vec<Verdict> {
        let o = synthetic(&[1.0, 2.0], 2, |d, m, lr, _| {
            (!collapses(d, m, lr)).then(|| Comparison {
                pref_accuracy: 0.9,
                task_accuracy: 0.9,
                ..Comparison::default()
            })
        });
        let sums = [summarize(&o, Dataset::Math), summarize(&o, Dataset::Style)];
        judge(&o, &sums).iter().map(|c| c.verdict).collect()
    }

    #[test]
    fn collapse_claims_follow_the_counts() {
        let (bnf, pll, dpo) = (index("BNF"), index("NLL+PLL"), index("DPO b=0.1"));
        // Nothing collapses: (a) and (b) cannot be tested.
        let v = verdicts(|_, _, _| false);
        assert_eq!((v[0], v[1]), (Verdict::NotTested, Verdict::NotTested));
        // NLL+PLL and DPO collapse at the large rate, BNF never: both held.
        let v = verdicts(|_, m, lr| (m == pll || m == dpo) && lr == 2.0);
        assert_eq!((v[0], v[1]), (Verdict::Held, Verdict::Held));
        // BNF collapses once on math at the large rate, NLL+PLL everywhere, DPO at the large
        // rate: (a) partly; (b) BNF's 2/4 is not below DPO's 2/4 nor the others' 0: not held.
        let v = verdicts(|d, m, lr| {
            m == pll || (m == dpo && lr == 2.0) || (m == bnf && d == Dataset::Math && lr == 2.0)
        });
        assert_eq!((v[0], v[1]), (Verdict::Partly, Verdict::NotHeld));
        // BNF collapses as often as NLL+PLL: (a) not held.
        let v = verdicts(|_, m, lr| (m == pll || m == bnf) && lr == 2.0);
        assert_eq!(v[0], Verdict::NotHeld);
        // (c): every method keeps the same math accuracy: BNF cannot be told apart.
        assert_eq!(verdicts(|_, _, _| false)[2], Verdict::Partly);
    }
}
