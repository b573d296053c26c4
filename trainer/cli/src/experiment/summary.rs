//! From runs to numbers: every measured quantity ([`Metric`]) of a dataset, method and learning
//! rate, seed by seed; each method's target rate (the smallest rate of the grid that reaches the
//! fixed validation target of [`super::claims::TARGET_GAIN`], judged on validation only); and
//! mean ± sd formatting. Seeds are kept apart so that methods can be compared seed by seed
//! ([`super::stats`]).

use super::claims::TARGET_GAIN;
use super::measure::Comparison;
use super::metrics::mean_std;
use super::runner::{Dataset, Job, RunResult};
use super::Outcome;

/// Mean and sample standard deviation over seeds (`None` when no seed measured it).
pub type Stat = Option<(f64, f64)>;

/// Where in the grid a method is looked at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// One learning rate, the same for every method (matched rates).
    At(f32),
    /// Each method's own target rate ([`target_lr`]).
    Target,
}

/// A quantity measured on every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Test preference accuracy (margin over the reference; the reference scores 50%).
    Pref,
    /// Test preference accuracy on raw log-probs.
    RawPref,
    /// Task accuracy on the aligned dataset's test split after alignment.
    TaskAfter,
    /// That accuracy minus the seed's reference's.
    TaskGain,
    /// Validation task accuracy minus the reference's (the target's quantity).
    ValTaskGain,
    /// Math task accuracy change (after minus the seed's reference).
    MathChange,
    /// Held-out reverse skill accuracy change (never aligned on: the alignment tax).
    ReverseChange,
    /// Mean log-likelihood shift of chosen test responses (nats).
    ChosenShift,
    /// Mean log-likelihood shift of rejected test responses (nats).
    RejectedShift,
    /// Mean `|shift|` over chosen test responses (nats).
    AbsChosen,
    /// Mean per-response Gini of `|logit shifts|` over chosen test responses.
    GiniChosen,
    /// Mean `|shift|` over the model's own greedy outputs (nats).
    AbsOwn,
    /// Mean per-response Gini of `|logit shifts|` over its own greedy outputs.
    GiniOwn,
}

impl Metric {
    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Pref => "preference accuracy (%)",
            Metric::RawPref => "raw preference accuracy (%)",
            Metric::TaskAfter => "task accuracy after (%)",
            Metric::TaskGain => "task accuracy gain (points)",
            Metric::ValTaskGain => "validation task accuracy gain (points)",
            Metric::MathChange => "math task change (points)",
            Metric::ReverseChange => "reverse skill change (points; the alignment tax)",
            Metric::ChosenShift => "chosen shift (nats)",
            Metric::RejectedShift => "rejected shift (nats)",
            Metric::AbsChosen => "mean |shift| of chosen responses (nats)",
            Metric::GiniChosen => "Gini of |logit shifts|, chosen responses",
            Metric::AbsOwn => "mean |shift| of own greedy outputs (nats)",
            Metric::GiniOwn => "Gini of |logit shifts|, own greedy outputs",
        }
    }

    /// Scale and decimals for display (fractions in percent or points).
    pub fn display(self) -> (f64, usize) {
        match self {
            Metric::Pref
            | Metric::RawPref
            | Metric::TaskAfter
            | Metric::TaskGain
            | Metric::ValTaskGain
            | Metric::MathChange
            | Metric::ReverseChange => (100.0, 1),
            Metric::GiniChosen | Metric::GiniOwn => (1.0, 3),
            _ => (1.0, 2),
        }
    }
}

