//! The GPU path of the loss (`--device gpu`, `objective::gpu`) against the CPU path, on a real
//! model's logits, for every objective: loss, every diagnostic and the gradient; then a few
//! training steps on each device. Runs with `--features emu` (the CUDA sources compiled as C++
//! on the host, here and in CI) or `--features cuda` (a GPU; trainer/README.md says how).
//! Without either feature, or without a GPU, every check prints "skipped" and the binary exits
//! 0 (2 with `BNF_REQUIRE_GPU=1`): skipped is never counted as passed.
//!
//! Tolerances, and why they are not 0: the kernels sum `exp(z - max)` by a tree in f32 where
//! core sums in order in f64, and a GPU's `expf`/`logf` differ from the host's by an ulp or
//! two. So `lse`, `ell` and every per-row scalar differ in the last bits of f32, and sums over
//! a response's rows carry that. Per-response and batch scalars (loss, terms, `lp`,
//! `dloss/dlp`, row weights, KTO's `z0`): `|gpu - cpu| <= 1e-5 + 1e-4 |cpu|`. Gradient elements
//! (each `w (pi_k - onehot)`, with `pi_k` from the shared `lse`): `|gpu - cpu| <= 1e-4 |cpu| +
//! 1e-6 max|cpu|`. Training losses after 3 AdamW steps: `rtol 1e-3` (AdamW divides by
//! `sqrt(v)`, which magnifies the differences of tiny gradient elements in the first step).

use bnf_core::OBJECTIVE_NAMES;
use bnf_trainer::data::{parse_jsonl, responses, Response};
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::names::Names;
use bnf_trainer::objective::{build, loss_and_grad, Device, Loss, Objective, ObjectiveOutput};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::seq::TokenBatch;
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::{train, RunControl, StepLog, TrainConfig, TrainState};
use std::panic::{catch_unwind, AssertUnwindSafe};

const CFG: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 32,
    channels: 16,
    heads: 2,
    layers: 1,
};

type Check = Result<(), String>;

/// A check and its name.
type NamedCheck = (&'static str, fn() -> Check);

/// `|gpu - cpu| <= atol + rtol |cpu|` element by element; returns the worst element's
/// difference as a fraction of its tolerance (printed, so a run shows its margin).
fn close(what: &str, gpu: &[f32], cpu: &[f32], rtol: f32, atol: f32) -> Result<f32, String> {
    if gpu.len() != cpu.len() {
        return Err(format!("{what}: length {} vs {}", gpu.len(), cpu.len()));
    }
    let mut worst = 0.0f32;
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let tol = atol + rtol * c.abs();
        if !(g == c || (g - c).abs() <= tol) {
            return Err(format!("{what}[{i}]: gpu {g:e} vs cpu {c:e}"));
        }
        if g != c {
            worst = worst.max((g - c).abs() / tol);
        }
    }
    Ok(worst)
}

/// Every scalar of an output, with the scalar tolerance; returns the worst fraction of it.
fn outputs_close(name: &str, gpu: &ObjectiveOutput, cpu: &ObjectiveOutput) -> Result<f32, String> {
    let (rtol, atol) = (1e-4, 1e-5);
    let s = |f: &str| format!("{name} {f}");
    let kl = |o: &ObjectiveOutput| o.kl_estimate.into_iter().collect::<Vec<_>>();
    if gpu.lengths != cpu.lengths {
        return Err(s("lengths differ"));
    }
    let worst = [
        close(&s("loss"), &[gpu.loss], &[cpu.loss], rtol, atol)?,
        close(&s("terms"), &gpu.terms, &cpu.terms, rtol, atol)?,
        close(&s("logp"), &gpu.logp, &cpu.logp, rtol, atol)?,
        close(&s("ref_logp"), &gpu.ref_logp, &cpu.ref_logp, rtol, atol)?,
        close(
            &s("dloss_dlogp"),
            &gpu.dloss_dlogp,
            &cpu.dloss_dlogp,
            rtol,
            atol,
        )?,
        close(
            &s("row_weight"),
            &gpu.row_weight,
            &cpu.row_weight,
            rtol,
            atol,
        )?,
        close(&s("kl_estimate"), &kl(gpu), &kl(cpu), rtol, atol)?,
    ];
    Ok(worst.into_iter().fold(0.0, f32::max))
}

/// Built into the binary: it runs on a GPU machine without this source tree.
fn data() -> Vec<Response> {
    responses(&parse_jsonl(include_str!("data/tiny.jsonl")).unwrap())
}

