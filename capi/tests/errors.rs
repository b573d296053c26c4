//! Error paths across the whole ABI: every exported entry names itself in its message (the
//! names are written by hand beside each symbol), and the cases `abi.rs` does not cover: NULL
//! per-row arrays, in-place entries leaving the logits alone on error, mismatched sizes in
//! `bnf_response_weights`, and row-primitive arguments reported by name.

mod common;

use std::ptr::{null, null_mut};
use std::sync::Mutex;

use bnf::*;
use common::{case, last_error};

/// The entries `expect_null` has seen.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Call `f`, expect `BNF_ERR_NULL_POINTER` and a message `"{name}: argument `{arg}` is NULL"`.
fn expect_null(name: &str, arg: &str, f: impl FnOnce() -> BnfStatus) {
    SEEN.lock().unwrap().push(name.to_string());
    let st = f();
    let msg = last_error();
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER, "{name}: {msg}");
    assert_eq!(msg, format!("{name}: argument `{arg}` is NULL"));
}

#[test]
fn every_entry_names_itself() {
    let k = case();
    let b = k.c_batch();
    let mut loss = 0.0f32;
    let l: *mut f32 = &mut loss;
    unsafe {
        expect_null("bnf_forward_f32", "logits", || {
            bnf_forward_f32(null(), &b, null_mut(), l)
        });
        expect_null("bnf_forward_f16", "logits", || {
            bnf_forward_f16(null(), &b, null_mut(), l)
        });
        expect_null("bnf_forward_bf16", "logits", || {
            bnf_forward_bf16(null(), &b, null_mut(), l)
        });
        expect_null("bnf_nll_forward_f32", "logits", || {
            bnf_nll_forward_f32(null(), &b, null_mut(), l)
        });
        expect_null("bnf_nll_forward_f16", "logits", || {
            bnf_nll_forward_f16(null(), &b, null_mut(), l)
        });
        expect_null("bnf_nll_forward_bf16", "logits", || {
            bnf_nll_forward_bf16(null(), &b, null_mut(), l)
        });
        // Out of place: the overlap check reads addresses only, then `logits` is named.
        let fb: [(&str, unsafe extern "C" fn(_, _, _, _, _) -> _); 2] = [
            ("bnf_forward_backward_f32", bnf_forward_backward_f32),
            ("bnf_nll_forward_backward_f32", bnf_nll_forward_backward_f32),
        ];
        let mut g32 = vec![0.0f32; k.logits.len()];
        for (name, f) in fb {
            expect_null(name, "logits", || {
                f(null(), &b, g32.as_mut_ptr(), null_mut(), l)
            });
        }
        let fb16: [(&str, unsafe extern "C" fn(_, _, _, _, _) -> _); 4] = [
            ("bnf_forward_backward_f16", bnf_forward_backward_f16),
            ("bnf_forward_backward_bf16", bnf_forward_backward_bf16),
            ("bnf_nll_forward_backward_f16", bnf_nll_forward_backward_f16),
            (
                "bnf_nll_forward_backward_bf16",
                bnf_nll_forward_backward_bf16,
            ),
        ];
        let mut g16 = vec![0u16; k.logits.len()];
        for (name, f) in fb16 {
            expect_null(name, "logits", || {
                f(null(), &b, g16.as_mut_ptr(), null_mut(), l)
            });
        }
        let ip32: [(&str, unsafe extern "C" fn(_, _, _, _) -> _); 2] = [
            (
                "bnf_forward_backward_in_place_f32",
                bnf_forward_backward_in_place_f32,
            ),
            (
                "bnf_nll_forward_backward_in_place_f32",
                bnf_nll_forward_backward_in_place_f32,
            ),
        ];
        for (name, f) in ip32 {
            expect_null(name, "logits", || f(null_mut(), &b, null_mut(), l));
        }
        let ip16: [(&str, unsafe extern "C" fn(_, _, _, _) -> _); 4] = [
            (
                "bnf_forward_backward_in_place_f16",
                bnf_forward_backward_in_place_f16,
            ),
            (
                "bnf_forward_backward_in_place_bf16",
                bnf_forward_backward_in_place_bf16,
            ),
            (
                "bnf_nll_forward_backward_in_place_f16",
                bnf_nll_forward_backward_in_place_f16,
            ),
            (
                "bnf_nll_forward_backward_in_place_bf16",
                bnf_nll_forward_backward_in_place_bf16,
            ),
        ];
        for (name, f) in ip16 {
            expect_null(name, "logits", || f(null_mut::<u16>(), &b, null_mut(), l));
        }

        let mut s = BnfRowStats::default();
        let sp: *mut BnfRowStats = &mut s;
        expect_null("bnf_row_stats_f32", "z", || {
            bnf_row_stats_f32(null(), 3, 0, sp)
        });
        expect_null("bnf_row_stats_f16", "z", || {
            bnf_row_stats_f16(null(), 3, 0, sp)
        });
        expect_null("bnf_row_stats_bf16", "z", || {
            bnf_row_stats_bf16(null(), 3, 0, sp)
        });
        // Row gradients check `stats` first.
        let (o32, o16) = (g32.as_mut_ptr(), g16.as_mut_ptr());
        expect_null("bnf_row_grad_f32", "stats", || {
            bnf_row_grad_f32(null(), 3, 0, null(), 1.0, o32)
        });
        expect_null("bnf_row_grad_f16", "stats", || {
            bnf_row_grad_f16(null(), 3, 0, null(), 1.0, o16)
        });
        expect_null("bnf_row_grad_bf16", "stats", || {
            bnf_row_grad_bf16(null(), 3, 0, null(), 1.0, o16)
        });
        expect_null("bnf_row_grad_in_place_f32", "stats", || {
            bnf_row_grad_in_place_f32(null_mut(), 3, 0, null(), 1.0)
        });
        expect_null("bnf_row_grad_in_place_f16", "stats", || {
            bnf_row_grad_in_place_f16(null_mut(), 3, 0, null(), 1.0)
        });
        expect_null("bnf_row_grad_in_place_bf16", "stats", || {
            bnf_row_grad_in_place_bf16(null_mut(), 3, 0, null(), 1.0)
        });
        let f = g32.as_mut_ptr();
        expect_null("bnf_dynamic_target_f32", "z", || {
            bnf_dynamic_target_f32(null(), 3, 0, -1.0, f, null_mut())
        });
        expect_null("bnf_dynamic_target_f16", "z", || {
            bnf_dynamic_target_f16(null(), 3, 0, -1.0, f, null_mut())
        });
        expect_null("bnf_dynamic_target_bf16", "z", || {
            bnf_dynamic_target_bf16(null(), 3, 0, -1.0, f, null_mut())
        });
        expect_null("bnf_scalars", "stats", || {
            bnf_scalars(null(), -1.0, null_mut())
        });
        expect_null("bnf_response_weights", "offsets", || {
            bnf_response_weights(null(), null(), 1, null(), 1, null_mut())
        });

        expect_null("bnf_objective_default", "name", || {
            bnf_objective_default(null(), null_mut())
        });
        let fwd: [(&str, unsafe extern "C" fn(*const u16, _, _, _) -> _); 2] = [
            ("bnf_objective_forward_f16", bnf_objective_forward_f16),
            ("bnf_objective_forward_bf16", bnf_objective_forward_bf16),
        ];
        for (name, f) in fwd {
            expect_null(name, "batch", || f(null(), null(), null(), null_mut()));
        }
        expect_null("bnf_objective_forward_f32", "batch", || {
            bnf_objective_forward_f32(null(), null(), null(), null_mut())
        });
        expect_null("bnf_objective_forward_backward_f32", "batch", || {
            bnf_objective_forward_backward_f32(null(), null(), null(), null_mut(), null_mut())
        });
        let fb: [(&str, unsafe extern "C" fn(*const u16, _, _, _, _) -> _); 2] = [
            (
                "bnf_objective_forward_backward_f16",
                bnf_objective_forward_backward_f16,
            ),
            (
                "bnf_objective_forward_backward_bf16",
                bnf_objective_forward_backward_bf16,
            ),
        ];
        for (name, f) in fb {
            expect_null(name, "batch", || {
                f(null(), null(), null(), null_mut(), null_mut())
            });
        }
        expect_null(
            "bnf_objective_forward_backward_in_place_f32",
            "batch",
            || bnf_objective_forward_backward_in_place_f32(null_mut(), null(), null(), null_mut()),
        );
        let ip: [(&str, unsafe extern "C" fn(*mut u16, _, _, _) -> _); 2] = [
            (
                "bnf_objective_forward_backward_in_place_f16",
                bnf_objective_forward_backward_in_place_f16,
            ),
            (
                "bnf_objective_forward_backward_in_place_bf16",
                bnf_objective_forward_backward_in_place_bf16,
            ),
        ];
        for (name, f) in ip {
            expect_null(name, "batch", || f(null_mut(), null(), null(), null_mut()));
        }

        expect_null("bnf_cuda_open", "out", || bnf_cuda_open(0, null_mut()));
        expect_null("bnf_cuda_attach", "out", || bnf_cuda_attach(null_mut()));
        expect_null("bnf_cuda_check_status", "row_status", || {
            bnf_cuda_check_status(null(), 1)
        });
        let cb = BnfCudaBatch {
            dtype: BNF_DTYPE_F32,
            vocab: 1,
            rows: 1,
            logits: null(),
            targets: null(),
            weights: null(),
            scored: null(),
            num_responses: 1,
            ref_logp: null(),
        };
        let n = null_mut();
        expect_null("bnf_cuda_forward_backward", "gpu", || {
            bnf_cuda_forward_backward(n, &cb, n.cast(), n.cast(), n.cast(), n.cast())
        });
        expect_null("bnf_cuda_nll_forward_backward", "gpu", || {
            bnf_cuda_nll_forward_backward(n, &cb, n.cast(), n.cast(), n.cast(), n.cast())
        });
        expect_null("bnf_cuda_row_stats", "gpu", || {
            bnf_cuda_row_stats(n, &cb, n.cast(), n.cast(), n.cast())
        });
        expect_null("bnf_cuda_row_grad", "gpu", || {
            bnf_cuda_row_grad(n, &cb, null(), null(), n.cast(), n.cast(), n.cast())
        });
        expect_null("bnf_cuda_gather_logp", "gpu", || {
            bnf_cuda_gather_logp(n, &cb, n.cast(), n.cast(), n.cast(), n.cast())
        });
    }
    // Every entry of the header that returns a status was called above (bnf_cuda_release
    // takes NULL as "nothing to release").
    let header = include_str!("../include/bnf.h");
    let seen = SEEN.lock().unwrap();
    for decl in header.split("\nenum BnfStatus ").skip(1) {
        let name = &decl[..decl.find('(').unwrap()];
        if name != "bnf_cuda_release" {
            assert!(seen.iter().any(|s| s == name), "{name} is not tested here");
        }
    }
}

