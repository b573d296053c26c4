//! The C entry points called as C would call them (raw pointers), checked against `bnf-core`
//! called directly: same bits on success, the right code and a message naming the argument,
//! row and value on failure, and nothing written on failure.

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use bnf::*;
use bnf_core::{bf16, f16};

mod common;

use common::{case, last_error, Case};

fn core_diag(d: &bnf_core::RowDiag) -> BnfRowDiag {
    BnfRowDiag {
        scored: d.scored as u32,
        pi_y: d.pi_y,
        ell: d.stats.ell,
        f_y: d.f_y,
        c: d.c,
        loss: d.loss,
        lse: d.stats.lse,
    }
}

#[test]
fn f32_bnf_matches_core_bit_for_bit() {
    let k = case();
    let scored = k.scored_bool();
    let batch = k.core_batch(&scored);
    let want = bnf_core::bnf(&k.logits, &batch, &k.ref_logp).unwrap();

    let mut grad = vec![f32::NAN; k.logits.len()];
    let mut diag = vec![BnfRowDiag::default(); 5];
    let mut loss = f32::NAN;
    let status = unsafe {
        bnf_forward_backward_f32(
            k.logits.as_ptr(),
            &k.c_batch(),
            grad.as_mut_ptr(),
            diag.as_mut_ptr(),
            &mut loss,
        )
    };
    assert_eq!(status, BnfStatus::BNF_OK, "{}", last_error());
    assert_eq!(last_error(), "");
    assert_eq!(loss.to_bits(), want.loss.to_bits());
    assert_eq!(grad, want.grad);
    let want_diag: Vec<_> = want.rows.iter().map(core_diag).collect();
    assert_eq!(diag, want_diag);
    assert_eq!(diag[4], BnfRowDiag::default(), "masked row");

    let mut only = f32::NAN;
    let status = unsafe { bnf_forward_f32(k.logits.as_ptr(), &k.c_batch(), null_mut(), &mut only) };
    assert_eq!(status, BnfStatus::BNF_OK);
    assert_eq!(only.to_bits(), want.loss.to_bits());

    let mut z = k.logits.clone();
    let mut again = f32::NAN;
    let status = unsafe {
        bnf_forward_backward_in_place_f32(z.as_mut_ptr(), &k.c_batch(), null_mut(), &mut again)
    };
    assert_eq!(status, BnfStatus::BNF_OK);
    assert_eq!(again.to_bits(), want.loss.to_bits());
    assert_eq!(z, want.grad);
}

#[test]
fn nll_matches_core_and_ignores_ref_logp() {
    let k = case();
    let scored = k.scored_bool();
    let batch = k.core_batch(&scored);
    let want = bnf_core::nll(&k.logits, &batch).unwrap();
    let mut c_batch = k.c_batch();
    c_batch.ref_logp = null();
    let mut grad = vec![0.0; k.logits.len()];
    let mut loss = f32::NAN;
    let status = unsafe {
        bnf_nll_forward_backward_f32(
            k.logits.as_ptr(),
            &c_batch,
            grad.as_mut_ptr(),
            null_mut(),
            &mut loss,
        )
    };
    assert_eq!(status, BnfStatus::BNF_OK, "{}", last_error());
    assert_eq!(loss.to_bits(), want.loss.to_bits());
    assert_eq!(grad, want.grad);
}

/// Half types through `uint16_t` bits: the same bits as core on `f16`/`bf16` slices, and
/// in place equal to out of place.
#[test]
fn half_types_match_core() {
    let k = case();
    let scored = k.scored_bool();
    let batch = k.core_batch(&scored);
    let h: Vec<f16> = k.logits.iter().map(|&v| f16::from_f32(v)).collect();
    let want = bnf_core::bnf(&h, &batch, &k.ref_logp).unwrap();
    let bits: Vec<u16> = h.iter().map(|v| v.to_bits()).collect();
    let mut grad = vec![0u16; bits.len()];
    let mut loss = 0.0;
    let st = unsafe {
        bnf_forward_backward_f16(
            bits.as_ptr(),
            &k.c_batch(),
            grad.as_mut_ptr(),
            null_mut(),
            &mut loss,
        )
    };
    assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
    assert_eq!(loss.to_bits(), want.loss.to_bits());
    let want_bits: Vec<u16> = want.grad.iter().map(|v| v.to_bits()).collect();
    assert_eq!(grad, want_bits);

    let b: Vec<bf16> = k.logits.iter().map(|&v| bf16::from_f32(v)).collect();
    let want = bnf_core::nll(&b, &batch).unwrap();
    let mut z: Vec<u16> = b.iter().map(|v| v.to_bits()).collect();
    let st = unsafe {
        bnf_nll_forward_backward_in_place_bf16(z.as_mut_ptr(), &k.c_batch(), null_mut(), &mut loss)
    };
    assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
    assert_eq!(loss.to_bits(), want.loss.to_bits());
    let want_bits: Vec<u16> = want.grad.iter().map(|v| v.to_bits()).collect();
    assert_eq!(z, want_bits);
}

