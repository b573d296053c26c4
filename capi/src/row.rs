//! The generic bodies of the row-primitive entry points (`bnf_row_stats_*`, `bnf_row_grad_*`,
//! `bnf_dynamic_target_*`, `bnf_scalars`): argument checks, then one call into `bnf-core`,
//! run through `guard::entry` under the entry point's name. These are what a sequence-level
//! objective (DPO and friends) builds on.

use bnf_core::{bnf_scalars, check_ref_logp, dynamic_target, row_grad, row_grad_in_place};
use bnf_core::{row_stats, BnfError, Logit, RowStats};

use crate::guard::{
    check_disjoint, check_outputs, entry, optional_mut, required, slice, slice_mut,
};
use crate::guard::{Region, IN_PLACE};
use crate::status::{BnfStatus, Fail};
use crate::types::{BnfRowStats, BnfScalars};

/// A core error from a single-row call, reported by argument name rather than as "row 0".
fn single_row(e: BnfError) -> Fail {
    let status = BnfStatus::of(&e);
    match e {
        BnfError::NonFiniteLogits { col, value, .. } if value == f32::NEG_INFINITY => Fail::new(
            status,
            format!("argument `z`: the target's logit (column {col}) is -inf"),
        ),
        BnfError::NonFiniteLogits { col, value, .. } => Fail::new(
            status,
            format!("argument `z`: logit {col} is {value} (logits must be finite or -inf)"),
        ),
        BnfError::InvalidRefLogProb { value, .. } => Fail::new(
            status,
            format!(
                "argument `ref_logp`: {value} is NaN or above {} (a log-prob is <= 0; values \
                 up to {0} are rounding and read as 0)",
                bnf_core::REF_LOGP_TOLERANCE
            ),
        ),
        BnfError::TargetOutOfRange { target, vocab, .. } => Fail::new(
            status,
            format!("argument `y`: target id {target} is not below vocab size {vocab}"),
        ),
        BnfError::InvalidWeight { value, .. } => Fail::new(
            status,
            format!("argument `w`: weight {value} is not finite"),
        ),
        BnfError::Overflow {
            what, value, dtype, ..
        } => Fail::new(
            status,
            format!(
                "{what} = {value:e} overflows {dtype}: the arguments are finite but too large \
                 for the result to be represented (scale `w` or the logits down)"
            ),
        ),
        other => other.into(),
    }
}

/// Body of `bnf_row_stats_*` (entry point `name`): `*out = row_stats(z, y)`.
///
/// # Safety
/// `z` points to `vocab` elements, `out` to one `BnfRowStats`.
pub(crate) unsafe fn stats<T: Logit>(
    name: &str,
    z: *const T,
    vocab: usize,
    y: u32,
    out: *mut BnfRowStats,
) -> BnfStatus {
    entry(name, || {
        check_disjoint(z, vocab, out, 1, ("z", "out"), "")?;
        let z = slice(z, vocab, "z")?;
        let out = slice_mut(out, 1, "out")?;
        out[0] = row_stats(z, y as usize).map_err(single_row)?.into();
        Ok(())
    })
}

/// Reject a row the gradient formula `w e^(z_j - max) / S` would turn into NaN or infinity:
/// a NaN or `+inf` logit, or a logit above `stats.max` (statistics of another row). With these
/// and `stats` checked by `to_core` (`S >= 1`, `0 <= S' <= S`, finite), every value written is
/// at most `|w|` in magnitude. The rest of `stats` is not compared with `z` (that would cost
/// the statistics' pass): statistics of another row with a larger `max` give finite but wrong
/// gradients. It costs one extra read of `z`, paid only by these single-row entries (the
/// caller hands in the statistics, so the boundary checks them); the batch entries compute the
/// statistics themselves and need no such pass.
fn check_z_fits_stats<T: Logit>(z: &[T], stats: &RowStats) -> Result<(), Fail> {
    let above = |v: f32| v.is_nan() || v > stats.max;
    let Some(j) = z.iter().position(|v| above(v.to_f32())) else {
        return Ok(());
    };
    let v = z[j].to_f32();
    if v.is_nan() || v == f32::INFINITY {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
            format!("argument `z`: z[{j}] is {v}"),
        ));
    }
    Err(Fail::new(
        BnfStatus::BNF_ERR_INVALID_STATS,
        format!(
            "argument `stats`: max = {} is below z[{j}] = {v}, so these are not the statistics \
             of this row (bnf_row_stats)",
            stats.max
        ),
    ))
}

