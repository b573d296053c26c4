//! The `parallel` feature: results are bitwise identical for any number of threads. (Its own
//! test binary, because the thread count is process-wide.)
#![allow(clippy::type_complexity)]

use bnf_core::{bf16, bnf, set_num_threads, Batch, Logit};

fn batch_data(rows: usize, v: usize) -> (Vec<f32>, Vec<u32>, Vec<f32>, Vec<f32>, Vec<bool>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let z: Vec<f32> = (0..rows * v).map(|_| next() * 20.0 - 10.0).collect();
    let y: Vec<u32> = (0..rows)
        .map(|_| (next() * v as f32) as u32 % v as u32)
        .collect();
    let rho: Vec<f32> = (0..rows).map(|_| -next() * 12.0).collect();
    let s: Vec<f32> = (0..rows)
        .map(|r| if r % 3 == 0 { -0.25 } else { 0.125 })
        .collect();
    let scored: Vec<bool> = (0..rows).map(|r| r % 5 != 4).collect();
    (z, y, rho, s, scored)
}

fn run<T: Logit>(
    z: &[T],
    v: usize,
    y: &[u32],
    rho: &[f32],
    s: &[f32],
    m: &[bool],
) -> (u32, Vec<u8>, Vec<u32>) {
    let batch = Batch {
        vocab: v,
        targets: y,
        weights: s,
        scored: Some(m),
        num_responses: 7,
    };
    let out = bnf(z, &batch, rho).unwrap();
    let grad: Vec<u8> = bytemuck::cast_slice(&out.grad).to_vec();
    let diag: Vec<u32> = out
        .rows
        .iter()
        .flat_map(|d| [d.pi_y.to_bits(), d.c.to_bits(), d.loss.to_bits()])
        .collect();
    (out.loss.to_bits(), grad, diag)
}

#[test]
fn thread_count_does_not_change_a_bit() {
    let (rows, v) = (67, 3001);
    let (z, y, rho, s, m) = batch_data(rows, v);
    let zb: Vec<bf16> = z.iter().map(|&x| bf16::from_f32(x)).collect();
    set_num_threads(1);
    let one = run(&z, v, &y, &rho, &s, &m);
    let one_b = run(&zb, v, &y, &rho, &s, &m);
    for t in [2, 3, 4, 8] {
        set_num_threads(t);
        assert_eq!(bnf_core::num_threads(), t);
        assert!(
            run(&z, v, &y, &rho, &s, &m) == one,
            "{t} threads differ (f32)"
        );
        assert!(
            run(&zb, v, &y, &rho, &s, &m) == one_b,
            "{t} threads differ (bf16)"
        );
    }
    set_num_threads(0);
}
