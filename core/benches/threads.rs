//! Issue 17, point 1: BNF forward+backward on 64 rows x 32000 f32 logits (gradient into a
//! separate, reused buffer), one thread against two, *interleaved*: each round times one call
//! with each thread count back to back (the order alternates every round) and takes the ratio
//! within the round, so a change of load on a shared machine hits both sides. Reports the
//! median and quartiles of the per-round ratios and of each side's time, and, for scale, what
//! starting and joining one scoped thread costs here (core's parallel regions start
//! `threads - 1` of them per region, two regions per call).
//!
//! `cargo bench -p bnf-core --bench threads [-- --rounds N]`

use std::hint::black_box;
use std::time::Instant;

use bnf_core::{forward_backward, set_num_threads, Batch, RowDiag, RowLoss};

const ROWS: usize = 64;
const V: usize = 32000;

fn quartiles(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn main() {
    let mut rounds = 100;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rounds") {
        rounds = args[i + 1].parse().expect("--rounds N");
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let z: Vec<f32> = (0..ROWS * V).map(|_| next() * 16.0 - 8.0).collect();
    let y: Vec<u32> = (0..ROWS)
        .map(|_| (next() * V as f32) as u32 % V as u32)
        .collect();
    let rho: Vec<f32> = (0..ROWS).map(|_| -next() * 10.0).collect();
    let w: Vec<f32> = (0..ROWS)
        .map(|r| if r % 2 == 0 { 0.0625 } else { -0.0625 })
        .collect();
    let batch = Batch {
        vocab: V,
        targets: &y,
        weights: &w,
        scored: None,
        num_responses: 16,
    };
    let loss = RowLoss::Bnf { ref_logp: &rho };
    let mut grads = [vec![0.0f32; ROWS * V], vec![0.0f32; ROWS * V]];
    let mut diags = [
        vec![RowDiag::default(); ROWS],
        vec![RowDiag::default(); ROWS],
    ];
    let mut call = |threads: usize, k: usize| {
        set_num_threads(threads);
        let t = Instant::now();
        let l = forward_backward(&z, &batch, loss, &mut grads[k], &mut diags[k]).unwrap();
        let dt = t.elapsed().as_secs_f64();
        black_box(l);
        dt
    };
    // Warm-up (page faults of the gradient buffers, the CPU's clock).
    for _ in 0..5 {
        call(1, 0);
        call(2, 1);
    }
    let (mut t1, mut t2, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let a = call(1, 0);
            (a, call(2, 1))
        } else {
            let b = call(2, 1);
            (call(1, 0), b)
        };
        t1.push(a * 1e3);
        t2.push(b * 1e3);
        ratio.push(a / b);
    }
    assert_eq!(grads[0], grads[1], "one and two threads differ");
    assert_eq!(diags[0], diags[1], "one and two threads differ");
    set_num_threads(0);
    let melem = |ms: f64| (ROWS * V) as f64 / (ms * 1e-3) / 1e6;
    let (q1, m1, h1) = quartiles(&mut t1);
    let (q2, m2, h2) = quartiles(&mut t2);
    let (qr, mr, hr) = quartiles(&mut ratio);
    println!("BNF forward+backward, {ROWS} x {V} f32, {rounds} interleaved rounds");
    println!(
        "1 thread   {m1:.3} ms [{q1:.3}, {h1:.3}]  {:.1} Melem/s",
        melem(m1)
    );
    println!(
        "2 threads  {m2:.3} ms [{q2:.3}, {h2:.3}]  {:.1} Melem/s",
        melem(m2)
    );
    println!("2 threads / 1 thread (throughput, per round): {mr:.3} [{qr:.3}, {hr:.3}]");
    println!("bitwise identical: yes (gradient and every row's diagnostics)");

    // What one scoped thread costs to start and join (an empty task), for scale.
    let mut spawn = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| black_box(1));
        });
        spawn.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (qs, ms, hs) = quartiles(&mut spawn);
    println!("start + join of one scoped thread: {ms:.1} us [{qs:.1}, {hs:.1}]");
}
