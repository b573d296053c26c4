//! Bad input and missing hardware: core's errors for the same rows, nothing written where core
//! writes nothing, row statuses from the kernels themselves, and the driver's own messages.

use super::device::DeviceCase;
use super::{err, TestResult};
use crate::support::{random_case, Case};
use bnf_core::{forward_backward, row_grad, Logit, RowDiag, RowLoss, RowStats};
use bnf_driver::kernels::{status, BNF_PTX, ROW_STATS_FLOATS};
use bnf_driver::{device_count, Gpu, GpuError, RawBnf, RawRows, Rows};

const V: usize = 50;

/// A defect planted in one row of a batch.
#[derive(Clone, Copy, Debug)]
enum Defect {
    Target,
    Weight(f32),
    Logit(f32),
    TargetLogit(f32),
    RefLogp(f32),
}

fn plant(case: &mut Case, row: usize, d: Defect) {
    let y = case.targets[row] as usize;
    match d {
        Defect::Target => case.targets[row] = V as u32,
        Defect::Weight(w) => case.weights[row] = w,
        Defect::Logit(z) => case.logits[row * V + (y + 1) % V] = z,
        Defect::TargetLogit(z) => case.logits[row * V + y] = z,
        Defect::RefLogp(rho) => case.ref_logp[row] = rho,
    }
}

/// Core's error and the GPU's (in place) on `case` in `T`; and whether the device logits
/// kept their bits where core would have written nothing.
fn both_errors<T: Logit>(gpu: &Gpu, case: &Case, loss: RowLoss<'_>) -> Result<(), String> {
    let logits = case.logits_as::<T>();
    let mut grad = vec![T::from_f32(0.0); logits.len()];
    let mut diag = vec![RowDiag::default(); case.rows()];
    let want = forward_backward(&logits, &case.batch(), loss, &mut grad, &mut diag)
        .err()
        .map(GpuError::Input);
    let mut dev = gpu.upload(&logits).map_err(err)?;
    let got = gpu
        .forward_backward_in_place(&mut dev, &case.batch(), loss)
        .err();
    // NaN values inside errors compare unequal, so compare what they print.
    if format!("{got:?}") != format!("{want:?}") {
        return Err(format!(
            "{} {}: gpu error {got:?}, core error {want:?}",
            case.name,
            T::NAME
        ));
    }
    let after = gpu.to_host(&dev).map_err(err)?;
    let v = case.vocab;
    let untouched = |r: usize| {
        bytemuck::cast_slice::<T, u8>(&after[r * v..(r + 1) * v])
            == bytemuck::cast_slice::<T, u8>(&logits[r * v..(r + 1) * v])
    };
    match want {
        // Only the device sees non-finite logits: that row is left as it was (docs/gpu.md).
        Some(GpuError::Input(bnf_core::BnfError::NonFiniteLogits { row, .. }))
            if !untouched(row) =>
        {
            Err(format!("{}: failed row {row} was written", case.name))
        }
        Some(GpuError::Input(bnf_core::BnfError::NonFiniteLogits { .. })) => Ok(()),
        Some(_) if !(0..case.rows()).all(untouched) => Err(format!(
            "{}: logits written although the host saw the error",
            case.name
        )),
        _ => Ok(()),
    }
}

/// Batches with one or two bad rows: the GPU reports core's error for core's row (the lowest),
/// including a non-finite logit that only the device sees before a row the host rejects.
pub fn errors_match_core(gpu: &Gpu) -> TestResult {
    use Defect::*;
    let plans: &[&[(usize, Defect)]] = &[
        &[(3, Logit(f32::NAN))],
        &[(2, Logit(f32::INFINITY))],
        &[(1, TargetLogit(f32::NEG_INFINITY))],
        &[(4, Target)],
        &[(5, Weight(f32::NAN))],
        &[(0, RefLogp(0.5))],
        &[(0, RefLogp(f32::NAN))],
        &[(1, Logit(f32::NAN)), (4, RefLogp(0.5))],
        &[(1, Logit(f32::NAN)), (2, Target)],
        &[(2, Weight(f32::INFINITY)), (3, Target)],
        &[(0, Target), (2, Logit(f32::NAN))],
        &[(3, RefLogp(2.0)), (3, Weight(f32::NAN))],
        &[(3, RefLogp(2.0)), (3, Logit(f32::NAN))],
    ];
    for plan in plans {
        let mut case = random_case(12, 6, V, 2.0);
        case.scored = None;
        case.ref_logp.iter_mut().for_each(|r| *r = -1.5);
        for &(row, d) in plan.iter() {
            plant(&mut case, row, d);
        }
        case.name = format!("defects {plan:?}");
        for loss in [
            RowLoss::Bnf {
                ref_logp: &case.ref_logp,
            },
            RowLoss::Nll,
        ] {
            both_errors::<f32>(gpu, &case, loss)?;
            both_errors::<bnf_core::bf16>(gpu, &case, loss)?;
        }
    }
    Ok(())
}

