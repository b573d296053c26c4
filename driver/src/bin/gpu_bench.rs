//! GPU benchmark (DESIGN.md section 6): fused BNF forward+backward against a device-to-device
//! copy of the same bytes (in this process) and against a naive multi-kernel BNF that mirrors
//! the paper's appendix code (materialised log-softmax, gather, exp and products, autograd's
//! backward through log_softmax).
//!
//! For rows in {4096, 16384}, V in {32000, 128256}, dtypes bf16 and f32 it prints median
//! times, effective bandwidth (one read of the logits + one write of the gradient) as a
//! fraction of copy bandwidth, the naive/fused time ratio, and extra device memory per logit.
//!
//! Usage: gpu_bench [--iters N] [--rows R] [--vocab V] [--dtype bf16|f32]
//!
//! Built with `--features cuda` it runs on the GPU; with `--features emu` on the host emulator
//! (a smoke test, times meaningless); with neither it prints "skipped: no GPU".

use bnf_core::{bf16, Logit};
use bnf_driver::kernels::Dtype;
use bnf_driver::{Gpu, GpuError, NaiveBuffers, RawBnf, RawRows};

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

fn bench<T: Logit>(gpu: &Gpu, rows: usize, v: usize, iters: usize) -> Result<(), GpuError> {
    let d = Dtype::from_name(T::NAME).ok_or(GpuError::UnsupportedDtype(T::NAME))?;
    let n = rows * v;
    let elem = std::mem::size_of::<T>();
    let logits = gpu.upload(&logits::<T>(n))?;
    let mut grad = gpu.alloc::<T>(n)?;
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
    let num_responses = responses as f32;
    let fused = |grad_ptr: u64| RawBnf {
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
        ref_logp: rho_dev.as_raw(),
        num_responses,
        out: out.as_raw(),
        status: status.as_raw(),
    };
    let out_of_place = fused(grad.as_raw());
    // SAFETY: all buffers are live and sized for rows x vocab.
    let t_fused = time(gpu, iters, || unsafe {
        gpu.bnf_fwd_bwd_raw(&out_of_place, gpu.stream())
    })?;
    let fused_loss: f64 = gpu
        .to_host(&out)?
        .chunks_exact(5)
        .map(|o| o[0] as f64)
        .sum();
    let t_copy = time(gpu, iters, || gpu.copy(&logits, &mut grad))?;
    let naive_bufs = NaiveBuffers::new(gpu, rows, v)?;
    // SAFETY: as above; the naive buffers are sized for rows x vocab.
    let t_naive = time(gpu, iters, || unsafe {
        gpu.naive_bnf_raw(&out_of_place, &naive_bufs, gpu.stream())
    })?;
    let naive_loss: f64 = gpu
        .to_host(&naive_bufs.loss)?
        .iter()
        .map(|&l| l as f64)
        .sum();
    drop(naive_bufs);
    // In place last: it overwrites the logits (later runs see gradients, same traffic).
    let in_place = fused(logits.as_raw());
    // SAFETY: as above; grad aliases logits, which the kernel allows.
    let t_in_place = time(gpu, iters, || unsafe {
        gpu.bnf_fwd_bwd_raw(&in_place, gpu.stream())
    })?;
    let bytes = 2.0 * (n * elem) as f64;
    let gbs = |ms: f32| bytes / (ms as f64 * 1e-3) / 1e9;
    println!(
        "{:>5} {:>6} {:>7} | fused {:>8.3} ms {:>7.1} GB/s {:>5.1}% of copy | in place {:>8.3} ms | copy {:>8.3} ms {:>7.1} GB/s | naive {:>8.3} ms ({:>5.2}x fused) | extra B/logit: in place 0, out of place {}, naive {} | loss rel diff naive {:.1e}",
        T::NAME, rows, v, t_fused, gbs(t_fused), 100.0 * t_copy / t_fused, t_in_place, t_copy, gbs(t_copy),
        t_naive, t_naive / t_fused, elem, NaiveBuffers::BYTES_PER_LOGIT + elem,
        ((naive_loss - fused_loss) / fused_loss.abs().max(1e-30)).abs()
    );
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
        Err(e) => {
            println!("skipped: no GPU ({e})");
            std::process::exit(if e.is_unavailable() { 0 } else { 1 });
        }
    };
    let version = bnf_driver::driver_version().map_or("?".into(), |(a, b)| format!("{a}.{b}"));
    println!(
        "device {} | driver CUDA {version} | median of {} runs | bandwidth counts one read of the logits and one write of the gradient; copy is cuMemcpyDtoD of the same bytes",
        gpu.device_name().unwrap_or_default(),
        args.iters
    );
    for &d in &args.dtypes {
        for &rows in &args.rows {
            for &v in &args.vocabs {
                let r = match d {
                    Dtype::Bf16 => bench::<bf16>(&gpu, rows, v, args.iters),
                    Dtype::F16 => bench::<bnf_core::f16>(&gpu, rows, v, args.iters),
                    Dtype::F32 => bench::<f32>(&gpu, rows, v, args.iters),
                };
                if let Err(e) = r {
                    println!("{} {rows} {v}: error: {e}", d.name());
                }
            }
        }
    }
}
