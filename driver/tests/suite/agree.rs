//! Values against core: the fused kernel on random and adversarial rows in every dtype, the
//! row primitives one by one, and the benchmark's naive baseline.

use super::device::DeviceCase;
use super::{core_err, core_run, err, gpu_run, to_f32, TestResult};
use crate::support::{adversarial_case, close, close_rows, grad_rtol, random_case, rtol_of, Case};
use bnf_core::{bf16, f16, row_stats, Logit, RowDiag, RowLoss};
use bnf_driver::kernels::ROW_CACHE_MAX_BYTES;
use bnf_driver::{Gpu, GpuRow, NaiveBuffers, Rows};

/// The GPU agrees with core on `case` in `T`, for BNF and NLL.
fn agree<T: Logit>(gpu: &Gpu, case: &Case) -> TestResult {
    for loss in [
        RowLoss::Bnf {
            ref_logp: &case.ref_logp,
        },
        RowLoss::Nll,
    ] {
        let what = format!(
            "{} {} {}",
            case.name,
            T::NAME,
            if matches!(loss, RowLoss::Nll) {
                "nll"
            } else {
                "bnf"
            }
        );
        let (l_core, g_core, d_core) = core_run::<T>(case, loss)?;
        let (out, g_gpu) = gpu_run::<T>(gpu, case, loss)?;
        type Pair = (
            &'static str,
            fn(&GpuRow) -> f32,
            fn(&RowDiag) -> f32,
            f32,
            f32,
        );
        let scalars: [Pair; 5] = [
            ("pi_y", |r| r.pi_y, |d| d.pi_y, 1e-4, 1e-5),
            ("f_y", |r| r.f_y, |d| d.f_y, 1e-4, 1e-5),
            ("c", |r| r.c, |d| d.c, 1e-4, 1e-5),
            ("lse", |r| r.lse, |d| d.stats.lse, 1e-6, 1e-4),
            ("row loss", |r| r.loss, |d| d.loss, 1e-4, 1e-5),
        ];
        for (name, gpu_of, core_of, rtol, atol) in scalars {
            let got: Vec<f32> = out.rows.iter().map(gpu_of).collect();
            let want: Vec<f32> = d_core.iter().map(core_of).collect();
            close(&format!("{what} {name}"), &got, &want, rtol, atol)?;
        }
        close(&format!("{what} loss"), &[out.loss], &[l_core], 1e-4, 1e-5)?;
        let atol = if T::NAME == "f16" { 1e-7 } else { 1e-30 };
        let rtol: Vec<f32> = d_core
            .iter()
            .enumerate()
            .map(|(r, d)| match loss {
                RowLoss::Bnf { ref_logp } => grad_rtol::<T>(d, Some(ref_logp[r]), out.rows[r].c),
                RowLoss::Nll => grad_rtol::<T>(d, None, 1.0),
            })
            .collect();
        close_rows(
            &format!("{what} grad"),
            &to_f32(&g_gpu),
            &to_f32(&g_core),
            case.vocab,
            &rtol,
            atol,
        )?;
    }
    Ok(())
}

fn all_dtypes(gpu: &Gpu, case: &Case) -> TestResult {
    agree::<f32>(gpu, case)?;
    agree::<f16>(gpu, case)?;
    agree::<bf16>(gpu, case)
}

pub fn random_rows_match_core(gpu: &Gpu) -> TestResult {
    // Small rows (cached in shared memory), rows past the cache limit, odd sizes.
    for (seed, rows, vocab, scale) in [
        (1, 64, 7, 3.0),
        (2, 40, 1000, 5.0),
        (3, 16, 32000, 8.0),
        (4, 9, 20481, 2.0),
    ] {
        all_dtypes(gpu, &random_case(seed, rows, vocab, scale))?;
    }
    Ok(())
}

