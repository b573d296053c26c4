//! The objective entries (`bnf_objective_*`): every objective name gives its default
//! parameters under the right `BNF_OBJECTIVE_*` id; each objective's loss, gradient and
//! per-response outputs through the C ABI are core's bit for bit (f32, and bf16 through
//! `uint16_t` bits); in place equals out of place; bad objectives and batches are named and
//! nothing is written.

mod common;

use std::ffi::CString;
use std::ptr::{null, null_mut};

use bnf::*;
use bnf_core::{bf16, Objective, PrefBatch, OBJECTIVE_NAMES};
use common::{case, last_error, Case};

/// The common case as two responses (rows 0..2 chosen, rows 2..5 rejected, row 4 masked)
/// forming one pair.
const OFFSETS: [usize; 3] = [0, 2, 5];
const LABELS: [f32; 2] = [1.0, -1.0];
const PAIRS: [[usize; 2]; 1] = [[0, 1]];

/// The common case with a finite reference everywhere: DPO, IPO, R-DPO and KTO sum the
/// reference over each response and reject `-inf` (BNF alone accepts it).
fn pref_case() -> Case {
    let mut k = case();
    k.ref_logp[3] = -2.5;
    k
}

fn c_batch(k: &Case) -> BnfPrefBatch {
    BnfPrefBatch {
        vocab: k.vocab,
        rows: k.targets.len(),
        targets: k.targets.as_ptr(),
        scored: k.scored.as_ptr(),
        num_responses: 2,
        offsets: OFFSETS.as_ptr(),
        labels: LABELS.as_ptr(),
        num_pairs: 1,
        pairs: PAIRS.as_ptr().cast(),
        ref_logp: k.ref_logp.as_ptr(),
    }
}

/// The same batch as core's `PrefBatch`, over `scored` (from `Case::scored_bool`).
fn core_batch<'a>(k: &'a Case, scored: &'a [bool]) -> PrefBatch<'a> {
    PrefBatch {
        vocab: k.vocab,
        targets: &k.targets,
        scored: Some(scored),
        offsets: &OFFSETS,
        labels: &LABELS,
        pairs: Some(&PAIRS),
        ref_logp: Some(&k.ref_logp),
    }
}

fn default(name: &str) -> (BnfStatus, BnfObjective) {
    let c = CString::new(name).unwrap();
    let mut o = BnfObjective {
        kind: 99,
        ..BnfObjective::default()
    };
    let st = unsafe { bnf_objective_default(c.as_ptr(), &mut o) };
    (st, o)
}

#[test]
fn every_name_gives_its_id_and_defaults() {
    let ids = [
        BNF_OBJECTIVE_BNF,
        BNF_OBJECTIVE_NLL,
        BNF_OBJECTIVE_NLL_PLL,
        BNF_OBJECTIVE_DPO,
        BNF_OBJECTIVE_IPO,
        BNF_OBJECTIVE_SLIC_HF,
        BNF_OBJECTIVE_SIMPO,
        BNF_OBJECTIVE_RDPO,
        BNF_OBJECTIVE_CPO,
        BNF_OBJECTIVE_ORPO,
        BNF_OBJECTIVE_KTO,
    ];
    assert_eq!(OBJECTIVE_NAMES.len(), ids.len());
    for (name, id) in OBJECTIVE_NAMES.iter().zip(ids) {
        let (st, o) = default(name);
        assert_eq!(st, BnfStatus::BNF_OK, "{name}: {}", last_error());
        assert_eq!(o.kind, id, "{name}");
    }
    let (_, dpo) = default("DPO");
    assert_eq!((dpo.kind, dpo.beta), (BNF_OBJECTIVE_DPO, 0.1));
    let (_, simpo) = default("simpo");
    assert_eq!((simpo.beta, simpo.gamma), (2.5, 1.375));
    let (_, kto) = default("kto");
    assert!(kto.z0.is_nan(), "KTO estimates z0 by default");
    let (st, _) = default("sft");
    assert_eq!(st, BnfStatus::BNF_OK);
    let (st, _) = default("ppo");
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_ARGUMENT);
    let msg = last_error();
    assert!(
        msg.contains("argument `name`: unknown objective \"ppo\"; known: bnf, nll"),
        "{msg}"
    );
}

/// Core's output for `obj` on the case, in `T`.
fn core_run(k: &Case, obj: &Objective) -> (bnf_core::ObjectiveOutput, Vec<f32>) {
    let scored = k.scored_bool();
    let pb = core_batch(k, &scored);
    let mut grad = vec![0.0f32; k.logits.len()];
    let out = bnf_core::objective_forward_backward(&k.logits, &pb, obj, &mut grad).unwrap();
    (out, grad)
}

