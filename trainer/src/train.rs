//! The training loop shared by SFT and alignment: micro-batches of responses -> forward ->
//! objective (gradient in place over the logits) -> backward (or, with the fused head, forward
//! to the final LayerNorm -> head and objective chunk by chunk -> backward), accumulated over
//! `accum`
//! micro-batches (each weighted by its share of what the objective averages over, so the step
//! sees the mean over all its responses, or pairs), then clipping, the cosine schedule and
//! AdamW. The data order is a pure function of `(seed, step)`, so a checkpoint's step, seed
//! and optimizer state (and the objective with its hyperparameters, recorded in
//! [`TrainConfig`]) are all a run needs to continue bit for bit.

use crate::checkpoint;
use crate::data::Response;
use crate::fingerprint::{data_fingerprint, ref_fingerprint};
use crate::model::head::chunk_rows;
use crate::model::Model;
use crate::names::Names;
use crate::objective::{check_data, Device, Loss, Objective, ObjectiveOutput};
use crate::optim::{clip_grad_norm, cosine_lr, AdamW};
use crate::progress::Progress;
use crate::reference::RefLogps;
use crate::rng::Rng;
use crate::seq::TokenBatch;
pub use crate::state::{TrainConfig, TrainState};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set (at step 0) or check the run's [`TrainState::ref_fingerprint`] against `refs`, the
/// reference log-probs this call trains with (`None`: the objective reads none).
fn check_ref_fingerprint(
    state: &mut TrainState,
    refs: Option<&RefLogps>,
    responses: &[Response],
    names: Names,
) -> Result<(), String> {
    let now = refs.map(|r| ref_fingerprint(&r.responses, responses));
    if state.step == 0 {
        state.ref_fingerprint = now;
        state.ref_model = refs.map(|r| r.model.clone());
        return Ok(());
    }
    if now != state.ref_fingerprint {
        let show = |f: Option<u64>| f.map_or("none".to_string(), |f| format!("{f:016x}"));
        return Err(format!(
            "training: the reference log-probs are not the ones the run was started with \
             (fingerprint {}, the run's {}); resume with the run's reference file ({})",
            show(now),
            show(state.ref_fingerprint),
            names.of("ref")
        ));
    }
    Ok(())
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLog {
    /// The step (1-based, after it ran).
    pub step: usize,
    /// The step's loss: each micro-batch's loss weighted by its share of the step's responses
    /// (pairs, for a pairwise objective), as its gradient is; with one micro-batch, its loss.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Tokens processed (padded positions included).
    pub tokens: usize,
}

/// Group responses into units: both sides of a pair together, lone responses alone.
pub fn units(responses: &[Response]) -> Vec<Vec<usize>> {
    let index: std::collections::HashMap<usize, usize> = responses
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    let mut out = Vec::new();
    for (i, r) in responses.iter().enumerate() {
        match r.partner.and_then(|p| index.get(&p)) {
            Some(&j) if j < i => {}
            Some(&j) => out.push(vec![i, j]),
            None => out.push(vec![i]),
        }
    }
    out
}

/// Deterministic micro-batches: epoch `e` visits the units in an order shuffled by
/// `Rng::new(seed ^ hash(e))`; micro-batch `k` takes units `k*batch ..` of that stream, so it
/// may hold a unit twice (across an epoch boundary, or when `batch` exceeds the number of
/// units).
struct Batcher {
    units: Vec<Vec<usize>>,
    seed: u64,
    epoch: Option<(usize, Vec<usize>)>,
}

impl Batcher {
    fn order(&mut self, epoch: usize) -> &[usize] {
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<usize> = (0..self.units.len()).collect();
            let mut rng =
                Rng::new(self.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            rng.shuffle(&mut order);
            self.epoch = Some((epoch, order));
        }
        &self.epoch.as_ref().expect("set above").1
    }

    /// The units (indices into `self.units`) of micro-batch `k`.
    fn micro(&mut self, k: usize, batch: usize) -> Vec<usize> {
        let n = self.units.len();
        let mut out = Vec::with_capacity(batch);
        for u in k * batch..(k + 1) * batch {
            out.push(self.order(u / n)[u % n]);
        }
        out
    }

    /// The response lists of `units` (from [`Batcher::micro`]), for [`TokenBatch::from_units`].
    fn lists(&self, units: &[usize]) -> Vec<&[usize]> {
        units.iter().map(|&u| self.units[u].as_slice()).collect()
    }
}

/// How many terms `objective`'s batch loss averages over in a micro-batch of `lists`: pairs
/// for a pairwise objective, responses for BNF, NLL and KTO (core's batch means).
fn averaged_count(objective: &Objective, lists: &[&[usize]]) -> usize {
    if objective.needs_pairs() {
        lists.iter().filter(|l| l.len() == 2).count()
    } else {
        lists.iter().map(|l| l.len()).sum()
    }
}

/// The most units (pairs or lone responses) one optimizer step may take, `batch` times
/// `accum`: `2^24`, far beyond what a CPU step can process, so that a mistyped value is an
/// error rather than an abort on a failed allocation.
pub const MAX_STEP_UNITS: usize = 1 << 24;

/// Check, before the first step, that `cfg`'s micro-batches fit in memory: the step's unit
/// lists, the largest micro-batch's activations ([`ModelConfig::check_activations`], for
/// `batch` units of the longest sequence in the data), and the data order's counter over
/// the whole run. The message names the values as `names` does.
fn check_memory(
    cfg: &TrainConfig,
    model: &crate::model::ModelConfig,
    responses: &[Response],
    names: Names,
) -> Result<(), String> {
    let (batch, accum) = (names.of("batch"), names.of("accum"));
    let per_step = cfg.batch.checked_mul(cfg.accum);
    if per_step.is_none_or(|n| n > MAX_STEP_UNITS) {
        return Err(format!(
            "training: {batch} {} x {accum} {} units per step is more than the limit of \
             {MAX_STEP_UNITS}",
            cfg.batch, cfg.accum
        ));
    }
    if per_step.and_then(|n| n.checked_mul(cfg.steps)).is_none() {
        return Err(format!(
            "training: {} {} of {batch} {} x {accum} {} units overflow the count of units the \
             run takes; give fewer steps",
            names.of("steps"),
            cfg.steps,
            cfg.batch,
            cfg.accum
        ));
    }
    let longest = responses
        .iter()
        .map(crate::seq::sequence_len)
        .max()
        .unwrap_or(1);
    let paired = responses.iter().any(|r| r.partner.is_some());
    let per_unit = if paired { 2 } else { 1 };
    let sequences = cfg.batch * per_unit;
    model.check_activations(sequences, longest).map_err(|e| {
        format!(
            "training: {batch} {} is too large for this model and data (up to {per_unit} \
             sequences per unit, of up to {longest} tokens): {e}; give a smaller {batch} (and \
             more {accum})",
            cfg.batch
        )
    })?;
    Ok(())
}

/// Where a call to [`train`] stops and saves.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunControl<'a> {
    /// Checkpoint path, written every `save_every` steps and when the call stops.
    pub checkpoint: Option<&'a str>,
    /// Stop after this step (as an interruption would); `None`: run to `steps`.
    pub until: Option<usize>,
    /// Where the loss rows run (not part of the run's identity: a run may resume elsewhere,
    /// then agreeing within the GPU path's tolerance rather than bit for bit).
    pub device: Device,
    /// Run the LM head and the loss chunk by chunk ([`crate::objective::fused`]), never
    /// holding the `(N, V)` logits; CPU only. Not part of the run's identity either: the loss
    /// and diagnostics are the full head's bit for bit, the gradients equal within rounding,
    /// so a run resumed with the other head agrees within that (tests/fused.rs).
    pub fused_head: bool,
    /// What the caller calls the values the messages name (the fields' names by default).
    pub names: Names,
    /// Set by the caller (say, on Ctrl-C) to stop after the step that is running: the
    /// checkpoint is then saved, and [`train`] returns the steps so far. The library installs
    /// no signal handler; the caller owns the flag.
    pub stop: Option<&'a AtomicBool>,
    /// A file of one JSON object per optimizer step ([`crate::metrics`]), appended to as training
    /// goes; on resume, lines past the resumed step are dropped first.
    pub metrics: Option<&'a str>,
}

