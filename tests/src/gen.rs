//! Input generators and small helpers shared by the property tests.

use bnf_core::{bnf, Batch, Output};
use proptest::prelude::*;

/// One BNF row: logits, target, reference log-prob and weight.
#[derive(Clone, Debug)]
pub struct Row {
    /// Logits, length V.
    pub z: Vec<f32>,
    /// Target id.
    pub y: usize,
    /// Reference log-prob of the target, `<= 0`.
    pub rho: f32,
    /// Row weight `s = label / |y|`.
    pub s: f32,
}

/// A row of `V` logits in `[-scale, scale]` with its target drawn by `target`, `rho` in
/// `[-12, 0]` and a weight `±1/len` for `len` in `1..=8`.
pub fn row_with_target<Y: Strategy<Value = usize>>(
    v: usize,
    scale: f32,
    target: Y,
) -> impl Strategy<Value = Row> {
    (
        prop::collection::vec(-scale..=scale, v),
        target,
        -12.0f32..=0.0,
        prop::bool::ANY,
        1..=8usize,
    )
        .prop_map(|(z, y, rho, preferred, len)| Row {
            z,
            y,
            rho,
            s: if preferred { 1.0 } else { -1.0 } / len as f32,
        })
}

/// A row with `1 <= V <= max_v` and any target (see [`row_with_target`]).
pub fn row(max_v: usize, scale: f32) -> impl Strategy<Value = Row> {
    (1..=max_v).prop_flat_map(move |v| row_with_target(v, scale, 0..v))
}

/// Run BNF on a single row as a batch of one response (so `num_responses = 1`).
pub fn bnf_one(r: &Row) -> Output<f32> {
    let targets = [r.y as u32];
    let weights = [r.s];
    let batch = Batch {
        vocab: r.z.len(),
        targets: &targets,
        weights: &weights,
        scored: None,
        num_responses: 1,
    };
    bnf(&r.z, &batch, &[r.rho]).expect("valid row")
}

/// Widen to `f64`.
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}
