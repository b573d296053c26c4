//! The experiment's figures from its runs: training curves per method, the paper's Figure 3
//! (distributions of log-likelihood and logit shifts, their scatter, Gini coefficients) and
//! Figure 4 (token-level shifts in DPO's percentile bins). Each method is drawn at its target
//! rate ([`super::summary::target_lr`]), or at the middle rate of the grid where it has none
//! (said in the figure); distributions use the first seed's run.

use super::claims::paper_set;
use super::measure::TokenShifts;
use super::methods::{BNF, DPO, METHODS};
use super::metrics::{bin_fractions, mean_std, percentile_edges, quantile};
use super::plots::{grouped_bars, histogram, line_chart, line_chart_y0, panels, scatter, Series};
use super::runner::{Dataset, Probe};
use super::summary::{first_seed_run, ran, runs_of, target_lr};
use super::Outcome;

/// The rate a figure shows `method` at: its target rate (`true`), else the grid's middle rate.
pub fn figure_lr(o: &Outcome, d: Dataset, method: usize) -> (f32, bool) {
    match target_lr(o, d, method) {
        Some(lr) => (lr, true),
        None => (o.plan.lrs[o.plan.lrs.len() / 2], false),
    }
}

fn rate_text(o: &Outcome, d: Dataset, m: usize) -> String {
    let (lr, target) = figure_lr(o, d, m);
    format!(
        "lr {lr:e}{}",
        if target { "" } else { ", target not reached" }
    )
}

/// Training curves: per method, the validation log-likelihood shift of chosen and rejected
/// responses (mean over responses, nats) against the step, mean over seeds.
pub fn curves(path: &str, o: &Outcome, d: Dataset) -> Result<(), String> {
    let methods: Vec<usize> = (0..METHODS.len()).filter(|&m| ran(o, d, m)).collect();
    let cols = 5;
    let rows = methods.len().div_ceil(cols);
    let title = format!(
        "Training curves on the {} set: validation log-likelihood shift, nats per response (blue chosen, red rejected; grey dashed: collapse threshold)",
        d.name()
    );
    panels(
        path,
        (1500, 320 * rows as u32),
        (rows, cols),
        &title,
        |i, area| {
            let Some(&m) = methods.get(i) else {
                return Ok(());
            };
            let (lr, _) = figure_lr(o, d, m);
            let runs: Vec<_> = runs_of(o, d, m, lr)
                .map(|(_, r)| r)
                .filter(|r| !r.curve.is_empty())
                .collect();
            let Some(first) = runs.first() else {
                return Ok(());
            };
            let mean_at = |k: usize, f: fn(&Probe) -> f64| {
                let v: Vec<f64> = runs.iter().filter_map(|r| r.curve.get(k).map(f)).collect();
                mean_std(&v).map_or(f64::NAN, |m| m.0)
            };
            let steps: Vec<f64> = first.curve.iter().map(|p| p.step as f64).collect();
            let line = |f: fn(&Probe) -> f64, color, label: &str| {
                let pts = steps
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| (x, mean_at(k, f)))
                    .collect();
                Series::line(label, pts, color)
            };
            let mut threshold = Series::line(
                "collapse",
                vec![(0.0, -1.0), (*steps.last().unwrap_or(&1.0), -1.0)],
                7,
            );
            threshold.dashed = true;
            let series = [
                line(|p| p.chosen, 0, "chosen"),
                line(|p| p.rejected, 1, "rejected"),
                threshold,
            ];
            let title = format!("{} ({})", METHODS[m].label, rate_text(o, d, m));
            line_chart(area, &title, ("step", "nats"), &series, false)
        },
    )
}

/// BNF and the paper's comparison set, in that order.
fn figure_set() -> Vec<usize> {
    let bnf = METHODS.iter().position(|m| *m == BNF).unwrap_or(0);
    std::iter::once(bnf).chain(paper_set()).collect()
}

/// The first seed's shifts (chosen responses, own outputs) of the figure set at their rates.
fn shifts(o: &Outcome, d: Dataset) -> Vec<(usize, &TokenShifts, &TokenShifts)> {
    figure_set()
        .into_iter()
        .filter_map(|m| {
            let r = first_seed_run(o, d, m, figure_lr(o, d, m).0)?;
            Some((m, r.shifts.as_ref()?, r.own_shifts.as_ref()?))
        })
        .collect()
}

/// The 1st to 99th percentile of the pooled values (never empty).
fn pooled_range(values: &[&[f64]]) -> std::ops::Range<f64> {
    let mut all: Vec<f64> = values
        .iter()
        .flat_map(|v| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return 0.0..1.0;
    }
    all.sort_by(f64::total_cmp);
    let (lo, hi) = (quantile(&all, 0.01), quantile(&all, 0.99));
    if hi > lo {
        lo..hi
    } else {
        (lo - 0.5)..(hi + 0.5)
    }
}

