//! `bnf._native`: the native half of the PyTorch package. It runs bnf-core (and, for CUDA
//! tensors, bnf-driver) on tensor memory handed over as raw addresses. The Python side
//! (`python/bnf/`) owns every check of shapes, dtypes, devices and values before a call, so
//! the lengths given here are the tensors' true lengths; core still checks every value it
//! reads (NaN logits, target range, ...) and its errors come back as `bnf._native.CoreError`.
//!
//! Module map: `memory` (addresses to slices), `errors` (core's errors as Python exceptions),
//! `rows` (the row-local losses on host memory), `seq` (objectives by name, sequence terms),
//! `cuda` (the same row-local losses on device memory and torch's stream), `openmp` (core's
//! threads on torch's OpenMP team).

mod cuda;
mod errors;
mod memory;
mod openmp;
mod rows;
mod seq;

use pyo3::prelude::*;

/// The extension module `bnf._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CoreError", m.py().get_type::<errors::CoreError>())?;
    m.add_function(wrap_pyfunction!(rows::row_loss, m)?)?;
    m.add_function(wrap_pyfunction!(rows::bad_logit, m)?)?;
    m.add_function(wrap_pyfunction!(seq::objective_info, m)?)?;
    m.add_function(wrap_pyfunction!(seq::objective_names, m)?)?;
    m.add_function(wrap_pyfunction!(seq::sequence_terms, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_row_loss, m)?)?;
    m.add_function(wrap_pyfunction!(cuda::cuda_built, m)?)?;
    m.add_function(wrap_pyfunction!(openmp::use_openmp, m)?)?;
    m.add_function(wrap_pyfunction!(openmp::use_own_threads, m)?)?;
    m.add("REF_LOGP_TOLERANCE", bnf_core::REF_LOGP_TOLERANCE)?;
    Ok(())
}
