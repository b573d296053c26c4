//! The GPU side of the C ABI: the opaque handle [`BnfCuda`] (a `bnf_driver::Gpu`: a CUDA
//! context with the kernels loaded), the device-side batch description, the checks on device
//! pointers (NULL, alignment, sizes; the host never dereferences them), the driver's errors as
//! status codes, and the reading of the kernels' per-row statuses. The launches are the
//! driver's raw entries: on the caller's stream, no copy, no synchronisation. The rows are the
//! driver's `RawRows`, not core's `Rows`: device addresses (`u64`) with 32-bit sizes and a
//! dtype, which the host may not read as slices.

use std::ffi::c_void;

use bnf_driver::kernels::{status, Dtype, BNF_OUT_FLOATS, ROW_STATS_FLOATS};
use bnf_driver::{Gpu, GpuError, RawBnf, RawRows};

use crate::batch::{elements, Objective};
use crate::guard::{check_disjoint, check_outputs, check_ptr, required, slice, slice_mut, Region};
use crate::status::{BnfStatus, Fail};
use crate::types::BnfRowStats;

/// `BnfCudaBatch::dtype` for `float` logits.
pub const BNF_DTYPE_F32: u32 = 0;
/// `BnfCudaBatch::dtype` for IEEE half logits (`__half`, `torch.float16`).
pub const BNF_DTYPE_F16: u32 = 1;
/// `BnfCudaBatch::dtype` for bfloat16 logits (`__nv_bfloat16`, `torch.bfloat16`).
pub const BNF_DTYPE_BF16: u32 = 2;

/// A CUDA context with the BNF kernels loaded (`bnf_cuda_open` / `bnf_cuda_attach`; free it
/// with `bnf_cuda_release`). Use it from one thread at a time; each call makes its context
/// current on the calling thread.
pub struct BnfCuda {
    gpu: Gpu,
}

/// A batch on the GPU for the `bnf_cuda_*` entries: the fields of `BnfBatch` plus the logits
/// and their type. **Every pointer is a CUDA device pointer** of the handle's context (the struct
/// itself lives in host memory). Layout: logits row-major `rows x vocab` of `dtype`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BnfCudaBatch {
    /// `BNF_DTYPE_F32`, `BNF_DTYPE_F16` or `BNF_DTYPE_BF16`: the type of the logits and of any
    /// gradient buffer.
    pub dtype: u32,
    /// Vocabulary size `V` (row length), 1 to 2^32 - 1.
    pub vocab: usize,
    /// Number of rows, 1 to 2^32 - 1.
    pub rows: usize,
    /// `rows x vocab` logits (device).
    pub logits: *const c_void,
    /// `rows` target ids (device).
    pub targets: *const u32,
    /// `rows` row weights `s = label / |y|` (device); read by the fused entries only.
    pub weights: *const f32,
    /// `rows` flags, nonzero = the row counts (device); NULL = every row counts.
    pub scored: *const u8,
    /// The batch loss is the sum of the row terms divided by this; at least 1. Fused entries
    /// only.
    pub num_responses: usize,
    /// `rows` reference log-probs `rho = log pi_ref(y)` (device); required by
    /// `bnf_cuda_forward_backward`, ignored by the other entries.
    pub ref_logp: *const f32,
}

/// One row's results from the fused GPU entries, as the kernel writes them (device memory,
/// `rows` of them). Zeros for masked and failed rows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BnfCudaRow {
    /// The row's term in the batch sum, `s * CE(f, pi)`: the batch loss is the sum of `loss`
    /// over rows divided by `num_responses`.
    pub loss: f32,
    /// `pi_y`, the policy's probability of the target.
    pub pi_y: f32,
    /// `f_y` (1 for NLL).
    pub f_y: f32,
    /// The gradient scale `c` (1 for NLL).
    pub c: f32,
    /// `lse = log sum_j exp(z_j)`.
    pub lse: f32,
}

// The kernels write these records as plain floats.
const _: () = assert!(std::mem::size_of::<BnfCudaRow>() == 4 * BNF_OUT_FLOATS);
const _: () = assert!(std::mem::size_of::<BnfRowStats>() == 4 * ROW_STATS_FLOATS);