#[test]
fn bad_target_names_row_and_value_and_writes_nothing() {
    let mut k = case();
    k.targets[3] = 9;
    let mut grad = vec![7.0f32; k.logits.len()];
    let mut diag = vec![BnfRowDiag::default(); 5];
    let mut loss = 7.0;
    let st = unsafe {
        bnf_forward_backward_f32(
            k.logits.as_ptr(),
            &k.c_batch(),
            grad.as_mut_ptr(),
            diag.as_mut_ptr(),
            &mut loss,
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE);
    let msg = last_error();
    assert!(msg.starts_with("bnf_forward_backward_f32: "), "{msg}");
    assert!(
        msg.contains("row 3") && msg.contains("9") && msg.contains("vocab size 6"),
        "{msg}"
    );
    assert!(grad.iter().all(|&g| g == 7.0));
    assert_eq!(loss, 7.0);
    assert!(diag.iter().all(|d| *d == BnfRowDiag::default()));

    // A masked row's target is not checked.
    k.targets[3] = 3;
    k.targets[4] = 1000;
    let st = unsafe { bnf_forward_f32(k.logits.as_ptr(), &k.c_batch(), null_mut(), &mut loss) };
    assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
    assert_eq!(last_error(), "", "a success clears the message");
}

#[test]
fn null_zero_overlap_and_misaligned_arguments_are_named() {
    let k = case();
    let mut loss = 0.0;
    let mut grad = vec![0.0f32; k.logits.len()];
    let call = |logits: *const f32, batch: &BnfBatch, grad: *mut f32, loss: *mut f32| unsafe {
        let st = bnf_forward_backward_f32(logits, batch, grad, null_mut(), loss);
        (st, last_error())
    };
    let (st, msg) = call(null(), &k.c_batch(), grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(msg.contains("`logits` is NULL"), "{msg}");

    let (st, msg) = call(
        k.logits.as_ptr(),
        &k.c_batch(),
        grad.as_mut_ptr(),
        null_mut(),
    );
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(msg.contains("`loss` is NULL"), "{msg}");

    let mut b = k.c_batch();
    b.ref_logp = null();
    let (st, msg) = call(k.logits.as_ptr(), &b, grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(msg.contains("`batch->ref_logp` is NULL"), "{msg}");

    let st = unsafe {
        bnf_forward_backward_f32(
            k.logits.as_ptr(),
            null(),
            grad.as_mut_ptr(),
            null_mut(),
            &mut loss,
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(last_error().contains("`batch` is NULL"));

    let mut b = k.c_batch();
    b.vocab = 0;
    let (st, msg) = call(k.logits.as_ptr(), &b, grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(msg.contains("batch->vocab is 0"), "{msg}");
    let mut b = k.c_batch();
    b.rows = 0;
    let (st, msg) = call(k.logits.as_ptr(), &b, grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(msg.contains("batch->rows is 0"), "{msg}");
    let mut b = k.c_batch();
    b.num_responses = 0;
    let (st, msg) = call(k.logits.as_ptr(), &b, grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_RESPONSES);
    assert!(msg.contains("zero responses"), "{msg}");
    let mut b = k.c_batch();
    b.rows = usize::MAX / 2;
    let (st, msg) = call(k.logits.as_ptr(), &b, grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(msg.contains("overflows"), "{msg}");
    // No overflow, but more logits than memory can address: said so, before the overlap
    // checks (which would see the claimed ranges overlap).
    let mut b = k.c_batch();
    b.rows = (1usize << 62) / b.vocab;
    let (st, msg) = call(k.logits.as_ptr(), &b, grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(
        msg.contains("logits is too large to address") && !msg.contains("overlaps"),
        "{msg}"
    );

    // grad starting inside logits.
    let mut z = k.logits.clone();
    let st = unsafe {
        bnf_forward_backward_f32(
            z.as_ptr(),
            &k.c_batch(),
            z.as_mut_ptr().add(3),
            null_mut(),
            &mut loss,
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_LENGTH_MISMATCH);
    assert!(
        last_error().contains("`grad` overlaps `logits`"),
        "{}",
        last_error()
    );

    let bytes = vec![0u32; k.logits.len() + 1];
    let odd = unsafe { (bytes.as_ptr() as *const u8).add(1) } as *const f32;
    let (st, msg) = call(odd, &k.c_batch(), grad.as_mut_ptr(), &mut loss);
    assert_eq!(st, BnfStatus::BNF_ERR_MISALIGNED);
    assert!(
        msg.contains("`logits`") && msg.contains("aligned to 4"),
        "{msg}"
    );
}

#[test]
fn bad_values_are_reported_with_row_and_value() {
    let k = case();
    let mut loss = 0.0;
    let run = |k: &Case| unsafe {
        let st = bnf_forward_f32(k.logits.as_ptr(), &k.c_batch(), null_mut(), &mut 0.0);
        (st, last_error())
    };
    let mut bad = case();
    bad.ref_logp[2] = 0.5;
    let (st, msg) = run(&bad);
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_REF_LOGP);
    assert!(msg.contains("row 2") && msg.contains("0.5"), "{msg}");
    let mut bad = case();
    bad.weights[1] = f32::NAN;
    let (st, msg) = run(&bad);
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_WEIGHT);
    assert!(msg.contains("row 1") && msg.contains("NaN"), "{msg}");
    let mut bad = case();
    bad.logits[2 * bad.vocab + 4] = f32::NAN;
    let (st, msg) = run(&bad);
    assert_eq!(st, BnfStatus::BNF_ERR_NON_FINITE_LOGITS);
    assert!(msg.contains("row 2"), "{msg}");
    let st = unsafe { bnf_forward_f32(k.logits.as_ptr(), &k.c_batch(), null_mut(), &mut loss) };
    assert_eq!(st, BnfStatus::BNF_OK);
}

#[test]
fn row_primitives_rebuild_the_batch_gradient() {
    let k = case();
    let mut grad = vec![0.0f32; k.logits.len()];
    let mut diag = vec![BnfRowDiag::default(); 5];
    let mut loss = 0.0;
    let st = unsafe {
        bnf_forward_backward_f32(
            k.logits.as_ptr(),
            &k.c_batch(),
            grad.as_mut_ptr(),
            diag.as_mut_ptr(),
            &mut loss,
        )
    };
    assert_eq!(st, BnfStatus::BNF_OK);
    let v = k.vocab;
    for r in 0..4 {
        let z = &k.logits[r * v..(r + 1) * v];
        let y = k.targets[r];
        let mut stats = BnfRowStats::default();
        assert_eq!(
            unsafe { bnf_row_stats_f32(z.as_ptr(), v, y, &mut stats) },
            BnfStatus::BNF_OK
        );
        assert_eq!(stats.lse, diag[r].lse);
        let mut sc = BnfScalars::default();
        assert_eq!(
            unsafe { bnf_scalars(&stats, k.ref_logp[r], &mut sc) },
            BnfStatus::BNF_OK
        );
        assert_eq!((sc.f_y, sc.c), (diag[r].f_y, diag[r].c));
        let w = k.weights[r] * sc.c / 2.0;
        let mut out = vec![0.0f32; v];
        let st = unsafe { bnf_row_grad_f32(z.as_ptr(), v, y, &stats, w, out.as_mut_ptr()) };
        assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
        assert_eq!(out, &grad[r * v..(r + 1) * v], "row {r}");
        let mut zz = z.to_vec();
        let st = unsafe { bnf_row_grad_in_place_f32(zz.as_mut_ptr(), v, y, &stats, w) };
        assert_eq!(st, BnfStatus::BNF_OK);
        assert_eq!(zz, out);

        let mut f = vec![0.0f32; v];
        let st = unsafe {
            bnf_dynamic_target_f32(z.as_ptr(), v, y, k.ref_logp[r], f.as_mut_ptr(), null_mut())
        };
        assert_eq!(st, BnfStatus::BNF_OK);
        assert!(
            (f.iter().sum::<f32>() - 1.0).abs() < 1e-6,
            "f sums to 1: {f:?}"
        );
        assert_eq!(f[y as usize], diag[r].f_y);
    }
}

#[test]
fn row_primitive_errors() {
    let z = [0.5f32, -1.0, 2.0];
    let mut stats = BnfRowStats::default();
    let st = unsafe { bnf_row_stats_f32(z.as_ptr(), 3, 3, &mut stats) };
    assert_eq!(st, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE);
    assert!(last_error().contains("target id 3 is not below vocab size 3"));
    let st = unsafe { bnf_row_stats_f32(z.as_ptr(), 0, 0, &mut stats) };
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(
        last_error().contains("`z` has length 0"),
        "{}",
        last_error()
    );

    let garbage = BnfRowStats::default(); // S = 0 is impossible
    let mut out = [0.0f32; 3];
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), 3, 0, &garbage, 1.0, out.as_mut_ptr()) };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_STATS);
    assert!(last_error().contains("`stats`"));
    assert_eq!(
        unsafe { bnf_row_stats_f32(z.as_ptr(), 3, 0, &mut stats) },
        BnfStatus::BNF_OK
    );
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), 3, 0, &stats, f32::INFINITY, out.as_mut_ptr()) };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_WEIGHT);
    let mut f = [0.0f32; 3];
    let st =
        unsafe { bnf_dynamic_target_f32(z.as_ptr(), 3, 0, f32::NAN, f.as_mut_ptr(), null_mut()) };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_REF_LOGP);
    assert!(last_error().contains("`ref_logp`: NaN"), "{}", last_error());
    let nan = [0.5f32, f32::NAN, 2.0];
    let st = unsafe { bnf_row_stats_f32(nan.as_ptr(), 3, 0, &mut stats) };
    assert_eq!(st, BnfStatus::BNF_ERR_NON_FINITE_LOGITS);
    assert!(last_error().contains("argument `z`"), "{}", last_error());
}