/// One micro-batch's forward, loss (its gradient scaled by `scale`) and backward, adding into
/// the model's gradients: through the full head, or chunk by chunk through the fused one.
fn micro_step(
    model: &mut Model,
    loss_fn: &Loss,
    tb: &TokenBatch,
    ref_rows: Option<&[f32]>,
    scale: f32,
    fused_head: bool,
) -> Result<ObjectiveOutput, String> {
    let vocab = model.config.vocab;
    if fused_head {
        model.forward_hidden(&tb.tokens, tb.b, tb.t)?;
        let chunk = chunk_rows(tb.b * tb.t, vocab, model.config.channels);
        return model.backward_with_head(&tb.tokens, |head| {
            loss_fn.loss_and_grad_fused(head, tb, ref_rows, scale, chunk)
        });
    }
    model.forward(&tb.tokens, tb.b, tb.t)?;
    let out = loss_fn.loss_and_grad(model.logits_mut(), vocab, tb, ref_rows, scale)?;
    model.backward(&tb.tokens)?;
    Ok(out)
}

/// Train until `state.step == state.config.steps` (or `control.until`), saving as `control`
/// says. Returns one log per step run. `responses` are the ones to train on (see
/// [`crate::run::training_responses`]); `refs` are indexed by response id. Everything the
/// objective needs of the data is checked before the first step.
pub fn train(
    model: &mut Model,
    opt: &mut AdamW,
    responses: &[Response],
    refs: Option<&RefLogps>,
    state: &mut TrainState,
    control: RunControl<'_>,
    label: &str,
) -> Result<Vec<StepLog>, String> {
    let cfg = state.config.clone();
    let objective = cfg.objective;
    if responses.is_empty() {
        return Err("training: no responses".into());
    }
    let names = control.names;
    cfg.validate(names)?;
    opt.config.validate(names)?;
    if state.step >= cfg.steps {
        return Err(format!(
            "training: the run is finished (step {} of {}), so there is nothing to train",
            state.step, cfg.steps
        ));
    }
    if let Some(until) = control.until.filter(|&u| u <= state.step) {
        return Err(format!(
            "training: {} {until} is not after the run's step {}, so nothing would be trained; \
             give a step from {} to {}",
            names.of("until"),
            state.step,
            state.step + 1,
            cfg.steps
        ));
    }
    check_memory(&cfg, &model.config, responses, names)?;
    if state.responses != responses.len() {
        return Err(format!(
            "training: the run was started on {} responses, the data has {}",
            state.responses,
            responses.len()
        ));
    }
    let fingerprint = data_fingerprint(responses);
    match state.data_fingerprint {
        None if state.step == 0 => state.data_fingerprint = Some(fingerprint),
        None => {
            return Err(format!(
                "training: the run is at step {} but has no fingerprint of its data (a \
                 checkpoint of an older format), so it cannot be checked that this is the same \
                 data; start a new run from its weights instead",
                state.step
            ))
        }
        Some(f) if f != fingerprint => {
            return Err(format!(
                "training: the data is not the data the run was started on: as many responses \
                 ({}), other contents (fingerprint {fingerprint:016x}, the run's {f:016x}); \
                 resume on the same data file (and the run's {} and {})",
                responses.len(),
                names.of("pairing_ratio"),
                names.of("seed")
            ))
        }
        Some(_) => {}
    }
    check_data(&objective, cfg.pairing_ratio, responses, refs, names)?;
    let refs = refs.filter(|_| objective.needs_reference());
    check_ref_fingerprint(state, refs, responses, names)?;
    if control.fused_head && control.device != Device::Cpu {
        return Err(format!(
            "training: the fused head ({}) runs the loss rows on the CPU; leave {} at cpu",
            names.of("fused_head"),
            names.of("device")
        ));
    }
    let loss_fn = Loss::new(objective, control.device, names)?;
    if let Some(name) = loss_fn.gpu_name() {
        eprintln!("{label}: loss rows on {name}");
    }
    let mut batcher = Batcher {
        units: units(responses),
        seed: cfg.seed,
        epoch: None,
    };
    let mut logs = Vec::new();
    let mut curve = match control.metrics {
        Some(path) => Some(crate::metrics::Metrics::open(path, state.step)?),
        None => None,
    };
    let mut bar = Progress::new(label, state.step, cfg.steps);
    let end = control.until.unwrap_or(cfg.steps).min(cfg.steps);
    while state.step < end {
        model.zero_grad();
        let (mut loss, mut tokens) = (0.0f32, 0usize);
        // Every micro-batch of the step first (the order is a pure function of the step), so
        // each one's mean is weighted by its share `n_a / N` of the step's total: the step's
        // gradient is the mean over all of its responses (or pairs). With equal shares the
        // weight is `n / (n * accum)`, exactly `1 / accum` in IEEE arithmetic.
        let micro: Vec<Vec<usize>> = (0..cfg.accum)
            .map(|a| batcher.micro(state.step * cfg.accum + a, cfg.batch))
            .collect();
        let counts: Vec<usize> = micro
            .iter()
            .map(|m| averaged_count(&objective, &batcher.lists(m)))
            .collect();
        let total: usize = counts.iter().sum();
        if total == 0 {
            return Err(format!(
                "training: step {} has nothing for objective {} to average over",
                state.step + 1,
                objective.name()
            ));
        }
        for (m, &n) in micro.iter().zip(&counts) {
            let scale = n as f32 / total as f32;
            let tb = TokenBatch::from_units(responses, &batcher.lists(m))?;
            let ref_rows = refs.map(|r| r.rows(&tb));
            let out = micro_step(
                model,
                &loss_fn,
                &tb,
                ref_rows.as_deref(),
                scale,
                control.fused_head,
            )?;
            loss += out.loss * scale;
            tokens += tb.b * tb.t;
        }
        let grad_norm = clip_grad_norm(&mut model.grads, cfg.grad_clip);
        let lr = cosine_lr(state.step, cfg.steps, cfg.lr);
        opt.step(&mut model.params, &model.grads, lr);
        state.step += 1;
        logs.push(StepLog {
            step: state.step,
            loss,
            lr,
            grad_norm,
            tokens,
        });
        bar.step(loss, tokens);
        if let Some(m) = curve.as_mut() {
            m.append(logs.last().expect("pushed above"), bar.seconds())?;
        }
        let stop = control.stop.is_some_and(|f| f.load(Ordering::SeqCst));
        if let Some(path) = control.checkpoint {
            let due = cfg.save_every > 0 && state.step % cfg.save_every == 0;
            if due || state.step == end || stop {
                checkpoint::save(path, model, Some(opt), Some(state))?;
            }
        }
        if stop {
            break;
        }
    }
    bar.finish();
    Ok(logs)
}