#[test]
fn null_per_row_arrays_are_named() {
    let k = case();
    let mut loss = 0.0;
    for (field, clear) in [
        (
            "batch->targets",
            (|b: &mut BnfBatch| b.targets = null()) as fn(&mut BnfBatch),
        ),
        ("batch->weights", |b| b.weights = null()),
    ] {
        let mut b = k.c_batch();
        clear(&mut b);
        let st = unsafe { bnf_forward_f32(k.logits.as_ptr(), &b, null_mut(), &mut loss) };
        assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
        assert!(
            last_error().contains(&format!("`{field}` is NULL")),
            "{}",
            last_error()
        );
    }
    // The mask is optional: NULL means every row counts (then row 4's target must be valid,
    // and it is).
    let mut b = k.c_batch();
    b.scored = null();
    let st = unsafe { bnf_forward_f32(k.logits.as_ptr(), &b, null_mut(), &mut loss) };
    assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
}

#[test]
fn in_place_entries_leave_the_logits_alone_on_error() {
    let mut k = case();
    k.ref_logp[1] = f32::NAN;
    let mut z = k.logits.clone();
    let mut loss = 7.0;
    let st = unsafe {
        bnf_forward_backward_in_place_f32(z.as_mut_ptr(), &k.c_batch(), null_mut(), &mut loss)
    };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_REF_LOGP);
    assert!(last_error().contains("row 1"), "{}", last_error());
    assert_eq!(z, k.logits);
    assert_eq!(loss, 7.0);

    let stats = BnfRowStats::default(); // S = 0: no row has it
    let mut row = [1.0f32, 2.0, 3.0];
    let st = unsafe { bnf_row_grad_in_place_f32(row.as_mut_ptr(), 3, 0, &stats, 1.0) };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_STATS);
    assert_eq!(row, [1.0, 2.0, 3.0]);
}

