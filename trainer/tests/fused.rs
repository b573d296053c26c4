//! The fused LM head and loss (`objective::fused`, `--fused-head`) against the full head:
//! every objective's loss and diagnostics bit for bit, the parameter gradients within rounding
//! (bit for bit with one chunk), and a few training steps to the same checkpoint within a
//! tolerance.
//!
//! Tolerances: the chunks give each row the same logits, the same core code and so the same
//! gradient row; only `dW` of the tied head sums its rows chunk by chunk instead of in one
//! product, so gradient elements may round differently: `|fused - full| <= 2e-6 max|full|`
//! per tensor (seen: at most 3.2e-7, over every objective and chunks of 1, 7, the rule's and
//! all rows). After 6 AdamW steps at lr 3e-3: step losses within a relative 1e-5, AdamW
//! moments within 1e-6 (`m`) and 1e-7 (`v`) absolute (seen: 8e-9 and 2e-9), parameters within
//! 1e-3 absolute (seen: 4e-4; Adam's `m / sqrt(v)` turns the rounding of near-zero gradient
//! elements, those of tokens the batch barely touches, into a fraction of a step of size lr).

use bnf_trainer::arithmetic::arithmetic_data;
use bnf_trainer::checkpoint;
use bnf_trainer::data::{parse_jsonl, responses, Response};
use bnf_trainer::model::head::chunk_rows;
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::objective::{build, loss_and_grad, loss_and_grad_fused, Objective};
use bnf_trainer::objective::{ObjectiveOutput, OBJECTIVE_NAMES};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::rng::Rng;
use bnf_trainer::seq::TokenBatch;
use bnf_trainer::tokenizer::VOCAB;
use bnf_trainer::train::{train, RunControl, TrainConfig, TrainState};

const CFG: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 16,
    channels: 16,
    heads: 2,
    layers: 1,
};

/// Pairs of arithmetic data, and two lone responses after them.
fn data() -> Vec<Response> {
    let (_, eval) = arithmetic_data(1, 6);
    let mut src = eval;
    src.push_str("{\"prompt\":\"1+2=\",\"completion\":\"3\",\"label\":true}\n");
    src.push_str("{\"prompt\":\"2+2=\",\"completion\":\"5\",\"label\":false}\n");
    responses(&parse_jsonl(&src).unwrap())
}

fn model(seed: u64) -> Model {
    let mut m = Model::new(CFG, seed).unwrap();
    let mut rng = Rng::new(seed + 100);
    for p in m.params.iter_mut() {
        *p += (rng.normal() * 0.1) as f32;
    }
    m
}

fn refs(rs: &[Response]) -> RefLogps {
    RefLogps::compute(&mut model(7), rs, 5).unwrap()
}

/// Loss output and parameter gradients through the full head.
fn full(m: &mut Model, obj: &Objective, tb: &TokenBatch, r: &[f32]) -> (ObjectiveOutput, Vec<f32>) {
    m.zero_grad();
    m.forward(&tb.tokens, tb.b, tb.t).unwrap();
    let out = loss_and_grad(obj, m.logits_mut(), CFG.vocab, tb, Some(r), 0.5).unwrap();
    m.backward(&tb.tokens).unwrap();
    (out, m.grads.clone())
}

/// The same through the fused head, `chunk` rows at a time.
fn fused(
    m: &mut Model,
    obj: &Objective,
    tb: &TokenBatch,
    r: &[f32],
    chunk: usize,
) -> (ObjectiveOutput, Vec<f32>) {
    m.zero_grad();
    m.forward_hidden(&tb.tokens, tb.b, tb.t).unwrap();
    assert!(m.logits().is_empty(), "the fused head holds no logits");
    let out = m
        .backward_with_head(&tb.tokens, |head| {
            loss_and_grad_fused(obj, head, tb, Some(r), 0.5, chunk)
        })
        .unwrap();
    (out, m.grads.clone())
}

/// The worst `|a - b| / max|b|` over the parameter tensors.
fn worst_tensor_error(a: &[f32], b: &[f32], sizes: &[usize]) -> f64 {
    let mut start = 0;
    let mut worst = 0.0f64;
    for &n in sizes {
        let (x, y) = (&a[start..start + n], &b[start..start + n]);
        let scale = y.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
        let diff = x
            .iter()
            .zip(y)
            .fold(0.0f64, |m, (&p, &q)| m.max((p as f64 - q as f64).abs()));
        if scale > 0.0 {
            worst = worst.max(diff / scale);
        }
        start += n;
    }
    worst
}

