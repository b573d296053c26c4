//! GPU against `bnf-core`: on a CUDA device (`tests/gpu.rs`, `--features cuda`) or on the
//! host emulator of the kernels (`tests/emu.rs`, `--features emu`); see docs/gpu.md. A custom harness: each test prints `ok`, `FAILED` or
//! `skipped: no GPU`, and the summary counts skipped tests apart from passed ones. Without a
//! GPU every test is skipped (exit 0), unless `BNF_REQUIRE_GPU=1`, which makes that exit 2.
//!
//! Tolerances (GPU `expf`/`logf` and a different summation order against core's): per-row
//! scalars `rtol 1e-4`, `atol 1e-5`; `lse` `rtol 1e-6`, `atol 1e-4`; gradients a few units in
//! the last place of the storage type (`support::rtol_of`). Bitwise checks: the same launch
//! twice, and in place against out of place.

use crate::support::{adversarial_case, close, random_case, rtol_of, Case};
use bnf_core::{bf16, f16, forward_backward, row_stats, Batch, BnfError, Logit, RowDiag, RowLoss};
use bnf_driver::{Gpu, GpuError, GpuOutput, NaiveBuffers, RawBnf, RawRows, Rows};
use std::panic::{catch_unwind, AssertUnwindSafe};

type TestResult = Result<(), String>;

fn err(e: GpuError) -> String {
    format!("driver error: {e}")
}

/// Core's loss, gradient and rows for `case` in dtype `T`.
fn core_run<T: Logit>(case: &Case, loss: RowLoss<'_>) -> (f32, Vec<T>, Vec<RowDiag>) {
    let logits = case.logits_as::<T>();
    let mut grad = vec![T::from_f32(0.0); logits.len()];
    let mut diag = vec![RowDiag::default(); case.rows()];
    let l = forward_backward(&logits, &case.batch(), loss, &mut grad, &mut diag)
        .unwrap_or_else(|e| panic!("core rejected {}: {e}", case.name));
    (l, grad, diag)
}

