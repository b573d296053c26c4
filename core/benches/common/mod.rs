//! What the BNF benchmarks share: the fixed batch (16 rows of uniform logits in [-8, 8), random
//! targets, reference log-probs in (-10, 0], weights +-1/8 for 8 responses of 2 rows) and the
//! naive appendix-B BNF run over threads the way a framework would parallelise each op.

#![allow(dead_code)]

#[path = "../naive.rs"]
mod naive;

use bnf_core::{Batch, Logit};

pub const ROWS: usize = 16;

/// The fixed batch as f32 (cast to the benchmarked type by the caller).
pub struct Data {
    /// Logits, `ROWS x v`.
    pub z: Vec<f32>,
    /// Targets.
    pub y: Vec<u32>,
    /// Reference log-probs.
    pub rho: Vec<f32>,
    /// Row weights.
    pub w: Vec<f32>,
}

/// The batch for vocabulary `v` (the same bits every run).
pub fn data(v: usize) -> Data {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    Data {
        z: (0..ROWS * v).map(|_| next() * 16.0 - 8.0).collect(),
        y: (0..ROWS)
            .map(|_| (next() * v as f32) as u32 % v as u32)
            .collect(),
        rho: (0..ROWS).map(|_| -next() * 10.0).collect(),
        w: (0..ROWS)
            .map(|r| if r % 2 == 0 { 0.125 } else { -0.125 })
            .collect(),
    }
}

/// The naive BNF's buffers for `threads` runs of rows, allocated once per configuration.
pub struct NaiveRuns<T> {
    threads: usize,
    per: usize,
    work: Vec<(naive::Workspace, Vec<T>)>,
}

impl<T: Logit> NaiveRuns<T> {
    /// Workspaces for `ROWS x v` logits split over `threads`.
    pub fn new(v: usize, threads: usize) -> Self {
        let per = ROWS.div_ceil(threads);
        let work = (0..threads)
            .map(|_| {
                (
                    naive::Workspace::new(per * v),
                    vec![T::from_f32(0.0); per * v],
                )
            })
            .collect();
        NaiveRuns { threads, per, work }
    }

    /// Naive BNF split over the threads' runs of rows, as a framework would parallelise each op.
    pub fn run(&mut self, z: &[T], v: usize, d: &Data) {
        let per = self.per;
        std::thread::scope(|s| {
            for (c, (ws, grad)) in self.work.iter_mut().enumerate().take(self.threads) {
                let (a, b) = (c * per, ((c + 1) * per).min(ROWS));
                if a >= b {
                    continue;
                }
                s.spawn(move || {
                    std::hint::black_box(naive::naive_bnf(
                        &z[a * v..b * v],
                        v,
                        &d.y[a..b],
                        &d.rho[a..b],
                        &d.w[a..b],
                        8,
                        ws,
                        &mut grad[..(b - a) * v],
                    ));
                });
            }
        });
    }
}

/// The row-local batch over `d` (8 responses of 2 rows, every row scored).
pub fn batch(d: &Data, v: usize) -> Batch<'_> {
    Batch {
        vocab: v,
        targets: &d.y,
        weights: &d.w,
        scored: None,
        num_responses: 8,
    }
}
