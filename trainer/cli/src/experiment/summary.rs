//! From runs to rows: for each dataset and method, the learning rate chosen on the validation
//! split, and every reported quantity as mean and spread over seeds at that rate.
//!
//! Choice of learning rate: the rate with the highest mean validation score over seeds (the
//! mean of preference accuracy and task accuracy), where a collapsed or failed run counts as 0
//! (ties go to the smaller rate). The
//! reported numbers come from the test split, which the choice never sees.

use super::measure::Comparison;
use super::methods::METHODS;
use super::metrics::mean_std;
use super::runner::{Dataset, Job, RunResult};
use super::Outcome;

/// Mean and sample standard deviation over seeds (`None` when no seed measured it).
pub type Stat = Option<(f64, f64)>;

/// `mean ± sd` of a fraction, in percent.
pub fn pct(x: Stat) -> String {
    x.map_or("n/a".into(), |(m, s)| {
        format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * s)
    })
}

/// `mean ± sd` with a sign.
pub fn num(x: Stat) -> String {
    x.map_or("n/a".into(), |(m, s)| format!("{m:+.2} ± {s:.2}"))
}

/// `mean ± sd` of a fraction's change, in signed percentage points.
pub fn points(x: Stat) -> String {
    x.map_or("n/a".into(), |(m, s)| {
        format!("{:+.1} ± {:.1}", 100.0 * m, 100.0 * s)
    })
}

/// One method on one dataset, at its chosen learning rate.
#[derive(Clone, Debug)]
pub struct Row {
    /// Index into [`METHODS`].
    pub method: usize,
    /// The chosen learning rate.
    pub lr: f32,
    /// Test preference accuracy (margin over the reference).
    pub pref: Stat,
    /// Test preference accuracy on raw log-probs.
    pub raw_pref: Stat,
    /// Task accuracy on the aligned dataset's test split after alignment (math: solutions
    /// reproduced by greedy decoding; style: polite answers reproduced).
    pub task_after: Stat,
    /// Task accuracy on the aligned dataset after minus before (per seed, against that seed's
    /// reference: a paired difference, so its spread is the seeds' spread of the gain).
    pub task_delta: Stat,
    /// Math task accuracy after alignment (the reasoning task, whatever was aligned on).
    pub math_after: Stat,
    /// Math task accuracy after minus before (per seed, against that seed's reference).
    pub math_delta: Stat,
    /// Mean summed log-likelihood shift of chosen test responses.
    pub chosen_shift: Stat,
    /// Mean summed log-likelihood shift of rejected test responses.
    pub rejected_shift: Stat,
    /// Seeds that collapsed at the chosen rate, of the seeds run.
    pub collapsed: (usize, usize),
    /// Runs that collapsed over the whole learning-rate grid, of all runs.
    pub collapsed_grid: (usize, usize),
    /// Mean validation score of each rate of the grid (the choice's input).
    pub val_by_lr: Vec<(f32, f64)>,
    /// Training errors at the chosen rate (seed, message).
    pub errors: Vec<(u64, String)>,
}

/// The summary of one dataset.
#[derive(Clone, Debug)]
pub struct DatasetSummary {
    /// Which dataset.
    pub dataset: Dataset,
    /// The references' test numbers (the "before"): task accuracy and math task accuracy.
    pub task_before: Stat,
    /// Math task accuracy of the references.
    pub math_before: Stat,
    /// One row per method, in [`METHODS`] order.
    pub rows: Vec<Row>,
}

fn stat(values: impl Iterator<Item = f64>) -> Stat {
    mean_std(&values.collect::<Vec<_>>())
}

/// The runs of `dataset` and `method`, grouped by learning rate in grid order.
pub fn runs_of(
    outcome: &Outcome,
    dataset: Dataset,
    method: usize,
    lr: f32,
) -> impl Iterator<Item = &(Job, RunResult)> {
    outcome
        .runs
        .iter()
        .filter(move |(j, _)| j.dataset == dataset && j.method == method && j.lr == lr)
}

/// Math task accuracy after minus before (per seed, against that seed's reference) of the runs
/// of `method` on `dataset` at `lr`: the alignment tax at that rate.
pub fn math_delta_at(outcome: &Outcome, dataset: Dataset, method: usize, lr: f32) -> Stat {
    stat(runs_of(outcome, dataset, method, lr).filter_map(|(j, r)| {
        let b = outcome.references[j.seed].before[0].task_accuracy;
        r.math.as_ref().map(|m| m.task_accuracy - b)
    }))
}

fn val_score(r: &RunResult) -> f64 {
    match (&r.val, r.collapse_step) {
        (Some(v), None) => 0.5 * (v.pref_accuracy + v.task_accuracy),
        _ => 0.0,
    }
}

