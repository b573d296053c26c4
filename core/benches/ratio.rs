//! The two ratios the core's performance targets are stated in (BNF against the fused
//! cross-entropy, BNF against the naive appendix-B code), measured *interleaved*: each round
//! times one BNF, one cross-entropy and one naive forward+backward back to back, in an order
//! that rotates every round, and the ratio is taken within the round. On a shared machine
//! the load drifts over seconds, which skews criterion's one-after-the-other medians; a
//! within-round ratio sees the same load on both sides. Reports the median and the
//! interquartile range of the per-round ratios, for the same batches as `benches/bnf.rs`.
//!
//! `cargo bench -p bnf-core --bench ratio [-- --rounds N]`

mod common;

use std::hint::black_box;
use std::time::Instant;

use bnf_core::{bf16, forward_backward_in_place, set_num_threads, Logit, RowDiag, RowLoss};
use common::{data, naive_threads, ROWS};

/// Which of the three runs a timing is for.
#[derive(Clone, Copy)]
enum Run {
    Bnf,
    CrossEntropy,
    Naive,
}

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
    let mut diag = vec![RowDiag::default(); ROWS];
    set_num_threads(threads);
    let mut time = |run: Run| {
        work.copy_from_slice(&z);
        let t = Instant::now();
        match run {
            Run::Bnf => {
                let loss = RowLoss::Bnf { ref_logp: &d.rho };
                black_box(forward_backward_in_place(&mut work, &batch, loss, &mut diag).unwrap());
            }
            Run::CrossEntropy => {
                black_box(
                    forward_backward_in_place(&mut work, &batch, RowLoss::Nll, &mut diag).unwrap(),
                );
            }
            Run::Naive => naive_threads(&work, v, &d, threads),
        }
        t.elapsed().as_secs_f64()
    };
    let order = [Run::Bnf, Run::CrossEntropy, Run::Naive];
    for r in order {
        time(r); // warm-up
    }
    let (mut vs_ce, mut vs_naive, mut bnf_s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut t = [0.0f64; 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            t[i] = time(order[i]);
        }
        // Throughput ratios: BNF / cross-entropy and BNF / naive (>1 means BNF is faster).
        vs_ce.push(t[1] / t[0]);
        vs_naive.push(t[2] / t[0]);
        bnf_s.push(t[0]);
    }
    let (ce_lo, ce_med, ce_hi) = quartiles(&mut vs_ce);
    let (nv_lo, nv_med, nv_hi) = quartiles(&mut vs_naive);
    let (_, bnf_med, _) = quartiles(&mut bnf_s);
    let throughput = (ROWS * v) as f64 / bnf_med / 1e6;
    println!(
        "{:<5} V={:<6} threads={}  BNF {:>7.1} Melem/s  BNF/CE {:.3} [{:.3}, {:.3}]  BNF/naive {:.2} [{:.2}, {:.2}]",
        T::NAME, v, threads, throughput, ce_med, ce_lo, ce_hi, nv_med, nv_lo, nv_hi
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