/// The value of `metric` in one run (`None` when the run did not measure it).
pub fn value(o: &Outcome, job: &Job, r: &RunResult, metric: Metric) -> Option<f64> {
    let reference = &o.references[job.seed];
    let d = job.dataset as usize;
    let test = |f: fn(&Comparison) -> f64| r.test.as_ref().map(f);
    let shift = r.shift.as_ref();
    match metric {
        Metric::Pref => test(|c| c.pref_accuracy),
        Metric::RawPref => test(|c| c.raw_pref_accuracy),
        Metric::TaskAfter => test(|c| c.task_accuracy),
        Metric::TaskGain => {
            test(|c| c.task_accuracy).map(|a| a - reference.before[d].task_accuracy)
        }
        Metric::ValTaskGain => r
            .val
            .as_ref()
            .map(|c| c.task_accuracy - reference.before_val[d].task_accuracy),
        Metric::MathChange => r
            .math
            .as_ref()
            .map(|c| c.task_accuracy - reference.before[0].task_accuracy),
        Metric::ReverseChange => r.reverse.map(|a| a - reference.reverse_before),
        Metric::ChosenShift => test(|c| c.chosen_shift),
        Metric::RejectedShift => test(|c| c.rejected_shift),
        Metric::AbsChosen => shift.map(|s| s.abs_chosen),
        Metric::GiniChosen => shift.map(|s| s.gini_chosen),
        Metric::AbsOwn => shift.map(|s| s.abs_own),
        Metric::GiniOwn => shift.map(|s| s.gini_own),
    }
    .filter(|v| v.is_finite())
}

/// The runs of `dataset` and `method` at `lr`.
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

/// Whether `method` ran on `dataset` at all.
pub fn ran(o: &Outcome, dataset: Dataset, method: usize) -> bool {
    o.runs
        .iter()
        .any(|(j, _)| j.dataset == dataset && j.method == method)
}

/// `metric` per seed (indexed like the plan's seeds) for `method` on `dataset` at `lr`.
pub fn per_seed_at(
    o: &Outcome,
    dataset: Dataset,
    method: usize,
    lr: f32,
    metric: Metric,
) -> Vec<Option<f64>> {
    let mut out = vec![None; o.plan.seeds.len()];
    for (j, r) in runs_of(o, dataset, method, lr) {
        out[j.seed] = value(o, j, r, metric);
    }
    out
}

/// Seeds that collapsed, of the seeds run, for `method` on `dataset` at `lr`.
pub fn collapsed(o: &Outcome, dataset: Dataset, method: usize, lr: f32) -> (usize, usize) {
    let runs: Vec<_> = runs_of(o, dataset, method, lr).collect();
    let c = runs
        .iter()
        .filter(|(_, r)| r.collapse_step.is_some())
        .count();
    (c, runs.len())
}

/// The smallest rate of the grid at which `method`'s mean validation task gain over seeds
/// reaches [`TARGET_GAIN`] with no seed collapsed; `None` if no rate does.
pub fn target_lr(o: &Outcome, dataset: Dataset, method: usize) -> Option<f32> {
    o.plan.lrs.iter().copied().find(|&lr| {
        let (c, n) = collapsed(o, dataset, method, lr);
        let gains: Vec<f64> = per_seed_at(o, dataset, method, lr, Metric::ValTaskGain)
            .into_iter()
            .flatten()
            .collect();
        n > 0
            && c == 0
            && gains.len() == n
            && mean_std(&gains).is_some_and(|(m, _)| m >= TARGET_GAIN)
    })
}

/// The learning rate `rate` stands for, for `method` on `dataset`.
pub fn lr_of(o: &Outcome, dataset: Dataset, method: usize, rate: Rate) -> Option<f32> {
    match rate {
        Rate::At(lr) => ran(o, dataset, method).then_some(lr),
        Rate::Target => target_lr(o, dataset, method),
    }
}

/// `metric` per seed at `rate` (`None` when the method has no such rate).
pub fn per_seed(
    o: &Outcome,
    dataset: Dataset,
    method: usize,
    rate: Rate,
    metric: Metric,
) -> Option<Vec<Option<f64>>> {
    lr_of(o, dataset, method, rate).map(|lr| per_seed_at(o, dataset, method, lr, metric))
}

/// Mean and sd over the seeds that measured it.
pub fn stat(values: &[Option<f64>]) -> Stat {
    mean_std(&values.iter().flatten().copied().collect::<Vec<_>>())
}