/// Summarise `dataset`.
pub fn summarize(outcome: &Outcome, dataset: Dataset) -> DatasetSummary {
    let d = dataset as usize;
    let before = |f: fn(&Comparison) -> f64, k: usize| {
        stat(outcome.references.iter().map(move |r| f(&r.before[k])))
    };
    let rows = (0..METHODS.len())
        .map(|method| {
            let val_by_lr: Vec<(f32, f64)> = outcome
                .plan
                .lrs
                .iter()
                .map(|&lr| {
                    let v: Vec<f64> = runs_of(outcome, dataset, method, lr)
                        .map(|(_, r)| val_score(r))
                        .collect();
                    (lr, mean_std(&v).map_or(0.0, |s| s.0))
                })
                .collect();
            let lr = val_by_lr
                .iter()
                .fold(None::<(f32, f64)>, |best, &(lr, v)| match best {
                    Some((_, b)) if b >= v => best,
                    _ => Some((lr, v)),
                })
                .map_or(0.0, |b| b.0);
            let at: Vec<&(Job, RunResult)> = runs_of(outcome, dataset, method, lr).collect();
            let test = |f: fn(&Comparison) -> f64| {
                stat(at.iter().filter_map(|(_, r)| r.test.as_ref().map(f)))
            };
            let math = |f: fn(&Comparison) -> f64| {
                stat(at.iter().filter_map(|(_, r)| r.math.as_ref().map(f)))
            };
            let task_delta = stat(at.iter().filter_map(|(j, r)| {
                let b = outcome.references[j.seed].before[d].task_accuracy;
                r.test.as_ref().map(|c| c.task_accuracy - b)
            }));
            let math_delta = math_delta_at(outcome, dataset, method, lr);
            let grid: Vec<&RunResult> = outcome
                .runs
                .iter()
                .filter(|(j, _)| j.dataset == dataset && j.method == method)
                .map(|(_, r)| r)
                .collect();
            Row {
                method,
                lr,
                pref: test(|c| c.pref_accuracy),
                raw_pref: test(|c| c.raw_pref_accuracy),
                task_after: test(|c| c.task_accuracy),
                task_delta,
                math_after: math(|c| c.task_accuracy),
                math_delta,
                chosen_shift: test(|c| c.chosen_shift),
                rejected_shift: test(|c| c.rejected_shift),
                collapsed: (
                    at.iter().filter(|(_, r)| r.collapse_step.is_some()).count(),
                    at.len(),
                ),
                collapsed_grid: (
                    grid.iter().filter(|r| r.collapse_step.is_some()).count(),
                    grid.len(),
                ),
                val_by_lr,
                errors: at
                    .iter()
                    .filter_map(|(j, r)| r.error.clone().map(|e| (outcome.plan.seeds[j.seed], e)))
                    .collect(),
            }
        })
        .collect();
    DatasetSummary {
        dataset,
        task_before: before(|c| c.task_accuracy, d),
        math_before: before(|c| c.task_accuracy, 0),
        rows,
    }
}

/// The first seed's run of `method` on `dataset` at `lr` (the one whose shifts are kept).
pub fn first_seed_run(
    outcome: &Outcome,
    dataset: Dataset,
    method: usize,
    lr: f32,
) -> Option<&RunResult> {
    runs_of(outcome, dataset, method, lr)
        .find(|(j, _)| j.seed == 0)
        .map(|(_, r)| r)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::experiment::plan::Plan;
    use crate::experiment::runner::{Probe, Reference};
    use bnf_trainer::reference::RefLogps;

    /// An outcome with no real training: `runs(dataset, method, lr, seed)` says what each
    /// run measured (`None`: collapsed at step 5).
    pub(crate) fn synthetic(
        lrs: &[f32],
        seeds: usize,
        run: impl Fn(Dataset, usize, f32, usize) -> Option<Comparison>,
    ) -> Outcome {
        let mut plan = Plan::quick();
        plan.lrs = lrs.to_vec();
        plan.seeds = (0..seeds as u64).collect();
        let before = Comparison {
            task_accuracy: 0.5,
            ..Comparison::default()
        };
        let references = (0..seeds as u64)
            .map(|seed| Reference {
                seed,
                params: vec![],
                sft_loss: vec![],
                refs: std::array::from_fn(|_| RefLogps {
                    format: String::new(),
                    responses: vec![],
                    fingerprints: vec![],
                }),
                scores: Default::default(),
                before: [before.clone(), before.clone()],
                seconds: 0.0,
            })
            .collect();
        let runs = super::super::jobs(&plan)
            .into_iter()
            .map(|job| {
                let measured = run(job.dataset, job.method, job.lr, job.seed);
                let result = RunResult {
                    collapse_step: measured.is_none().then_some(5),
                    curve: vec![Probe::default()],
                    val: measured.clone(),
                    test: measured.clone(),
                    math: measured,
                    ..RunResult::default()
                };
                (job, result)
            })
            .collect();
        Outcome {
            plan,
            references,
            runs,
            seconds: 0.0,
            jobs: 1,
        }
    }

    fn acc(pref: f64, task: f64) -> Option<Comparison> {
        Some(Comparison {
            pref_accuracy: pref,
            task_accuracy: task,
            ..Comparison::default()
        })
    }

    #[test]
    fn learning_rate_choice_and_seed_statistics() {
        // Method 0: rate 2 is best but collapses on seed 1, so rate 1 wins (0.8 vs 0.5).
        // Method 1: rates tie, the smaller wins. Others: flat.
        let o = synthetic(&[1.0, 2.0], 2, |_, m, lr, seed| match (m, lr, seed) {
            (0, 2.0, 1) => None,
            (0, 2.0, _) => acc(1.0, 1.0),
            (0, 1.0, s) => acc(0.7 + 0.2 * s as f64, 0.7 + 0.2 * s as f64),
            _ => acc(0.6, 0.6),
        });
        let s = summarize(&o, Dataset::Math);
        let r0 = &s.rows[0];
        assert_eq!(r0.lr, 1.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert_eq!(r0.val_by_lr.len(), 2);
        assert!(close(r0.val_by_lr[0].1, 0.8) && close(r0.val_by_lr[1].1, 0.5));
        // Seeds measured 0.7 and 0.9: sample sd 0.2 / sqrt(2).
        let (m, sd) = r0.pref.unwrap();
        assert!(close(m, 0.8) && close(sd, 0.2 / 2f64.sqrt()));
        // Task after minus the references' 0.5.
        assert!(close(r0.math_delta.unwrap().0, 0.3));
        assert_eq!(r0.collapsed, (0, 2));
        assert_eq!(r0.collapsed_grid, (1, 4));
        assert_eq!(s.rows[1].lr, 1.0);
        assert_eq!(s.rows.len(), METHODS.len());
    }
}
