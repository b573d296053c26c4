//! Runs the experiment in-process through the trainer's library API: per seed, SFT of the
//! reference model, its math pairs from its own mistakes ([`super::near_miss`]) and its
//! reference log-probs; then every alignment run (dataset x method x learning rate x seed) from
//! that reference, with probes of the validation log-likelihoods along the way (the collapse
//! rule; the test split is only measured at the end, never used for a choice) and a final
//! evaluation: both tasks, the held-out reverse skill, and the shifts on chosen responses and on
//! the model's own greedy outputs. Runs are independent and deterministic, so they are spread
//! over `jobs` threads (each single-threaded) without changing any number.

use super::measure::{
    compare, score, token_shifts, Comparison, ResponseScore, TaskMeasure, TokenShifts,
};
use super::methods::Method;
use super::metrics::mean_std;
use super::metrics::CollapseRule;
use super::near_miss::{math_pairs, MathPairs};
use super::plan::Plan;
use super::tasks::Tasks;
use crate::args::FLAGS;
use bnf_core::Objective;
use bnf_trainer::data::Response;
use bnf_trainer::generate::greedy;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::Model;
use bnf_trainer::objective::Device;
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::rng::Rng;
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

    /// How its task counts a test prompt as solved: math, the exact solution by greedy
    /// decoding; style, every item's style decision polite (the copying is not the value).
    pub fn measure(self) -> TaskMeasure {
        match self {
            Dataset::Math => TaskMeasure::Exact,
            Dataset::Style => TaskMeasure::CaseDecisions,
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
        stop: None,
        metrics: None,
    };
    let logs = train(model, opt, responses, refs, state, control, "")?;
    Ok(logs.iter().map(|l| l.loss).collect())
}

/// The held-out `(val, test)` pairs of one dataset (math: this seed's).
fn held_out<'a>(
    tasks: &'a Tasks,
    math: &'a [MathPairs; 3],
    d: Dataset,
) -> (&'a [Response], &'a [Response]) {
    match d {
        Dataset::Math => (&math[1].pairs, &math[2].pairs),
        Dataset::Style => (&tasks.style_val, &tasks.style_test),
    }
}

fn train_set<'a>(tasks: &'a Tasks, math: &'a [MathPairs; 3], d: Dataset) -> &'a [Response] {
    match d {
        Dataset::Math => &math[0].pairs,
        Dataset::Style => &tasks.style_train,
    }
}

/// The correct solutions of `problems`, as lone preferred responses.
fn solutions(problems: &[(usize, usize)]) -> Vec<Response> {
    let items: Vec<(String, String)> = problems
        .iter()
        .map(|&(a, b)| {
            (
                super::tasks::math_prompt(a, b),
                super::tasks::math_solution(a, b),
            )
        })
        .collect();
    super::tasks::singles(&items)
}

/// Fraction of `set` (lone preferred responses) that greedy decoding reproduces.
fn skill_accuracy(model: &mut Model, set: &[Response]) -> Result<f64, String> {
    let s = score(model, set, EVAL_BATCH)?;
    Ok(s.iter().filter(|r| r.greedy_match()).count() as f64 / s.len().max(1) as f64)
}