/// `mean ± sd` of `metric` at `rate`, formatted for the metric.
pub fn show(o: &Outcome, dataset: Dataset, method: usize, rate: Rate, metric: Metric) -> String {
    let (scale, d) = metric.display();
    per_seed(o, dataset, method, rate, metric)
        .and_then(|v| stat(&v))
        .map_or("n/a".into(), |(m, s)| {
            format!("{:.d$} ± {:.d$}", scale * m, scale * s, d = d)
        })
}

/// `mean ± sd` of a fraction, in percent.
pub fn pct(x: Stat) -> String {
    x.map_or("n/a".into(), |(m, s)| {
        format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * s)
    })
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
    use crate::experiment::methods::METHODS;
    use crate::experiment::near_miss::MathPairs;
    use crate::experiment::plan::Plan;
    use crate::experiment::runner::{Probe, Reference};
    use bnf_trainer::reference::RefLogps;

    /// An outcome with no real training: `run(dataset, method, lr, seed)` says what each run
    /// measured (`None`: collapsed at step 5). References score 0.5 everywhere.
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
                sft_val_accuracy: 0.0,
                math: Default::default(),
                refs: std::array::from_fn(|_| RefLogps {
                    format: String::new(),
                    responses: vec![],
                    fingerprints: vec![],
                    model: String::new(),
                }),
                scores: Default::default(),
                before: [before.clone(), before.clone()],
                before_val: [before.clone(), before.clone()],
                reverse_before: 0.5,
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
                    math: measured.clone(),
                    reverse: measured.as_ref().map(|m| m.task_accuracy),
                    ..RunResult::default()
                };
                (job, result)
            })
            .collect();
        let _ = MathPairs::default();
        Outcome {
            plan,
            references,
            runs,
            seconds: 0.0,
            jobs: 1,
        }
    }

    pub(crate) fn acc(pref: f64, task: f64) -> Option<Comparison> {
        Some(Comparison {
            pref_accuracy: pref,
            task_accuracy: task,
            ..Comparison::default()
        })
    }

    #[test]
    fn target_rate_is_the_smallest_that_reaches_the_target_without_collapse() {
        // Method 0: rate 1 gains too little, rate 2 reaches it but seed 1 collapses, rate 3
        // reaches it. Method 1: rate 1 reaches it on average (one seed below). Method 2: never.
        let o = synthetic(&[1.0, 2.0, 3.0], 2, |_, m, lr, seed| match (m, lr, seed) {
            (0, 1.0, _) => acc(0.9, 0.5 + TARGET_GAIN / 2.0),
            (0, 2.0, 1) => None,
            (0, _, _) => acc(0.9, 0.5 + 2.0 * TARGET_GAIN),
            (1, _, s) => acc(0.9, 0.5 + TARGET_GAIN * (0.5 + 1.5 * s as f64)),
            _ => acc(0.9, 0.5),
        });
        assert_eq!(target_lr(&o, Dataset::Math, 0), Some(3.0));
        assert_eq!(target_lr(&o, Dataset::Math, 1), Some(1.0));
        assert_eq!(target_lr(&o, Dataset::Math, 2), None);
        // Per seed, against each seed's reference (0.5).
        let g = per_seed(&o, Dataset::Math, 1, Rate::Target, Metric::TaskGain).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(g[0].unwrap(), 0.5 * TARGET_GAIN) && close(g[1].unwrap(), 2.0 * TARGET_GAIN));
        assert_eq!(collapsed(&o, Dataset::Math, 0, 2.0), (1, 2));
        // A collapsed run measured nothing.
        assert_eq!(
            per_seed_at(&o, Dataset::Math, 0, 2.0, Metric::Pref)[1],
            None
        );
        let r_dpo = METHODS.iter().position(|m| !m.on_math).unwrap();
        assert!(!ran(&o, Dataset::Math, r_dpo) && ran(&o, Dataset::Style, r_dpo));
        assert_eq!(lr_of(&o, Dataset::Math, r_dpo, Rate::At(1.0)), None);
    }
}