/// `row_grad` with a bad target, weight or statistics: core's error for the lowest row, and
/// nothing written.
pub fn row_grad_errors_match_core(gpu: &Gpu) -> TestResult {
    let case = random_case(15, 5, V, 3.0);
    let rows = Rows {
        scored: None,
        ..Rows::from(&case.batch())
    };
    let dev = gpu.upload(&case.logits).map_err(err)?;
    let good = gpu.row_stats(&dev, &rows).map_err(err)?;
    let s = good[0];
    let bad_stats = [
        RowStats { sum: 0.5, ..s },
        RowStats {
            others_sum: s.sum * 2.0,
            ..s
        },
        RowStats { max: f32::NAN, ..s },
    ];
    for (a, b) in [(1, 3), (0, 4), (2, 2)] {
        for bad in bad_stats {
            let (mut targets, mut stats, mut w) =
                (case.targets.clone(), good.clone(), vec![0.3; 5]);
            w[a] = f32::NAN;
            stats[b] = bad;
            if a == 2 {
                targets[4] = V as u32;
            }
            let rows = Rows {
                targets: &targets,
                ..rows
            };
            let mut out = vec![0.0f32; V];
            let want = (0..5).try_for_each(|r| {
                let z = &case.logits[r * V..(r + 1) * V];
                row_grad(z, targets[r] as usize, &stats[r], w[r], &mut out).map_err(|e| e.at_row(r))
            });
            let mut buf = gpu.upload(&case.logits).map_err(err)?;
            let got = gpu.row_grad_in_place(&mut buf, &rows, &stats, &w).err();
            let want = want.err().map(GpuError::Input);
            if format!("{got:?}") != format!("{want:?}") {
                return Err(format!("row_grad: gpu {got:?}, core {want:?}"));
            }
            if gpu.to_host(&buf).map_err(err)? != case.logits {
                return Err("row_grad wrote logits although it rejected the input".into());
            }
        }
    }
    Ok(())
}