impl From<GpuError> for Fail {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Input(e) => e.into(),
            GpuError::BuiltWithoutCuda => Fail::new(
                BnfStatus::BNF_ERR_CUDA_UNAVAILABLE,
                "no CUDA driver/device: libbnf was built without CUDA (build it with \
                 `cargo build --release -p bnf-capi --features cuda`)",
            ),
            e if e.is_unavailable() => Fail::new(
                BnfStatus::BNF_ERR_CUDA_UNAVAILABLE,
                format!("no CUDA driver/device: {e}"),
            ),
            GpuError::NoContext => Fail::new(
                BnfStatus::BNF_ERR_CUDA_UNAVAILABLE,
                "no CUDA context is current on this thread (do any CUDA work on the device \
                 first, e.g. allocate a tensor there, or use bnf_cuda_open)",
            ),
            e @ GpuError::TooLarge { .. } => Fail::new(BnfStatus::BNF_ERR_ZERO_SIZE, e.to_string()),
            // Checked here before the driver is called, with the C argument's name; these are
            // the driver's own checks of the same.
            e @ GpuError::NullPointer { .. } => {
                Fail::new(BnfStatus::BNF_ERR_NULL_POINTER, e.to_string())
            }
            e @ GpuError::PartialOverlap { .. } => {
                Fail::new(BnfStatus::BNF_ERR_LENGTH_MISMATCH, e.to_string())
            }
            e => Fail::new(BnfStatus::BNF_ERR_CUDA, e.to_string()),
        }
    }
}

/// Body of `bnf_cuda_open` / `bnf_cuda_attach`: `*out` = a new handle from `make`, or NULL.
///
/// # Safety
/// `out`, if not NULL, points to a writable `BnfCuda *`.
pub(crate) unsafe fn open(
    out: *mut *mut BnfCuda,
    make: impl FnOnce() -> Result<Gpu, GpuError>,
) -> Result<(), Fail> {
    let out = slice_mut(out, 1, "out")?;
    out[0] = std::ptr::null_mut();
    let gpu = make()?;
    out[0] = Box::into_raw(Box::new(BnfCuda { gpu }));
    Ok(())
}

/// Body of `bnf_cuda_release`.
///
/// # Safety
/// `gpu` is NULL or a handle from `open` not released yet.
pub(crate) unsafe fn release(gpu: *mut BnfCuda) -> Result<(), Fail> {
    if !gpu.is_null() {
        drop(Box::from_raw(gpu));
    }
    Ok(())
}

/// A device pointer as the driver's `u64`, after the NULL and alignment checks.
fn device<T>(p: *const T, what: &str) -> Result<u64, Fail> {
    check_ptr(p, what)?;
    Ok(p as u64)
}

/// As [`device`], with NULL allowed (0).
fn optional_device<T>(p: *const T, what: &str) -> Result<u64, Fail> {
    if p.is_null() {
        Ok(0)
    } else {
        device(p, what)
    }
}

/// A logits-typed device pointer (aligned for `dtype`).
fn device_logits(p: *const c_void, dtype: Dtype, what: &str) -> Result<u64, Fail> {
    match dtype {
        Dtype::F32 => device(p.cast::<f32>(), what),
        Dtype::F16 | Dtype::Bf16 => device(p.cast::<u16>(), what),
    }
}

/// The checked rows of `batch`, and the byte size of its logits.
fn rows_of(b: &BnfCudaBatch) -> Result<(RawRows, usize), Fail> {
    let dtype = match b.dtype {
        BNF_DTYPE_F32 => Dtype::F32,
        BNF_DTYPE_F16 => Dtype::F16,
        BNF_DTYPE_BF16 => Dtype::Bf16,
        d => {
            return Err(Fail::new(
                BnfStatus::BNF_ERR_INVALID_ARGUMENT,
                format!("batch->dtype is {d}, not BNF_DTYPE_F32 (0), _F16 (1) or _BF16 (2)"),
            ))
        }
    };
    let bytes = elements(b.vocab, b.rows)?
        .checked_mul(dtype.size() as usize)
        .ok_or_else(|| Fail::new(BnfStatus::BNF_ERR_ZERO_SIZE, "batch: logits overflow"))?;
    let index = |n: usize, what: &str| {
        u32::try_from(n).map_err(|_| {
            Fail::new(
                BnfStatus::BNF_ERR_ZERO_SIZE,
                format!("batch->{what} = {n} does not fit the kernels' 32-bit indices"),
            )
        })
    };
    let (vocab, rows) = (index(b.vocab, "vocab")?, index(b.rows, "rows")?);
    let raw = RawRows {
        dtype,
        rows,
        vocab,
        logits: device_logits(b.logits, dtype, "batch->logits")?,
        targets: device(b.targets, "batch->targets")?,
        scored: optional_device(b.scored, "batch->scored")?,
    };
    Ok((raw, bytes))
}

