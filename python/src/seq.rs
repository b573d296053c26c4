//! Objectives by name and the sequence-level terms: the Python side reduces each response's
//! rows to `lp` with torch, then asks core for each term's loss and derivatives.

use bnf_core::seq::{sequence_terms as core_terms, SeqInputs};
use bnf_core::{Objective, OBJECTIVE_NAMES};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::core_error;

/// The objective `name` (any name core's `Objective::parse` accepts) with the hyperparameters
/// `params` set and checked by core.
pub fn make_objective(name: &str, params: &[(String, f32)]) -> PyResult<Objective> {
    let base = Objective::parse(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown objective {name:?} (available: {})",
            OBJECTIVE_NAMES.join(", ")
        ))
    })?;
    let mut obj = base;
    for (p, v) in params {
        if !obj.set_param(p, *v) {
            let own: Vec<&str> = base.params().iter().map(|(n, _)| *n).collect();
            let has = match own.is_empty() {
                true => "it has no hyperparameters".to_string(),
                false => format!("its hyperparameters: {}", own.join(", ")),
            };
            return Err(PyValueError::new_err(format!(
                "objective {} has no hyperparameter {p:?} ({has})",
                base.name()
            )));
        }
    }
    obj.validate().map_err(core_error)?;
    Ok(obj)
}

/// Core's objective names, one per objective.
#[pyfunction]
pub fn objective_names() -> Vec<&'static str> {
    OBJECTIVE_NAMES.to_vec()
}

/// `(canonical name, needs pairs, needs reference, [(hyperparameter, value or None)])` of the
/// objective `name` with `params` set (checked by core).
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn objective_info(
    name: &str,
    params: Vec<(String, f32)>,
) -> PyResult<(&'static str, bool, bool, Vec<(&'static str, Option<f32>)>)> {
    let obj = make_objective(name, &params)?;
    Ok((
        obj.name(),
        obj.needs_pairs(),
        obj.needs_reference(),
        obj.params(),
    ))
}

/// Each term of a sequence-level objective: `(losses, responses (k x 2), d (k x 2), z0)`,
/// from per-response `logp`, `ref_logp` (empty when unused), `lengths`, `labels` and `pairs`
/// (empty for KTO). Core checks every value and index.
#[pyfunction]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn sequence_terms(
    name: &str,
    params: Vec<(String, f32)>,
    logp: Vec<f32>,
    ref_logp: Vec<f32>,
    lengths: Vec<usize>,
    labels: Vec<f32>,
    pairs: Vec<[usize; 2]>,
) -> PyResult<(Vec<f32>, Vec<[usize; 2]>, Vec<[f32; 2]>, Option<f32>)> {
    let obj = make_objective(name, &params)?;
    let inputs = SeqInputs {
        logp: &logp,
        ref_logp: &ref_logp,
        lengths: &lengths,
        labels: &labels,
        pairs: &pairs,
    };
    let t = core_terms(&obj, &inputs).map_err(core_error)?;
    Ok((
        t.terms.iter().map(|t| t.loss).collect(),
        t.terms.iter().map(|t| t.responses).collect(),
        t.terms.iter().map(|t| t.d).collect(),
        t.kl_estimate,
    ))
}