pub fn adversarial_rows_match_core(gpu: &Gpu) -> TestResult {
    for vocab in [1, 2, 1000, 128_256] {
        all_dtypes(gpu, &adversarial_case(vocab))?;
    }
    Ok(())
}

/// Every vocabulary size around the pack sizes (4 elements in f32, 8 in f16/bf16), and rows at
/// the edge of the fused kernel's row cache in shared memory: exactly its capacity (the whole
/// row kept) and one pack more (the last pack read twice from device memory), in every dtype.
pub fn every_vocab_size_matches_core(gpu: &Gpu) -> TestResult {
    for vocab in (1..=17).chain([31, 32, 33, 255, 256, 257, 2049]) {
        all_dtypes(gpu, &random_case(100 + vocab as u64, 5, vocab, 4.0))?;
    }
    let cap = ROW_CACHE_MAX_BYTES as usize;
    for vocab in [cap / 4, cap / 4 + 1, cap / 4 + 4] {
        agree::<f32>(gpu, &random_case(200, 3, vocab, 5.0))?;
    }
    for vocab in [cap / 2, cap / 2 + 8] {
        agree::<bf16>(gpu, &random_case(201, 3, vocab, 5.0))?;
        agree::<f16>(gpu, &random_case(202, 3, vocab, 5.0))?;
    }
    Ok(())
}

/// Logits of magnitude up to 1.5e38 (differences up to 3e38, finite in f32; the running
/// maximum jumps across the whole range), all-equal huge rows, huge rows with -inf logits, in
/// f32 and bf16 (f16 cannot hold them).
pub fn huge_logits_match_core(gpu: &Gpu) -> TestResult {
    let h = 1.5e38f32;
    for vocab in [1, 7, 1000, 40_000] {
        let mut case = adversarial_case(vocab);
        let mut rng = crate::support::Rng::new(vocab as u64 + 7);
        let y = vocab / 2;
        let rows: Vec<Vec<f32>> = vec![
            (0..vocab).map(|_| rng.range(-h, h)).collect(),
            (0..vocab).map(|j| if j == y { h } else { -h }).collect(),
            (0..vocab)
                .map(|j| if j == y { -h } else { h * 0.5 })
                .collect(),
            vec![h; vocab],
            (0..vocab)
                .map(|j| match j % 3 {
                    _ if j == y => h,
                    0 => f32::NEG_INFINITY,
                    1 => -h,
                    _ => h,
                })
                .collect(),
            (0..vocab)
                .map(|j| if j % 2 == 0 { h } else { h * (1.0 - 1e-7) })
                .collect(),
        ];
        for (i, row) in rows.into_iter().enumerate() {
            case.logits.extend(row);
            case.targets.push(y as u32);
            case.weights.push(if i % 2 == 0 { 0.5 } else { -0.5 });
            case.ref_logp.push(-0.3 * i as f32);
        }
        case.num_responses = case.rows().div_ceil(2);
        case.name = format!("huge logits V {vocab}");
        agree::<f32>(gpu, &case)?;
        agree::<bf16>(gpu, &case)?;
    }
    Ok(())
}

pub fn llama3_vocab_matches_core(gpu: &Gpu) -> TestResult {
    all_dtypes(gpu, &random_case(5, 6, 128_256, 10.0))
}