/// The raw entries skip the host checks: the kernels themselves report each bad row's status
/// (core's error codes) and leave those rows of the gradient untouched.
pub fn kernels_check_rows_themselves(gpu: &Gpu) -> TestResult {
    use Defect::*;
    let mut case = random_case(16, 7, V, 2.0);
    case.scored = None;
    let defects = [
        None,
        Some(Target),
        Some(Weight(f32::NAN)),
        Some(Logit(f32::NAN)),
        Some(RefLogp(0.5)),
        Some(TargetLogit(f32::NEG_INFINITY)),
        None,
    ];
    for (r, d) in defects.iter().enumerate() {
        if let Some(d) = d {
            plant(&mut case, r, *d);
        }
    }
    let want = [
        status::OK,
        status::TARGET_OUT_OF_RANGE,
        status::INVALID_WEIGHT,
        status::NON_FINITE_LOGITS,
        status::INVALID_REF_LOGP,
        status::NON_FINITE_LOGITS,
        status::OK,
    ];
    let n = case.rows();
    let dev = DeviceCase::<f32>::upload(gpu, &case)?;
    let sentinel = vec![7.0f32; case.logits.len()];
    let grad = gpu.upload(&sentinel).map_err(err)?;
    let (rows, st) = (dev.rows(), &dev.status);
    let args = dev.bnf(grad.as_raw());
    // SAFETY: every pointer is a live buffer of this context sized for the batch.
    unsafe { gpu.bnf_fwd_bwd_raw(&args, gpu.stream()) }.map_err(err)?;
    let got = gpu.to_host(st).map_err(err)?;
    if got != want {
        return Err(format!("bnf_fwd_bwd statuses {got:?}, want {want:?}"));
    }
    let g = gpu.to_host(&grad).map_err(err)?;
    for (r, &code) in want.iter().enumerate() {
        let row = &g[r * V..(r + 1) * V];
        let kept = row.iter().all(|&x| x == 7.0);
        if kept != (code != status::OK) {
            return Err(format!(
                "bnf_fwd_bwd row {r} (status {code}): written = {}",
                !kept
            ));
        }
    }
    // row_stats and gather_logp: target and logits statuses.
    let stats = gpu.alloc::<f32>(n * ROW_STATS_FLOATS).map_err(err)?;
    // SAFETY: as above.
    unsafe { gpu.row_stats_raw(&rows, stats.as_raw(), st.as_raw(), gpu.stream()) }.map_err(err)?;
    let logits_statuses: Vec<i32> = want
        .iter()
        .map(|&c| match c {
            status::INVALID_WEIGHT | status::INVALID_REF_LOGP => status::OK,
            c => c,
        })
        .collect();
    let got = gpu.to_host(st).map_err(err)?;
    if got != logits_statuses {
        return Err(format!(
            "row_stats statuses {got:?}, want {logits_statuses:?}"
        ));
    }
    let (logp, lse) = (
        gpu.alloc::<f32>(n).map_err(err)?,
        gpu.alloc::<f32>(n).map_err(err)?,
    );
    // SAFETY: as above.
    unsafe {
        gpu.gather_logp_raw(
            &rows,
            logp.as_raw(),
            lse.as_raw(),
            st.as_raw(),
            gpu.stream(),
        )
    }
    .map_err(err)?;
    let got = gpu.to_host(st).map_err(err)?;
    if got != logits_statuses {
        return Err(format!(
            "gather_logp statuses {got:?}, want {logits_statuses:?}"
        ));
    }
    // row_grad: target, weight and statistics checked by the kernel (core's check order).
    let good = gpu
        .upload(&random_case(16, 7, V, 2.0).logits)
        .map_err(err)?;
    let clean = Rows {
        vocab: V,
        targets: &[0; 7],
        scored: None,
    };
    let mut host_stats = gpu.row_stats(&good, &clean).map_err(err)?;
    host_stats[3].sum = 0.25;
    host_stats[4].others_sum = f32::NAN;
    host_stats[5].others_sum = host_stats[5].sum * 2.0;
    let mut w = vec![0.5f32; n];
    w[2] = f32::INFINITY;
    w[1] = f32::NAN; // row 1's target is out of range too: that is checked first
    let flat: Vec<f32> = host_stats
        .iter()
        .flat_map(|s| [s.max, s.lse, s.ell, s.sum, s.others_sum, s.others_dot])
        .collect();
    let (stats_dev, w_dev) = (
        gpu.upload(&flat).map_err(err)?,
        gpu.upload(&w).map_err(err)?,
    );
    let mut grad_targets = [0u32; 7];
    grad_targets[1] = V as u32;
    let grad_targets = gpu.upload(&grad_targets).map_err(err)?;
    let out = gpu.upload(&sentinel).map_err(err)?;
    let grad_rows = RawRows {
        logits: good.as_raw(),
        targets: grad_targets.as_raw(),
        ..rows
    };
    // SAFETY: as above; `stats_dev` holds 6 floats per row.
    unsafe {
        gpu.row_grad_raw(
            &grad_rows,
            out.as_raw(),
            stats_dev.as_raw(),
            w_dev.as_raw(),
            st.as_raw(),
            gpu.stream(),
        )
    }
    .map_err(err)?;
    let want = [0, 1, 2, 5, 5, 5, 0];
    let got = gpu.to_host(st).map_err(err)?;
    if got != want {
        return Err(format!("row_grad statuses {got:?}, want {want:?}"));
    }
    let g = gpu.to_host(&out).map_err(err)?;
    for (r, &code) in want.iter().enumerate() {
        let kept = g[r * V..(r + 1) * V].iter().all(|&x| x == 7.0);
        if kept != (code != status::OK) {
            return Err(format!(
                "row_grad row {r} (status {code}): written = {}",
                !kept
            ));
        }
    }
    Ok(())
}

