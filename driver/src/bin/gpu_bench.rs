//! GPU benchmark (DESIGN.md section 6): fused BNF forward+backward against a device-to-device
//! copy of the same bytes (in this process) and against a naive multi-kernel BNF that mirrors
//! the paper's appendix code (materialised log-softmax, gather, exp and products, autograd's
//! backward through log_softmax).
//!
//! For rows in {4096, 16384}, V in {32000, 128256}, dtypes bf16 and f32 it prints, for the
//! fused BNF (out of place and in place), the fused NLL (plain cross-entropy, `c = 1`), the
//! naive BNF, the sequence-level primitives `row_stats`, `gather_logp` (one read each) and
//! `row_grad` (a read and a write), and the copy: median time, effective bandwidth (the bytes
//! the kernel must move at least: one read of the logits, plus one write of the gradient
//! where it writes one) and its fraction of the copy's, the time ratio to fused BNF, and the extra
//! device memory per logit (device memory in use beyond the logits, from `cuMemGetInfo`). The
//! in-place variant runs last and its timed runs read the gradients its first run wrote (same
//! traffic). After each fused variant every row status must be 0, and the fused and naive
//! batch losses must agree within 1e-3 of the row terms' magnitude; a failure is printed as
//! `FAILED` and the exit status is 1.
//!
//! Usage: gpu_bench [--iters N] [--rows R] [--vocab V] [--dtype bf16|f32]
//!
//! Built with `--features cuda` it runs on the GPU; with `--features emu` on the host emulator
//! (a smoke test, times meaningless); with neither, or with no driver or device, it prints
//! "skipped: no GPU" and exits 0 (2 when `BNF_REQUIRE_GPU=1`).

use bnf_core::{bf16, Logit};
use bnf_driver::kernels::{Dtype, ROW_STATS_FLOATS};
use bnf_driver::{DeviceBuffer, Gpu, GpuError, NaiveBuffers, RawBnf, RawRows};

struct Args {
    iters: usize,
    rows: Vec<usize>,
    vocabs: Vec<usize>,
    dtypes: Vec<Dtype>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        iters: 20,
        rows: vec![4096, 16384],
        vocabs: vec![32000, 128256],
        dtypes: vec![Dtype::Bf16, Dtype::F32],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--iters" => a.iters = num()?.max(1),
            "--rows" => a.rows = vec![num()?],
            "--vocab" => a.vocabs = vec![num()?],
            "--dtype" => {
                a.dtypes = vec![Dtype::from_name(value).ok_or(format!("unknown dtype {value}"))?]
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Median device milliseconds of `f` over `iters` runs after 3 warm-up runs.
fn time(
    gpu: &Gpu,
    iters: usize,
    mut f: impl FnMut() -> Result<(), GpuError>,
) -> Result<f32, GpuError> {
    for _ in 0..3 {
        f()?;
    }
    gpu.synchronize()?;
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        t.push(gpu.time_ms(&mut f)?);
    }
    Ok(median(t))
}

/// Cheap reproducible logits in [-8, 8) (a hash of the index), converted to `T`.
fn logits<T: Logit>(n: usize) -> Vec<T> {
    (0..n as u64)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            T::from_f32(h as f32 / (1u64 << 24) as f32 * 16.0 - 8.0)
        })
        .collect()
}

/// The benchmark's error: the driver's, or a result that fails its check.
type BenchError = Box<dyn std::error::Error>;

/// The largest relative difference allowed between the fused and the naive batch loss,
/// relative to the sum of the row terms' magnitudes (the weights alternate in sign, so the
/// batch sum itself may be near 0).
const LOSS_RTOL: f64 = 1e-3;

/// Fail unless every row status the last launch of `what` wrote is 0 (a bad row would make
/// its timing meaningless).
fn check_statuses(gpu: &Gpu, status: &DeviceBuffer<i32>, what: &str) -> Result<(), BenchError> {
    let statuses = gpu.to_host(status)?;
    let mut bad = statuses.iter().enumerate().filter(|(_, &s)| s != 0);
    match bad.next() {
        None => Ok(()),
        Some((r, &code)) => Err(format!(
            "{what}: row {r} has status {code}, {} row(s) failed in all",
            1 + bad.count()
        )
        .into()),
    }
}

/// The batch sum of the row terms and the sum of their magnitudes.
fn sums(terms: impl Iterator<Item = f32>) -> (f64, f64) {
    terms.fold((0.0, 0.0), |(s, a), t| (s + t as f64, a + (t as f64).abs()))
}

/// Device bytes in use now (total minus free), for the extra memory each variant needs.
fn used_bytes(gpu: &Gpu) -> Result<usize, GpuError> {
    gpu.memory_info().map(|(free, total)| total - free)
}

