//! The one error type of the crate. Every check names the row (or response) it failed on and
//! the offending value, and fires before anything is written to an output buffer.

use core::fmt;

/// Where in a batch a value was computed: a row, a response, a pair, or the batch as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// A row (0-based).
    Row(usize),
    /// A response (0-based).
    Response(usize),
    /// A pair of a pairwise objective (0-based).
    Pair(usize),
    /// The whole batch (the batch loss).
    Batch,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Row(r) => write!(f, "row {r}"),
            Site::Response(i) => write!(f, "response {i}"),
            Site::Pair(p) => write!(f, "pair {p}"),
            Site::Batch => write!(f, "batch"),
        }
    }
}

/// Why a batch was rejected. Rows and responses are 0-based indices into the caller's batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BnfError {
    /// The vocabulary size is 0.
    EmptyVocab,
    /// A buffer's length does not fit the batch: `what` names the buffer.
    LengthMismatch {
        /// The buffer, e.g. `"targets"`.
        what: &'static str,
        /// The length the batch needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A scored row's target id is not below the vocabulary size.
    TargetOutOfRange {
        /// The row.
        row: usize,
        /// The target id given.
        target: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// A scored row has NaN or `+inf` among its logits, or `-inf` at its target.
    NonFiniteLogits {
        /// The row.
        row: usize,
        /// The offending column: the row's first NaN or `+inf`, else its target
        /// ([`bad_logit`](crate::bad_logit)).
        col: usize,
        /// The logit there.
        value: f32,
    },
    /// A scored row's reference log-prob is NaN, or above 0 by more than
    /// [`REF_LOGP_TOLERANCE`](crate::REF_LOGP_TOLERANCE).
    InvalidRefLogProb {
        /// The row.
        row: usize,
        /// The value given.
        value: f32,
    },
    /// A scored row's weight is NaN or infinite.
    InvalidWeight {
        /// The row.
        row: usize,
        /// The value given.
        value: f32,
    },
    /// Response offsets do not start at 0, decrease, or end past the rows.
    InvalidOffsets {
        /// The response whose range is wrong.
        response: usize,
    },
    /// A response has no scored row, so `|y| = 0`.
    EmptyResponse {
        /// The response.
        response: usize,
    },
    /// A response label (or a per-response value) is NaN or infinite, or 0 where the objective
    /// needs to know the response's side (KTO).
    InvalidLabel {
        /// The response.
        response: usize,
        /// The value given.
        value: f32,
    },
    /// The batch claims zero responses but has scored rows, so its mean is undefined.
    NoResponses,
    /// An objective that needs reference log-probs was called without them.
    MissingReference {
        /// The objective.
        objective: &'static str,
    },
    /// A pairwise objective got a response without a partner, or a malformed pair.
    InvalidPair {
        /// The pair index (or the response index when the response has no partner).
        pair: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A pairwise objective was given unpaired data (`pairs: None`).
    MissingPairs {
        /// The objective.
        objective: &'static str,
    },
    /// Row statistics handed to [`row_grad`](crate::row_grad) or
    /// [`forward_from_stats`](crate::forward_from_stats) cannot be a row's (`S < 1`,
    /// `S' < 0`, `S' > S`, a non-finite max, or an `ell` that is not a finite log-prob): they
    /// did not come from [`row_stats`](crate::row_stats).
    InvalidStats {
        /// The row.
        row: usize,
        /// The first offending field: `"sum"`, `"others_sum"`, `"max"` or `"ell"`.
        what: &'static str,
        /// Its value.
        value: f32,
    },
    /// Every input is finite, but a result is too large for the type it is returned in: a loss,
    /// a summed log-prob or a derivative beyond `f32`, a gradient beyond the gradient's dtype,
    /// or `log pi_y = z_y - max` beyond `f32` (logits spanning more than `f32::MAX`). Checked
    /// before anything is written, so every output is as it was. Scale the inputs (weights,
    /// labels, configuration, logits) down.
    Overflow {
        /// The row, response or pair it was computed for, or the batch.
        at: Site,
        /// The quantity, in words (e.g. `"loss term (weight x row cross-entropy)"`).
        what: &'static str,
        /// Its value as far as it can be had: computed in `f64` where the library computes it
        /// so (sums, means, products of checked factors), else the `f32` result itself
        /// (infinite, or NaN for e.g. `inf - inf`).
        value: f64,
        /// The type it does not fit: `"f32"`, or the gradient's `"f16"` / `"bf16"`.
        dtype: &'static str,
    },
    /// An objective's configuration value is out of its domain (e.g. `beta <= 0`).
    InvalidConfig {
        /// The objective.
        objective: &'static str,
        /// The parameter, e.g. `"beta"`.
        what: &'static str,
        /// The value given.
        value: f32,
    },
}

impl fmt::Display for BnfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BnfError::EmptyVocab => write!(f, "vocabulary size is 0"),
            BnfError::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected length {expected}, found {found}"),
            BnfError::TargetOutOfRange { row, target, vocab } => {
                write!(f, "row {row}: target id {target} is not below vocab size {vocab}")
            }
            BnfError::NonFiniteLogits { row, col, value } if value == f32::NEG_INFINITY => {
                write!(f, "row {row}: the target's logit (column {col}) is -inf")
            }
            BnfError::NonFiniteLogits { row, col, value } => write!(
                f,
                "row {row}: logit {col} is {value} (a scored row's logits must be finite or -inf)"
            ),
            // Only the sequence objectives reject -inf (BNF takes it: a token without mass).
            BnfError::InvalidRefLogProb { row, value } if value == f32::NEG_INFINITY => write!(
                f,
                "row {row}: reference log-prob is -inf; the sequence objectives need finite \
                 reference log-probs (the log-ratio would be infinite)"
            ),
            BnfError::InvalidRefLogProb { row, value } => write!(
                f,
                "row {row}: reference log-prob {value} is NaN or above {} (a log-prob is <= 0; \
                 values up to {0} are rounding and read as 0)",
                crate::REF_LOGP_TOLERANCE
            ),
            BnfError::InvalidWeight { row, value } => {
                write!(f, "row {row}: weight {value} is not finite")
            }
            BnfError::InvalidOffsets { response } => write!(
                f,
                "response {response}: offsets must start at 0, not decrease, and end at the row count"
            ),
            BnfError::EmptyResponse { response } => {
                write!(f, "response {response}: has no scored row (|y| = 0)")
            }
            BnfError::InvalidLabel { response, value } => {
                write!(f, "response {response}: value {value} is not finite (or 0 where a side is needed)")
            }
            BnfError::NoResponses => write!(f, "batch has scored rows but zero responses"),
            BnfError::MissingReference { objective } => {
                write!(f, "{objective} needs reference log-probs, none were given")
            }
            BnfError::InvalidPair { pair, reason } => write!(f, "pair {pair}: {reason}"),
            BnfError::MissingPairs { objective } => {
                write!(f, "{objective} is pairwise but was given unpaired data (no pairs)")
            }
            BnfError::InvalidStats { row, what, value } => write!(
                f,
                "row {row}: row statistics are not a row's: {what} = {value} (a row has a finite \
                 sum >= 1, 0 <= others_sum <= sum, a finite max and a finite ell <= 0)"
            ),
            BnfError::InvalidConfig {
                objective,
                what,
                value,
            } => write!(f, "{objective}: {what} = {value} is out of range"),
            BnfError::Overflow {
                at,
                what,
                value,
                dtype,
            } => write!(
                f,
                "{at}: {what} = {value:e} overflows {dtype}: the inputs are finite but too \
                 large for the result to be represented (scale them down)"
            ),
        }
    }
}

impl BnfError {
    /// The same error with its row index replaced by `row` (single-row primitives report row
    /// 0; batch functions relabel with the batch row).
    pub fn at_row(self, row: usize) -> Self {
        match self {
            BnfError::TargetOutOfRange { target, vocab, .. } => {
                BnfError::TargetOutOfRange { row, target, vocab }
            }
            BnfError::NonFiniteLogits { col, value, .. } => {
                BnfError::NonFiniteLogits { row, col, value }
            }
            BnfError::InvalidRefLogProb { value, .. } => BnfError::InvalidRefLogProb { row, value },
            BnfError::InvalidWeight { value, .. } => BnfError::InvalidWeight { row, value },
            BnfError::InvalidStats { what, value, .. } => {
                BnfError::InvalidStats { row, what, value }
            }
            BnfError::Overflow {
                at: Site::Row(_),
                what,
                value,
                dtype,
            } => BnfError::Overflow {
                at: Site::Row(row),
                what,
                value,
                dtype,
            },
            other => other,
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BnfError {}
