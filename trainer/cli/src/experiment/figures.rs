//! The experiment's figures from its runs: training curves per method, the distributions of
//! log-likelihood and logit shifts with Gini coefficients (paper Figure 3), and token-level
//! shifts in DPO's percentile bins (paper Figure 4). Distributions use the first seed's run of
//! each method at its chosen learning rate, on the aligned dataset's test responses.

use super::measure::TokenShifts;
use super::methods::{BNF, DPO, METHODS};
use super::metrics::{bin_fractions, mean_std, percentile_edges};
use super::plots::{bar_chart, histogram, line_chart, panels, Series};
use super::summary::{first_seed_run, runs_of, DatasetSummary};
use super::Outcome;

/// The methods the paper's Figures 3 and 4 compare (those present in the method list).
pub const PAPER_SET: [&str; 4] = [BNF.label, DPO.label, "IPO", "SimPO"];

/// Training curves: per method, the held-out log-likelihood shift of chosen and rejected
/// responses (mean over responses, nats) against the step, mean over seeds at the chosen rate.
pub fn curves(path: &str, outcome: &Outcome, s: &DatasetSummary) -> Result<(), String> {
    let cols = 5;
    let rows = s.rows.len().div_ceil(cols);
    let title = format!(
        "Training curves on the {} set: held-out log-likelihood shift, nats per response (blue chosen, red rejected; dashed: collapse threshold)",
        s.dataset.name()
    );
    panels(
        path,
        (1500, 320 * rows as u32),
        (rows, cols),
        &title,
        |i, area| {
            let Some(row) = s.rows.get(i) else {
                return Ok(());
            };
            let runs: Vec<_> = runs_of(outcome, s.dataset, row.method, row.lr)
                .map(|(_, r)| r)
                .filter(|r| !r.curve.is_empty())
                .collect();
            let Some(first) = runs.first() else {
                return Ok(());
            };
            let mean_at = |k: usize, f: fn(&super::runner::Probe) -> f64| {
                let v: Vec<f64> = runs.iter().filter_map(|r| r.curve.get(k).map(f)).collect();
                mean_std(&v).map_or(f64::NAN, |m| m.0)
            };
            let steps: Vec<f64> = first.curve.iter().map(|p| p.step as f64).collect();
            let line = |f: fn(&super::runner::Probe) -> f64, color, label: &str| Series {
                label: label.into(),
                points: steps
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| (x, mean_at(k, f)))
                    .collect(),
                color,
                dashed: false,
            };
            let threshold = Series {
                label: "collapse".into(),
                points: vec![(0.0, -1.0), (*steps.last().unwrap_or(&1.0), -1.0)],
                color: 7,
                dashed: true,
            };
            let series = [
                line(|p| p.chosen, 0, "chosen"),
                line(|p| p.rejected, 1, "rejected"),
                threshold,
            ];
            let title = format!("{} (lr {:e})", METHODS[row.method].label, row.lr);
            line_chart(area, &title, ("step", "nats"), &series, false)
        },
    )
}

/// The first seed's shifts of each method, at its chosen rate, in method order.
fn shifts<'a>(outcome: &'a Outcome, s: &DatasetSummary) -> Vec<(usize, &'a TokenShifts)> {
    s.rows
        .iter()
        .filter_map(|row| {
            first_seed_run(outcome, s.dataset, row.method, row.lr)
                .and_then(|r| r.shifts.as_ref())
                .map(|t| (row.method, t))
        })
        .collect()
}

/// Mean per-response Gini coefficient of absolute logit shifts, per method.
pub fn gini_by_method(outcome: &Outcome, s: &DatasetSummary) -> Vec<(usize, f64)> {
    shifts(outcome, s)
        .into_iter()
        .filter_map(|(m, t)| mean_std(&t.response_logit_gini).map(|g| (m, g.0)))
        .collect()
}

/// Mean absolute per-response log-likelihood shift, per method.
pub fn abs_shift_by_method(outcome: &Outcome, s: &DatasetSummary) -> Vec<(usize, f64)> {
    shifts(outcome, s)
        .into_iter()
        .filter_map(|(m, t)| {
            let a: Vec<f64> = t.response_logp.iter().map(|x| x.abs()).collect();
            mean_std(&a).map(|v| (m, v.0))
        })
        .collect()
}

