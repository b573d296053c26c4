//! Core's errors as Python exceptions. `CoreError` (a `ValueError`) carries core's message and
//! the row or response it names, so the Python side can say which tensor index was at fault
//! (a core row is a flattened `(sequence, position)`).

use bnf_core::{BnfError, Site};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

create_exception!(
    _native,
    CoreError,
    PyValueError,
    "bnf-core refused the batch: args are (message, kind, row, response, column, value), with \
     None where core's error names no such index."
);

/// `e` as a `CoreError(message, kind, row, response, column, value)`.
pub fn core_error(e: BnfError) -> PyErr {
    let (kind, row, response, col, value): (&str, _, _, _, _) = match e {
        BnfError::TargetOutOfRange { row, target, .. } => {
            ("target", Some(row), None, None, Some(target as f32))
        }
        BnfError::NonFiniteLogits { row, col, value } => {
            ("logits", Some(row), None, Some(col), Some(value))
        }
        BnfError::InvalidRefLogProb { row, value } => {
            ("ref_logp", Some(row), None, None, Some(value))
        }
        BnfError::InvalidWeight { row, value } => ("weight", Some(row), None, None, Some(value)),
        BnfError::InvalidStats { row, value, .. } => ("stats", Some(row), None, None, Some(value)),
        BnfError::EmptyResponse { response } => ("empty", None, Some(response), None, None),
        BnfError::InvalidLabel { response, value } => {
            ("label", None, Some(response), None, Some(value))
        }
        BnfError::InvalidPair { pair, .. } => ("pair", None, Some(pair), None, None),
        // A finite input whose result does not fit the output type; `value` may exceed f32.
        BnfError::Overflow { at, value, .. } => {
            let v = Some(value as f32);
            match at {
                Site::Row(r) => ("overflow", Some(r), None, None, v),
                Site::Response(r) | Site::Pair(r) => ("overflow", None, Some(r), None, v),
                Site::Batch => ("overflow", None, None, None, v),
            }
        }
        _ => ("other", None, None, None, None),
    };
    CoreError::new_err((e.to_string(), kind, row, response, col, value))
}