/// The raw entries reject null required pointers and a gradient that overlaps the logits
/// without being them before launching (a kernel would fault and poison the context): the
/// status buffer keeps its sentinel, and the context still works afterwards.
pub fn raw_entries_reject_null_and_overlapping_pointers(gpu: &Gpu) -> TestResult {
    let case = random_case(21, 3, V, 2.0);
    let dev = DeviceCase::<f32>::upload(gpu, &case)?;
    gpu.write(&dev.status, &[-9; 3]).map_err(err)?;
    let good = dev.bnf(0);
    let rows = dev.rows();
    let null = |what| Err(GpuError::NullPointer { what });
    let fused = |a: RawBnf| unsafe { gpu.bnf_fwd_bwd_raw(&a, gpu.stream()) };
    let cases: [(&str, RawBnf, Result<(), GpuError>); 6] = [
        (
            "logits",
            RawBnf {
                rows: RawRows { logits: 0, ..rows },
                ..good
            },
            null("rows.logits"),
        ),
        (
            "targets",
            RawBnf {
                rows: RawRows { targets: 0, ..rows },
                ..good
            },
            null("rows.targets"),
        ),
        ("weights", RawBnf { weights: 0, ..good }, null("weights")),
        ("out", RawBnf { out: 0, ..good }, null("out")),
        ("status", RawBnf { status: 0, ..good }, null("status")),
        (
            "grad",
            dev.bnf(dev.logits.as_raw() + 4),
            Err(GpuError::PartialOverlap { what: "grad" }),
        ),
    ];
    for (what, args, want) in cases {
        let got = fused(args);
        if got != want {
            return Err(format!(
                "bnf_fwd_bwd_raw with bad {what}: {got:?}, want {want:?}"
            ));
        }
    }
    let stats = gpu.alloc::<f32>(3 * ROW_STATS_FLOATS).map_err(err)?;
    let (s, st) = (stats.as_raw(), dev.status.as_raw());
    // SAFETY (each call): every non-null pointer is a live buffer sized for the rows.
    let got = unsafe { gpu.row_stats_raw(&rows, 0, st, gpu.stream()) };
    if got != null("stats") {
        return Err(format!("row_stats_raw with null stats: {got:?}"));
    }
    let w = dev.weights.as_raw();
    let got = unsafe { gpu.row_grad_raw(&rows, 0, s, w, 0, gpu.stream()) };
    if got != null("out") {
        return Err(format!("row_grad_raw with null out: {got:?}"));
    }
    let out = dev.logits.as_raw() + 8;
    let got = unsafe { gpu.row_grad_raw(&rows, out, s, w, 0, gpu.stream()) };
    if got != Err(GpuError::PartialOverlap { what: "out" }) {
        return Err(format!("row_grad_raw with out inside the logits: {got:?}"));
    }
    let got = unsafe { gpu.gather_logp_raw(&rows, 0, 0, st, gpu.stream()) };
    if got != null("logp") {
        return Err(format!("gather_logp_raw with null logp: {got:?}"));
    }
    if gpu.to_host(&dev.status).map_err(err)? != [-9; 3] {
        return Err("a rejected launch wrote statuses".into());
    }
    // Nothing reached the device: the same context runs a good launch.
    unsafe { gpu.bnf_fwd_bwd_raw(&good, gpu.stream()) }.map_err(err)?;
    let statuses = gpu.to_host(&dev.status).map_err(err)?;
    if statuses != [status::OK; 3] {
        return Err(format!(
            "good launch after the rejected ones: statuses {statuses:?}"
        ));
    }
    Ok(())
}

/// Asking for a device that does not exist is `NoDevice`, with a message that says so.
pub fn missing_device_is_a_clear_error(_gpu: &Gpu) -> TestResult {
    let count = device_count().map_err(err)?;
    match Gpu::new(count) {
        Err(e @ GpuError::NoDevice { ordinal, count: c })
            if ordinal == count && c == count && e.to_string().starts_with("no CUDA device") =>
        {
            Ok(())
        }
        Err(e) => Err(format!("device {count} of {count}: {e:?}")),
        Ok(_) => Err(format!("device {count} of {count} opened")),
    }
}

/// PTX the driver cannot load (an ISA newer than it knows) is `PtxLoad` carrying the driver's
/// own result name and JIT log; the shipped PTX loads.
pub fn ptx_load_failure_reports_the_driver_message(gpu: &Gpu) -> TestResult {
    gpu.check_ptx("bnf", BNF_PTX).map_err(err)?;
    let newer = BNF_PTX.replacen("\n.version 9.0\n", "\n.version 99.0\n", 1);
    if newer == BNF_PTX {
        return Err("the PTX has no `.version 9.0` line to change".into());
    }
    match gpu.check_ptx("bnf-isa-99", &newer) {
        Err(e @ GpuError::PtxLoad { .. }) => {
            let text = e.to_string();
            println!("    driver says: {text}");
            let GpuError::PtxLoad { message, .. } = &e else {
                unreachable!()
            };
            if message.starts_with("CUDA_ERROR_") && text.contains("bnf-isa-99") {
                Ok(())
            } else {
                Err(format!("PtxLoad without the driver's result name: {text}"))
            }
        }
        other => Err(format!(
            "PTX ISA 99.0 loaded or failed otherwise: {other:?}"
        )),
    }
}