/// A gradient output of the logits' shape: NULL gives 0 when `optional`, the logits pointer
/// itself is in place, anything else must be aligned and not overlap the logits.
fn grad_of(
    out: *mut c_void,
    rows: &RawRows,
    bytes: usize,
    what: &str,
    optional: bool,
) -> Result<u64, Fail> {
    if (out.is_null() && optional) || out as u64 == rows.logits {
        return Ok(out as u64);
    }
    let p = device_logits(out, rows.dtype, what)?;
    let (z, g) = (rows.logits as *const u8, out as *const u8);
    let hint = "; pass the logits pointer itself to write over them";
    check_disjoint(z, bytes, g, bytes, ("batch->logits", what), hint)?;
    Ok(p)
}

/// Reject device outputs that overlap the batch's arrays (`targets`, `scored`, the logits),
/// the `inputs` an entry also reads, or each other (the kernels would read what they have
/// overwritten). `grad` is the gradient output, `(pointer, name)`: the logits themselves (in
/// place) turn the logits into an output; NULL: no gradient.
fn check_device_overlaps<'a>(
    b: &BnfCudaBatch,
    bytes: usize,
    grad: Option<(*const c_void, &'a str)>,
    inputs: &[Region<'a>],
    outputs: &[Region<'a>],
) -> Result<(), Fail> {
    let z = Region::of(b.logits.cast::<u8>(), bytes, "batch->logits");
    let mut ins = vec![
        Region::of(b.targets, b.rows, "batch->targets"),
        Region::of(b.scored, b.rows, "batch->scored"),
    ];
    ins.extend_from_slice(inputs);
    let mut outs = outputs.to_vec();
    match grad {
        Some((g, _)) if g == b.logits => outs.push(z),
        Some((g, name)) => {
            ins.push(z);
            outs.push(Region::of(g.cast::<u8>(), bytes, name));
        }
        None => ins.push(z),
    }
    check_outputs(&outs, &ins)
}

/// Body of `bnf_cuda_forward_backward` and `bnf_cuda_nll_forward_backward`: the fused kernel.
///
/// # Safety
/// `gpu` is NULL or a live handle; `batch` is NULL or points to a `BnfCudaBatch` whose device
/// pointers hold the sizes it states; `grad` (if not NULL), `row_out` and `row_status` are
/// device buffers of `rows x vocab` logits, `rows` records and `rows` ints.
pub(crate) unsafe fn fused(
    objective: Objective,
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    grad: *mut c_void,
    row_out: *mut BnfCudaRow,
    row_status: *mut i32,
    stream: *mut c_void,
) -> Result<(), Fail> {
    let gpu = &required(gpu, "gpu")?.gpu;
    let b = required(batch, "batch")?;
    let (rows, bytes) = rows_of(b)?;
    let ref_logp = match objective {
        Objective::Bnf => device(b.ref_logp, "batch->ref_logp")?,
        Objective::Nll => 0,
    };
    if b.num_responses == 0 {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_INVALID_RESPONSES,
            "batch->num_responses is 0",
        ));
    }
    let grad_ptr = grad_of(grad, &rows, bytes, "grad", true)?;
    let mut inputs = vec![Region::of(b.weights, b.rows, "batch->weights")];
    if let Objective::Bnf = objective {
        inputs.push(Region::of(b.ref_logp, b.rows, "batch->ref_logp"));
    }
    let outputs = [
        Region::of(row_out, b.rows, "row_out"),
        Region::of(row_status, b.rows, "row_status"),
    ];
    let written = Some((grad.cast_const(), "grad"));
    check_device_overlaps(b, bytes, written, &inputs, &outputs)?;
    let args = RawBnf {
        rows,
        grad: grad_ptr,
        weights: device(b.weights, "batch->weights")?,
        ref_logp,
        num_responses: b.num_responses as f32,
        out: device(row_out, "row_out")?,
        status: device(row_status, "row_status")?,
    };
    Ok(gpu.bnf_fwd_bwd_raw(&args, stream)?)
}

/// Body of `bnf_cuda_row_stats`.
///
/// # Safety
/// As [`fused`]; `stats` holds `rows` records, `row_status` `rows` ints (device).
pub(crate) unsafe fn row_stats(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    stats: *mut BnfRowStats,
    row_status: *mut i32,
    stream: *mut c_void,
) -> Result<(), Fail> {
    let gpu = &required(gpu, "gpu")?.gpu;
    let b = required(batch, "batch")?;
    let (rows, bytes) = rows_of(b)?;
    let outputs = [
        Region::of(stats, b.rows, "stats"),
        Region::of(row_status, b.rows, "row_status"),
    ];
    check_device_overlaps(b, bytes, None, &[], &outputs)?;
    let stats = device(stats, "stats")?;
    let status = device(row_status, "row_status")?;
    Ok(gpu.row_stats_raw(&rows, stats, status, stream)?)
}