/// Every objective (KTO also with a fixed `z0`), gradient scaled by 1/2 as accumulation does.
fn every_objective_matches_the_cpu() -> Check {
    let all = data();
    let refs = RefLogps::compute(&mut Model::new(CFG, 5).unwrap(), &all, 4).unwrap();
    let mut model = Model::new(CFG, 3).unwrap();
    let paired: Vec<&Response> = all.iter().filter(|r| r.partner.is_some()).collect();
    let every: Vec<&Response> = all.iter().collect();
    let mut objectives: Vec<Objective> = OBJECTIVE_NAMES
        .iter()
        .map(|n| Objective::parse(n).unwrap())
        .collect();
    objectives.push(build("kto", &[("z0", 0.1)]).unwrap());
    for obj in objectives {
        let name = obj.name();
        let tb = TokenBatch::new(if obj.needs_pairs() { &paired } else { &every });
        let ref_rows = refs.rows(&tb);
        model.forward(&tb.tokens, tb.b, tb.t).unwrap();
        let mut g_cpu = model.logits().to_vec();
        let mut g_gpu = g_cpu.clone();
        let cpu = loss_and_grad(&obj, &mut g_cpu, VOCAB, &tb, Some(&ref_rows), 0.5)?;
        let loss = Loss::new(obj, Device::Gpu, Names::FIELDS)?;
        let gpu = loss.loss_and_grad(&mut g_gpu, VOCAB, &tb, Some(&ref_rows), 0.5)?;
        let scalars = outputs_close(name, &gpu, &cpu)?;
        let scale = g_cpu.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        if scale == 0.0 {
            return Err(format!("{name}: zero gradient proves nothing"));
        }
        let grad = close(
            &format!("{name} gradient"),
            &g_gpu,
            &g_cpu,
            1e-4,
            1e-6 * scale,
        )?;
        println!(
            "  {name:<8} worst difference / tolerance: scalars {scalars:.3}, gradient {grad:.3}"
        );
        for (r, row) in g_gpu.chunks_exact(VOCAB).enumerate() {
            if !tb.scored[r] && row.iter().any(|&g| g != 0.0) {
                return Err(format!("{name}: unscored row {r} has gradient on the GPU"));
            }
        }
    }
    Ok(())
}

fn run(objective: Objective, device: Device, rs: &[Response], refs: &RefLogps) -> Vec<StepLog> {
    let mut model = Model::new(CFG, 4).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes());
    let mut state = TrainState::new(
        TrainConfig {
            objective,
            steps: 3,
            batch: 2,
            accum: 2,
            lr: 1e-3,
            ..TrainConfig::DEFAULT
        },
        rs.len(),
    );
    let control = RunControl {
        device,
        ..RunControl::default()
    };
    train(
        &mut model,
        &mut opt,
        rs,
        Some(refs),
        &mut state,
        control,
        "test",
    )
    .unwrap()
}

/// A few training steps on each device: the same losses within tolerance.
fn training_steps_match_the_cpu() -> Check {
    let all = data();
    let refs = RefLogps::compute(&mut Model::new(CFG, 5).unwrap(), &all, 4).unwrap();
    let paired: Vec<Response> = all
        .iter()
        .filter(|r| r.partner.is_some())
        .cloned()
        .collect();
    for (obj, rs) in [
        (Objective::Bnf, &all),
        (build("dpo", &[]).unwrap(), &paired),
    ] {
        let cpu = run(obj, Device::Cpu, rs, &refs);
        let gpu = run(obj, Device::Gpu, rs, &refs);
        let loss = |l: &[StepLog]| l.iter().map(|s| s.loss).collect::<Vec<_>>();
        let worst = close(
            &format!("{} training losses", obj.name()),
            &loss(&gpu),
            &loss(&cpu),
            1e-3,
            1e-6,
        )?;
        println!(
            "  {:<8} training losses: worst difference / tolerance {worst:.3}",
            obj.name()
        );
    }
    Ok(())
}

fn main() {
    let require = std::env::var("BNF_REQUIRE_GPU").is_ok_and(|v| v == "1");
    if let Err(why) = Loss::new(Objective::Nll, Device::Gpu, Names::FIELDS) {
        println!("skipped: {why}");
        println!("trainer GPU test result: SKIPPED (not run, not passed)");
        std::process::exit(if require { 2 } else { 0 });
    }
    let gpu = Loss::new(Objective::Nll, Device::Gpu, Names::FIELDS).unwrap();
    println!("device: {}", gpu.gpu_name().unwrap_or_default());
    drop(gpu);
    let checks: [NamedCheck; 2] = [
        (
            "every_objective_matches_the_cpu",
            every_objective_matches_the_cpu,
        ),
        ("training_steps_match_the_cpu", training_steps_match_the_cpu),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        let result = catch_unwind(AssertUnwindSafe(check)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("panicked: {}", msg.unwrap_or_default()))
        });
        match result {
            Ok(()) => println!("{name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("{name} ... FAILED: {e}");
            }
        }
    }
    println!(
        "trainer GPU test result: {} ({} passed, {failed} failed)",
        if failed == 0 { "ok" } else { "FAILED" },
        checks.len() - failed
    );
    std::process::exit(i32::from(failed > 0));
}
