//! The GPU entry points: a handle on a CUDA context (`bnf_cuda_open`, `bnf_cuda_attach`,
//! `bnf_cuda_release`), the fused BNF / NLL forward and backward, the row primitives on device
//! pointers with the caller's stream, and `bnf_cuda_check_status` for the per-row statuses.
//!
//! Present in every build: without the `cuda` feature (or with no driver or device) they return
//! `BNF_ERR_CUDA_UNAVAILABLE` with a message starting "no CUDA driver/device". The launches
//! are asynchronous: a `BNF_OK` return means the host-side checks passed and the kernel was
//! queued on `stream`; the per-row results, including row errors, are in device memory once
//! the stream reaches them.

use std::ffi::c_void;

use bnf_driver::Gpu;

use crate::batch::Objective;
use crate::cuda::{self, BnfCuda, BnfCudaBatch, BnfCudaRow};
use crate::guard::entry;
use crate::status::BnfStatus;
use crate::types::BnfRowStats;

/// Open CUDA device `device`'s primary context (the one the CUDA runtime, PyTorch and CuPy use)
/// with the BNF kernels loaded, make it current on this thread, and store the handle in `*out`
/// (NULL on error). Errors: `BNF_ERR_CUDA_UNAVAILABLE` without CUDA, driver or that device.
///
/// # Safety
/// `out` points to a writable `BnfCuda *`.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_open(device: u32, out: *mut *mut BnfCuda) -> BnfStatus {
    entry("bnf_cuda_open", || cuda::open(out, || Gpu::new(device)))
}

/// As `bnf_cuda_open`, for the context current on the calling thread (made by the framework
/// that owns the memory, e.g. PyTorch after any CUDA work on the device). The context stays
/// the caller's; the handle holds the loaded kernels and must be released before the context
/// is destroyed.
///
/// # Safety
/// `out` points to a writable `BnfCuda *`.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_attach(out: *mut *mut BnfCuda) -> BnfStatus {
    entry("bnf_cuda_attach", || cuda::open(out, Gpu::attach_current))
}

/// Release a handle from `bnf_cuda_open` / `bnf_cuda_attach` (NULL: nothing to do). Finish the
/// work queued with it first.
///
/// # Safety
/// `gpu` is NULL or a handle not released yet; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_release(gpu: *mut BnfCuda) -> BnfStatus {
    entry("bnf_cuda_release", || cuda::release(gpu))
}

/// BNF loss terms and gradient on the GPU in one launch per row (paper eqs. 4, 6, 8), queued on
/// `stream` (a `CUstream`; NULL = the legacy default stream). Writes `rows` records to `row_out`
/// (batch loss = sum of `row_out[r].loss` / `num_responses`), `rows` kernel statuses to
/// `row_status` (0 = fine; read a host copy with `bnf_cuda_check_status`), and
/// `dloss/dlogits` to `grad`: a buffer of the logits' shape and dtype, the logits pointer
/// itself (in place, no extra memory), or NULL (loss only). A row that fails keeps its
/// gradient row untouched; the others are written. Reads `batch->ref_logp`.
///
/// # Safety
/// `gpu` is a live handle; every pointer in `batch`, `grad`, `row_out` and `row_status` is a
/// device pointer of its context with the sizes stated, alive until the stream has run the
/// kernel.
/// No output may overlap another argument's memory, except `grad` equal to `batch->logits` (in
/// place; checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_forward_backward(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    grad: *mut c_void,
    row_out: *mut BnfCudaRow,
    row_status: *mut i32,
    stream: *mut c_void,
) -> BnfStatus {
    entry("bnf_cuda_forward_backward", || {
        cuda::fused(
            Objective::Bnf,
            gpu,
            batch,
            grad,
            row_out,
            row_status,
            stream,
        )
    })
}

/// As `bnf_cuda_forward_backward`, for NLL (the SFT cross-entropy); ignores `batch->ref_logp`.
///
/// # Safety
/// As `bnf_cuda_forward_backward`.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_nll_forward_backward(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    grad: *mut c_void,
    row_out: *mut BnfCudaRow,
    row_status: *mut i32,
    stream: *mut c_void,
) -> BnfStatus {
    entry("bnf_cuda_nll_forward_backward", || {
        cuda::fused(
            Objective::Nll,
            gpu,
            batch,
            grad,
            row_out,
            row_status,
            stream,
        )
    })
}

/// Row statistics of every row on the GPU (`bnf_row_stats_*` per row; zeros for masked rows)
/// into `stats` (`rows` records, device), statuses into `row_status`; queued on `stream`.
/// Reads `dtype`, `vocab`, `rows`, `logits`, `targets` and `scored` of `batch`.
///
/// # Safety
/// As `bnf_cuda_forward_backward`.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_row_stats(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    stats: *mut BnfRowStats,
    row_status: *mut i32,
    stream: *mut c_void,
) -> BnfStatus {
    entry("bnf_cuda_row_stats", || {
        cuda::row_stats(gpu, batch, stats, row_status, stream)
    })
}

/// Row gradients on the GPU: row `r` of `out` = `w[r] * (softmax - onehot(y_r))` from
/// `stats[r]` as `bnf_cuda_row_stats` wrote them, zeros for masked rows. The kernel checks the
/// target, the weight and that the statistics could be a row's (status 5), but does not compare
/// them with the logits (unlike `bnf_row_grad_*`): statistics of another row, or NaN/`+inf`
/// logits, can give non-finite gradients with status 0. `out` has the logits' shape and dtype, or is the logits pointer itself (in place).
/// `w` is `rows` floats; `row_status` (may be NULL) gets a status per row. Queued on `stream`.
///
/// # Safety
/// As `bnf_cuda_forward_backward`.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_row_grad(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    stats: *const BnfRowStats,
    w: *const f32,
    out: *mut c_void,
    row_status: *mut i32,
    stream: *mut c_void,
) -> BnfStatus {
    entry("bnf_cuda_row_grad", || {
        cuda::row_grad(gpu, batch, stats, w, out, row_status, stream)
    })
}

/// Target log-probs `ell = log pi_y` per row on the GPU into `logp` and, if not NULL,
/// `lse = log sum_j exp(z_j)` into `lse` (`rows` floats each, zeros for masked rows), statuses
/// into `row_status`; queued on `stream`. The first pass of a sequence-level loss.
///
/// # Safety
/// As `bnf_cuda_forward_backward`.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_gather_logp(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    logp: *mut f32,
    lse: *mut f32,
    row_status: *mut i32,
    stream: *mut c_void,
) -> BnfStatus {
    entry("bnf_cuda_gather_logp", || {
        cuda::gather_logp(gpu, batch, logp, lse, row_status, stream)
    })
}

/// Turn a **host** copy of a GPU entry's `row_status` (`rows` ints) into the status code and
/// message a host entry gives: `BNF_OK`, or the first failing row's code with a message naming
/// the row (and how many more failed). Copy the statuses after the stream has run the kernel.
///
/// # Safety
/// `row_status` points to `rows` ints in host memory.
#[no_mangle]
pub unsafe extern "C" fn bnf_cuda_check_status(row_status: *const i32, rows: usize) -> BnfStatus {
    entry("bnf_cuda_check_status", || {
        cuda::check_status(row_status, rows)
    })
}