/// row_stats, gather_logp and row_grad (with core's bnf_scalars on the host) against core.
pub fn primitives_match_core(gpu: &Gpu) -> TestResult {
    for case in [
        random_case(10, 12, 777, 5.0),
        random_case(11, 3, 50_000, 5.0),
    ] {
        let logits = case.logits_as::<bf16>();
        let dev = gpu.upload(&logits).map_err(err)?;
        let rows = Rows::from(&case.batch());
        let stats = gpu.row_stats(&dev, &rows).map_err(err)?;
        let logp = gpu.gather_logp(&dev, &rows).map_err(err)?;
        let v = case.vocab;
        for r in 0..case.rows() {
            let want = if rows.is_scored(r) {
                row_stats(&logits[r * v..(r + 1) * v], case.targets[r] as usize)
                    .map_err(|e| core_err(&format!("{} row_stats row {r}", case.name), e))?
            } else {
                Default::default()
            };
            let got = stats[r];
            let what = format!("{} row {r}", case.name);
            close(
                &format!("{what} stats"),
                &[got.max, got.sum, got.others_sum, got.others_dot],
                &[want.max, want.sum, want.others_sum, want.others_dot],
                1e-4,
                1e-5,
            )?;
            close(
                &format!("{what} ell/lse"),
                &[got.ell, got.lse, logp.logp[r], logp.lse[r]],
                &[want.ell, want.lse, want.ell, want.lse],
                1e-5,
                1e-5,
            )?;
        }
        let w: Vec<f32> = (0..case.rows()).map(|r| case.weights[r] * 0.5).collect();
        let mut out = gpu.alloc::<bf16>(logits.len()).map_err(err)?;
        gpu.row_grad(&dev, &rows, &stats, &w, &mut out)
            .map_err(err)?;
        let got = gpu.to_host(&out).map_err(err)?;
        let mut want = vec![bf16::from_f32(0.0); logits.len()];
        for r in (0..case.rows()).filter(|&r| rows.is_scored(r)) {
            let (z, o) = (&logits[r * v..(r + 1) * v], &mut want[r * v..(r + 1) * v]);
            bnf_core::row_grad(z, case.targets[r] as usize, &stats[r], w[r], o)
                .map_err(|e| core_err(&format!("{} row_grad row {r}", case.name), e))?;
        }
        close(
            &format!("{} row_grad", case.name),
            &to_f32(&got),
            &to_f32(&want),
            rtol_of::<bf16>(),
            1e-30,
        )?;
        let mut in_place = gpu.upload(&logits).map_err(err)?;
        gpu.row_grad_in_place(&mut in_place, &rows, &stats, &w)
            .map_err(err)?;
        if gpu.to_host(&in_place).map_err(err)? != got {
            return Err(format!(
                "{}: row_grad in place differs from out of place",
                case.name
            ));
        }
    }
    Ok(())
}

/// The benchmark's naive baseline (the paper's appendix code, six kernels) computes the same
/// BNF as core, within f32 tolerance (it forms `1 - pi_y` directly, so only moderate rows).
pub fn naive_baseline_matches_core(gpu: &Gpu) -> TestResult {
    let mut case = random_case(14, 24, 1500, 3.0);
    case.scored = None;
    let (l_core, g_core, d_core) = core_run::<f32>(
        &case,
        RowLoss::Bnf {
            ref_logp: &case.ref_logp,
        },
    )?;
    let dev = DeviceCase::<f32>::upload(gpu, &case)?;
    let grad = gpu.alloc::<f32>(case.logits.len()).map_err(err)?;
    let bufs = NaiveBuffers::new(gpu, case.rows(), case.vocab).map_err(err)?;
    let args = dev.bnf(grad.as_raw());
    // SAFETY: every buffer is live and sized for this batch.
    unsafe { gpu.naive_bnf_raw(&args, &bufs, gpu.stream()) }.map_err(err)?;
    gpu.synchronize().map_err(err)?;
    let loss_rows = gpu.to_host(&bufs.loss).map_err(err)?;
    let want_rows: Vec<f32> = d_core.iter().map(|d| d.loss).collect();
    close("naive row loss", &loss_rows, &want_rows, 1e-3, 1e-5)?;
    let total: f64 = loss_rows.iter().map(|&l| l as f64).sum();
    close(
        "naive loss",
        &[(total / case.num_responses as f64) as f32],
        &[l_core],
        1e-3,
        1e-5,
    )?;
    close(
        "naive grad",
        &gpu.to_host(&grad).map_err(err)?,
        &g_core,
        1e-3,
        1e-7,
    )
}