#[test]
fn every_objective_matches_core_bit_for_bit() {
    let k = pref_case();
    let b = c_batch(&k);
    for name in OBJECTIVE_NAMES {
        let (_, o) = default(name);
        let (want, want_grad) = core_run(&k, &Objective::parse(name).unwrap());
        let mut grad = vec![f32::NAN; k.logits.len()];
        let (mut lp, mut dl, mut rw) = ([f32::NAN; 2], [f32::NAN; 2], [f32::NAN; 5]);
        let mut out = BnfObjectiveOut {
            loss: f32::NAN,
            kl_estimate: 0.0,
            response_logp: lp.as_mut_ptr(),
            dloss_dlogp: dl.as_mut_ptr(),
            row_weight: rw.as_mut_ptr(),
        };
        let st = unsafe {
            bnf_objective_forward_backward_f32(
                k.logits.as_ptr(),
                &b,
                &o,
                grad.as_mut_ptr(),
                &mut out,
            )
        };
        assert_eq!(st, BnfStatus::BNF_OK, "{name}: {}", last_error());
        assert_eq!(out.loss.to_bits(), want.loss.to_bits(), "{name} loss");
        assert_eq!(grad, want_grad, "{name} grad");
        assert_eq!(
            (lp.to_vec(), dl.to_vec()),
            (want.logp, want.dloss_dlogp),
            "{name}"
        );
        assert_eq!(rw.to_vec(), want.row_weight, "{name} row weights");
        match want.kl_estimate {
            Some(z) => assert_eq!(out.kl_estimate, z, "{name}"),
            None => assert!(out.kl_estimate.is_nan(), "{name}"),
        }

        let mut only = BnfObjectiveOut {
            loss: f32::NAN,
            kl_estimate: 0.0,
            response_logp: null_mut(),
            dloss_dlogp: null_mut(),
            row_weight: null_mut(),
        };
        let st = unsafe { bnf_objective_forward_f32(k.logits.as_ptr(), &b, &o, &mut only) };
        assert_eq!(st, BnfStatus::BNF_OK, "{name}: {}", last_error());
        assert_eq!(only.loss.to_bits(), want.loss.to_bits(), "{name} loss only");
        let mut z = k.logits.clone();
        let st = unsafe {
            bnf_objective_forward_backward_in_place_f32(z.as_mut_ptr(), &b, &o, &mut only)
        };
        assert_eq!(st, BnfStatus::BNF_OK, "{name}: {}", last_error());
        assert_eq!(z, want_grad, "{name} in place");
    }
}

#[test]
fn dpo_on_bf16_bits_matches_core() {
    let k = pref_case();
    let z: Vec<bf16> = k.logits.iter().map(|&v| bf16::from_f32(v)).collect();
    let scored = k.scored_bool();
    let pb = core_batch(&k, &scored);
    let obj = Objective::parse("dpo").unwrap();
    let mut want_grad = vec![bf16::ZERO; z.len()];
    let want = bnf_core::objective_forward_backward(&z, &pb, &obj, &mut want_grad).unwrap();
    let (_, o) = default("dpo");
    let bits: Vec<u16> = z.iter().map(|v| v.to_bits()).collect();
    let mut grad = vec![0u16; bits.len()];
    let mut out = BnfObjectiveOut {
        loss: f32::NAN,
        kl_estimate: 0.0,
        response_logp: null_mut(),
        dloss_dlogp: null_mut(),
        row_weight: null_mut(),
    };
    let st = unsafe {
        bnf_objective_forward_backward_bf16(
            bits.as_ptr(),
            &c_batch(&k),
            &o,
            grad.as_mut_ptr(),
            &mut out,
        )
    };
    assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
    assert_eq!(out.loss.to_bits(), want.loss.to_bits());
    let want_bits: Vec<u16> = want_grad.iter().map(|v| v.to_bits()).collect();
    assert_eq!(grad, want_bits);
}