#[test]
fn fused_head_equals_full_head_for_every_objective() {
    let rs = data();
    let refs = refs(&rs);
    let all: Vec<&Response> = rs.iter().collect();
    let pairs: Vec<&Response> = rs.iter().filter(|r| r.partner.is_some()).collect();
    let mut m = model(1);
    let sizes = m.param_sizes().to_vec();
    for &name in OBJECTIVE_NAMES {
        let obj = build(name, &[]).unwrap();
        let tb = TokenBatch::new(if obj.needs_pairs() { &pairs } else { &all });
        let r = refs.rows(&tb);
        let rows = tb.b * tb.t;
        let (want, g_full) = full(&mut m, &obj, &tb, &r);
        let rule = chunk_rows(rows, CFG.vocab, CFG.channels);
        assert!(
            rule < rows,
            "{name}: the rule's chunks ({rule} of {rows} rows) are one"
        );
        for chunk in [1, 7, rule, rows] {
            let (out, g) = fused(&mut m, &obj, &tb, &r, chunk);
            assert_eq!(out, want, "{name}, chunks of {chunk}: loss and diagnostics");
            if chunk == rows {
                assert!(g == g_full, "{name}: one chunk: the gradients bit for bit");
            }
            let err = worst_tensor_error(&g, &g_full, &sizes);
            eprintln!("{name}: chunks of {chunk}/{rows}: worst gradient error {err:.2e}");
            assert!(
                err <= 2e-6,
                "{name}, chunks of {chunk}: gradient error {err:.3e}"
            );
        }
    }
}

/// 6 steps (2 micro-batches each, a cosine schedule, clipping) with the full and the fused
/// head: the same step losses and checkpoint (parameters and AdamW moments) within the
/// tolerance; and the fused run resumed from its step-2 checkpoint is its own bit for bit.
#[test]
fn training_with_the_fused_head_matches_the_full_head() {
    let rs = data();
    let refs = refs(&rs);
    let pairs: Vec<Response> = rs.iter().filter(|r| r.partner.is_some()).cloned().collect();
    let dir = std::env::temp_dir().join(format!("bnf-fused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["bnf", "dpo", "nll"] {
        let obj = build(name, &[]).unwrap();
        let data = if obj.needs_pairs() { &pairs } else { &rs };
        let run = |fused_head: bool, until: Option<usize>, resume: Option<&str>, out: &str| {
            let path = dir.join(out);
            let path = path.to_str().unwrap().to_string();
            let (mut m, mut o, mut s) = match resume {
                Some(p) => {
                    let ck = checkpoint::load(p).unwrap();
                    (ck.model, ck.optimizer.unwrap(), ck.train.unwrap())
                }
                None => {
                    let m = model(3);
                    let o = AdamW::new(AdamWConfig::default(), Params::NAMES, m.param_sizes());
                    let config = TrainConfig {
                        objective: obj,
                        steps: 6,
                        batch: 2,
                        accum: 2,
                        lr: 3e-3,
                        grad_clip: 1.0,
                        seed: 5,
                        save_every: 0,
                        pairing_ratio: 1.0,
                    };
                    (m, o, TrainState::new(config, data.len()))
                }
            };
            let control = RunControl {
                checkpoint: Some(&path),
                until,
                fused_head,
                ..RunControl::default()
            };
            let logs = train(&mut m, &mut o, data, Some(&refs), &mut s, control, "t").unwrap();
            (logs, path)
        };
        let (full_logs, full_path) = run(false, None, None, &format!("{name}-full.st"));
        let (fused_logs, fused_path) = run(true, None, None, &format!("{name}-fused.st"));
        for (a, b) in fused_logs.iter().zip(&full_logs) {
            let rel = ((a.loss - b.loss) / b.loss).abs();
            assert!(
                rel <= 1e-5,
                "{name}: step {}: loss {} vs {}",
                a.step,
                a.loss,
                b.loss
            );
        }
        let (f, u) = (
            checkpoint::load(&fused_path).unwrap(),
            checkpoint::load(&full_path).unwrap(),
        );
        let (fo, uo) = (f.optimizer.unwrap(), u.optimizer.unwrap());
        let worst = |x: &[f32], y: &[f32]| {
            let w = x.iter().zip(y).map(|(&p, &q)| (p - q).abs());
            w.fold(0.0f32, f32::max)
        };
        let (dp, dm, dv) = (
            worst(&f.model.params, &u.model.params),
            worst(&fo.m, &uo.m),
            worst(&fo.v, &uo.v),
        );
        eprintln!("{name}: 6 steps: worst differences: params {dp:.2e}, m {dm:.2e}, v {dv:.2e}");
        assert!(dp <= 1e-3, "{name}: parameters differ by {dp:.3e}");
        assert!(
            dm <= 1e-6 && dv <= 1e-7,
            "{name}: moments differ by {dm:.3e}, {dv:.3e}"
        );
        assert_eq!(f.train.unwrap().step, 6);
        // Interrupted after step 2 and resumed, still fused: the same file.
        let (_, part) = run(true, Some(2), None, &format!("{name}-part.st"));
        let (_, resumed) = run(true, None, Some(&part), &format!("{name}-part.st"));
        let same = std::fs::read(&resumed).unwrap() == std::fs::read(&fused_path).unwrap();
        assert!(same, "{name}: the resumed fused run is not the whole one");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
