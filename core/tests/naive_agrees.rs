//! The benchmark's naive appendix-B BNF must compute the same thing as the fused path, or the
//! speed comparison means nothing.

#[path = "../benches/naive.rs"]
mod naive;

use bnf_core::{bnf, Batch};

#[test]
fn naive_matches_fused() {
    let (rows, v) = (6, 301);
    let z: Vec<f32> = (0..rows * v)
        .map(|i| ((i * 7919 % 1000) as f32 / 100.0) - 5.0)
        .collect();
    let y: Vec<u32> = (0..rows as u32).map(|r| r * 37 % v as u32).collect();
    let rho: Vec<f32> = (0..rows).map(|r| -0.5 - r as f32).collect();
    let w: Vec<f32> = (0..rows)
        .map(|r| if r < 3 { 1.0 / 3.0 } else { -1.0 / 3.0 })
        .collect();
    let batch = Batch {
        vocab: v,
        targets: &y,
        weights: &w,
        scored: None,
        num_responses: 2,
    };
    let fused = bnf(&z, &batch, &rho).unwrap();
    let mut ws = naive::Workspace::new(z.len());
    let mut grad = vec![0.0f32; z.len()];
    let loss = naive::naive_bnf(&z, v, &y, &rho, &w, 2, &mut ws, &mut grad);
    assert!(
        (loss - fused.loss).abs() < 1e-4 * (1.0 + loss.abs()),
        "{loss} vs {}",
        fused.loss
    );
    for (a, b) in grad.iter().zip(&fused.grad) {
        assert!((a - b).abs() < 2e-6, "{a} vs {b}");
    }
}
