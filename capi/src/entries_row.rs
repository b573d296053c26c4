//! The row-primitive entry points for f32, f16 and bf16 rows (f16/bf16 as `uint16_t` bits):
//! statistics, gradient (into a buffer or in place), the dynamic target `f` (eq. 6), and BNF's row
//! scalars. A sequence-level objective computes `bnf_row_stats_*` per row, reduces `ell` over each
//! sequence, then calls `bnf_row_grad_*` with its own weight. Each symbol is a one-line wrapper of
//! a generic body in `row.rs`; the f32 ones are written here, their f16 and bf16 twins are
//! generated from them by `build.rs` (which says why not with a macro).

use crate::guard::entry;
use crate::row;
use crate::status::BnfStatus;
use crate::types::{BnfRowStats, BnfScalars};
use bnf_core::{bf16, f16};

/// Row statistics of `vocab` `float` logits `z` with target `y` (one read of the row).
/// `BNF_ERR_NON_FINITE_LOGITS` for a NaN or `+inf` logit, or `-inf` at `y`; finite logits whose
/// `log pi_y = z_y - lse` is beyond `float` (`z_y` more than `FLT_MAX` below the row's largest
/// logit) are `BNF_ERR_OVERFLOW`.
///
/// # Safety
/// `z` points to `vocab` elements, `out` to one `BnfRowStats`.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_row_stats_f32(
    z: *const f32,
    vocab: usize,
    y: u32,
    out: *mut BnfRowStats,
) -> BnfStatus {
    row::stats("bnf_row_stats_f32", z, vocab, y, out)
}

/// Write `w * (softmax(z) - onehot(y))` into `out` (`float`, `vocab` elements, must not overlap
/// `z`), from `stats = bnf_row_stats_f32(z, y)`.
///
/// Checked before anything is written: `stats` is one `bnf_row_stats_*` can produce
/// (`BNF_ERR_INVALID_STATS`), `y < vocab`, `w` finite, no NaN or `+inf` in `z`
/// (`BNF_ERR_NON_FINITE_LOGITS`), no logit above `stats->max` (`BNF_ERR_INVALID_STATS`), and
/// the gradient fits the type (`BNF_ERR_OVERFLOW`: the values reach `|w|` up to two
/// roundings, so a `|w|` within rounding of `FLT_MAX`, or above the half type's largest value,
/// 65504 for f16, is refused). So on `BNF_OK` every value written is finite and at most `|w|`
/// in magnitude up to two roundings. Statistics of another row are caught only through `max`:
/// with a larger `max` they give finite but wrong values.
///
/// # Safety
/// `z` and `out` point to `vocab` elements, `stats` to one `BnfRowStats`.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_row_grad_f32(
    z: *const f32,
    vocab: usize,
    y: u32,
    stats: *const BnfRowStats,
    w: f32,
    out: *mut f32,
) -> BnfStatus {
    row::grad("bnf_row_grad_f32", z, vocab, y, stats, w, out)
}

/// As `bnf_row_grad_f32`, written over `z` itself (bit for bit the same values; the same
/// checks; on error `z` is untouched).
///
/// # Safety
/// `z` points to `vocab` writable elements, `stats` to one `BnfRowStats`.
#[no_mangle]
pub unsafe extern "C" fn bnf_row_grad_in_place_f32(
    z: *mut f32,
    vocab: usize,
    y: u32,
    stats: *const BnfRowStats,
    w: f32,
) -> BnfStatus {
    row::grad_in_place("bnf_row_grad_in_place_f32", z, vocab, y, stats, w)
}

/// The paper's dynamic target distribution `f` (eq. 6) for one row of `float` logits, written
/// to `f_out` (`vocab` floats): `f_y = min(pi_y / pi_ref, 1)`, the rest shared in proportion to
/// `pi`. `ref_logp = log pi_ref(y)` (`<= 0`, `-inf` allowed, `(0, 1e-3]` read as 0). Row
/// statistics go to `stats_out` if it is not NULL. For inspection and tests: the batch entries
/// never materialise `f`.
///
/// # Safety
/// `z` points to `vocab` elements, `f_out` to `vocab` floats, `stats_out` (if not NULL) to one
/// `BnfRowStats`.
/// No output may overlap any input or another output (arrays checked: `BNF_ERR_LENGTH_MISMATCH`).
#[no_mangle]
pub unsafe extern "C" fn bnf_dynamic_target_f32(
    z: *const f32,
    vocab: usize,
    y: u32,
    ref_logp: f32,
    f_out: *mut f32,
    stats_out: *mut BnfRowStats,
) -> BnfStatus {
    row::target(
        "bnf_dynamic_target_f32",
        z,
        vocab,
        y,
        ref_logp,
        f_out,
        stats_out,
    )
}

/// BNF's row scalars `f_y`, `c` and the row cross-entropy against `f`, from row statistics and
/// `ref_logp = log pi_ref(y)`.
///
/// # Safety
/// `stats` points to one `BnfRowStats`, `out` to one `BnfScalars`.
#[no_mangle]
pub unsafe extern "C" fn bnf_scalars(
    stats: *const BnfRowStats,
    ref_logp: f32,
    out: *mut BnfScalars,
) -> BnfStatus {
    entry("bnf_scalars", || row::scalars(stats, ref_logp, out))
}

include!(concat!(env!("OUT_DIR"), "/entries_row_halves.rs"));