fn to_f32<T: Logit>(v: &[T]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

/// GPU out-of-place forward+backward of `case` in `T`: output and gradient.
fn gpu_run<T: Logit>(
    gpu: &Gpu,
    case: &Case,
    loss: RowLoss<'_>,
) -> Result<(GpuOutput, Vec<T>), String> {
    let logits = gpu.upload(&case.logits_as::<T>()).map_err(err)?;
    let mut grad = gpu.alloc::<T>(logits.len()).map_err(err)?;
    let out = gpu
        .forward_backward(&logits, &case.batch(), loss, &mut grad)
        .map_err(err)?;
    Ok((out, gpu.to_host(&grad).map_err(err)?))
}

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
        let (l_core, g_core, d_core) = core_run::<T>(case, loss);
        let (out, g_gpu) = gpu_run::<T>(gpu, case, loss)?;
        let pick = |f: fn(&RowDiag) -> f32| d_core.iter().map(f).collect::<Vec<_>>();
        let rows = |f: fn(&bnf_driver::GpuRow) -> f32| out.rows.iter().map(f).collect::<Vec<_>>();
        close(
            &format!("{what} pi_y"),
            &rows(|r| r.pi_y),
            &pick(|d| d.pi_y),
            1e-4,
            1e-5,
        )?;
        close(
            &format!("{what} f_y"),
            &rows(|r| r.f_y),
            &pick(|d| d.f_y),
            1e-4,
            1e-5,
        )?;
        close(
            &format!("{what} c"),
            &rows(|r| r.c),
            &pick(|d| d.c),
            1e-4,
            1e-5,
        )?;
        close(
            &format!("{what} lse"),
            &rows(|r| r.lse),
            &pick(|d| d.stats.lse),
            1e-6,
            1e-4,
        )?;
        close(
            &format!("{what} row loss"),
            &rows(|r| r.loss),
            &pick(|d| d.loss),
            1e-4,
            1e-5,
        )?;
        close(&format!("{what} loss"), &[out.loss], &[l_core], 1e-4, 1e-5)?;
        let atol = if T::NAME == "f16" { 1e-7 } else { 1e-30 };
        close(
            &format!("{what} grad"),
            &to_f32(&g_gpu),
            &to_f32(&g_core),
            rtol_of::<T>(),
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

fn random_rows_match_core(gpu: &Gpu) -> TestResult {
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

fn adversarial_rows_match_core(gpu: &Gpu) -> TestResult {
    for vocab in [1, 2, 1000, 128_256] {
        all_dtypes(gpu, &adversarial_case(vocab))?;
    }
    Ok(())
}

fn llama3_vocab_matches_core(gpu: &Gpu) -> TestResult {
    all_dtypes(gpu, &random_case(5, 6, 128_256, 10.0))
}

/// Bits of an output, for exact comparisons.
fn bits(out: &GpuOutput) -> Vec<u32> {
    let mut v = vec![out.loss.to_bits()];
    for r in &out.rows {
        v.extend([r.loss, r.pi_y, r.f_y, r.c, r.lse].map(f32::to_bits));
    }
    v
}

fn repeat_bitwise<T: Logit>(gpu: &Gpu, case: &Case) -> TestResult {
    let loss = RowLoss::Bnf {
        ref_logp: &case.ref_logp,
    };
    let (a, ga) = gpu_run::<T>(gpu, case, loss)?;
    for run in 0..3 {
        let (b, gb) = gpu_run::<T>(gpu, case, loss)?;
        if bits(&a) != bits(&b)
            || bytemuck::cast_slice::<T, u8>(&ga) != bytemuck::cast_slice::<T, u8>(&gb)
        {
            return Err(format!(
                "{} {}: run {run} differs from the first",
                case.name,
                T::NAME
            ));
        }
    }
    Ok(())
}

fn repeatable_bit_for_bit(gpu: &Gpu) -> TestResult {
    for case in [
        random_case(6, 33, 5000, 4.0),
        random_case(7, 5, 128_256, 6.0),
    ] {
        repeat_bitwise::<f32>(gpu, &case)?;
        repeat_bitwise::<bf16>(gpu, &case)?;
        repeat_bitwise::<f16>(gpu, &case)?;
    }
    Ok(())
}

fn in_place_same<T: Logit>(gpu: &Gpu, case: &Case) -> TestResult {
    let loss = RowLoss::Bnf {
        ref_logp: &case.ref_logp,
    };
    let (a, ga) = gpu_run::<T>(gpu, case, loss)?;
    let mut buf = gpu.upload(&case.logits_as::<T>()).map_err(err)?;
    let b = gpu
        .forward_backward_in_place(&mut buf, &case.batch(), loss)
        .map_err(err)?;
    let gb = gpu.to_host(&buf).map_err(err)?;
    if bits(&a) != bits(&b)
        || bytemuck::cast_slice::<T, u8>(&ga) != bytemuck::cast_slice::<T, u8>(&gb)
    {
        return Err(format!(
            "{} {}: in place differs from out of place",
            case.name,
            T::NAME
        ));
    }
    Ok(())
}

fn in_place_equals_out_of_place(gpu: &Gpu) -> TestResult {
    for case in [
        random_case(8, 21, 3000, 4.0),
        random_case(9, 3, 128_256, 4.0),
        adversarial_case(1000),
    ] {
        in_place_same::<f32>(gpu, &case)?;
        in_place_same::<bf16>(gpu, &case)?;
        in_place_same::<f16>(gpu, &case)?;
    }
    Ok(())
}

/// row_stats, gather_logp and row_grad (with core's bnf_scalars on the host) against core.
fn primitives_match_core(gpu: &Gpu) -> TestResult {
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
                    .map_err(|e| e.to_string())?
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
            bnf_core::row_grad(z, case.targets[r] as usize, &stats[r], w[r], o).unwrap();
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

fn bad_input_is_an_error_value(gpu: &Gpu) -> TestResult {
    let mut case = random_case(12, 8, 100, 2.0);
    case.scored = None;
    // Host-checked: a target out of range, before anything is launched.
    let mut bad = case.targets.clone();
    bad[5] = 100;
    let batch = Batch {
        targets: &bad,
        ..case.batch()
    };
    let dev = gpu.upload(&case.logits_as::<f32>()).map_err(err)?;
    let mut grad = gpu.alloc::<f32>(dev.len()).map_err(err)?;
    let e = gpu
        .forward_backward(&dev, &batch, RowLoss::Nll, &mut grad)
        .err();
    let want = BnfError::TargetOutOfRange {
        row: 5,
        target: 100,
        vocab: 100,
    };
    if e != Some(GpuError::Input(want)) {
        return Err(format!("target out of range gave {e:?}"));
    }
    // Device-checked: NaN in row 3; the error names it and row 3 of an in-place run is untouched.
    case.logits[3 * 100 + 17] = f32::NAN;
    let mut dev = gpu.upload(&case.logits).map_err(err)?;
    let e = gpu
        .forward_backward_in_place(
            &mut dev,
            &case.batch(),
            RowLoss::Bnf {
                ref_logp: &case.ref_logp,
            },
        )
        .err();
    if e != Some(GpuError::Input(BnfError::NonFiniteLogits { row: 3 })) {
        return Err(format!("NaN logits gave {e:?}"));
    }
    let after = gpu.to_host(&dev).map_err(err)?;
    if bytemuck::cast_slice::<f32, u32>(&after[300..400])
        != bytemuck::cast_slice::<f32, u32>(&case.logits[300..400])
    {
        return Err("the failed row was written".into());
    }
    Ok(())
}

/// The raw entry on a stream and context "owned by another framework" (here: a second `Gpu`
/// attached to the first one's context, using the first one's stream) matches the safe entry.
fn raw_entry_on_a_foreign_stream(gpu: &Gpu) -> TestResult {
    let case = random_case(13, 10, 4096, 4.0);
    let (want, want_grad) = gpu_run::<bf16>(
        gpu,
        &case,
        RowLoss::Bnf {
            ref_logp: &case.ref_logp,
        },
    )?;
    gpu.make_current().map_err(err)?;
    let attached = Gpu::attach_current().map_err(err)?;
    let logits = attached.upload(&case.logits_as::<bf16>()).map_err(err)?;
    let targets = attached.upload(&case.targets).map_err(err)?;
    let weights = attached.upload(&case.weights).map_err(err)?;
    let ref_logp = attached.upload(&case.ref_logp).map_err(err)?;
    let scored: Vec<u8> = case
        .scored
        .as_ref()
        .unwrap()
        .iter()
        .map(|&s| u8::from(s))
        .collect();
    let scored = attached.upload(&scored).map_err(err)?;
    let out = attached.alloc::<f32>(case.rows() * 5).map_err(err)?;
    let status = attached.alloc::<i32>(case.rows()).map_err(err)?;
    let args = RawBnf {
        rows: RawRows {
            dtype: bnf_driver::kernels::Dtype::Bf16,
            rows: case.rows() as u32,
            vocab: case.vocab as u32,
            logits: logits.as_raw(),
            targets: targets.as_raw(),
            scored: scored.as_raw(),
        },
        grad: logits.as_raw(),
        weights: weights.as_raw(),
        ref_logp: ref_logp.as_raw(),
        num_responses: case.num_responses as f32,
        out: out.as_raw(),
        status: status.as_raw(),
    };
    // SAFETY: every pointer is a live buffer of the current context with the documented size.
    unsafe { attached.bnf_fwd_bwd_raw(&args, gpu.stream()) }.map_err(err)?;
    gpu.synchronize().map_err(err)?;
    let rows = attached.to_host(&out).map_err(err)?;
    let want_rows: Vec<f32> = want
        .rows
        .iter()
        .flat_map(|r| [r.loss, r.pi_y, r.f_y, r.c, r.lse])
        .collect();
    if bytemuck::cast_slice::<f32, u32>(&rows) != bytemuck::cast_slice::<f32, u32>(&want_rows)
        || attached.to_host(&logits).map_err(err)? != want_grad
        || attached
            .to_host(&status)
            .map_err(err)?
            .iter()
            .any(|&s| s != 0)
    {
        return Err("raw entry on a foreign stream differs from the safe entry".into());
    }
    Ok(())
}

/// The benchmark's naive baseline (the paper's appendix code, six kernels) computes the same
/// BNF as core, within f32 tolerance (it forms `1 - pi_y` directly, so only moderate rows).
fn naive_baseline_matches_core(gpu: &Gpu) -> TestResult {
    let mut case = random_case(14, 24, 1500, 3.0);
    case.scored = None;
    let (l_core, g_core, d_core) = core_run::<f32>(
        &case,
        RowLoss::Bnf {
            ref_logp: &case.ref_logp,
        },
    );
    let logits = gpu.upload(&case.logits).map_err(err)?;
    let grad = gpu.alloc::<f32>(logits.len()).map_err(err)?;
    let (targets, weights) = (
        gpu.upload(&case.targets).map_err(err)?,
        gpu.upload(&case.weights).map_err(err)?,
    );
    let ref_logp = gpu.upload(&case.ref_logp).map_err(err)?;
    let bufs = NaiveBuffers::new(gpu, case.rows(), case.vocab).map_err(err)?;
    let args = RawBnf {
        rows: RawRows {
            dtype: bnf_driver::kernels::Dtype::F32,
            rows: case.rows() as u32,
            vocab: case.vocab as u32,
            logits: logits.as_raw(),
            targets: targets.as_raw(),
            scored: 0,
        },
        grad: grad.as_raw(),
        weights: weights.as_raw(),
        ref_logp: ref_logp.as_raw(),
        num_responses: case.num_responses as f32,
        out: 0,
        status: 0,
    };
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

/// A GPU test: its name and body.
type Test = (&'static str, fn(&Gpu) -> TestResult);

const TESTS: &[Test] = &[
    ("random_rows_match_core", random_rows_match_core),
    ("adversarial_rows_match_core", adversarial_rows_match_core),
    ("llama3_vocab_matches_core", llama3_vocab_matches_core),
    ("repeatable_bit_for_bit", repeatable_bit_for_bit),
    ("in_place_equals_out_of_place", in_place_equals_out_of_place),
    ("primitives_match_core", primitives_match_core),
    ("bad_input_is_an_error_value", bad_input_is_an_error_value),
    (
        "raw_entry_on_a_foreign_stream",
        raw_entry_on_a_foreign_stream,
    ),
    ("naive_baseline_matches_core", naive_baseline_matches_core),
];

/// Run the tests named on the command line (all when none), print one line each and a
/// summary, and exit: 0 all passed (or all skipped for want of a GPU), 1 a failure, 2 skipped
/// while `BNF_REQUIRE_GPU=1`.
pub fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("running {} GPU tests", selected.len());
    let gpu = match Gpu::new(0) {
        Ok(g) => g,
        Err(e) if e.is_unavailable() => {
            for (name, _) in &selected {
                println!("test {name} ... skipped: no GPU");
            }
            println!("\nGPU test result: SKIPPED (not run, not passed): no GPU: {e}");
            println!("0 passed; 0 failed; {} skipped", selected.len());
            let required = std::env::var("BNF_REQUIRE_GPU").is_ok_and(|v| v == "1");
            std::process::exit(if required { 2 } else { 0 });
        }
        Err(e) => {
            println!("GPU present but unusable: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "device: {}",
        gpu.device_name().unwrap_or_else(|e| e.to_string())
    );
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in &selected {
        let result = catch_unwind(AssertUnwindSafe(|| test(&gpu))).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "panicked".into()))
        });
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(msg) => {
                failed += 1;
                println!("test {name} ... FAILED\n    {msg}");
            }
        }
    }
    println!(
        "\nGPU test result: {}. {passed} passed; {failed} failed; 0 skipped",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    std::process::exit(i32::from(failed > 0));
}