#[test]
fn bad_objectives_and_batches_are_named_and_nothing_is_written() {
    let k = pref_case();
    let mut grad = vec![7.0f32; k.logits.len()];
    let mut lp = [7.0f32; 2];
    let mut out = BnfObjectiveOut {
        loss: 7.0,
        kl_estimate: 7.0,
        response_logp: lp.as_mut_ptr(),
        dloss_dlogp: null_mut(),
        row_weight: null_mut(),
    };
    let mut run = |b: &BnfPrefBatch, o: &BnfObjective| {
        let st = unsafe {
            bnf_objective_forward_backward_f32(k.logits.as_ptr(), b, o, grad.as_mut_ptr(), &mut out)
        };
        (st, last_error())
    };
    let (_, dpo) = default("dpo");
    let good = c_batch(&k);

    let mut bad = dpo;
    bad.beta = -1.0;
    let (st, msg) = run(&good, &bad);
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_ARGUMENT);
    assert!(
        msg.contains("objective->beta = -1 is out of range for dpo"),
        "{msg}"
    );
    bad.kind = 42;
    let (st, msg) = run(&good, &bad);
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_ARGUMENT);
    assert!(msg.contains("objective->kind is 42"), "{msg}");

    let unpaired = BnfPrefBatch {
        num_pairs: 0,
        pairs: null(),
        ..good
    };
    let (st, msg) = run(&unpaired, &dpo);
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_RESPONSES);
    assert!(
        msg.starts_with("bnf_objective_forward_backward_f32: ")
            && msg.contains("dpo is pairwise, but batch->num_pairs is 0"),
        "{msg}"
    );
    let no_ref = BnfPrefBatch {
        ref_logp: null(),
        ..good
    };
    let (st, msg) = run(&no_ref, &dpo);
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER, "{msg}");
    assert!(
        msg.contains("argument `batch->ref_logp` is NULL, but dpo needs reference log-probs"),
        "{msg}"
    );
    let no_pairs_ptr = BnfPrefBatch {
        pairs: null(),
        ..good
    };
    let (st, msg) = run(&no_pairs_ptr, &dpo);
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(msg.contains("`batch->pairs` is NULL"), "{msg}");
    let mut targets = k.targets.clone();
    targets[1] = 6;
    let bad_target = BnfPrefBatch {
        targets: targets.as_ptr(),
        ..good
    };
    let (st, msg) = run(&bad_target, &dpo);
    assert_eq!(st, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE);
    assert!(
        msg.contains("row 1") && msg.contains("target id 6"),
        "{msg}"
    );
    let (st, _) = run(&BnfPrefBatch { rows: 0, ..good }, &dpo);
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    let (st, msg) = run(
        &BnfPrefBatch {
            num_responses: 0,
            ..good
        },
        &dpo,
    );
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(msg.contains("batch->num_responses is 0"), "{msg}");
    // Minus infinity is a valid BNF reference log-prob but not a sequence objective's.
    let mut rho = k.ref_logp.clone();
    rho[1] = f32::NEG_INFINITY;
    let (st, msg) = run(
        &BnfPrefBatch {
            ref_logp: rho.as_ptr(),
            ..good
        },
        &dpo,
    );
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_REF_LOGP);
    assert!(
        msg.contains("row 1: reference log-prob is -inf; the sequence objectives need finite"),
        "{msg}"
    );

    assert!(grad.iter().all(|&g| g == 7.0), "grad untouched");
    assert_eq!((out.loss, out.kl_estimate, lp), (7.0, 7.0, [7.0; 2]));
}

/// The arrays `out` points to are outputs like the gradient: one overlapping an input, the
/// gradient or `*out` itself is `BNF_ERR_LENGTH_MISMATCH` naming both, and nothing is written.
#[test]
fn objective_outputs_overlapping_other_arguments_are_rejected() {
    let k = pref_case();
    let (_, dpo) = default("dpo");
    let b = c_batch(&k);
    let mut grad = vec![7.0f32; k.logits.len()];
    let mut labels = LABELS;
    let b_labels = BnfPrefBatch {
        labels: labels.as_ptr(),
        ..b
    };
    let run = |b: &BnfPrefBatch, out: &mut BnfObjectiveOut, grad: *mut f32| {
        let st =
            unsafe { bnf_objective_forward_backward_f32(k.logits.as_ptr(), b, &dpo, grad, out) };
        (st, last_error())
    };
    let mut out = BnfObjectiveOut {
        loss: 7.0,
        kl_estimate: 7.0,
        response_logp: labels.as_mut_ptr(),
        dloss_dlogp: null_mut(),
        row_weight: null_mut(),
    };
    let (st, msg) = run(&b_labels, &mut out, grad.as_mut_ptr());
    assert_eq!(st, BnfStatus::BNF_ERR_LENGTH_MISMATCH, "{msg}");
    assert!(
        msg.contains("argument `out->response_logp` overlaps `batch->labels`"),
        "{msg}"
    );
    out.response_logp = null_mut();
    out.row_weight = grad.as_mut_ptr();
    let (st, msg) = run(&b, &mut out, grad.as_mut_ptr());
    assert_eq!(st, BnfStatus::BNF_ERR_LENGTH_MISMATCH, "{msg}");
    assert!(
        msg.contains("argument `out->row_weight` overlaps `grad`"),
        "{msg}"
    );
    let out_ptr: *mut BnfObjectiveOut = &mut out;
    out.row_weight = out_ptr.cast();
    let (st, msg) = run(&b, &mut out, grad.as_mut_ptr());
    assert_eq!(st, BnfStatus::BNF_ERR_LENGTH_MISMATCH, "{msg}");
    assert!(
        msg.contains("argument `out` overlaps `out->row_weight`"),
        "{msg}"
    );
    assert_eq!((out.loss, out.kl_estimate), (7.0, 7.0), "nothing written");
    assert_eq!(labels, LABELS);
    assert!(grad.iter().all(|&g| g == 7.0), "nothing written");
}