#[test]
fn response_weights_reject_mismatched_sizes() {
    let mut w = [9.0f32; 4];
    // Offsets end at 5 but the batch has 4 rows.
    let st = unsafe {
        bnf_response_weights(
            [0usize, 2, 5].as_ptr(),
            [1.0f32, -1.0].as_ptr(),
            2,
            null(),
            4,
            w.as_mut_ptr(),
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_RESPONSES, "{}", last_error());
    assert_eq!(w, [9.0; 4], "nothing written on error");
    // Zero responses, named as such.
    let st = unsafe {
        bnf_response_weights(
            [0usize].as_ptr(),
            [1.0f32].as_ptr(),
            0,
            null(),
            4,
            w.as_mut_ptr(),
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_ZERO_SIZE);
    assert!(
        last_error().contains("num_responses is 0"),
        "{}",
        last_error()
    );
}

#[test]
fn row_primitive_arguments_are_named() {
    let z = [0.5f32, -1.0, 2.0];
    let mut stats = BnfRowStats::default();
    assert_eq!(
        unsafe { bnf_row_stats_f32(z.as_ptr(), 3, 0, &mut stats) },
        BnfStatus::BNF_OK
    );
    let mut out = [0.0f32; 3];
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), 3, 7, &stats, 1.0, out.as_mut_ptr()) };
    assert_eq!(st, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE);
    assert_eq!(
        last_error(),
        "bnf_row_grad_f32: argument `y`: target id 7 is not below vocab size 3"
    );
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), 3, 0, &stats, f32::NAN, out.as_mut_ptr()) };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_WEIGHT);
    assert_eq!(
        last_error(),
        "bnf_row_grad_f32: argument `w`: weight NaN is not finite"
    );
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), 3, 0, &stats, 1.0, z.as_ptr().cast_mut()) };
    assert_eq!(st, BnfStatus::BNF_ERR_LENGTH_MISMATCH);
    assert!(last_error().contains("`out` overlaps `z`; use the _in_place entry"));
    let mut f = [0.0f32; 3];
    let st = unsafe { bnf_dynamic_target_f32(z.as_ptr(), 3, 3, -1.0, f.as_mut_ptr(), null_mut()) };
    assert_eq!(st, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE);
    assert!(
        last_error().contains("argument `y`: target id 3"),
        "{}",
        last_error()
    );
    assert_eq!(f, [0.0; 3], "nothing written on error");
    let mut sc = BnfScalars::default();
    let st = unsafe { bnf_scalars(&stats, 0.5, &mut sc) };
    assert_eq!(st, BnfStatus::BNF_ERR_INVALID_REF_LOGP);
    assert!(
        last_error().contains("argument `ref_logp`: 0.5"),
        "{}",
        last_error()
    );
}

