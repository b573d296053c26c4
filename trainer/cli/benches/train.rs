//! Training throughput of the fixed benchmark configuration (`bnf_trainer::bench`): one full
//! SFT step (forward, NLL, backward, AdamW), reported by criterion as tokens per second,
//! through the full LM head and through the fused one.

use bnf_cli::bench::{BenchSetup, BENCH_CONFIG};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn train_step(c: &mut Criterion) {
    let (_, b, t) = BENCH_CONFIG;
    let mut setup = BenchSetup::new();
    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements((b * t) as u64));
    group.sample_size(10);
    group.bench_function("sft_step_tokens", |bench| bench.iter(|| setup.step()));
    let mut fused = BenchSetup::new();
    group.bench_function("sft_step_tokens_fused_head", |bench| {
        bench.iter(|| fused.step_with(true))
    });
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
