//! The test batch shared by the ABI tests (host and GPU entries) and the thread-local message.
#![allow(dead_code)]

use std::ffi::CStr;

use bnf::*;

/// A small batch: 2 responses (preferred rows 0..2, dispreferred rows 2..5), vocab 6, row 4
/// masked.
pub struct Case {
    pub vocab: usize,
    pub logits: Vec<f32>,
    pub targets: Vec<u32>,
    pub weights: Vec<f32>,
    pub scored: Vec<u8>,
    pub ref_logp: Vec<f32>,
}

pub fn case() -> Case {
    let vocab = 6;
    let rows = 5;
    let logits = (0..rows * vocab)
        .map(|i| ((i * 7919) % 23) as f32 * 0.37 - 3.0)
        .collect();
    let scored = vec![1, 1, 1, 1, 0];
    let mut weights = vec![0.0; rows];
    let status = unsafe {
        bnf_response_weights(
            [0usize, 2, 5].as_ptr(),
            [BNF_PREFERRED, BNF_DISPREFERRED].as_ptr(),
            2,
            scored.as_ptr(),
            rows,
            weights.as_mut_ptr(),
        )
    };
    assert_eq!(status, BnfStatus::BNF_OK, "{}", last_error());
    Case {
        vocab,
        logits,
        targets: vec![1, 5, 0, 3, 2],
        weights,
        scored,
        ref_logp: vec![-0.2, -3.0, -1.1, f32::NEG_INFINITY, -0.5],
    }
}

impl Case {
    pub fn c_batch(&self) -> BnfBatch {
        BnfBatch {
            vocab: self.vocab,
            rows: self.targets.len(),
            targets: self.targets.as_ptr(),
            weights: self.weights.as_ptr(),
            scored: self.scored.as_ptr(),
            num_responses: 2,
            ref_logp: self.ref_logp.as_ptr(),
        }
    }

    pub fn scored_bool(&self) -> Vec<bool> {
        self.scored.iter().map(|&f| f != 0).collect()
    }

    /// The case as core's `Batch`, over `scored` (from [`Case::scored_bool`]).
    pub fn core_batch<'a>(&'a self, scored: &'a [bool]) -> bnf_core::Batch<'a> {
        bnf_core::Batch {
            vocab: self.vocab,
            targets: &self.targets,
            weights: &self.weights,
            scored: Some(scored),
            num_responses: 2,
        }
    }
}

pub fn last_error() -> String {
    unsafe { CStr::from_ptr(bnf_last_error_message()) }
        .to_str()
        .unwrap()
        .to_string()
}
