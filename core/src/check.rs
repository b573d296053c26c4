//! Every check of the inputs, in one place: the lengths, the batch, each scored row (target,
//! weight, reference log-prob), the inputs of a row gradient and the pairs. Core runs them, and
//! so do the crates that run the same formulas elsewhere (the GPU driver before a launch, the C
//! ABI at its boundary), so that one rule gives one error whichever runs it.
//!
//! Each function returns the first failure as a [`BnfError`]. The single-row checks report row
//! 0; the batch ones name the batch row (see [`BnfError::at_row`]). None of them reads a logit:
//! that is the row pass's own check ([`crate::row_stats`], [`crate::bad_logit`]).

use crate::batch::{Batch, Rows};
use crate::dtype::Logit;
use crate::error::{BnfError, Site};
use crate::objective::kind::Objective;
use crate::stats::RowStats;

/// How far above 0 a reference log-prob may be and still be read as 0: a reference computed
/// in `f32` has `lse` rounded to a few ulp of its magnitude, so `z_y - lse` can come out a
/// little positive for a near-certain token. Values in `(0, REF_LOGP_TOLERANCE]` are clamped to
/// 0; larger ones are an error. The kernels' `BNF_REF_LOGP_TOLERANCE` (a test in
/// `kernels/tests/core.rs` holds them equal).
pub const REF_LOGP_TOLERANCE: f32 = 1e-3;

