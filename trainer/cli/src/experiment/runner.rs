//! Runs the experiment in-process through the trainer's library API: per seed, SFT of the
//! reference model and its reference log-probs; then every alignment run (dataset x method x
//! learning rate x seed) from that reference, with probes of the held-out log-likelihoods along
//! the way and a final evaluation. Runs are independent and deterministic, so they are spread
//! over `jobs` threads (each single-threaded) without changing any number.

use super::measure::{compare, score, token_shifts, Comparison, ResponseScore, TokenShifts};
use super::methods::Method;
use super::metrics::CollapseRule;
use super::plan::Plan;
use super::tasks::Tasks;
use crate::args::FLAGS;
use bnf_core::Objective;
use bnf_trainer::data::Response;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::Model;
use bnf_trainer::objective::Device;
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::run::training_responses;
use bnf_trainer::train::{train, RunControl, TrainConfig, TrainState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Sequences per evaluation forward pass.
const EVAL_BATCH: usize = 64;

/// The two preference sets aligned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// Near-duplicate math pairs (one wrong digit).
    Math,
    /// Style pairs (polite vs shouted).
    Style,
}

impl Dataset {
    /// Both, in report order.
    pub const ALL: [Dataset; 2] = [Dataset::Math, Dataset::Style];

    /// The leading tokens greedy decoding must reproduce for a test prompt to count as solved
    /// (`None`: the whole chosen response): the full solution for math, the polite opening
    /// for style (copying the word is not what the style preference is about).
    pub fn task_prefix(self) -> Option<usize> {
        match self {
            Dataset::Math => None,
            Dataset::Style => Some(super::tasks::POLITE.len()),
        }
    }

    /// Name in tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Math => "math",
            Dataset::Style => "style",
        }
    }
}

/// The training configuration of one run.
fn train_config(
    objective: &Objective,
    steps: usize,
    batch: usize,
    lr: f32,
    seed: u64,
    pairing_ratio: f64,
) -> TrainConfig {
    TrainConfig {
        objective: *objective,
        steps,
        batch,
        accum: 1,
        lr,
        grad_clip: 1.0,
        seed,
        save_every: 0,
        pairing_ratio,
    }
}

fn new_optimizer(model: &Model) -> AdamW {
    AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes())
}

/// Train `model` from step `state.step` up to `until`, quietly.
fn train_until(
    model: &mut Model,
    opt: &mut AdamW,
    responses: &[Response],
    refs: Option<&RefLogps>,
    state: &mut TrainState,
    until: usize,
) -> Result<Vec<f32>, String> {
    let control = RunControl {
        checkpoint: None,
        until: Some(until),
        device: Device::Cpu,
        fused_head: false,
        names: FLAGS,
    };
    let logs = train(model, opt, responses, refs, state, control, "")?;
    Ok(logs.iter().map(|l| l.loss).collect())
}

/// The held-out responses of one dataset.
fn held_out(tasks: &Tasks, d: Dataset) -> (&[Response], &[Response]) {
    match d {
        Dataset::Math => (&tasks.math_val, &tasks.math_test),
        Dataset::Style => (&tasks.style_val, &tasks.style_test),
    }
}

fn train_set(tasks: &Tasks, d: Dataset) -> &[Response] {
    match d {
        Dataset::Math => &tasks.math_train,
        Dataset::Style => &tasks.style_train,
    }
}

/// One seed's reference model and everything measured on it once.
pub struct Reference {
    /// The seed.
    pub seed: u64,
    /// The SFT model's parameters (every alignment run of this seed starts from them).
    pub params: Vec<f32>,
    /// SFT loss per step.
    pub sft_loss: Vec<f32>,
    /// Reference log-probs of each dataset's training pairs.
    pub refs: [RefLogps; 2],
    /// Reference scores of each dataset's `(val, test)` responses.
    pub scores: [(Vec<ResponseScore>, Vec<ResponseScore>); 2],
    /// The reference against itself on each dataset's test split (the "before" numbers).
    pub before: [Comparison; 2],
    /// Seconds it took.
    pub seconds: f64,
}

