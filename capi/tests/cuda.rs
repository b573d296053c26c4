//! The GPU entries (`bnf_cuda_*`) called as C would call them.
//!
//! - Every build: `bnf_cuda_check_status` turns host copies of kernel statuses into codes and
//!   messages.
//! - Default build (no `cuda`, no `emu`): every GPU entry returns `BNF_ERR_CUDA_UNAVAILABLE`
//!   with "no CUDA driver/device", and NULL handles are named.
//! - `--features emu` (the driver's host emulator of the kernels, no GPU needed) or
//!   `--features cuda` (then a GPU is required; the test fails without one): results equal
//!   `bnf-core` within the GPU tolerances of driver/tests/suite (row scalars rtol 1e-4, atol
//!   1e-5; gradients a few units in the last place of the dtype), in place equals out of place
//!   bit for bit, row errors come back per row, and bad arguments are named before any launch.

mod common;

use std::ptr::null;

use bnf::*;
use common::last_error;

#[test]
fn check_status_names_the_first_failing_row() {
    let ok = [0i32; 4];
    assert_eq!(
        unsafe { bnf_cuda_check_status(ok.as_ptr(), 4) },
        BnfStatus::BNF_OK
    );
    assert_eq!(last_error(), "");
    let cases = [
        (1, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE, "target id"),
        (2, BnfStatus::BNF_ERR_INVALID_WEIGHT, "weight"),
        (3, BnfStatus::BNF_ERR_NON_FINITE_LOGITS, "NaN"),
        (4, BnfStatus::BNF_ERR_INVALID_REF_LOGP, "reference log-prob"),
        (5, BnfStatus::BNF_ERR_INVALID_STATS, "row statistics"),
        (99, BnfStatus::BNF_ERR_INTERNAL, "unknown kernel status"),
    ];
    for (code, want, words) in cases {
        let statuses = [0, 0, code, 0, code];
        let st = unsafe { bnf_cuda_check_status(statuses.as_ptr(), 5) };
        let msg = last_error();
        assert_eq!(st, want, "{msg}");
        assert!(
            msg.starts_with("bnf_cuda_check_status: row 2: ") && msg.contains(words),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("kernel status {code}")) && msg.contains("1 more failed row"),
            "{msg}"
        );
    }
    let st = unsafe { bnf_cuda_check_status(null(), 3) };
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(last_error().contains("`row_status` is NULL"));
}

#[cfg(not(any(feature = "cuda", feature = "emu")))]
#[test]
fn without_cuda_every_gpu_entry_says_so() {
    use common::case;
    use std::ptr::null_mut;

    let mut h: *mut BnfCuda = std::ptr::NonNull::dangling().as_ptr();
    let st = unsafe { bnf_cuda_open(0, &mut h) };
    assert_eq!(st, BnfStatus::BNF_ERR_CUDA_UNAVAILABLE);
    assert!(h.is_null(), "the handle is set to NULL on error");
    let msg = last_error();
    assert!(
        msg.starts_with("bnf_cuda_open: no CUDA driver/device: libbnf was built without CUDA"),
        "{msg}"
    );
    let mut h: *mut BnfCuda = std::ptr::NonNull::dangling().as_ptr();
    let st = unsafe { bnf_cuda_attach(&mut h) };
    assert_eq!(st, BnfStatus::BNF_ERR_CUDA_UNAVAILABLE);
    assert!(h.is_null());
    assert!(last_error().contains("no CUDA driver/device"));
    assert_eq!(unsafe { bnf_cuda_release(null_mut()) }, BnfStatus::BNF_OK);

    // Without a handle the entries name it (there is no way to get one in this build).
    let k = case();
    let b = BnfCudaBatch {
        dtype: BNF_DTYPE_F32,
        vocab: k.vocab,
        rows: 5,
        logits: k.logits.as_ptr().cast(),
        targets: k.targets.as_ptr(),
        weights: k.weights.as_ptr(),
        scored: null(),
        num_responses: 2,
        ref_logp: k.ref_logp.as_ptr(),
    };
    let st = unsafe {
        bnf_cuda_forward_backward(
            null_mut(),
            &b,
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
        )
    };
    assert_eq!(st, BnfStatus::BNF_ERR_NULL_POINTER);
    assert!(last_error().starts_with("bnf_cuda_forward_backward: argument `gpu` is NULL"));
}

#[cfg(any(feature = "cuda", feature = "emu"))]
mod gpu {
    use std::ffi::c_void;
    use std::ptr::{null, null_mut};

