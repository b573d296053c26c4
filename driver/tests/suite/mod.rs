//! GPU against `bnf-core`: on a CUDA device (`tests/gpu.rs`, `--features cuda`) or on the
//! host emulator of the kernels (`tests/emu.rs`, `--features emu`); see docs/gpu.md. A custom
//! harness: each test prints `ok`, `FAILED` or `skipped: no GPU`, and the summary counts
//! skipped tests apart from passed ones. Without a GPU every test is skipped (exit 0), unless
//! `BNF_REQUIRE_GPU=1`, which makes that exit 2.
//!
//! Tolerances (GPU `expf`/`logf` and a different summation order against core's): per-row
//! scalars `rtol 1e-4`, `atol 1e-5`; `lse` `rtol 1e-6`, `atol 1e-4`; gradients a few units in
//! the last place of the storage type (`support::rtol_of`: f32 `2e-5`, f16 `2^-10`, bf16
//! `2^-7`, with `atol 1e-30`, f16 `1e-7`) plus, for BNF, `32 eps` times the magnitude of the
//! row's log-space terms (`support::grad_rtol`: `c = e^(log c)` turns their rounding into a
//! relative error of the whole row). Bitwise checks: the same launch repeated, in place
//! against out of place, the raw entry against the safe one; `repeatable_bit_for_bit` prints a
//! digest of its outputs so that two runs (two processes) can be compared too.
//!
//! The tests live in `agree.rs` (values against core), `exact.rs` (bit-for-bit), `packs.rs`
//! (16-byte and element-wise reads give the same bits) and `errors.rs` (bad input and missing
//! hardware).

mod agree;
mod device;
mod errors;
mod exact;
mod packs;

use crate::support::Case;
use bnf_core::{forward_backward, BnfError, Logit, RowDiag, RowLoss};
use bnf_driver::{Gpu, GpuError, GpuOutput};
use std::panic::{catch_unwind, AssertUnwindSafe};

type TestResult = Result<(), String>;

fn err(e: GpuError) -> String {
    format!("driver error: {e}")
}

/// A core error in the suite's error type.
fn core_err(what: &str, e: BnfError) -> String {
    format!("core rejected {what}: {e}")
}

/// Core's loss, gradient and rows for `case` in dtype `T`.
fn core_run<T: Logit>(
    case: &Case,
    loss: RowLoss<'_>,
) -> Result<(f32, Vec<T>, Vec<RowDiag>), String> {
    let logits = case.logits_as::<T>();
    let mut grad = vec![T::from_f32(0.0); logits.len()];
    let mut diag = vec![RowDiag::default(); case.rows()];
    let l = forward_backward(&logits, &case.batch(), loss, &mut grad, &mut diag)
        .map_err(|e| core_err(&case.name, e))?;
    Ok((l, grad, diag))
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

/// Bits of an output, for exact comparisons.
fn bits(out: &GpuOutput) -> Vec<u32> {
    let mut v = vec![out.loss.to_bits()];
    for r in &out.rows {
        v.extend([r.loss, r.pi_y, r.f_y, r.c, r.lse].map(f32::to_bits));
    }
    v
}

/// A GPU test: its name and body.
type Test = (&'static str, fn(&Gpu) -> TestResult);

const TESTS: &[Test] = &[
    ("random_rows_match_core", agree::random_rows_match_core),
    (
        "adversarial_rows_match_core",
        agree::adversarial_rows_match_core,
    ),
    (
        "llama3_vocab_matches_core",
        agree::llama3_vocab_matches_core,
    ),
    ("primitives_match_core", agree::primitives_match_core),
    (
        "naive_baseline_matches_core",
        agree::naive_baseline_matches_core,
    ),
    (
        "every_vocab_size_matches_core",
        agree::every_vocab_size_matches_core,
    ),
    ("huge_logits_match_core", agree::huge_logits_match_core),
    (
        "misaligned_rows_equal_aligned_bit_for_bit",
        packs::misaligned_rows_equal_aligned_bit_for_bit,
    ),
    ("repeatable_bit_for_bit", exact::repeatable_bit_for_bit),
    (
        "in_place_equals_out_of_place",
        exact::in_place_equals_out_of_place,
    ),
    (
        "raw_entry_on_a_foreign_stream",
        exact::raw_entry_on_a_foreign_stream,
    ),
    ("errors_match_core", errors::errors_match_core),
    (
        "row_grad_errors_match_core",
        errors::row_grad_errors_match_core,
    ),
    (
        "kernels_check_rows_themselves",
        errors::kernels_check_rows_themselves,
    ),
    (
        "raw_entries_reject_null_and_overlapping_pointers",
        errors::raw_entries_reject_null_and_overlapping_pointers,
    ),
    (
        "missing_device_is_a_clear_error",
        errors::missing_device_is_a_clear_error,
    ),
    (
        "ptx_load_failure_reports_the_driver_message",
        errors::ptx_load_failure_reports_the_driver_message,
    ),
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
