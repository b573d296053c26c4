//! Everything checked before any objective reads a logit: the configuration, the response
//! layout (through [`response_weights`]), the pairs, the reference's presence and length, and
//! the buffer lengths. Errors here leave every output untouched.

use alloc::vec;
use alloc::vec::Vec;

use super::{Objective, PrefBatch};
use crate::batch::Batch;
use crate::error::{check_len, BnfError};
use crate::weights::response_weights;

/// A checked batch: the row weights `label / |y|` (which the row-local objectives use and the
/// row statistics pass needs), the number of responses and each response's length.
pub(crate) struct Prepared {
    /// `label_i / |y_i|` on scored rows, 0 elsewhere.
    pub weights: Vec<f32>,
    /// Number of responses.
    pub responses: usize,
    /// `|y_i|` per response (at least 1).
    pub lengths: Vec<usize>,
}

impl Prepared {
    /// Check `pb` for `obj` against a logits buffer of `logits_len` elements.
    pub fn new(logits_len: usize, pb: &PrefBatch<'_>, obj: &Objective) -> Result<Self, BnfError> {
        obj.validate()?;
        let rows = pb.rows();
        let mut weights = vec![0.0f32; rows];
        let responses = response_weights(pb.offsets, pb.labels, pb.scored, &mut weights)?;
        if obj.needs_reference() {
            let rp = pb.ref_logp.ok_or(BnfError::MissingReference {
                objective: obj.name(),
            })?;
            check_len("ref_logp", rows, rp.len())?;
        }
        check_len("labels", responses, pb.labels.len())?;
        check_pairs(pb.pairs, pb.labels, obj)?;
        if matches!(obj, Objective::Kto(_)) {
            if let Some(i) = pb.labels.iter().position(|&l| l == 0.0) {
                return Err(BnfError::InvalidLabel {
                    response: i,
                    value: 0.0,
                });
            }
        }
        let lengths = per_response(pb, |_| 1.0)
            .into_iter()
            .map(|n| n as usize)
            .collect();
        let prep = Prepared {
            weights,
            responses,
            lengths,
        };
        prep.batch(pb).check(logits_len)?;
        Ok(prep)
    }

    /// The row-level view of the batch for the row primitives.
    pub fn batch<'a>(&'a self, pb: &PrefBatch<'a>) -> Batch<'a> {
        Batch {
            vocab: pb.vocab,
            targets: pb.targets,
            weights: &self.weights,
            scored: pb.scored,
            num_responses: self.responses,
        }
    }
}

/// Sum `f(r)` over each response's scored rows, in row order, in `f64`. Offsets must be checked.
pub(crate) fn per_response(pb: &PrefBatch<'_>, f: impl Fn(usize) -> f64) -> Vec<f64> {
    pb.offsets
        .windows(2)
        .map(|w| (w[0]..w[1]).filter(|&r| pb.is_scored(r)).map(&f).sum())
        .collect()
}

/// Round per-response `f64` sums to `f32`.
pub(crate) fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// Pairs name two different responses of the batch (`labels` has one per response), chosen
/// labelled `> 0`, rejected `< 0`; a pairwise objective needs pairs, and every response in at
/// least one of them.
pub(crate) fn check_pairs(
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
    let mut partnered = vec![false; responses];
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