/// Histogram lines of each method's `pick`, over a shared range; out-of-range counts in the
/// legend.
fn histograms(set: &[(usize, &[f64])]) -> Vec<Series> {
    let range = pooled_range(&set.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    set.iter()
        .enumerate()
        .map(|(k, (m, v))| {
            let (pts, below, above) = histogram(v, &range, 25);
            let mut label = METHODS[*m].label.to_string();
            if below + above > 0 {
                label += &format!(" ({below} below, {above} above the axis)");
            }
            styled(Series::line(label, pts, k), k)
        })
        .collect()
}

/// The `k`-th line of a figure, drawn so that lines that coincide stay visible: solid, wide
/// and pale, dashed, solid with markers.
fn styled(s: Series, k: usize) -> Series {
    match k % 4 {
        1 => Series { width: 7, ..s },
        2 => Series { dashed: true, ..s },
        3 => Series { marker: 2, ..s },
        _ => s,
    }
}

/// The paper's Figure 3 as a PNG.
pub fn figure3(path: &str, o: &Outcome, d: Dataset) -> Result<(), String> {
    let set = shifts(o, d);
    type Pick = fn(&TokenShifts) -> &[f64];
    let hists: [(&str, &str, Pick, bool); 4] = [
        (
            "(a) log-likelihood shift, chosen",
            "nats",
            |t| &t.response_logp,
            false,
        ),
        (
            "(b) mean |logit shift| per token, chosen",
            "logit",
            |t| &t.response_abs_logit,
            false,
        ),
        (
            "(d) log-likelihood shift per token, chosen",
            "nats/token",
            |t| &t.response_logp_per_token,
            false,
        ),
        (
            "(e') log-likelihood shift, own greedy outputs",
            "nats",
            |t| &t.response_logp,
            true,
        ),
    ];
    let title = format!(
        "Shifts on the {} test set (seed {}; rates in results.md)",
        d.name(),
        o.plan.seeds.first().copied().unwrap_or(0),
    );
    panels(path, (1500, 900), (2, 3), &title, |i, area| match i {
        0 | 1 | 3 | 4 => {
            let (name, unit, pick, own) = hists[[0, 1, 9, 2, 3][i]];
            let data: Vec<(usize, &[f64])> = set
                .iter()
                .map(|(m, c, w)| (*m, pick(if own { w } else { c })))
                .collect();
            line_chart_y0(
                area,
                name,
                (unit, "fraction of responses"),
                &histograms(&data),
                true,
                true,
            )
        }
        2 => {
            let series: Vec<Series> = set
                .iter()
                .enumerate()
                .map(|(k, (m, c, _))| {
                    let pts = c
                        .response_abs_logit
                        .iter()
                        .copied()
                        .zip(c.response_logp.iter().copied())
                        .collect();
                    Series {
                        marker: 1 + k % 3,
                        ..Series::line(METHODS[*m].label, pts, k)
                    }
                })
                .collect();
            scatter(
                area,
                "(c) logit shift vs log-likelihood shift, chosen",
                (
                    "mean |logit shift| per token",
                    "log-likelihood shift (nats)",
                ),
                &series,
            )
        }
        _ => {
            let g = |t: &TokenShifts| mean_std(&t.response_logit_gini).map_or(f64::NAN, |s| s.0);
            let names: Vec<String> = set
                .iter()
                .map(|(m, _, _)| METHODS[*m].label.to_string())
                .collect();
            let bars = [
                (
                    "chosen".to_string(),
                    set.iter().map(|(_, c, _)| g(c)).collect(),
                ),
                (
                    "own outputs".to_string(),
                    set.iter().map(|(_, _, w)| g(w)).collect(),
                ),
            ];
            grouped_bars(
                area,
                "(f) Gini of |logit shifts| (mean per response)",
                ("", "Gini"),
                &names,
                &bars,
            )
        }
    })
}

/// Which rate each method of the Figure 3 set is drawn at, for the report.
pub fn figure_rates(o: &Outcome, d: Dataset) -> String {
    figure_set()
        .into_iter()
        .map(|m| format!("{} at {}", METHODS[m].label, rate_text(o, d, m)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Paper Figure 4's numbers: DPO's (beta 0.1) token-level log-likelihood shifts on the chosen
/// test responses cut into 10 percentile bins; the fraction of each method's token shifts in
/// each bin.
pub fn shift_bins(o: &Outcome, d: Dataset) -> Option<Vec<(usize, Vec<f64>)>> {
    let all = shifts(o, d);
    let dpo = METHODS.iter().position(|m| *m == DPO)?;
    let (_, dpo_shifts, _) = all.iter().find(|(m, _, _)| *m == dpo)?;
    let edges = percentile_edges(&dpo_shifts.token_logp, 10)?;
    Some(
        all.iter()
            .map(|(m, t, _)| (*m, bin_fractions(&t.token_logp, &edges)))
            .collect(),
    )
}

/// Paper Figure 4 as a PNG: grouped bars, y from 0.
pub fn figure4(path: &str, o: &Outcome, d: Dataset) -> Result<(), String> {
    let bins = shift_bins(o, d).unwrap_or_default();
    let series: Vec<(String, Vec<f64>)> = bins
        .iter()
        .map(|(m, f)| (METHODS[*m].label.to_string(), f.clone()))
        .collect();
    let cats: Vec<String> = (1..=10).map(|b| b.to_string()).collect();
    let title = format!(
        "Token-level log-likelihood shifts in DPO's (b=0.1) percentile bins, {} set, chosen responses",
        d.name()
    );
    panels(path, (900, 540), (1, 1), &title, |_, area| {
        grouped_bars(
            area,
            "",
            (
                "DPO percentile bin (1 = most negative)",
                "fraction of tokens",
            ),
            &cats,
            &series,
        )
    })
}
