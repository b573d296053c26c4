//! Criterion benchmarks: BNF forward+backward, plain fused cross-entropy (NLL) forward+backward
//! through the same code, and the naive multi-pass BNF of the paper's appendix (tensors in
//! reused buffers, `naive`, and allocated per call, `naive_alloc`), for
//! V in {32000, 128256}, f32 and bf16 logits, one thread and all cores. Throughput is logit
//! elements per second. Run: `cargo bench -p bnf-core --bench bnf`.

mod common;

use bnf_core::{bf16, forward_backward_in_place, set_num_threads, Logit, RowDiag, RowLoss};
use common::{data, NaiveRuns, ROWS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

fn bench_type<T: Logit>(c: &mut Criterion) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    for v in [32_000usize, 128_256] {
        let d = data(v);
        let z: Vec<T> = d.z.iter().map(|&x| T::from_f32(x)).collect();
        let batch = common::batch(&d, v);
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
            let mut naive = NaiveRuns::<T>::new(v, threads);
            g.bench_function(BenchmarkId::from_parameter("naive"), |b| {
                b.iter(|| {
                    work.copy_from_slice(&z);
                    naive.run(&work, v, &d)
                })
            });
            g.bench_function(BenchmarkId::from_parameter("naive_alloc"), |b| {
                b.iter(|| {
                    work.copy_from_slice(&z);
                    NaiveRuns::<T>::new(v, threads).run(&work, v, &d)
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