/// Body of `bnf_cuda_row_grad`.
///
/// # Safety
/// As [`fused`]; `stats` and `w` hold `rows` records and floats, `out` `rows x vocab` logits,
/// `row_status` (if not NULL) `rows` ints (device).
pub(crate) unsafe fn row_grad(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    stats: *const BnfRowStats,
    w: *const f32,
    out: *mut c_void,
    row_status: *mut i32,
    stream: *mut c_void,
) -> Result<(), Fail> {
    let gpu = &required(gpu, "gpu")?.gpu;
    let b = required(batch, "batch")?;
    let (rows, bytes) = rows_of(b)?;
    let out_ptr = out.cast_const();
    let out = grad_of(out, &rows, bytes, "out", false)?;
    let inputs = [
        Region::of(stats, b.rows, "stats"),
        Region::of(w, b.rows, "w"),
    ];
    let outputs = [Region::of(row_status, b.rows, "row_status")];
    check_device_overlaps(b, bytes, Some((out_ptr, "out")), &inputs, &outputs)?;
    let stats = device(stats, "stats")?;
    let w = device(w, "w")?;
    let status = optional_device(row_status, "row_status")?;
    Ok(gpu.row_grad_raw(&rows, out, stats, w, status, stream)?)
}

/// Body of `bnf_cuda_gather_logp`.
///
/// # Safety
/// As [`fused`]; `logp`, `lse` (if not NULL) and `row_status` hold `rows` values (device).
pub(crate) unsafe fn gather_logp(
    gpu: *mut BnfCuda,
    batch: *const BnfCudaBatch,
    logp: *mut f32,
    lse: *mut f32,
    row_status: *mut i32,
    stream: *mut c_void,
) -> Result<(), Fail> {
    let gpu = &required(gpu, "gpu")?.gpu;
    let b = required(batch, "batch")?;
    let (rows, bytes) = rows_of(b)?;
    let outputs = [
        Region::of(logp, b.rows, "logp"),
        Region::of(lse, b.rows, "lse"),
        Region::of(row_status, b.rows, "row_status"),
    ];
    check_device_overlaps(b, bytes, None, &[], &outputs)?;
    let logp = device(logp, "logp")?;
    let lse = optional_device(lse, "lse")?;
    let status = device(row_status, "row_status")?;
    Ok(gpu.gather_logp_raw(&rows, logp, lse, status, stream)?)
}

/// Body of `bnf_cuda_check_status`: the first failing row of a host copy of `row_status`, as
/// the status code and message a host entry would give, with how many rows failed.
///
/// # Safety
/// `row_status` points to `rows` ints in host memory.
pub(crate) unsafe fn check_status(row_status: *const i32, rows: usize) -> Result<(), Fail> {
    let statuses = slice(row_status, rows, "row_status")?;
    let mut failed = statuses
        .iter()
        .enumerate()
        .filter(|(_, &s)| s != status::OK);
    let Some((r, &code)) = failed.next() else {
        return Ok(());
    };
    let (st, what) = match code {
        status::TARGET_OUT_OF_RANGE => (
            BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE,
            "target id is not below the vocabulary size",
        ),
        status::INVALID_WEIGHT => (
            BnfStatus::BNF_ERR_INVALID_WEIGHT,
            "row weight is NaN or infinite",
        ),
        status::NON_FINITE_LOGITS => (
            BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
            "logits contain NaN or +inf, or the target's logit is -inf",
        ),
        status::INVALID_REF_LOGP => (
            BnfStatus::BNF_ERR_INVALID_REF_LOGP,
            "reference log-prob is NaN or above 0 by more than 1e-3",
        ),
        status::INVALID_STATS => (
            BnfStatus::BNF_ERR_INVALID_STATS,
            "row statistics are not a row's (sum < 1, others' sum > sum, or non-finite)",
        ),
        _ => (BnfStatus::BNF_ERR_INTERNAL, "unknown kernel status"),
    };
    let more = match failed.count() {
        0 => String::new(),
        n => format!("; {n} more failed row(s)"),
    };
    Err(Fail::new(
        st,
        format!("row {r}: {what} (kernel status {code}){more}"),
    ))
}
