//! The report's tables of measured numbers: the reference models seed by seed, and per dataset
//! one table per quantity with a row per method and a column per learning rate of the grid plus
//! each method's target rate (mean ± sd over seeds), collapse counts and the target rates.

use super::methods::METHODS;
use super::runner::Dataset;
use super::summary::{collapsed, ran, show, target_lr, Metric, Rate};
use super::Outcome;
use std::fmt::Write;

fn header(o: &Outcome, first: &str) -> String {
    let cols: Vec<String> = o.plan.lrs.iter().map(|lr| format!("lr {lr:e}")).collect();
    format!(
        "| {first} | {} | target rate |\n|---|{}---|\n",
        cols.join(" | "),
        "---|".repeat(cols.len())
    )
}

/// The methods that ran on `d`, in report order.
fn methods_on(o: &Outcome, d: Dataset) -> Vec<usize> {
    (0..METHODS.len()).filter(|&m| ran(o, d, m)).collect()
}

/// `metric` for every method on `d`: one column per rate, then the target rate.
pub fn metric_table(o: &Outcome, d: Dataset, metric: Metric) -> String {
    let mut t = format!(
        "**{}**, {} set:\n\n{}",
        metric.label(),
        d.name(),
        header(o, "method")
    );
    for m in methods_on(o, d) {
        let cells: Vec<String> = o
            .plan
            .lrs
            .iter()
            .map(|&lr| show(o, d, m, Rate::At(lr), metric))
            .collect();
        let _ = writeln!(
            t,
            "| {} | {} | {} |",
            METHODS[m].label,
            cells.join(" | "),
            show(o, d, m, Rate::Target, metric)
        );
    }
    t.push('\n');
    t
}

/// Collapsed seeds per rate, and each method's target rate.
pub fn collapse_table(o: &Outcome, d: Dataset) -> String {
    let mut t = format!(
        "**Collapsed seeds** per rate, and the **target rate** (smallest rate whose mean \
         validation task gain reaches the target with no seed collapsed), {} set:\n\n{}",
        d.name(),
        header(o, "method")
    );
    for m in methods_on(o, d) {
        let cells: Vec<String> = o
            .plan
            .lrs
            .iter()
            .map(|&lr| {
                let (c, n) = collapsed(o, d, m, lr);
                format!("{c}/{n}")
            })
            .collect();
        let target = target_lr(o, d, m).map_or("not reached".into(), |lr| format!("{lr:e}"));
        let _ = writeln!(
            t,
            "| {} | {} | {target} |",
            METHODS[m].label,
            cells.join(" | ")
        );
    }
    t.push('\n');
    t
}

/// The reference models, seed by seed: what alignment starts from.
pub fn references_table(o: &Outcome) -> String {
    let mut t = String::from(
        "| seed | math task acc. (%) | math raw pref. acc. (%) | style task acc. (%) | style raw \
         pref. acc. (%) | reverse skill acc. (%) | math training pairs (own mistakes / problems) | \
         tokens differing per pair |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in &o.references {
        let _ = writeln!(
            t,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} / {} | {:.1} |",
            r.seed,
            100.0 * r.before[0].task_accuracy,
            100.0 * r.before[0].raw_pref_accuracy,
            100.0 * r.before[1].task_accuracy,
            100.0 * r.before[1].raw_pref_accuracy,
            100.0 * r.reverse_before,
            r.math[0].own_errors,
            r.math[0].problems,
            r.math[0].mean_diff
        );
    }
    let test_own: Vec<String> = o
        .references
        .iter()
        .map(|r| format!("{}/{}", r.math[2].own_errors, r.math[2].problems))
        .collect();
    let _ = writeln!(
        t,
        "\nMath test pairs whose rejected side is the reference's own mistake, per seed: {} \
         (the others: the correct solution with one digit changed).\n",
        test_own.join(", ")
    );
    t
}

/// The quantities every dataset reports, in order.
pub const REPORTED: [Metric; 11] = [
    Metric::TaskGain,
    Metric::Pref,
    Metric::RawPref,
    Metric::ReverseChange,
    Metric::MathChange,
    Metric::ChosenShift,
    Metric::RejectedShift,
    Metric::AbsChosen,
    Metric::AbsOwn,
    Metric::GiniChosen,
    Metric::GiniOwn,
];