/// Every output is checked against every array input and the other outputs before anything is
/// computed: an overlap is `BNF_ERR_LENGTH_MISMATCH` naming both, and nothing is written.
#[test]
fn outputs_overlapping_other_arguments_are_rejected() {
    let mut k = case();
    let rows = k.targets.len();
    let mut loss = 7.0f32;
    let expect = |st: BnfStatus, words: &str| {
        let msg = last_error();
        assert_eq!(st, BnfStatus::BNF_ERR_LENGTH_MISMATCH, "{msg}");
        assert!(msg.contains(words), "{msg}");
    };
    // `loss` inside the weights, `diag` over the targets, `diag` over the gradient.
    let b = k.c_batch();
    let weights_copy = k.weights.clone();
    let w = b.weights.cast_mut();
    let st = unsafe { bnf_forward_f32(k.logits.as_ptr(), &b, null_mut(), w) };
    expect(st, "argument `loss` overlaps `batch->weights`");
    assert_eq!(k.weights, weights_copy, "nothing written");
    let d = b.targets.cast_mut().cast::<BnfRowDiag>();
    let st = unsafe { bnf_forward_f32(k.logits.as_ptr(), &b, d, &mut loss) };
    expect(st, "argument `diag` overlaps `batch->targets`");
    let mut grad = vec![7.0f32; k.logits.len()];
    let d = grad.as_mut_ptr().cast::<BnfRowDiag>();
    let st =
        unsafe { bnf_forward_backward_f32(k.logits.as_ptr(), &b, grad.as_mut_ptr(), d, &mut loss) };
    expect(st, "argument `diag` overlaps `grad`");
    assert!(grad.iter().all(|&g| g == 7.0), "nothing written");
    // In place, the logits are an output: `loss` may not point into them.
    let mut z = k.logits.clone();
    let zp = z.as_mut_ptr();
    let st = unsafe { bnf_forward_backward_in_place_f32(zp, &b, null_mut(), zp.add(3)) };
    expect(st, "argument `loss` overlaps `logits`");
    assert_eq!(z, k.logits, "nothing written");
    assert_eq!(loss, 7.0);
    // Row primitives and response weights.
    let zr = k.logits.as_mut_ptr();
    let st = unsafe { bnf_row_stats_f32(zr, 6, 0, zr.cast()) };
    expect(st, "argument `out` overlaps `z`");
    let mut f = [0.0f32; 6];
    let st = unsafe {
        bnf_dynamic_target_f32(
            k.logits.as_ptr(),
            6,
            0,
            -1.0,
            f.as_mut_ptr(),
            f.as_mut_ptr().cast(),
        )
    };
    expect(st, "argument `f_out` overlaps `stats_out`");
    assert_eq!(f, [0.0; 6], "nothing written");
    let offsets = [0usize, 2, 5];
    let mut labels = [1.0f32, -1.0];
    let st = unsafe {
        bnf_response_weights(
            offsets.as_ptr(),
            labels.as_ptr(),
            2,
            null(),
            rows,
            labels.as_mut_ptr(),
        )
    };
    expect(st, "argument `weights` overlaps `labels`");
    assert_eq!(labels, [1.0, -1.0], "nothing written");
}

