//! The row-local losses on CUDA tensors: bnf-driver's fused kernel on torch's device memory and
//! current stream, with no copy and no synchronisation. Without the `cuda` feature every call
//! says so. Per-row statuses are left for the Python side to check (one synchronisation).

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use bnf_driver::kernels::Dtype;
use bnf_driver::{Gpu, GpuError, RawBnf, RawRows, RawStream};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::core_error;

thread_local! {
    /// The driver attached to torch's context, per device ordinal, for this thread (loading
    /// the PTX once per context).
    static GPUS: RefCell<HashMap<u32, Gpu>> = RefCell::new(HashMap::new());
}

/// Whether this build runs CUDA tensors (the `cuda` feature).
#[pyfunction]
pub fn cuda_built() -> bool {
    cfg!(feature = "cuda")
}

fn gpu_error(e: GpuError) -> PyErr {
    match e {
        GpuError::Input(b) => core_error(b),
        GpuError::BuiltWithoutCuda => PyRuntimeError::new_err(
            "bnf was built without CUDA: reinstall with `MATURIN_PEP517_ARGS=\"--features cuda\" \
             pip install ./python` on a machine with CUDA, or move the tensors to the CPU",
        ),
        other => PyRuntimeError::new_err(format!("bnf CUDA: {other}")),
    }
}

/// BNF (`ref_logp` given) or NLL on device memory of the current context of `device`: the
/// same arguments as `row_loss`, plus `out` (`rows x 5` floats: loss term, pi_y, f_y, c, lse),
/// `status` (`rows` int32) and `stream` (torch's `cuda_stream`). Queues one launch.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn cuda_row_loss(
    device: u32,
    dtype: &str,
    logits: u64,
    rows: u32,
    vocab: u32,
    targets: u64,
    scored: u64,
    weights: u64,
    ref_logp: u64,
    num_responses: f32,
    grad: u64,
    out: u64,
    status: u64,
    stream: usize,
) -> PyResult<()> {
    let dtype = match dtype {
        "float32" => Dtype::F32,
        "float16" => Dtype::F16,
        "bfloat16" => Dtype::Bf16,
        other => {
            return Err(PyValueError::new_err(format!(
                "bnf CUDA: dtype {other} is not float32, float16 or bfloat16"
            )))
        }
    };
    let args = RawBnf {
        rows: RawRows {
            dtype,
            rows,
            vocab,
            logits,
            targets,
            scored,
        },
        grad,
        weights,
        ref_logp,
        num_responses,
        out,
        status,
    };
    GPUS.with(|gpus| {
        let mut gpus = gpus.borrow_mut();
        let gpu = match gpus.entry(device) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Gpu::attach_current().map_err(gpu_error)?),
        };
        // SAFETY: the Python caller passes device allocations of torch's context for `device`
        // with the sizes `RawBnf` documents, and torch's current stream on it.
        unsafe { gpu.bnf_fwd_bwd_raw(&args, stream as RawStream) }.map_err(gpu_error)
    })
}
