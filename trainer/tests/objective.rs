//! The loss wiring on a real model's logits: every objective gives exactly core's loss and
//! gradient, reference rows land on the right rows, and only completion and EOS rows carry
//! gradient.

use bnf_core::{objective_forward_backward, OBJECTIVE_NAMES};
use bnf_trainer::data::{parse_jsonl, responses, Response};
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::objective::{build, loss_and_grad, pref_batch, Objective};
use bnf_trainer::reference::RefLogps;
use bnf_trainer::seq::TokenBatch;
use bnf_trainer::tokenizer::VOCAB;

const CFG: ModelConfig = ModelConfig {
    vocab: VOCAB,
    block_size: 32,
    channels: 16,
    heads: 2,
    layers: 1,
};

fn data() -> Vec<Response> {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tiny.jsonl"
    ))
    .unwrap();
    responses(&parse_jsonl(&src).unwrap())
}

/// When the policy is the reference, `c = 1` on every row, so BNF's gradient on preferred
/// responses is NLL's. A reference value on the wrong row would break this.
#[test]
fn bnf_equals_nll_at_the_reference_on_preferred_responses() {
    let all = data();
    let mut model = Model::new(CFG, 3).unwrap();
    let refs = RefLogps::compute(&mut model, &all, 4).unwrap();
    let preferred: Vec<&Response> = all.iter().filter(|r| r.label > 0.0).collect();
    let tb = TokenBatch::new(&preferred);
    let ref_rows = refs.rows(&tb);
    model.forward(&tb.tokens, tb.b, tb.t).unwrap();
    let mut g_bnf = model.logits().to_vec();
    let mut g_nll = model.logits().to_vec();
    let l_bnf = loss_and_grad(
        &Objective::Bnf,
        &mut g_bnf,
        VOCAB,
        &tb,
        Some(&ref_rows),
        1.0,
    )
    .unwrap()
    .loss;
    let l_nll = loss_and_grad(&Objective::Nll, &mut g_nll, VOCAB, &tb, None, 1.0)
        .unwrap()
        .loss;
    // `c` is 1 up to rounding: core takes the policy's log-odds from the row sums and the
    // reference's from `rho`, so the two may differ in the last bit.
    let scale = g_nll.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    let diff = |g: &[f32]| {
        g.iter()
            .zip(&g_nll)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
    };
    assert!(diff(&g_bnf) <= 1e-5 * scale, "{} vs {scale}", diff(&g_bnf));
    assert!(l_bnf.is_finite() && l_nll > 0.0);

    // Shifting the reference by one row changes the gradient.
    let mut shifted = ref_rows.clone();
    shifted.rotate_right(1);
    let mut g_shift = model.logits().to_vec();
    loss_and_grad(
        &Objective::Bnf,
        &mut g_shift,
        VOCAB,
        &tb,
        Some(&shifted),
        1.0,
    )
    .unwrap();
    assert!(
        diff(&g_shift) > 1e-3 * scale,
        "{} vs {scale}",
        diff(&g_shift)
    );
}

/// Prompt and padding rows get exactly zero gradient; completion and EOS rows do not.
#[test]
fn only_scored_rows_carry_gradient() {
    let all = data();
    let mut model = Model::new(CFG, 3).unwrap();
    let refs = RefLogps::compute(&mut model, &all, 4).unwrap();
    let batch: Vec<&Response> = all.iter().collect();
    let tb = TokenBatch::new(&batch);
    model.forward(&tb.tokens, tb.b, tb.t).unwrap();
    let ref_rows = refs.rows(&tb);
    let grad = model.logits_mut();
    loss_and_grad(&Objective::Bnf, grad, VOCAB, &tb, Some(&ref_rows), 0.5).unwrap();
    for (r, row) in grad.chunks_exact(VOCAB).enumerate() {
        let zero = row.iter().all(|&g| g == 0.0);
        assert_eq!(zero, !tb.scored[r], "row {r}");
    }
    assert!(tb.scored_rows() > 0);
}

/// A policy, and reference log-probs of `all` from another model (so log-ratios are not 0).
fn policy_and_reference(all: &[Response]) -> (Model, RefLogps) {
    let mut reference = Model::new(CFG, 5).unwrap();
    let refs = RefLogps::compute(&mut reference, all, 4).unwrap();
    (Model::new(CFG, 3).unwrap(), refs)
}

/// Every objective core offers, through the trainer (batch layout, in-place gradient, scaling
/// for accumulation), equals `bnf_core::objective_forward_backward` (out of place) on the same
/// logits and batch, bit for bit: loss, every diagnostic, and gradient. Scaling by 1/2 is
/// exact in binary, so the scaled gradient is exactly half of core's. The policy and reference
/// are different models, so every objective's gradient is far from 0.
#[test]
fn every_objective_equals_core_bit_for_bit() {
    let all = data();
    let (mut model, refs) = policy_and_reference(&all);
    let paired: Vec<&Response> = all.iter().filter(|r| r.partner.is_some()).collect();
    let every: Vec<&Response> = all.iter().collect();
    // Non-default hyperparameters, so the configuration is seen to arrive in core.
    let tweak: &[(&str, f32)] = &[("beta", 0.7), ("gamma", 0.3), ("z0", 0.05)];
    for name in OBJECTIVE_NAMES {
        let base = Objective::parse(name).unwrap();
        let own = base.params();
        let given: Vec<(&str, f32)> = tweak
            .iter()
            .copied()
            .filter(|(p, _)| own.iter().any(|(q, _)| q == p))
            .collect();
        let obj = build(name, &given).unwrap();
        // Pairwise objectives need every response paired; the others also take lone ones.
        let tb = TokenBatch::new(if obj.needs_pairs() { &paired } else { &every });
        assert!(!tb.pairs.is_empty());
        let ref_rows = refs.rows(&tb);
        model.forward(&tb.tokens, tb.b, tb.t).unwrap();
        let logits = model.logits().to_vec();

        let mut core_grad = vec![0.0f32; logits.len()];
        let pb = pref_batch(&tb, VOCAB, Some(&ref_rows));
        let want = objective_forward_backward(&logits, &pb, &obj, &mut core_grad).unwrap();

        for scale in [1.0f32, 0.5] {
            let mut g = logits.clone();
            let got = loss_and_grad(&obj, &mut g, VOCAB, &tb, Some(&ref_rows), scale).unwrap();
            assert_eq!(got, want, "{name}: output");
            assert_eq!(got.loss.to_bits(), want.loss.to_bits(), "{name}: loss");
            let same = g
                .iter()
                .zip(&core_grad)
                .all(|(a, b)| a.to_bits() == (b * scale).to_bits());
            assert!(same, "{name}: gradient (scale {scale})");
        }
        let norm = core_grad.iter().map(|g| g * g).sum::<f32>().sqrt();
        assert!(
            want.loss.is_finite() && norm > 1e-4,
            "{name}: |grad| = {norm}"
        );
    }
}
