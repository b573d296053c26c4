//! The two ratios the core's performance targets are stated in (BNF against the fused
//! cross-entropy, BNF against the naive appendix-B code), measured *interleaved*: each round
//! times one BNF, one cross-entropy and one naive forward+backward back to back, in an order
//! that rotates every round, and the ratio is taken within the round. On a shared machine
//! the load drifts over seconds, which skews criterion's one-after-the-other medians; a
//! within-round ratio sees the same load on both sides. Reports the median and the
//! interquartile range of the per-round ratios, for the same batches as `benches/bnf.rs`.
//!
//! BNF also runs with the AVX2 row loops forbidden (`set_simd(false)`), for their speed-up.
//! The naive code runs twice: with its `rows x vocab` tensors in buffers reused across calls
//! (a caching allocator; its best case) and allocating them on every call as written.
//!
//! `cargo bench -p bnf-core --bench ratio [-- --rounds N]`

mod common;

use std::hint::black_box;
use std::time::Instant;

use bnf_core::{
    bf16, forward_backward_in_place, set_num_threads, set_simd, Logit, RowDiag, RowLoss,
};
use common::{data, NaiveRuns, ROWS};

/// Which run a timing is for.
#[derive(Clone, Copy)]
enum Run {
    Bnf,
    CrossEntropy,
    /// The naive appendix code with its tensors in reused buffers (its best case).
    Naive,
    /// The same, allocating its tensors on every call, as the appendix code does.
    NaiveAlloc,
    /// BNF with the AVX2 row loops forbidden (`set_simd(false)`): the portable loops.
    BnfPortable,
}

const ORDER: [Run; 5] = [
    Run::Bnf,
    Run::CrossEntropy,
    Run::Naive,
    Run::NaiveAlloc,
    Run::BnfPortable,
];

/// Median and quartiles of `v` (sorted in place).
fn quartiles(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn measure<T: Logit>(v: usize, threads: usize, rounds: usize) {
    let d = data(v);
    let z: Vec<T> = d.z.iter().map(|&x| T::from_f32(x)).collect();
    let batch = common::batch(&d, v);
    let mut work = z.clone();
    let mut naive = NaiveRuns::<T>::new(v, threads);
    let mut diag = vec![RowDiag::default(); ROWS];
    set_num_threads(threads);
    let mut time = |run: Run| {
        work.copy_from_slice(&z);
        let t = Instant::now();
        match run {
            Run::Bnf | Run::BnfPortable => {
                set_simd(!matches!(run, Run::BnfPortable));
                let loss = RowLoss::Bnf { ref_logp: &d.rho };
                black_box(forward_backward_in_place(&mut work, &batch, loss, &mut diag).unwrap());
                set_simd(true);
            }
            Run::CrossEntropy => {
                black_box(
                    forward_backward_in_place(&mut work, &batch, RowLoss::Nll, &mut diag).unwrap(),
                );
            }
            Run::Naive => naive.run(&work, v, &d),
            Run::NaiveAlloc => NaiveRuns::<T>::new(v, threads).run(&work, v, &d),
        }
        t.elapsed().as_secs_f64()
    };
    for r in ORDER {
        time(r); // warm-up
    }
    // Per round, time / BNF's time for each run: throughput ratios (> 1: BNF is faster).
    let mut ratios: [Vec<f64>; 5] = Default::default();
    for round in 0..rounds {
        let mut t = [0.0f64; 5];
        for k in 0..5 {
            let i = (round + k) % 5;
            t[i] = time(ORDER[i]);
        }
        for i in 0..5 {
            ratios[i].push(t[i] / t[0]);
        }
    }
    let mut bnf_s = Vec::new();
    // Absolute BNF throughput from a separate run of rounds (the ratios above do not need it).
    for _ in 0..rounds.min(20) {
        bnf_s.push(time(Run::Bnf));
    }
    let (_, bnf_med, _) = quartiles(&mut bnf_s);
    let q: Vec<(f64, f64, f64)> = ratios.iter_mut().map(|r| quartiles(r)).collect();
    println!(
        "{:<5} V={:<6} threads={}  BNF {:>6.1} Melem/s  vs CE {:.3} [{:.3}, {:.3}]  vs naive {:.2} [{:.2}, {:.2}]  vs naive+alloc {:.2} [{:.2}, {:.2}]  vs portable {:.2} [{:.2}, {:.2}]",
        T::NAME,
        v,
        threads,
        (ROWS * v) as f64 / bnf_med / 1e6,
        q[1].1, q[1].0, q[1].2,
        q[2].1, q[2].0, q[2].2,
        q[3].1, q[3].0, q[3].2,
        q[4].1, q[4].0, q[4].2,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(60usize);
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run few rounds.
    let rounds = if args.iter().any(|a| a == "--bench") {
        rounds
    } else {
        3
    };
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("interleaved rounds: {rounds}; ratios are throughput ratios, median [quartiles]");
    for v in [32_000usize, 128_256] {
        for threads in [1, all] {
            measure::<f32>(v, threads, rounds);
            measure::<bf16>(v, threads, rounds);
        }
    }
    set_num_threads(0);
}