/// One seed's reference model and everything measured on it once.
pub struct Reference {
    /// The seed.
    pub seed: u64,
    /// The SFT model's parameters (every alignment run of this seed starts from them).
    pub params: Vec<f32>,
    /// SFT loss per step (its length: the SFT steps taken).
    pub sft_loss: Vec<f32>,
    /// Math validation accuracy where SFT stopped.
    pub sft_val_accuracy: f64,
    /// This seed's math pairs: training (own mistakes only), validation and test.
    pub math: [MathPairs; 3],
    /// Reference log-probs of each dataset's training pairs.
    pub refs: [RefLogps; 2],
    /// Reference scores of each dataset's `(val, test)` responses.
    pub scores: [(Vec<ResponseScore>, Vec<ResponseScore>); 2],
    /// The reference against itself on each dataset's test split (the "before" numbers).
    pub before: [Comparison; 2],
    /// The same on each dataset's validation split (the validation target's baseline).
    pub before_val: [Comparison; 2],
    /// The reference's accuracy on the held-out reverse skill.
    pub reverse_before: f64,
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
    // SFT stops at the first check where the reference solves at least `sft_stop` of the math
    // validation problems (validation only), so that it is not saturated; or at `sft_steps`.
    let val_solutions = solutions(&tasks.math_val);
    let mut sft_loss = Vec::new();
    let mut sft_val_accuracy = 0.0;
    while state.step < plan.sft_steps {
        let until = (state.step + plan.sft_check.max(1)).min(plan.sft_steps);
        sft_loss.extend(train_until(
            &mut model, &mut opt, &tasks.sft, None, &mut state, until,
        )?);
        sft_val_accuracy = skill_accuracy(&mut model, &val_solutions)?;
        if sft_val_accuracy >= plan.sft_stop {
            break;
        }
    }
    if std::env::var_os("BNF_EXPERIMENT_DEBUG").is_some() {
        let prompts: Vec<Vec<u32>> = tasks
            .style_test
            .iter()
            .step_by(2)
            .take(12)
            .map(|r| r.prompt.clone())
            .collect();
        for (p, g) in prompts.iter().zip(greedy(&mut model, &prompts, 24, 64)?) {
            eprintln!(
                "{} -> {}",
                bnf_trainer::tokenizer::decode(p),
                bnf_trainer::tokenizer::decode(&g)
            );
        }
    }
    let mut rng = Rng::new(seed ^ 0x5eed_0fe4);
    let math = [
        math_pairs(&mut model, &tasks.math_train, false, &mut rng)?,
        math_pairs(&mut model, &tasks.math_val, true, &mut rng)?,
        math_pairs(&mut model, &tasks.math_test, true, &mut rng)?,
    ];
    if math[0].pairs.is_empty() {
        return Err(format!(
            "experiment: the seed {seed} reference solved all {} training problems, no pairs",
            math[0].problems
        ));
    }
    let mut refs = Vec::new();
    let mut scores = Vec::new();
    let mut before = Vec::new();
    let mut before_val = Vec::new();
    for d in Dataset::ALL {
        refs.push(RefLogps::compute(
            &mut model,
            train_set(tasks, &math, d),
            EVAL_BATCH,
        )?);
        let (val, test) = held_out(tasks, &math, d);
        let (v, t) = (
            score(&mut model, val, EVAL_BATCH)?,
            score(&mut model, test, EVAL_BATCH)?,
        );
        before.push(compare(test, &t, &t, d.measure())?);
        before_val.push(compare(val, &v, &v, d.measure())?);
        scores.push((v, t));
    }
    let reverse_before = skill_accuracy(&mut model, &tasks.reverse_test)?;
    Ok(Reference {
        seed,
        params: model.params.clone(),
        sft_loss,
        sft_val_accuracy,
        math,
        refs: per_dataset(refs)?,
        scores: per_dataset(scores)?,
        before: per_dataset(before)?,
        before_val: per_dataset(before_val)?,
        reverse_before,
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
    /// Accuracy on the held-out reverse skill (never aligned on: the alignment tax).
    pub reverse: Option<f64>,
    /// Shift statistics on the chosen test responses and on the model's own outputs.
    pub shift: Option<ShiftSummary>,
    /// Shifts on the aligned dataset's test split (kept for the first seed only).
    pub shifts: Option<TokenShifts>,
    /// Shifts on the model's own greedy outputs (kept for the first seed only).
    pub own_shifts: Option<TokenShifts>,
    /// Wall seconds.
    pub seconds: f64,
}

/// Claim (e)'s statistics of one run against its reference, each a mean over responses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShiftSummary {
    /// `|log pi(y) - log pi_ref(y)|` over the chosen test responses.
    pub abs_chosen: f64,
    /// The per-response Gini coefficient of `|z_y - z_ref,y|` over the same.
    pub gini_chosen: f64,
    /// `|log pi(y) - log pi_ref(y)|` over the model's own greedy outputs on test prompts.
    pub abs_own: f64,
    /// The per-response Gini coefficient over the same.
    pub gini_own: f64,
}

/// Mean `|shift|` and mean Gini of `t`.
fn shift_stats(t: &TokenShifts) -> (f64, f64) {
    let abs: Vec<f64> = t.response_logp.iter().map(|x| x.abs()).collect();
    let m = |v: &[f64]| mean_std(v).map_or(f64::NAN, |s| s.0);
    (m(&abs), m(&t.response_logit_gini))
}

/// The shift statistics of one run: chosen test responses (policy and reference scores given)
/// and the policy's own greedy outputs on the first `own` test prompts.
fn shift_summary(
    policy: &mut Model,
    reference: &mut Model,
    test: &[Response],
    test_scores: (&[ResponseScore], &[ResponseScore]),
    own: usize,
) -> Result<(ShiftSummary, TokenShifts, TokenShifts), String> {
    let pick = |s: &[ResponseScore]| -> Vec<ResponseScore> {
        test.iter()
            .zip(s)
            .filter(|(r, _)| r.label > 0.0)
            .map(|(_, s)| s.clone())
            .collect()
    };
    let chosen = token_shifts(&pick(test_scores.0), &pick(test_scores.1));
    let prompts: Vec<Vec<u32>> = test
        .iter()
        .filter(|r| r.label > 0.0)
        .take(own)
        .map(|r| r.prompt.clone())
        .collect();
    let longest = test.iter().map(|r| r.completion.len()).max().unwrap_or(1);
    let room = policy
        .config
        .block_size
        .saturating_sub(2 + prompts.iter().map(Vec::len).max().unwrap_or(0));
    let outputs = greedy(policy, &prompts, (longest + 1).min(room.max(1)), EVAL_BATCH)?;
    let own_set: Vec<Response> = prompts
        .into_iter()
        .zip(outputs)
        .enumerate()
        .map(|(i, (prompt, completion))| Response {
            id: i,
            line: i + 1,
            prompt,
            completion,
            label: 1.0,
            partner: None,
        })
        .collect();
    let own_shifts = token_shifts(
        &score(policy, &own_set, EVAL_BATCH)?,
        &score(reference, &own_set, EVAL_BATCH)?,
    );
    let (abs_chosen, gini_chosen) = shift_stats(&chosen);
    let (abs_own, gini_own) = shift_stats(&own_shifts);
    let summary = ShiftSummary {
        abs_chosen,
        gini_chosen,
        abs_own,
        gini_own,
    };
    Ok((summary, chosen, own_shifts))
}

fn probe(
    model: &mut Model,
    set: &[Response],
    reference: &[ResponseScore],
    step: usize,
) -> Result<Probe, String> {
    let c = compare(
        set,
        &score(model, set, EVAL_BATCH)?,
        reference,
        TaskMeasure::Exact,
    )?;
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
    let math = &reference.math;
    let data = training_responses(train_set(tasks, math, job.dataset).to_vec(), &config, FLAGS)?;
    let mut state = TrainState::new(config, data.len());
    let (val, test) = held_out(tasks, math, job.dataset);
    let (ref_val, ref_test) = &reference.scores[d];
    // Collapse is probed on validation pairs: the test split reaches no choice.
    let n_probe = (2 * plan.probe_pairs).min(val.len());
    let (probe_set, probe_ref) = (&val[..n_probe], &ref_val[..n_probe]);
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
    let measure = job.dataset.measure();
    out.val = Some(compare(
        val,
        &score(&mut model, val, EVAL_BATCH)?,
        ref_val,
        measure,
    )?);
    out.test = Some(compare(test, &test_scores, ref_test, measure)?);
    out.math = match job.dataset {
        Dataset::Math => out.test.clone(),
        Dataset::Style => {
            let m = &math[2].pairs;
            let scores = score(&mut model, m, EVAL_BATCH)?;
            Some(compare(
                m,
                &scores,
                &reference.scores[0].1,
                TaskMeasure::Exact,
            )?)
        }
    };
    out.reverse = Some(skill_accuracy(&mut model, &tasks.reverse_test)?);
    let mut ref_model = Model::from_params(plan.model, reference.params.clone())?;
    let (summary, chosen, own) = shift_summary(
        &mut model,
        &mut ref_model,
        test,
        (&test_scores, ref_test),
        plan.own_outputs,
    )?;
    out.shift = Some(summary);
    if job.seed == 0 {
        out.shifts = Some(chosen);
        out.own_shifts = Some(own);
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
