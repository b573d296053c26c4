//! Each objective's full forward+backward (gradient into a separate buffer) on the same batch,
//! measured in one criterion run so the ratios to BNF compare like with like: 64 rows of
//! V = 32000 f32 logits, 16 responses of 4 scored rows, paired (chosen, rejected).
//!
//! `cargo bench -p bnf-core --bench objectives`

use std::hint::black_box;
use std::time::Duration;

use bnf_core::{objective_forward_backward, Objective, PrefBatch, OBJECTIVE_NAMES};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROWS: usize = 64;
const VOCAB: usize = 32_000;
const ROWS_PER_RESPONSE: usize = 4;

/// A fixed xorshift stream in `[0, 1)`, so every run measures the same inputs.
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn objectives(c: &mut Criterion) {
    let logits: Vec<f32> = uniform(ROWS * VOCAB, 0x9E37_79B9_7F4A_7C15)
        .into_iter()
        .map(|u| 8.0 * u - 4.0)
        .collect();
    let targets: Vec<u32> = uniform(ROWS, 7)
        .into_iter()
        .map(|u| (u * VOCAB as f32) as u32 % VOCAB as u32)
        .collect();
    let ref_logp: Vec<f32> = uniform(ROWS, 11)
        .into_iter()
        .map(|u| -0.1 - 10.0 * u)
        .collect();
    let responses = ROWS / ROWS_PER_RESPONSE;
    let offsets: Vec<usize> = (0..=responses).map(|i| i * ROWS_PER_RESPONSE).collect();
    let labels: Vec<f32> = (0..responses)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let pairs: Vec<[usize; 2]> = (0..responses / 2).map(|k| [2 * k, 2 * k + 1]).collect();
    let batch = PrefBatch {
        vocab: VOCAB,
        targets: &targets,
        scored: None,
        offsets: &offsets,
        labels: &labels,
        pairs: Some(&pairs),
        ref_logp: Some(&ref_logp),
    };
    let mut grad = vec![0.0f32; logits.len()];
    let mut group = c.benchmark_group(format!("objectives_{ROWS}x{VOCAB}_f32"));
    group
        .throughput(Throughput::Elements((ROWS * VOCAB) as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for name in OBJECTIVE_NAMES {
        let obj = Objective::parse(name).expect("listed name parses");
        group.bench_function(*name, |b| {
            b.iter(|| {
                objective_forward_backward(black_box(&logits), &batch, &obj, &mut grad)
                    .expect("valid batch")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, objectives);
criterion_main!(benches);
