//! Criterion benchmarks: BNF forward+backward, plain fused cross-entropy (NLL) forward+backward
//! through the same code, and the naive multi-pass BNF of the paper's appendix, for
//! V in {32000, 128256}, f32 and bf16 logits, one thread and all cores. Throughput is logit
//! elements per second. Run: `cargo bench -p bnf-core --bench bnf`.

mod naive;

use bnf_core::{bf16, forward_backward_in_place, set_num_threads, Batch, Logit, RowDiag, RowLoss};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const ROWS: usize = 16;

struct Data {
    z: Vec<f32>,
    y: Vec<u32>,
    rho: Vec<f32>,
    w: Vec<f32>,
}

fn data(v: usize) -> Data {
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

/// Naive BNF split over `threads` runs of rows, as a framework would parallelise each op.
fn naive_threads<T: Logit>(z: &[T], v: usize, d: &Data, threads: usize) {
    let per = ROWS.div_ceil(threads);
    std::thread::scope(|s| {
        for c in 0..threads {
            let (a, b) = (c * per, ((c + 1) * per).min(ROWS));
            s.spawn(move || {
                std::hint::black_box(naive::naive_bnf(
                    &z[a * v..b * v],
                    v,
                    &d.y[a..b],
                    &d.rho[a..b],
                    &d.w[a..b],
                    8,
                ));
            });
        }
    });
}

fn bench_type<T: Logit>(c: &mut Criterion) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    for v in [32_000usize, 128_256] {
        let d = data(v);
        let z: Vec<T> = d.z.iter().map(|&x| T::from_f32(x)).collect();
        let batch = Batch {
            vocab: v,
            targets: &d.y,
            weights: &d.w,
            scored: None,
            num_responses: 8,
        };
        for threads in [1, all] {
            let mut g = c.benchmark_group(format!("{}/V={v}/threads={threads}", T::NAME));
            g.throughput(Throughput::Elements((ROWS * v) as u64));
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            let mut work = z.clone();
            let mut diag = vec![RowDiag::default(); ROWS];
            for (name, loss) in [
                ("bnf", RowLoss::Bnf { ref_logp: &d.rho }),
                ("cross_entropy", RowLoss::Nll),
            ] {
                g.bench_function(BenchmarkId::from_parameter(name), |b| {
                    set_num_threads(threads);
                    b.iter(|| {
                        work.copy_from_slice(&z);
                        forward_backward_in_place(&mut work, &batch, loss, &mut diag).unwrap()
                    })
                });
            }
            g.bench_function(BenchmarkId::from_parameter("naive"), |b| {
                b.iter(|| {
                    work.copy_from_slice(&z);
                    naive_threads(&work, v, &d, threads)
                })
            });
            g.bench_function(BenchmarkId::from_parameter("copy_only"), |b| {
                b.iter(|| work.copy_from_slice(&z))
            });
            g.finish();
        }
    }
    set_num_threads(0);
}

fn benches(c: &mut Criterion) {
    bench_type::<f32>(c);
    bench_type::<bf16>(c);
}

criterion_group!(bnf_benches, benches);
criterion_main!(bnf_benches);