#[test]
fn response_weights_match_core_and_reject_bad_offsets() {
    let scored = [1u8, 0, 1, 1, 1];
    let mut w = [9.0f32; 5];
    let st = unsafe {
        bnf_response_weights(
            [0usize, 2, 5].as_ptr(),
            [1.0f32, -1.0].as_ptr(),
            2,
            scored.as_ptr(),
            5,
            w.as_mut_ptr(),
        )
    };
    assert_eq!(st, BnfStatus::BNF_OK);
    let mut want = [0.0f32; 5];
    let bools: Vec<bool> = scored.iter().map(|&f| f != 0).collect();
    bnf_core::response_weights(&[0, 2, 5], &[1.0, -1.0], Some(&bools), &mut want).unwrap();
    assert_eq!(w, want);

    let mut w = [9.0f32; 5];
    let st = unsafe {
        bnf_response_weights(
            [0usize, 4, 3].as_ptr(),
            [1.0f32, -1.0].as_ptr(),
            2,
            null(),
            5,
            w.as_mut_ptr(),
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_RESPONSES);
    assert!(last_error().contains("response 1"), "{}", last_error());
    assert_eq!(w, [9.0; 5], "nothing written on error");
}

#[test]
fn constants_names_and_thread_local_messages() {
    assert_eq!(BNF_PREFERRED, bnf_core::PREFERRED);
    assert_eq!(BNF_DISPREFERRED, bnf_core::DISPREFERRED);
    let name = |s: i32| {
        unsafe { CStr::from_ptr(bnf_status_name(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(BnfStatus::BNF_OK as i32), "BNF_OK");
    assert_eq!(
        name(BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE as i32),
        "BNF_ERR_TARGET_OUT_OF_RANGE"
    );
    assert_eq!(name(BnfStatus::BNF_ERR_INTERNAL as i32), "BNF_ERR_INTERNAL");
    assert_eq!(name(-1), "BNF_UNKNOWN_STATUS");
    let version = unsafe { CStr::from_ptr(bnf_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));

    let z = [0.0f32; 2];
    let mut s = BnfRowStats::default();
    assert_ne!(
        unsafe { bnf_row_stats_f32(z.as_ptr(), 2, 5, &mut s) },
        BnfStatus::BNF_OK
    );
    assert!(!last_error().is_empty());
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread does not see this thread's error");
}