    use bnf::*;
    use bnf_core::{bf16, f16, forward_backward, row_grad, row_stats, Logit};
    use bnf_core::{RowDiag, RowLoss};
    use bnf_driver::{DeviceBuffer, Gpu};
    use bytemuck::Pod;

    use crate::common::{case, last_error, Case};

    /// The device's context, made current on this thread (the test's "framework").
    fn gpu() -> Gpu {
        Gpu::new(0).unwrap_or_else(|e| panic!("this test needs a GPU (or --features emu): {e}"))
    }

    /// A handle attached to the current context, as a framework's caller would get it.
    fn attach() -> *mut BnfCuda {
        let mut h = null_mut();
        let st = unsafe { bnf_cuda_attach(&mut h) };
        assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
        assert!(!h.is_null());
        h
    }

    fn close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                g == w || (g - w).abs() <= atol + rtol * w.abs(),
                "{what}[{i}]: gpu {g:e} vs core {w:e}"
            );
        }
    }

    /// A few units in the last place of `T` (as driver/tests/support).
    fn rtol_of<T: Logit>() -> f32 {
        match T::NAME {
            "bf16" => 2.0 * 2f32.powi(-8),
            "f16" => 2.0 * 2f32.powi(-11),
            _ => 2e-5,
        }
    }

    fn to_f32<T: Logit>(v: &[T]) -> Vec<f32> {
        v.iter().map(|x| x.to_f32()).collect()
    }

    fn ptr<T: Pod>(b: &DeviceBuffer<T>) -> *mut c_void {
        b.as_raw() as *mut c_void
    }

    /// The case's per-row inputs on the device.
    struct Device<T: Pod> {
        logits: DeviceBuffer<T>,
        targets: DeviceBuffer<u32>,
        weights: DeviceBuffer<f32>,
        scored: DeviceBuffer<u8>,
        ref_logp: DeviceBuffer<f32>,
        rows_out: DeviceBuffer<f32>,
        status: DeviceBuffer<i32>,
    }

    impl<T: Logit + Pod> Device<T> {
        fn upload(g: &Gpu, k: &Case) -> Device<T> {
            let z: Vec<T> = k.logits.iter().map(|&v| T::from_f32(v)).collect();
            let rows = k.targets.len();
            Device {
                logits: g.upload(&z).unwrap(),
                targets: g.upload(&k.targets).unwrap(),
                weights: g.upload(&k.weights).unwrap(),
                scored: g.upload(&k.scored).unwrap(),
                ref_logp: g.upload(&k.ref_logp).unwrap(),
                rows_out: g.upload(&vec![f32::NAN; rows * 5]).unwrap(),
                status: g.upload(&vec![-1i32; rows]).unwrap(),
            }
        }

        fn batch(&self, dtype: u32, k: &Case) -> BnfCudaBatch {
            BnfCudaBatch {
                dtype,
                vocab: k.vocab,
                rows: k.targets.len(),
                logits: ptr(&self.logits),
                targets: self.targets.as_raw() as *const u32,
                weights: self.weights.as_raw() as *const f32,
                scored: self.scored.as_raw() as *const u8,
                num_responses: 2,
                ref_logp: self.ref_logp.as_raw() as *const f32,
            }
        }

        /// Launch a fused entry on `g`'s stream, wait, and return the row records (5 floats
        /// each) after checking the statuses on the host.
        fn fused(
            &self,
            g: &Gpu,
            h: *mut BnfCuda,
            nll: bool,
            b: &BnfCudaBatch,
            grad: *mut c_void,
        ) -> Vec<f32> {
            let entry = if nll {
                bnf_cuda_nll_forward_backward
            } else {
                bnf_cuda_forward_backward
            };
            let (out, status) = (ptr(&self.rows_out).cast(), ptr(&self.status).cast());
            let st = unsafe { entry(h, b, grad, out, status, g.stream()) };
            assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
            g.synchronize().unwrap();
            let statuses = g.to_host(&self.status).unwrap();
            let st = unsafe { bnf_cuda_check_status(statuses.as_ptr(), statuses.len()) };
            assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
            g.to_host(&self.rows_out).unwrap()
        }
    }

    fn core_run<T: Logit>(k: &Case, loss: RowLoss<'_>) -> (f32, Vec<T>, Vec<RowDiag>) {
        let scored = k.scored_bool();
        let batch = k.core_batch(&scored);
        let z: Vec<T> = k.logits.iter().map(|&v| T::from_f32(v)).collect();
        let mut grad = vec![T::from_f32(0.0); z.len()];
        let mut diag = vec![RowDiag::default(); k.targets.len()];
        let l = forward_backward(&z, &batch, loss, &mut grad, &mut diag).unwrap();
        (l, grad, diag)
    }

    /// BNF and NLL through the fused GPU entries against core, out of place, in place and
    /// loss only.
    fn fused_matches_core<T: Logit + Pod>(dtype: u32) {
        let (g, k) = (gpu(), case());
        let h = attach();
        for nll in [false, true] {
            let what = format!("{} {}", T::NAME, if nll { "nll" } else { "bnf" });
            let loss = if nll {
                RowLoss::Nll
            } else {
                RowLoss::Bnf {
                    ref_logp: &k.ref_logp,
                }
            };
            let (l_core, g_core, d_core) = core_run::<T>(&k, loss);
            let dev = Device::<T>::upload(&g, &k);
            let mut b = dev.batch(dtype, &k);
            if nll {
                b.ref_logp = null();
            }
            let grad = g.alloc::<T>(k.logits.len()).unwrap();
            let rows = dev.fused(&g, h, nll, &b, ptr(&grad));
            let field = |i: usize| rows.iter().skip(i).step_by(5).copied().collect::<Vec<_>>();
            let pick = |f: fn(&RowDiag) -> f32| d_core.iter().map(f).collect::<Vec<_>>();
            close(
                &format!("{what} row loss"),
                &field(0),
                &pick(|d| d.loss),
                1e-4,
                1e-5,
            );
            close(
                &format!("{what} pi_y"),
                &field(1),
                &pick(|d| d.pi_y),
                1e-4,
                1e-5,
            );
            close(
                &format!("{what} f_y"),
                &field(2),
                &pick(|d| d.f_y),
                1e-4,
                1e-5,
            );
            close(&format!("{what} c"), &field(3), &pick(|d| d.c), 1e-4, 1e-5);
            close(
                &format!("{what} lse"),
                &field(4),
                &pick(|d| d.stats.lse),
                1e-6,
                1e-4,
            );
            let total: f32 = field(0).iter().sum::<f32>() / 2.0;
            close(&format!("{what} loss"), &[total], &[l_core], 1e-4, 1e-5);
            let g_gpu: Vec<T> = g.to_host(&grad).unwrap();
            let atol = if T::NAME == "f16" { 1e-7 } else { 1e-30 };
            let (got, want) = (to_f32(&g_gpu), to_f32(&g_core));
            close(&format!("{what} grad"), &got, &want, rtol_of::<T>(), atol);

            // Loss only: the same records, nothing else written.
            let again = dev.fused(&g, h, nll, &b, null_mut());
            assert_eq!(to_bits(&again), to_bits(&rows), "{what}: loss only");
            // In place: the gradient over the logits, bit for bit the out-of-place one.
            let again = dev.fused(&g, h, nll, &b, ptr(&dev.logits));
            assert_eq!(to_bits(&again), to_bits(&rows), "{what}: in place rows");
            let over: Vec<T> = g.to_host(&dev.logits).unwrap();
            assert_eq!(
                to_bits(&to_f32(&over)),
                to_bits(&got),
                "{what}: in place grad"
            );
        }
        assert_eq!(unsafe { bnf_cuda_release(h) }, BnfStatus::BNF_OK);
    }

    fn to_bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn fused_f32_matches_core() {
        fused_matches_core::<f32>(BNF_DTYPE_F32);
    }

    #[test]
    fn fused_f16_matches_core() {
        fused_matches_core::<f16>(BNF_DTYPE_F16);
    }

    #[test]
    fn fused_bf16_matches_core() {
        fused_matches_core::<bf16>(BNF_DTYPE_BF16);
    }

    #[test]
    fn row_primitives_match_core() {
        let (g, k) = (gpu(), case());
        let h = attach();
        let dev = Device::<f32>::upload(&g, &k);
        let b = dev.batch(BNF_DTYPE_F32, &k);
        let rows = k.targets.len();
        let v = k.vocab;
        let stats = g.alloc::<f32>(rows * 6).unwrap();
        let status = ptr(&dev.status).cast();
        let st = unsafe { bnf_cuda_row_stats(h, &b, ptr(&stats).cast(), status, g.stream()) };
        assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
        let (logp, lse) = (g.alloc::<f32>(rows).unwrap(), g.alloc::<f32>(rows).unwrap());
        let (lp, ls) = (ptr(&logp).cast(), ptr(&lse).cast());
        let st = unsafe { bnf_cuda_gather_logp(h, &b, lp, ls, status, g.stream()) };
        assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
        let w: Vec<f32> = (0..rows).map(|r| 0.25 - 0.2 * r as f32).collect();
        let w_dev = g.upload(&w).unwrap();
        let out = g.alloc::<f32>(rows * v).unwrap();
        let (s, wp) = (ptr(&stats).cast(), w_dev.as_raw() as *const f32);
        let st = unsafe { bnf_cuda_row_grad(h, &b, s, wp, ptr(&out), status, g.stream()) };
        assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
        g.synchronize().unwrap();
        assert!(g.to_host(&dev.status).unwrap().iter().all(|&s| s == 0));

        let (stats, out) = (g.to_host(&stats).unwrap(), g.to_host(&out).unwrap());
        let (logp, lse) = (g.to_host(&logp).unwrap(), g.to_host(&lse).unwrap());
        for r in 0..rows {
            let z = &k.logits[r * v..(r + 1) * v];
            let (got_s, got_g) = (&stats[r * 6..r * 6 + 6], &out[r * v..(r + 1) * v]);
            if k.scored[r] == 0 {
                assert!(
                    got_s.iter().chain(got_g).all(|&x| x == 0.0),
                    "masked row {r}"
                );
                continue;
            }
            let want = row_stats(z, k.targets[r] as usize).unwrap();
            let want_s = [
                want.max,
                want.lse,
                want.ell,
                want.sum,
                want.others_sum,
                want.others_dot,
            ];
            close(&format!("row {r} stats"), got_s, &want_s, 1e-5, 1e-5);
            close(
                &format!("row {r} logp"),
                &[logp[r]],
                &[want.ell],
                1e-5,
                1e-5,
            );
            close(&format!("row {r} lse"), &[lse[r]], &[want.lse], 1e-6, 1e-4);
            let mut want_g = vec![0.0f32; v];
            row_grad(z, k.targets[r] as usize, &want, w[r], &mut want_g).unwrap();
            close(&format!("row {r} grad"), got_g, &want_g, 2e-5, 1e-7);
        }
        assert_eq!(unsafe { bnf_cuda_release(h) }, BnfStatus::BNF_OK);
    }

    /// A bad target id is found on the device: its row's status says so, its gradient row is
    /// left as it was, and the other rows are written.
    #[test]
    fn row_errors_come_back_per_row() {
        let (g, mut k) = (gpu(), case());
        k.targets[3] = 9;
        let h = attach();
        let dev = Device::<f32>::upload(&g, &k);
        let b = dev.batch(BNF_DTYPE_F32, &k);
        let grad = g.upload(&vec![7.0f32; k.logits.len()]).unwrap();
        let (out, status) = (ptr(&dev.rows_out).cast(), ptr(&dev.status).cast());
        let st = unsafe { bnf_cuda_forward_backward(h, &b, ptr(&grad), out, status, g.stream()) };
        assert_eq!(st, BnfStatus::BNF_OK, "queued: {}", last_error());
        g.synchronize().unwrap();
        let statuses = g.to_host(&dev.status).unwrap();
        let st = unsafe { bnf_cuda_check_status(statuses.as_ptr(), statuses.len()) };
        assert_eq!(st, BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE);
        let msg = last_error();
        assert!(msg.contains("row 3: target id"), "{msg}");
        let got = g.to_host(&grad).unwrap();
        let v = k.vocab;
        assert!(
            got[3 * v..4 * v].iter().all(|&x| x == 7.0),
            "failed row untouched"
        );
        assert!(got[..v].iter().any(|&x| x != 7.0), "other rows written");
        assert_eq!(unsafe { bnf_cuda_release(h) }, BnfStatus::BNF_OK);
    }

    /// Every bad argument is named before anything is launched.
    #[test]
    fn bad_arguments_are_named() {
        let (g, k) = (gpu(), case());
        let h = attach();
        let dev = Device::<f32>::upload(&g, &k);
        let good = dev.batch(BNF_DTYPE_F32, &k);
        let (out, status) = (ptr(&dev.rows_out).cast(), ptr(&dev.status).cast());
        let call = |h: *mut BnfCuda, b: &BnfCudaBatch, grad: *mut c_void, out, status| {
            let st = unsafe { bnf_cuda_forward_backward(h, b, grad, out, status, g.stream()) };
            (st, last_error())
        };
        use BnfStatus::*;
        let with = |f: &dyn Fn(&mut BnfCudaBatch)| {
            let mut b = good;
            f(&mut b);
            b
        };
        let z = ptr(&dev.logits);
        let cases: Vec<(BnfCudaBatch, *mut c_void, *mut BnfCudaRow, BnfStatus, &str)> = vec![
            (
                good,
                null_mut(),
                null_mut(),
                BNF_ERR_NULL_POINTER,
                "`row_out` is NULL",
            ),
            (
                with(&|b| b.ref_logp = null()),
                null_mut(),
                out,
                BNF_ERR_NULL_POINTER,
                "`batch->ref_logp` is NULL",
            ),
            (
                with(&|b| b.targets = null()),
                null_mut(),
                out,
                BNF_ERR_NULL_POINTER,
                "`batch->targets` is NULL",
            ),
            (
                with(&|b| b.dtype = 7),
                null_mut(),
                out,
                BNF_ERR_INVALID_ARGUMENT,
                "batch->dtype is 7",
            ),
            (
                with(&|b| b.rows = 0),
                null_mut(),
                out,
                BNF_ERR_ZERO_SIZE,
                "batch->rows is 0",
            ),
            (
                with(&|b| b.vocab = 0),
                null_mut(),
                out,
                BNF_ERR_ZERO_SIZE,
                "batch->vocab is 0",
            ),
            (
                with(&|b| b.vocab = 1 << 33),
                null_mut(),
                out,
                BNF_ERR_ZERO_SIZE,
                "32-bit",
            ),
            (
                with(&|b| b.num_responses = 0),
                null_mut(),
                out,
                BNF_ERR_INVALID_RESPONSES,
                "num_responses is 0",
            ),
            (
                with(&|b| b.logits = unsafe { b.logits.byte_add(2) }),
                null_mut(),
                out,
                BNF_ERR_MISALIGNED,
                "`batch->logits`",
            ),
            (
                good,
                unsafe { z.byte_add(4) },
                out,
                BNF_ERR_LENGTH_MISMATCH,
                "`grad` overlaps `batch->logits`",
            ),
            (
                good,
                null_mut(),
                good.targets.cast_mut().cast(),
                BNF_ERR_LENGTH_MISMATCH,
                "`row_out` overlaps `batch->targets`",
            ),
            (
                good,
                null_mut(),
                ptr(&dev.status).cast(),
                BNF_ERR_LENGTH_MISMATCH,
                "`row_out` overlaps `row_status`",
            ),
            (
                good,
                ptr(&dev.status).cast(),
                out,
                BNF_ERR_LENGTH_MISMATCH,
                "`row_status` overlaps `grad`",
            ),
        ];
        for (b, grad, out, want, words) in cases {
            let (st, msg) = call(h, &b, grad, out, status);
            assert_eq!(st, want, "{msg}");
            assert!(
                msg.starts_with("bnf_cuda_forward_backward: ") && msg.contains(words),
                "{msg}"
            );
        }
        let (st, msg) = call(null_mut(), &good, null_mut(), out, status);
        assert_eq!(st, BNF_ERR_NULL_POINTER);
        assert!(msg.contains("`gpu` is NULL"), "{msg}");
        // NLL does not read ref_logp.
        let nll = with(&|b| b.ref_logp = null());
        let st =
            unsafe { bnf_cuda_nll_forward_backward(h, &nll, null_mut(), out, status, null_mut()) };
        assert_eq!(st, BNF_OK, "{}", last_error());
        let st =
            unsafe { bnf_cuda_row_grad(h, &good, null(), null(), null_mut(), status, null_mut()) };
        assert_eq!(st, BNF_ERR_NULL_POINTER);
        assert!(last_error().contains("`out` is NULL"), "{}", last_error());
        g.synchronize().unwrap();
        assert_eq!(unsafe { bnf_cuda_release(h) }, BNF_OK);
    }

    /// Attaching needs a current context; opening needs the device.
    #[test]
    fn attach_without_context_and_missing_device_are_clear_errors() {
        let _g = gpu();
        let (st, msg, h) = std::thread::spawn(|| {
            let mut h = std::ptr::NonNull::dangling().as_ptr();
            let st = unsafe { bnf_cuda_attach(&mut h) };
            (st, last_error(), h.is_null())
        })
        .join()
        .unwrap();
        assert_eq!(st, BnfStatus::BNF_ERR_CUDA_UNAVAILABLE);
        assert!(msg.contains("no CUDA context is current"), "{msg}");
        assert!(h, "handle set to NULL");
        let mut h = null_mut();
        let st = unsafe { bnf_cuda_open(1000, &mut h) };
        assert_eq!(st, BnfStatus::BNF_ERR_CUDA_UNAVAILABLE);
        assert!(
            last_error().contains("no CUDA driver/device: no CUDA device (asked for device 1000")
        );
        assert!(h.is_null());
        let st = unsafe { bnf_cuda_open(0, &mut h) };
        assert_eq!(st, BnfStatus::BNF_OK, "{}", last_error());
        assert_eq!(unsafe { bnf_cuda_release(h) }, BnfStatus::BNF_OK);
    }
}
