//! Bit-for-bit checks: repeated launches, in place against out of place, and the raw entry on
//! a foreign stream against the safe entry.

use super::device::DeviceCase;
use super::{bits, err, gpu_run, TestResult};
use crate::support::{adversarial_case, random_case, Case};
use bnf_core::{bf16, f16, Logit, RowLoss};
use bnf_driver::Gpu;

/// FNV-1a over bytes: a digest to compare runs in different processes.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Four launches of `case` in `T` give the same bits; returns `digest` updated with them.
fn repeat_bitwise<T: Logit>(gpu: &Gpu, case: &Case, digest: u64) -> Result<u64, String> {
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
    let digest = fnv1a(digest, bytemuck::cast_slice(&bits(&a)));
    Ok(fnv1a(digest, bytemuck::cast_slice::<T, u8>(&ga)))
}

/// Repeated launches agree bit for bit; the digest line it prints lets two runs of the binary
/// be compared as well (`run_gpu_check.sh` does).
pub fn repeatable_bit_for_bit(gpu: &Gpu) -> TestResult {
    let mut digest = 0xcbf2_9ce4_8422_2325;
    for case in [
        random_case(6, 33, 5000, 4.0),
        random_case(7, 5, 128_256, 6.0),
    ] {
        digest = repeat_bitwise::<f32>(gpu, &case, digest)?;
        digest = repeat_bitwise::<bf16>(gpu, &case, digest)?;
        digest = repeat_bitwise::<f16>(gpu, &case, digest)?;
    }
    println!("    digest repeatable_bit_for_bit: {digest:016x}");
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

pub fn in_place_equals_out_of_place(gpu: &Gpu) -> TestResult {
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

/// The raw entry on a stream and context "owned by another framework" (here: a second `Gpu`
/// attached to the first one's context, using the first one's stream) matches the safe entry.
pub fn raw_entry_on_a_foreign_stream(gpu: &Gpu) -> TestResult {
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
    let dev = DeviceCase::<bf16>::upload(&attached, &case)?;
    let args = dev.bnf(dev.logits.as_raw());
    // SAFETY: every pointer is a live buffer of the current context with the documented size.
    unsafe { attached.bnf_fwd_bwd_raw(&args, gpu.stream()) }.map_err(err)?;
    gpu.synchronize().map_err(err)?;
    let rows = attached.to_host(&dev.out).map_err(err)?;
    let want_rows: Vec<f32> = want
        .rows
        .iter()
        .flat_map(|r| [r.loss, r.pi_y, r.f_y, r.c, r.lse])
        .collect();
    let grad = attached.to_host(&dev.logits).map_err(err)?;
    if bytemuck::cast_slice::<f32, u32>(&rows) != bytemuck::cast_slice::<f32, u32>(&want_rows)
        || bytemuck::cast_slice::<bf16, u16>(&grad) != bytemuck::cast_slice::<bf16, u16>(&want_grad)
        || attached
            .to_host(&dev.status)
            .map_err(err)?
            .iter()
            .any(|&s| s != 0)
    {
        return Err("raw entry on a foreign stream differs from the safe entry".into());
    }
    Ok(())
}
