//! Row weights from responses: BNF's `s = label / |y|`, where `|y|` is the number of scored
//! rows of *that* response (completion tokens including EOS; never prompt or padding). The
//! paper normalises per response, not by the shortest response in the micro-batch.

use crate::check;
use crate::error::BnfError;

/// The label of a preferred response.
pub const PREFERRED: f32 = 1.0;
/// The label of a dispreferred response.
pub const DISPREFERRED: f32 = -1.0;

/// Fill `weights` (one per row) with `labels[i] / |y_i|` for the rows of response `i`, which
/// are `offsets[i]..offsets[i + 1]`; unscored rows get 0. `offsets` starts at 0, never
/// decreases and ends at the row count; `scored` (`None`: all rows) must match the batch's.
/// Returns the number of responses (the batch's `num_responses`).
///
/// Errors: bad offsets, a response with no scored row, a non-finite label, length mismatches.
/// Nothing is written on error.
pub fn response_weights(
    offsets: &[usize],
    labels: &[f32],
    scored: Option<&[bool]>,
    weights: &mut [f32],
) -> Result<usize, BnfError> {
    let rows = weights.len();
    if offsets.is_empty() {
        return Err(BnfError::InvalidOffsets { response: 0 });
    }
    let n = offsets.len() - 1;
    check::len("labels", n, labels.len())?;
    if let Some(m) = scored {
        check::len("scored", rows, m.len())?;
    }
    if offsets[0] != 0 {
        return Err(BnfError::InvalidOffsets { response: 0 });
    }
    if offsets[n] != rows {
        return Err(BnfError::InvalidOffsets {
            response: n.saturating_sub(1),
        });
    }
    let is_scored = |r: usize| scored.is_none_or(|m| m[r]);
    for i in 0..n {
        let (a, b) = (offsets[i], offsets[i + 1]);
        if b < a || b > rows {
            return Err(BnfError::InvalidOffsets { response: i });
        }
        if !labels[i].is_finite() {
            return Err(BnfError::InvalidLabel {
                response: i,
                value: labels[i],
            });
        }
        if !(a..b).any(is_scored) {
            return Err(BnfError::EmptyResponse { response: i });
        }
    }
    for i in 0..n {
        let rng = offsets[i]..offsets[i + 1];
        let len = rng.clone().filter(|&r| is_scored(r)).count();
        let s = labels[i] / len as f32;
        for r in rng {
            weights[r] = if is_scored(r) { s } else { 0.0 };
        }
    }
    Ok(n)
}
