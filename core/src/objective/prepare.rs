//! Everything checked before any objective reads a logit: the configuration, the response
//! layout (through [`response_weights`]), the pairs ([`check::pairs`]), the reference's presence and length, and
//! the buffer lengths. Errors here leave every output untouched.

use alloc::vec;
use alloc::vec::Vec;

use super::kind::Objective;
use super::pref::PrefBatch;
use crate::batch::Batch;
use crate::check;
use crate::error::BnfError;
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
            check::len("ref_logp", rows, rp.len())?;
        }
        check::len("labels", responses, pb.labels.len())?;
        check::pairs(pb.pairs, pb.labels, obj)?;
        if matches!(obj, Objective::Kto(_)) {
            if let Some(i) = pb.labels.iter().position(|&l| l == 0.0) {
                return Err(BnfError::InvalidLabel {
                    response: i,
                    value: 0.0,
                });
            }
        }
        let lengths = pb
            .per_response(|_| 1.0)
            .into_iter()
            .map(|n| n as usize)
            .collect();
        let prep = Prepared {
            weights,
            responses,
            lengths,
        };
        check::batch(&prep.batch(pb), None, logits_len)?;
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

/// Round per-response `f64` sums to `f32`.
pub(crate) fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}