/// A 1st-99th percentile range of the pooled values (robust to a collapsed method's tail).
fn pooled_range(values: &[&[f64]]) -> std::ops::Range<f64> {
    let mut all: Vec<f64> = values
        .iter()
        .flat_map(|v| v.iter().copied())
        .filter(|x| x.is_finite())
        .collect();
    if all.is_empty() {
        return 0.0..1.0;
    }
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.99));
    if hi > lo {
        lo..hi
    } else {
        (lo - 1.0)..(hi + 1.0)
    }
}

/// Paper Figure 3: (a) log-likelihood shifts, (b) mean absolute logit shifts, (c)
/// length-normalised log-likelihood shifts of the paper's four methods, and (d) the Gini
/// coefficient of logit shifts for every method.
pub fn figure3(path: &str, outcome: &Outcome, s: &DatasetSummary) -> Result<(), String> {
    let all = shifts(outcome, s);
    let paper: Vec<(usize, &TokenShifts)> = all
        .iter()
        .copied()
        .filter(|(m, _)| PAPER_SET.contains(&METHODS[*m].label))
        .collect();
    type Pick = fn(&TokenShifts) -> &[f64];
    let panels_spec: [(&str, &str, Pick); 3] = [
        ("(a) log-likelihood shift", "nats", |t| &t.response_logp),
        ("(b) mean |logit shift| per token", "logit", |t| {
            &t.response_abs_logit
        }),
        ("(c) log-likelihood shift per token", "nats/token", |t| {
            &t.response_logp_per_token
        }),
    ];
    let ginis = gini_by_method(outcome, s);
    let title = format!(
        "Shift distributions on the {} test responses (seed {}, each method at its chosen lr)",
        s.dataset.name(),
        outcome.plan.seeds.first().copied().unwrap_or(0)
    );
    panels(path, (1400, 900), (2, 2), &title, |i, area| {
        if i == 3 {
            let bars: Vec<(String, f64)> = ginis
                .iter()
                .map(|&(m, g)| (METHODS[m].label.to_string(), g))
                .collect();
            return bar_chart(
                area,
                "(d) Gini of |logit shifts| (mean per response)",
                "Gini",
                &bars,
            );
        }
        let (name, unit, pick) = panels_spec[i];
        let range = pooled_range(&paper.iter().map(|(_, t)| pick(t)).collect::<Vec<_>>());
        let series: Vec<Series> = paper
            .iter()
            .enumerate()
            .map(|(k, (m, t))| Series {
                label: METHODS[*m].label.into(),
                points: histogram(pick(t), &range, 30),
                color: k,
                dashed: false,
            })
            .collect();
        line_chart(area, name, (unit, "fraction of responses"), &series, true)
    })
}

/// Paper Figure 4's numbers: DPO's (beta 0.1) token-level log-likelihood shifts cut into 10
/// percentile bins; the fraction of each method's token shifts in each bin.
pub fn shift_bins(outcome: &Outcome, s: &DatasetSummary) -> Option<Vec<(usize, Vec<f64>)>> {
    let all = shifts(outcome, s);
    let dpo_index = METHODS.iter().position(|m| *m == DPO)?;
    let (_, dpo_shifts) = all.iter().find(|(m, _)| *m == dpo_index)?;
    let edges = percentile_edges(&dpo_shifts.token_logp, 10)?;
    Some(
        all.iter()
            .filter(|(m, _)| PAPER_SET.contains(&METHODS[*m].label))
            .map(|(m, t)| (*m, bin_fractions(&t.token_logp, &edges)))
            .collect(),
    )
}

/// Paper Figure 4 as a PNG.
pub fn figure4(path: &str, outcome: &Outcome, s: &DatasetSummary) -> Result<(), String> {
    let bins = shift_bins(outcome, s).unwrap_or_default();
    let series: Vec<Series> = bins
        .iter()
        .enumerate()
        .map(|(k, (m, f))| Series {
            label: METHODS[*m].label.into(),
            points: f
                .iter()
                .enumerate()
                .map(|(b, &v)| ((b + 1) as f64, v))
                .collect(),
            color: k,
            dashed: false,
        })
        .collect();
    let title = format!(
        "Token-level log-likelihood shifts in DPO's (b=0.1) percentile bins, {} set",
        s.dataset.name()
    );
    panels(path, (900, 540), (1, 1), &title, |_, area| {
        line_chart(
            area,
            "",
            (
                "DPO percentile bin (1 = most negative)",
                "fraction of tokens",
            ),
            &series,
            true,
        )
    })
}