/// Body of `bnf_row_grad_*`: `out = w * (softmax(z) - onehot(y))`.
///
/// # Safety
/// `z` and `out` point to `vocab` elements; `stats` to one `BnfRowStats`.
pub(crate) unsafe fn grad<T: Logit>(
    name: &str,
    z: *const T,
    vocab: usize,
    y: u32,
    stats: *const BnfRowStats,
    w: f32,
    out: *mut T,
) -> BnfStatus {
    entry(name, || {
        let stats = required(stats, "stats")?.to_core("stats")?;
        check_disjoint(z, vocab, out, vocab, ("z", "out"), IN_PLACE)?;
        let z = slice(z, vocab, "z")?;
        check_z_fits_stats(z, &stats)?;
        let out = slice_mut(out, vocab, "out")?;
        row_grad(z, y as usize, &stats, w, out).map_err(single_row)
    })
}

/// Body of `bnf_row_grad_in_place_*`: [`grad`] written over `z`.
///
/// # Safety
/// `z` points to `vocab` writable elements; `stats` to one `BnfRowStats`.
pub(crate) unsafe fn grad_in_place<T: Logit>(
    name: &str,
    z: *mut T,
    vocab: usize,
    y: u32,
    stats: *const BnfRowStats,
    w: f32,
) -> BnfStatus {
    entry(name, || {
        let stats = required(stats, "stats")?.to_core("stats")?;
        let z = slice_mut(z, vocab, "z")?;
        check_z_fits_stats(z, &stats)?;
        row_grad_in_place(z, y as usize, &stats, w).map_err(single_row)
    })
}

/// Body of `bnf_dynamic_target_*`: `f_out = f` (eq. 6) for row `z`, target `y`, reference
/// log-prob `rho`; row statistics to `stats_out` if not NULL.
///
/// # Safety
/// `z` points to `vocab` elements, `f_out` to `vocab` floats, `stats_out` (if not NULL) to one
/// `BnfRowStats`.
pub(crate) unsafe fn target<T: Logit>(
    name: &str,
    z: *const T,
    vocab: usize,
    y: u32,
    rho: f32,
    f_out: *mut f32,
    stats_out: *mut BnfRowStats,
) -> BnfStatus {
    entry(name, || {
        let outputs = [
            Region::of(f_out, vocab, "f_out"),
            Region::of(stats_out, 1, "stats_out"),
        ];
        check_outputs(&outputs, &[Region::of(z, vocab, "z")])?;
        let z = slice(z, vocab, "z")?;
        let f = slice_mut(f_out, vocab, "f_out")?;
        let stats_out = optional_mut(stats_out, "stats_out")?;
        let stats = dynamic_target(z, y as usize, rho, f).map_err(single_row)?;
        if let Some(s) = stats_out {
            *s = stats.into();
        }
        Ok(())
    })
}

/// `*out = bnf_scalars(stats, rho)`.
///
/// # Safety
/// `stats` points to one `BnfRowStats`, `out` to one `BnfScalars`.
pub(crate) unsafe fn scalars(
    stats: *const BnfRowStats,
    rho: f32,
    out: *mut BnfScalars,
) -> Result<(), Fail> {
    let stats = required(stats, "stats")?.to_core("stats")?;
    let out = slice_mut(out, 1, "out")?;
    let rho = check_ref_logp(rho).map_err(single_row)?;
    out[0] = bnf_scalars(&stats, rho).into();
    Ok(())
}
