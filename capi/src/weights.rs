//! `bnf_response_weights`: BNF's row weights `s = label / |y|` from response offsets and labels,
//! where `|y|` counts the scored rows of each response (never prompt or padding).

use bnf_core::response_weights;

use crate::guard::{check_outputs, entry, slice, slice_mut, Region};
use crate::status::{BnfStatus, Fail};

/// Fill `weights` (`rows` floats) with `labels[i] / |y_i|` for the rows of response `i`, which
/// are `offsets[i] .. offsets[i + 1]`; unscored rows get 0. `offsets` has `num_responses + 1`
/// entries, starts at 0, never decreases and ends at `rows`; `labels` has `num_responses`
/// entries (`BNF_PREFERRED` = 1, `BNF_DISPREFERRED` = -1, or any finite value); `scored`
/// (`rows` flags, nonzero = counts; NULL = all rows) must be the batch's. Use `num_responses` as
/// `BnfBatch::num_responses`. Nothing is written on error.
///
/// # Safety
/// Each pointer points to the number of elements stated above.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_response_weights(
    offsets: *const usize,
    labels: *const f32,
    num_responses: usize,
    scored: *const u8,
    rows: usize,
    weights: *mut f32,
) -> BnfStatus {
    entry("bnf_response_weights", || {
        if num_responses == 0 {
            // Named here: the labels slice below would report it as a zero-length `labels`.
            return Err(Fail::new(
                BnfStatus::BNF_ERR_ZERO_SIZE,
                "num_responses is 0 (offsets end at rows >= 1, so there is a response)",
            ));
        }
        let inputs = [
            Region::of(offsets, num_responses.saturating_add(1), "offsets"),
            Region::of(labels, num_responses, "labels"),
            Region::of(scored, rows, "scored"),
        ];
        check_outputs(&[Region::of(weights, rows, "weights")], &inputs)?;
        let offsets = slice(offsets, num_responses.saturating_add(1), "offsets")?;
        let labels = slice(labels, num_responses, "labels")?;
        let scored: Option<Vec<bool>> = if scored.is_null() {
            None
        } else {
            Some(
                slice(scored, rows, "scored")?
                    .iter()
                    .map(|&f| f != 0)
                    .collect(),
            )
        };
        let weights = slice_mut(weights, rows, "weights")?;
        let n = response_weights(offsets, labels, scored.as_deref(), weights)?;
        if n != num_responses {
            return Err(Fail::new(
                BnfStatus::BNF_ERR_INTERNAL,
                format!("core counted {n} responses, expected {num_responses}"),
            ));
        }
        Ok(())
    })
}

/// The label of a preferred response (`bnf_core::PREFERRED`; a literal so cbindgen can emit it,
/// tied to core's by a test).
pub const BNF_PREFERRED: f32 = 1.0;
/// The label of a dispreferred response (`bnf_core::DISPREFERRED`, tied by a test).
pub const BNF_DISPREFERRED: f32 = -1.0;