/// SFT of the reference model for `seed`, then its reference log-probs and scores.
pub fn reference(plan: &Plan, tasks: &Tasks, seed: u64) -> Result<Reference, String> {
    let start = Instant::now();
    let mut model = Model::new(plan.model, seed)?;
    let mut opt = new_optimizer(&model);
    let config = train_config(
        &Objective::Nll,
        plan.sft_steps,
        plan.sft_batch,
        plan.sft_lr,
        seed,
        1.0,
    );
    let mut state = TrainState::new(config, tasks.sft.len());
    let sft_loss = train_until(
        &mut model,
        &mut opt,
        &tasks.sft,
        None,
        &mut state,
        plan.sft_steps,
    )?;
    let mut refs = Vec::new();
    let mut scores = Vec::new();
    let mut before = Vec::new();
    for d in Dataset::ALL {
        refs.push(RefLogps::compute(
            &mut model,
            train_set(tasks, d),
            EVAL_BATCH,
        )?);
        let (val, test) = held_out(tasks, d);
        let (v, t) = (
            score(&mut model, val, EVAL_BATCH)?,
            score(&mut model, test, EVAL_BATCH)?,
        );
        before.push(compare(test, &t, &t, d.task_prefix())?);
        scores.push((v, t));
    }
    Ok(Reference {
        seed,
        params: model.params.clone(),
        sft_loss,
        refs: per_dataset(refs)?,
        scores: per_dataset(scores)?,
        before: per_dataset(before)?,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One value per dataset, as an array indexed by `Dataset as usize`.
fn per_dataset<T>(v: Vec<T>) -> Result<[T; 2], String> {
    let n = v.len();
    v.try_into()
        .map_err(|_| format!("experiment: {n} values for 2 datasets"))
}

/// One probe of a training curve: held-out per-token log-likelihood shifts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Probe {
    /// Optimizer steps done.
    pub step: usize,
    /// Mean over the probe's chosen responses of `log pi(y) - log pi_ref(y)` (nats).
    pub chosen: f64,
    /// The same over its rejected responses.
    pub rejected: f64,
}

/// One alignment run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Job {
    /// Dataset aligned on.
    pub dataset: Dataset,
    /// Index into the method list.
    pub method: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Index into the plan's seeds (and the references).
    pub seed: usize,
}

/// What one alignment run measured.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    /// Why training stopped early (a non-finite value, typically); `None` when it finished.
    pub error: Option<String>,
    /// Training loss per step.
    pub loss: Vec<f32>,
    /// Held-out probes, step 0 included.
    pub curve: Vec<Probe>,
    /// First collapsed probe step under [`CollapseRule::DEFAULT`] (or the step training
    /// stopped at, after an error).
    pub collapse_step: Option<usize>,
    /// The aligned dataset's validation split (chooses the learning rate).
    pub val: Option<Comparison>,
    /// The aligned dataset's test split.
    pub test: Option<Comparison>,
    /// The math test split (the reasoning task), whatever was aligned on.
    pub math: Option<Comparison>,
    /// Shifts on the aligned dataset's test split (kept for the first seed only).
    pub shifts: Option<TokenShifts>,
    /// Wall seconds.
    pub seconds: f64,
}

fn probe(
    model: &mut Model,
    set: &[Response],
    reference: &[ResponseScore],
    step: usize,
) -> Result<Probe, String> {
    let c = compare(set, &score(model, set, EVAL_BATCH)?, reference, None)?;
    Ok(Probe {
        step,
        chosen: c.chosen_shift,
        rejected: c.rejected_shift,
    })
}

/// Run one alignment job from the seed's reference.
pub fn align(
    plan: &Plan,
    tasks: &Tasks,
    method: &Method,
    reference: &Reference,
    job: &Job,
) -> RunResult {
    let start = Instant::now();
    let mut out = RunResult::default();
    if let Err(e) = align_into(plan, tasks, method, reference, job, &mut out) {
        let at = out.curve.last().map_or(0, |p| p.step);
        out.collapse_step.get_or_insert(at);
        out.error = Some(e);
    }
    out.seconds = start.elapsed().as_secs_f64();
    out
}

fn align_into(
    plan: &Plan,
    tasks: &Tasks,
    method: &Method,
    reference: &Reference,
    job: &Job,
    out: &mut RunResult,
) -> Result<(), String> {
    let d = job.dataset as usize;
    let seed = reference.seed;
    let mut model = Model::from_params(plan.model, reference.params.clone())?;
    let mut opt = new_optimizer(&model);
    let config = train_config(
        &method.objective,
        plan.align_steps,
        plan.align_batch,
        job.lr,
        seed,
        method.pairing_ratio,
    );
    let data = training_responses(train_set(tasks, job.dataset).to_vec(), &config, FLAGS)?;
    let mut state = TrainState::new(config, data.len());
    let (val, test) = held_out(tasks, job.dataset);
    let (ref_val, ref_test) = &reference.scores[d];
    let n_probe = (2 * plan.probe_pairs).min(test.len());
    let (probe_set, probe_ref) = (&test[..n_probe], &ref_test[..n_probe]);
    out.curve.push(probe(&mut model, probe_set, probe_ref, 0)?);
    let probes = plan.probes.clamp(1, plan.align_steps.max(1));
    for k in 1..=probes {
        let until = plan.align_steps * k / probes;
        let losses = train_until(
            &mut model,
            &mut opt,
            &data,
            Some(&reference.refs[d]),
            &mut state,
            until,
        )?;
        out.loss.extend(losses);
        out.curve
            .push(probe(&mut model, probe_set, probe_ref, until)?);
    }
    let curve: Vec<(usize, f64)> = out.curve.iter().map(|p| (p.step, p.chosen)).collect();
    out.collapse_step = CollapseRule::DEFAULT.collapse_step(&curve);
    let test_scores = score(&mut model, test, EVAL_BATCH)?;
    let prefix = job.dataset.task_prefix();
    out.val = Some(compare(
        val,
        &score(&mut model, val, EVAL_BATCH)?,
        ref_val,
        prefix,
    )?);
    out.test = Some(compare(test, &test_scores, ref_test, prefix)?);
    out.math = match job.dataset {
        Dataset::Math => out.test.clone(),
        Dataset::Style => {
            let m = &tasks.math_test;
            let scores = score(&mut model, m, EVAL_BATCH)?;
            Some(compare(m, &scores, &reference.scores[0].1, None)?)
        }
    };
    if job.seed == 0 {
        out.shifts = Some(token_shifts(&test_scores, ref_test));
    }
    Ok(())
}

/// `f` over `items` on `workers` threads; results in item order.
pub fn parallel_map<J: Sync, R: Send>(
    items: &[J],
    workers: usize,
    f: impl Fn(usize, &J) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    // More workers than items would only wait (and a huge `--jobs` could not start).
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(i, item);
                slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}