fn bench<T: Logit>(gpu: &Gpu, rows: usize, v: usize, iters: usize) -> Result<(), BenchError> {
    let d = Dtype::from_name(T::NAME).ok_or(GpuError::UnsupportedDtype(T::NAME))?;
    let n = rows * v;
    let elem = std::mem::size_of::<T>();
    let logits = gpu.upload(&logits::<T>(n))?;
    let base = used_bytes(gpu)?;
    let extra = |gpu: &Gpu| -> Result<f64, GpuError> {
        Ok(used_bytes(gpu)?.saturating_sub(base) as f64 / n as f64)
    };
    let targets: Vec<u32> = (0..rows).map(|r| ((r * 7919) % v) as u32).collect();
    let responses = rows.div_ceil(256);
    let weights: Vec<f32> = (0..rows)
        .map(|r| {
            if (r / 256) % 2 == 0 {
                1.0 / 256.0
            } else {
                -1.0 / 256.0
            }
        })
        .collect();
    let ref_logp: Vec<f32> = (0..rows).map(|r| -0.01 - (r % 97) as f32 * 0.1).collect();
    let (t_dev, w_dev, rho_dev) = (
        gpu.upload(&targets)?,
        gpu.upload(&weights)?,
        gpu.upload(&ref_logp)?,
    );
    let out = gpu.alloc::<f32>(rows * 5)?;
    let status = gpu.alloc::<i32>(rows)?;
    let extra_in_place = extra(gpu)?;
    let mut grad = gpu.alloc::<T>(n)?;
    let extra_out_of_place = extra(gpu)?;
    let fused = |grad_ptr: u64, ref_ptr: u64| RawBnf {
        rows: RawRows {
            dtype: d,
            rows: rows as u32,
            vocab: v as u32,
            logits: logits.as_raw(),
            targets: t_dev.as_raw(),
            scored: 0,
        },
        grad: grad_ptr,
        weights: w_dev.as_raw(),
        ref_logp: ref_ptr,
        num_responses: responses as f32,
        out: out.as_raw(),
        status: status.as_raw(),
    };
    let out_of_place = fused(grad.as_raw(), rho_dev.as_raw());
    let nll = fused(grad.as_raw(), 0);
    // SAFETY (every launch below): all buffers are live and sized for rows x vocab.
    let t_nll = time(gpu, iters, || unsafe {
        gpu.bnf_fwd_bwd_raw(&nll, gpu.stream())
    })?;
    check_statuses(gpu, &status, "fused NLL")?;
    let t_fused = time(gpu, iters, || unsafe {
        gpu.bnf_fwd_bwd_raw(&out_of_place, gpu.stream())
    })?;
    check_statuses(gpu, &status, "fused BNF, out of place")?;
    let (fused_loss, fused_abs) = sums(gpu.to_host(&out)?.chunks_exact(5).map(|o| o[0]));
    let t_copy = time(gpu, iters, || gpu.copy(&logits, &mut grad))?;
    let naive_bufs = NaiveBuffers::new(gpu, rows, v)?;
    let extra_naive = extra(gpu)?;
    let t_naive = time(gpu, iters, || unsafe {
        gpu.naive_bnf_raw(&out_of_place, &naive_bufs, gpu.stream())
    })?;
    let (naive_loss, _) = sums(gpu.to_host(&naive_bufs.loss)?.into_iter());
    drop(naive_bufs);
    let loss_diff = (naive_loss - fused_loss).abs() / fused_abs.max(1e-30);
    // The sequence-level objectives' primitives on the same logits: statistics and log-probs
    // (one read of the row), then the gradient from the statistics (one read, one write).
    let rr = out_of_place.rows;
    let stats = gpu.alloc::<f32>(rows * ROW_STATS_FLOATS)?;
    let (logp, lse) = (gpu.alloc::<f32>(rows)?, gpu.alloc::<f32>(rows)?);
    let t_stats = time(gpu, iters, || unsafe {
        gpu.row_stats_raw(&rr, stats.as_raw(), status.as_raw(), gpu.stream())
    })?;
    check_statuses(gpu, &status, "row_stats")?;
    let t_gather = time(gpu, iters, || unsafe {
        gpu.gather_logp_raw(
            &rr,
            logp.as_raw(),
            lse.as_raw(),
            status.as_raw(),
            gpu.stream(),
        )
    })?;
    check_statuses(gpu, &status, "gather_logp")?;
    let t_row_grad = time(gpu, iters, || unsafe {
        gpu.row_grad_raw(
            &rr,
            grad.as_raw(),
            stats.as_raw(),
            w_dev.as_raw(),
            status.as_raw(),
            gpu.stream(),
        )
    })?;
    check_statuses(gpu, &status, "row_grad")?;
    // In place last: it overwrites the logits, so every run after the first warm-up run (all
    // the timed ones) reads gradients instead of logits: the same traffic, other values.
    let in_place = fused(logits.as_raw(), rho_dev.as_raw());
    let t_in_place = time(gpu, iters, || unsafe {
        gpu.bnf_fwd_bwd_raw(&in_place, gpu.stream())
    })?;
    check_statuses(gpu, &status, "fused BNF, in place")?;
    // Effective bandwidth counts what a kernel must move at least: `transfers` row-sized
    // passes (2 for a read and a write, 1 for a read only), against the copy's 2.
    let line_of = |what: &str, ms: f32, extra: f64, transfers: f64| {
        let bytes = transfers * (n * elem) as f64;
        println!(
            "  {what:<46} {ms:>9.3} ms {:>8.1} GB/s {:>6.1}% of copy {:>6.2}x fused | extra {extra:.3} B/logit",
            bytes / (ms as f64 * 1e-3) / 1e9,
            100.0 * (transfers / 2.0) as f32 * t_copy / ms,
            ms / t_fused,
        )
    };
    let line = |what: &str, ms: f32, extra: f64| line_of(what, ms, extra, 2.0);
    println!(
        "{} rows {rows} V {v}: {n} logits, {:.1} MB read + {:.1} MB written per pass",
        T::NAME,
        (n * elem) as f64 / 1e6,
        (n * elem) as f64 / 1e6
    );
    line(
        "fused BNF fwd+bwd, out of place",
        t_fused,
        extra_out_of_place,
    );
    line(
        "fused BNF fwd+bwd, in place (on gradients)",
        t_in_place,
        extra_in_place,
    );
    line(
        "fused NLL (plain cross-entropy), out of place",
        t_nll,
        extra_out_of_place,
    );
    line(
        "naive BNF (paper appendix, 6 kernels)",
        t_naive,
        extra_naive,
    );
    line_of("row_stats (read once)", t_stats, extra_out_of_place, 1.0);
    line_of("gather_logp (read once)", t_gather, extra_out_of_place, 1.0);
    line(
        "row_grad, out of place (read once, write once)",
        t_row_grad,
        extra_out_of_place,
    );
    line(
        "device-to-device copy of the same bytes",
        t_copy,
        extra_out_of_place,
    );
    println!(
        "  loss sum: fused {fused_loss:.6e}, naive {naive_loss:.6e}, diff {loss_diff:.1e} of \
         the terms' magnitude (limit {LOSS_RTOL:.0e}); every row status 0"
    );
    if loss_diff.is_nan() || loss_diff > LOSS_RTOL {
        return Err(format!(
            "fused and naive BNF losses disagree: {fused_loss:e} vs {naive_loss:e} (diff \
             {loss_diff:.1e} of the terms' magnitude {fused_abs:e}, limit {LOSS_RTOL:.0e})"
        )
        .into());
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpu_bench: {e}\nusage: gpu_bench [--iters N] [--rows R] [--vocab V] [--dtype bf16|f32]");
            std::process::exit(2);
        }
    };
    let gpu = match Gpu::new(0) {
        Ok(g) => g,
        Err(e) if e.is_unavailable() => {
            println!("skipped: no GPU ({e})");
            let required = std::env::var("BNF_REQUIRE_GPU").is_ok_and(|v| v == "1");
            std::process::exit(if required { 2 } else { 0 });
        }
        Err(e) => {
            println!("gpu_bench: error: {e}");
            std::process::exit(1);
        }
    };
    let version = bnf_driver::driver_version().map_or("?".into(), |(a, b)| format!("{a}.{b}"));
    println!(
        "device {} | driver CUDA {version} | median of {} runs after 3 warm-up runs{}",
        gpu.device_name().unwrap_or_default(),
        args.iters,
        if bnf_driver::EMULATED {
            " | HOST EMULATOR: times mean nothing"
        } else {
            ""
        }
    );
    println!(
        "bandwidth counts one read of the logits and one write of the gradient; the copy is \
         cuMemcpyDtoD of the same bytes; extra B/logit is device memory in use beyond the \
         logits (cuMemGetInfo), per logit; the in-place variant runs on the gradients its \
         first run wrote (same traffic); every launch's row statuses and the fused-vs-naive \
         loss are checked (exit 1 on a failure)"
    );
    let mut failures = 0;
    for &d in &args.dtypes {
        for &rows in &args.rows {
            for &v in &args.vocabs {
                let r = match d {
                    Dtype::Bf16 => bench::<bf16>(&gpu, rows, v, args.iters),
                    Dtype::F16 => bench::<bnf_core::f16>(&gpu, rows, v, args.iters),
                    Dtype::F32 => bench::<f32>(&gpu, rows, v, args.iters),
                };
                if let Err(e) = r {
                    println!("{} rows {rows} V {v}: FAILED: {e}", d.name());
                    failures += 1;
                }
            }
        }
    }
    if failures > 0 {
        println!("gpu_bench: {failures} configuration(s) FAILED");
        std::process::exit(1);
    }
}
