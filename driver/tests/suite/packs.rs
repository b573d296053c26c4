//! The kernels read rows as 16-byte packs: with 16-byte loads where a row starts on a 16-byte
//! boundary, element by element elsewhere, in the same accumulation order. These tests hold
//! the two paths to the same bits (rows at offsets of one element, odd and even V; the
//! emulator fails a launch whose 16-byte access is misaligned, as the device does), and cover
//! the fused kernel's row cache in shared memory at its edges.

use super::device::DeviceCase;
use super::{err, TestResult};
use crate::support::{adversarial_case, random_case, Case};
use bnf_core::{bf16, f16, Logit};
use bnf_driver::kernels::ROW_STATS_FLOATS;
use bnf_driver::{DeviceBuffer, Gpu, RawRows};

/// Everything one run of the four kernels on `case` writes, as bits.
#[derive(PartialEq, Eq, Debug)]
struct Outputs {
    fused: Vec<u32>,
    grad: Vec<u8>,
    in_place: Vec<u8>,
    stats: Vec<u32>,
    logp: Vec<u32>,
    row_grad: Vec<u8>,
    status: Vec<i32>,
}

fn f32_bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `host` uploaded `offset` elements past the start of a fresh allocation (the allocation is
/// 256-byte aligned, so `offset` sets the alignment of the first row).
fn upload_at<T: Logit>(gpu: &Gpu, host: &[T], offset: usize) -> Result<DeviceBuffer<T>, String> {
    let mut v = vec![T::from_f32(0.0); offset];
    v.extend_from_slice(host);
    gpu.upload(&v).map_err(err)
}

fn bytes_from<T: Logit>(
    gpu: &Gpu,
    buf: &DeviceBuffer<T>,
    offset: usize,
) -> Result<Vec<u8>, String> {
    let v = gpu.to_host(buf).map_err(err)?;
    Ok(bytemuck::cast_slice::<T, u8>(&v[offset..]).to_vec())
}

/// The fused kernel (out of place and in place), row_stats, gather_logp and row_grad on
/// `case` with logits and gradients `offset` elements past 16-byte boundaries.
fn run<T: Logit>(gpu: &Gpu, case: &Case, offset: usize) -> Result<Outputs, String> {
    let logits = case.logits_as::<T>();
    let n = logits.len();
    let dev = DeviceCase::<T>::upload(gpu, case)?;
    let src = upload_at(gpu, &logits, offset)?;
    let at = |b: &DeviceBuffer<T>| b.as_raw() + (offset * std::mem::size_of::<T>()) as u64;
    let rows = RawRows {
        logits: at(&src),
        ..dev.rows()
    };
    let grad = upload_at(gpu, &vec![T::from_f32(0.0); n], offset)?;
    let mut a = dev.bnf(at(&grad));
    a.rows = rows;
    let s = gpu.stream();
    let mut status = Vec::new();
    // SAFETY: every pointer is a live buffer with the documented size past its offset.
    unsafe { gpu.bnf_fwd_bwd_raw(&a, s) }.map_err(err)?;
    gpu.synchronize().map_err(err)?;
    let fused = f32_bits(&gpu.to_host(&dev.out).map_err(err)?);
    status.extend(gpu.to_host(&dev.status).map_err(err)?);
    let in_place = upload_at(gpu, &logits, offset)?;
    a.rows.logits = at(&in_place);
    a.grad = at(&in_place);
    unsafe { gpu.bnf_fwd_bwd_raw(&a, s) }.map_err(err)?;
    gpu.synchronize().map_err(err)?;
    if f32_bits(&gpu.to_host(&dev.out).map_err(err)?) != fused {
        return Err(format!(
            "{} {} offset {offset}: in place row outputs differ",
            case.name,
            T::NAME
        ));
    }
    let r = case.rows();
    let stats = gpu.alloc::<f32>(r * ROW_STATS_FLOATS).map_err(err)?;
    let (logp, lse) = (
        gpu.alloc::<f32>(r).map_err(err)?,
        gpu.alloc::<f32>(r).map_err(err)?,
    );
    let w = gpu
        .upload(&case.weights.iter().map(|w| w * 0.25).collect::<Vec<f32>>())
        .map_err(err)?;
    let out = upload_at(gpu, &vec![T::from_f32(0.0); n], offset)?;
    let st = dev.status.as_raw();
    unsafe {
        gpu.row_stats_raw(&rows, stats.as_raw(), st, s)
            .map_err(err)?;
        gpu.synchronize().map_err(err)?;
        status.extend(gpu.to_host(&dev.status).map_err(err)?);
        gpu.gather_logp_raw(&rows, logp.as_raw(), lse.as_raw(), st, s)
            .map_err(err)?;
        gpu.synchronize().map_err(err)?;
        status.extend(gpu.to_host(&dev.status).map_err(err)?);
        gpu.row_grad_raw(&rows, at(&out), stats.as_raw(), w.as_raw(), st, s)
            .map_err(err)?;
    }
    gpu.synchronize().map_err(err)?;
    status.extend(gpu.to_host(&dev.status).map_err(err)?);
    let mut logp_bits = f32_bits(&gpu.to_host(&logp).map_err(err)?);
    logp_bits.extend(f32_bits(&gpu.to_host(&lse).map_err(err)?));
    Ok(Outputs {
        fused,
        grad: bytes_from(gpu, &grad, offset)?,
        in_place: bytes_from(gpu, &in_place, offset)?,
        stats: f32_bits(&gpu.to_host(&stats).map_err(err)?),
        logp: logp_bits,
        row_grad: bytes_from(gpu, &out, offset)?,
        status,
    })
}

fn same_at_every_offset<T: Logit>(gpu: &Gpu, case: &Case) -> TestResult {
    let aligned = run::<T>(gpu, case, 0)?;
    if aligned.status.iter().any(|&s| s != 0) {
        return Err(format!(
            "{} {}: a row failed: {:?}",
            case.name,
            T::NAME,
            aligned.status
        ));
    }
    if aligned.grad != aligned.in_place {
        return Err(format!(
            "{} {}: in place differs from out of place",
            case.name,
            T::NAME
        ));
    }
    let per_pack = 16 / std::mem::size_of::<T>();
    for offset in 1..per_pack {
        let moved = run::<T>(gpu, case, offset)?;
        if moved != aligned {
            return Err(format!(
                "{} {}: rows {offset} elements off a 16-byte boundary differ from aligned rows",
                case.name,
                T::NAME
            ));
        }
    }
    Ok(())
}

/// Rows at every element offset from a 16-byte boundary give the aligned rows' bits, in every
/// kernel and dtype, for V a multiple of the pack size (aligned: every row by 16-byte loads;
/// moved: every row element by element), odd V (rows of both kinds) and adversarial rows.
pub fn misaligned_rows_equal_aligned_bit_for_bit(gpu: &Gpu) -> TestResult {
    for case in [
        random_case(30, 6, 4096, 6.0),
        random_case(31, 7, 1001, 6.0),
        random_case(32, 3, 1, 1.0),
        adversarial_case(9),
    ] {
        same_at_every_offset::<f32>(gpu, &case)?;
        same_at_every_offset::<f16>(gpu, &case)?;
        same_at_every_offset::<bf16>(gpu, &case)?;
    }
    Ok(())
}