/// A buffer has the length the batch needs (`LengthMismatch` naming `what`).
pub fn len(what: &'static str, expected: usize, found: usize) -> Result<(), BnfError> {
    if expected == found {
        Ok(())
    } else {
        Err(BnfError::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

/// A reference log-prob `rho = log pi_ref(y)`, with rounding noise above 0 clamped: NaN, or
/// above 0 by more than [`REF_LOGP_TOLERANCE`], is `InvalidRefLogProb`. `-inf` (the reference
/// gives the token no mass) is valid.
pub fn ref_logp(rho: f32) -> Result<f32, BnfError> {
    if rho.is_nan() || rho > REF_LOGP_TOLERANCE {
        Err(BnfError::InvalidRefLogProb { row: 0, value: rho })
    } else {
        Ok(rho.min(0.0))
    }
}

/// A row of `vocab` logits exists and `y` indexes it (`EmptyVocab`, `TargetOutOfRange`).
pub fn target(vocab: usize, y: usize) -> Result<(), BnfError> {
    if vocab == 0 {
        return Err(BnfError::EmptyVocab);
    }
    if y >= vocab {
        return Err(BnfError::TargetOutOfRange {
            row: 0,
            target: y.min(u32::MAX as usize) as u32,
            vocab,
        });
    }
    Ok(())
}

/// A row weight is finite (`InvalidWeight`).
pub fn weight(w: f32) -> Result<(), BnfError> {
    if w.is_finite() {
        Ok(())
    } else {
        Err(BnfError::InvalidWeight { row: 0, value: w })
    }
}

/// Statistics that can be a row's, as [`crate::row_grad`] needs them: `S >= 1` and finite,
/// `0 <= S' <= S`, a finite max (`InvalidStats` naming the first bad field).
pub fn stats(stats: &RowStats) -> Result<(), BnfError> {
    // Written so that NaN fails every test.
    let bad = if !(stats.sum.is_finite() && stats.sum >= 1.0) {
        Some(("sum", stats.sum))
    } else if !(stats.others_sum >= 0.0 && stats.others_sum <= stats.sum) {
        Some(("others_sum", stats.others_sum))
    } else if !stats.max.is_finite() {
        Some(("max", stats.max))
    } else {
        None
    };
    match bad {
        Some((what, value)) => Err(BnfError::InvalidStats {
            row: 0,
            what,
            value,
        }),
        None => Ok(()),
    }
}

/// What [`crate::row_grad`] and [`crate::row_grad_in_place`] need, in their order: `y` in
/// range ([`target`]), a finite weight ([`weight`]) and a row's statistics ([`stats`]).
pub fn grad_inputs(vocab: usize, y: usize, s: &RowStats, w: f32) -> Result<(), BnfError> {
    target(vocab, y)?;
    weight(w)?;
    stats(s)
}

/// The row gradient `w (pi - onehot(y))` that [`crate::row_grad`] writes from `s` fits `T`
/// (`Overflow` at row 0 otherwise). It writes `(w / S) e^(z_j - m)` for `j != y`, each at most
/// `|w / S|` in magnitude (`e^(z_j - m) <= 1`), and `-(w / S) S'` at `y`; rounding to `T` is
/// monotone, so these two values fitting means every value written fits. Call after
/// [`grad_inputs`] (a finite `w`, `S >= 1`). The values can exceed `|w|` by two roundings, so
/// a `w` within an ulp of `T`'s largest value may fail, as may any `|w|` above it (an `f16`
/// gradient with `|w| > 65504`).
pub fn grad_fits<T: Logit>(s: &RowStats, w: f32) -> Result<(), BnfError> {
    let scale = w / s.sum;
    let fits = |v: f32| T::from_f32(v).to_f32().is_finite();
    if fits(scale) && fits(-scale * s.others_sum) {
        return Ok(());
    }
    Err(BnfError::Overflow {
        at: Site::Row(0),
        what: "largest gradient entry |w| max(1, S') / S",
        value: (w as f64).abs() / s.sum as f64 * (s.others_sum as f64).max(1.0),
        dtype: T::NAME,
    })
}

/// Headroom for the rounding between a bound computed in `f64` and the `f32` values it bounds
/// (a few roundings of relative size `2^-24` each).
const ROUNDING_MARGIN: f64 = 1.0 + 1.0 / (1u64 << 20) as f64;

/// Whether a gradient weight of magnitude at most `w_bound` (in `f64`, before rounding to
/// `f32`) gives a row gradient that fits `T` however the row's statistics turn out: every
/// value [`crate::row_grad`] writes is at most `|w|` times two roundings, so a bound with
/// that margin below `T`'s largest value guarantees [`grad_fits`]. The cheap test the batch
/// passes make before they know `c` (`|s c / n| <= |s| / n`).
pub(crate) fn grad_bound_fits<T: Logit>(w_bound: f64) -> bool {
    w_bound * ROUNDING_MARGIN * ROUNDING_MARGIN < T::MAX as f64
}

/// Every scored row's gradient weight bound `|s| / num_responses` (BNF's `|s c / n|` with
/// `c <= 1`, NLL's exactly) fits `T` with a rounding margin (`grad_bound_fits`), so no row gradient can
/// overflow `T` whatever the logits (`Overflow` naming the first row that does not). For
/// callers that write gradients without a pass that could check the exact values first (the
/// GPU driver); core's own batch passes use the bound only to skip the exact check. A weight
/// that is not finite is not an overflow but an invalid weight, the error of
/// [`scored_rows`]'s checks, so it is skipped here.
pub fn weights_fit<T: Logit>(b: &Batch<'_>) -> Result<(), BnfError> {
    let n = b.num_responses.max(1) as f64;
    let finite = |r: &usize| b.weights[*r].is_finite();
    for r in (0..b.rows()).filter(|&r| b.is_scored(r)).filter(finite) {
        let bound = (b.weights[r] as f64).abs() / n;
        if !grad_bound_fits::<T>(bound) {
            return Err(BnfError::Overflow {
                at: Site::Row(r),
                what: "gradient weight |s| / num_responses (bounds the row's gradient)",
                value: bound,
                dtype: T::NAME,
            });
        }
    }
    Ok(())
}

/// Whether a value whose magnitude is at most `bound` (in `f64`) surely fits `f32` once
/// rounded, with [`ROUNDING_MARGIN`] to spare.
pub(crate) fn f32_bound_fits(bound: f64) -> bool {
    bound * ROUNDING_MARGIN * ROUNDING_MARGIN < f32::MAX as f64
}

/// `Overflow` at `at` when the `f64` result `value` does not fit `f32` once rounded (or is not
/// a number at all): the check of every loss, sum and derivative a batch returns. Returns the
/// rounded value.
pub fn fits_f32(at: Site, what: &'static str, value: f64) -> Result<f32, BnfError> {
    let v = value as f32;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(BnfError::Overflow {
            at,
            what,
            value,
            dtype: "f32",
        })
    }
}

/// A vocabulary (`EmptyVocab`) and `rows x vocab` logits (`LengthMismatch`, with `expected`
/// `usize::MAX` when the product overflows).
pub fn logits(vocab: usize, rows: usize, logits_len: usize) -> Result<(), BnfError> {
    if vocab == 0 {
        return Err(BnfError::EmptyVocab);
    }
    let expected = rows.checked_mul(vocab).ok_or(BnfError::LengthMismatch {
        what: "logits",
        expected: usize::MAX,
        found: logits_len,
    })?;
    len("logits", expected, logits_len)
}

/// The batch-wide checks of a row primitive run over `rows`: [`logits`], then the mask's
/// length. Per-row targets are checked where the rows are read.
pub fn rows(rows: &Rows<'_>, logits_len: usize) -> Result<(), BnfError> {
    logits(rows.vocab, rows.len(), logits_len)?;
    match rows.scored {
        Some(m) => len("scored", rows.len(), m.len()),
        None => Ok(()),
    }
}

/// The batch-wide checks of the row-local objectives, in their order: [`logits`], the lengths
/// of the weights and the mask, responses for the scored rows (`NoResponses`), and the
/// reference log-probs' length when given (BNF).
pub fn batch(b: &Batch<'_>, ref_logp: Option<&[f32]>, logits_len: usize) -> Result<(), BnfError> {
    let n = b.rows();
    logits(b.vocab, n, logits_len)?;
    len("weights", n, b.weights.len())?;
    if let Some(m) = b.scored {
        len("scored", n, m.len())?;
    }
    if b.num_responses == 0 && (0..n).any(|r| b.is_scored(r)) {
        return Err(BnfError::NoResponses);
    }
    match ref_logp {
        Some(rp) => len("ref_logp", n, rp.len()),
        None => Ok(()),
    }
}

/// Scored row `r`'s target and weight, named by its row. Call after [`batch`].
pub(crate) fn scored_row(b: &Batch<'_>, r: usize) -> Result<(), BnfError> {
    target(b.vocab, b.targets[r] as usize).map_err(|e| e.at_row(r))?;
    weight(b.weights[r]).map_err(|e| e.at_row(r))
}

/// What the row-local objectives check per scored row before reading its logits, in their
/// order: target, weight, then the reference log-prob when given ([`ref_logp`]). The first
/// failing row's error. Call after [`batch`]. (Core checks each row's logits between its
/// weight and its reference log-prob, so a row whose logits are bad may come first there.)
pub fn scored_rows(b: &Batch<'_>, ref_logp: Option<&[f32]>) -> Result<(), BnfError> {
    for r in (0..b.rows()).filter(|&r| b.is_scored(r)) {
        scored_row(b, r)?;
        if let Some(rp) = ref_logp {
            self::ref_logp(rp[r]).map_err(|e| e.at_row(r))?;
        }
    }
    Ok(())
}

/// What a row gradient in `T` over `rows` needs, in its order: the lengths of `stats` and
/// `w`, then per scored row [`grad_inputs`] (target, weight, statistics) and [`grad_fits`]
/// (the gradient fits `T`). The first failing row's error. Call after [`rows`].
pub fn grad_rows<T: Logit>(rows: &Rows<'_>, stats: &[RowStats], w: &[f32]) -> Result<(), BnfError> {
    len("stats", rows.len(), stats.len())?;
    len("w", rows.len(), w.len())?;
    grad_rows_by::<T, _>(rows.vocab, rows.targets, |r| {
        rows.is_scored(r).then(|| (stats[r], w[r]))
    })
}

/// [`grad_inputs`] and [`grad_fits`] for every row `r` for which `row(r)` gives its
/// statistics and weight (`None`: a row that is not written from statistics). The lowest
/// failing row's error.
pub(crate) fn grad_rows_by<T, F>(vocab: usize, targets: &[u32], row: F) -> Result<(), BnfError>
where
    T: Logit,
    F: Fn(usize) -> Option<(RowStats, f32)>,
{
    for (r, &y) in targets.iter().enumerate() {
        if let Some((s, w)) = row(r) {
            grad_inputs(vocab, y as usize, &s, w)
                .and_then(|()| grad_fits::<T>(&s, w))
                .map_err(|e| e.at_row(r))?;
        }
    }
    Ok(())
}

/// Pairs name two different responses of the batch (`labels` has one per response), chosen
/// labelled `> 0`, rejected `< 0`; a pairwise objective needs pairs, and every response in at
/// least one of them (`MissingPairs`, `InvalidPair`).
pub fn pairs(
    pairs: Option<&[[usize; 2]]>,
    labels: &[f32],
    obj: &Objective,
) -> Result<(), BnfError> {
    let responses = labels.len();
    let pairs = match (pairs, obj.needs_pairs()) {
        (Some(p), _) => p,
        (None, true) => {
            return Err(BnfError::MissingPairs {
                objective: obj.name(),
            })
        }
        (None, false) => return Ok(()),
    };
    let bad = |pair, reason| Err(BnfError::InvalidPair { pair, reason });
    let mut partnered = alloc::vec![false; responses];
    for (p, &[c, r]) in pairs.iter().enumerate() {
        if c >= responses || r >= responses {
            return bad(
                p,
                "response index out of range: its partner is not in this batch",
            );
        }
        if c == r {
            return bad(p, "chosen and rejected are the same response");
        }
        if labels[c] <= 0.0 {
            return bad(p, "chosen response is not labelled preferred (> 0)");
        }
        if labels[r] >= 0.0 {
            return bad(p, "rejected response is not labelled dispreferred (< 0)");
        }
        partnered[c] = true;
        partnered[r] = true;
    }
    if obj.needs_pairs() {
        if let Some(i) = partnered.iter().position(|&p| !p) {
            return bad(
                i,
                "response has no partner (pairwise objective, unpaired response)",
            );
        }
    }
    Ok(())
}