/// `bnf_row_grad_*` never returns `BNF_OK` with a non-finite gradient: NaN or `+inf` in `z`, and
/// statistics whose `max` is below a logit (another row's), are rejected before anything is
/// written, in place or not.
#[test]
fn row_grad_rejects_rows_that_would_give_non_finite_gradients() {
    let z = [0.5f32, -1.0, 2.0, f32::NEG_INFINITY];
    let mut stats = BnfRowStats::default();
    assert_eq!(
        unsafe { bnf_row_stats_f32(z.as_ptr(), 4, 0, &mut stats) },
        BnfStatus::BNF_OK
    );
    let mut out = [7.0f32; 4];
    // -inf off the target is fine: its gradient is 0.
    let st = unsafe { bnf_row_grad_f32(z.as_ptr(), 4, 0, &stats, 3.0, out.as_mut_ptr()) };
    assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
    assert!(
        out.iter().all(|g| g.is_finite() && g.abs() <= 3.0),
        "{out:?}"
    );
    for (bad, status, words) in [
        (
            f32::NAN,
            BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
            "argument `z`: z[1] is NaN",
        ),
        (
            f32::INFINITY,
            BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
            "argument `z`: z[1] is inf",
        ),
        (
            90.0,
            BnfStatus::BNF_ERR_INVALID_STATS,
            "max = 2 is below z[1] = 90",
        ),
    ] {
        let mut zb = z;
        zb[1] = bad;
        let mut out = [7.0f32; 4];
        let st = unsafe { bnf_row_grad_f32(zb.as_ptr(), 4, 0, &stats, 1.0, out.as_mut_ptr()) };
        assert_eq!(st, status, "{}", last_error());
        assert!(
            last_error().starts_with("bnf_row_grad_f32: "),
            "{}",
            last_error()
        );
        assert!(last_error().contains(words), "{}", last_error());
        assert_eq!(out, [7.0; 4], "nothing written");
        let before = zb;
        let st = unsafe { bnf_row_grad_in_place_f32(zb.as_mut_ptr(), 4, 0, &stats, 1.0) };
        assert_eq!(st, status, "{}", last_error());
        assert_eq!(
            zb.map(f32::to_bits),
            before.map(f32::to_bits),
            "z untouched"
        );
    }
    // bf16 bits: a NaN is found the same way.
    let zb: Vec<u16> = [0.5f32, f32::NAN, 2.0]
        .iter()
        .map(|&v| bnf_core::bf16::from_f32(v).to_bits())
        .collect();
    let mut out = [0u16; 3];
    let st = unsafe { bnf_row_grad_bf16(zb.as_ptr(), 3, 0, &stats, 1.0, out.as_mut_ptr()) };
    assert_eq!(st, BnfStatus::BNF_ERR_NON_FINITE_LOGITS, "{}", last_error());
}

/// An absurd thread count is no error: the batch runs (capped, and on the calling thread for
/// threads the system refuses), with the same bits as one thread. 100000 short rows: a thread
/// per row (what an uncapped count starts) is more than a system allows.
#[test]
fn any_thread_count_gives_the_same_result() {
    let (rows, vocab) = (100_000usize, 10usize);
    let z: Vec<f32> = (0..rows * vocab)
        .map(|i| ((i * 37) % 101) as f32 * 0.05)
        .collect();
    let y: Vec<u32> = (0..rows as u32).map(|r| r * 7 % vocab as u32).collect();
    let w = vec![0.5f32; rows];
    let rho = vec![-1.0f32; rows];
    let b = BnfBatch {
        vocab,
        rows,
        targets: y.as_ptr(),
        weights: w.as_ptr(),
        scored: null(),
        num_responses: 2,
        ref_logp: rho.as_ptr(),
    };
    let run = |n: usize| {
        bnf_set_num_threads(n);
        let mut loss = f32::NAN;
        let st = unsafe { bnf_forward_f32(z.as_ptr(), &b, std::ptr::null_mut(), &mut loss) };
        assert_eq!(st, BnfStatus::BNF_OK, "{n} threads: {}", last_error());
        loss
    };
    let one = run(1);
    assert!(one.is_finite());
    for n in [2, 1000, usize::MAX] {
        assert_eq!(run(n).to_bits(), one.to_bits(), "{n} threads");
    }
    bnf_set_num_threads(0);
}
