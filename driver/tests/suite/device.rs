//! A case uploaded for the raw entries: logits in `T`, every per-row input, and the fused
//! kernel's per-row outputs, with the raw argument structs built from them.

use super::err;
use crate::support::Case;
use bnf_core::Logit;
use bnf_driver::kernels::{Dtype, BNF_OUT_FLOATS};
use bnf_driver::{DeviceBuffer, Gpu, RawBnf, RawRows};

pub struct DeviceCase<T: Logit> {
    pub logits: DeviceBuffer<T>,
    pub targets: DeviceBuffer<u32>,
    pub weights: DeviceBuffer<f32>,
    pub ref_logp: DeviceBuffer<f32>,
    pub scored: Option<DeviceBuffer<u8>>,
    /// `BNF_OUT_FLOATS` per row.
    pub out: DeviceBuffer<f32>,
    pub status: DeviceBuffer<i32>,
    dtype: Dtype,
    rows: u32,
    vocab: u32,
    num_responses: f32,
}

impl<T: Logit> DeviceCase<T> {
    pub fn upload(gpu: &Gpu, case: &Case) -> Result<DeviceCase<T>, String> {
        let scored: Option<Vec<u8>> = case
            .scored
            .as_ref()
            .map(|m| m.iter().map(|&s| u8::from(s)).collect());
        Ok(DeviceCase {
            logits: gpu.upload(&case.logits_as::<T>()).map_err(err)?,
            targets: gpu.upload(&case.targets).map_err(err)?,
            weights: gpu.upload(&case.weights).map_err(err)?,
            ref_logp: gpu.upload(&case.ref_logp).map_err(err)?,
            scored: scored.map(|m| gpu.upload(&m)).transpose().map_err(err)?,
            out: gpu.alloc(case.rows() * BNF_OUT_FLOATS).map_err(err)?,
            status: gpu.alloc(case.rows()).map_err(err)?,
            dtype: Dtype::from_name(T::NAME).ok_or(format!("no kernels for {}", T::NAME))?,
            rows: case.rows() as u32,
            vocab: case.vocab as u32,
            num_responses: case.num_responses as f32,
        })
    }

    pub fn rows(&self) -> RawRows {
        RawRows {
            dtype: self.dtype,
            rows: self.rows,
            vocab: self.vocab,
            logits: self.logits.as_raw(),
            targets: self.targets.as_raw(),
            scored: self.scored.as_ref().map_or(0, |b| b.as_raw()),
        }
    }

    /// The fused kernel's arguments, gradient into `grad` (0: none; `logits.as_raw()`: in
    /// place).
    pub fn bnf(&self, grad: u64) -> RawBnf {
        RawBnf {
            rows: self.rows(),
            grad,
            weights: self.weights.as_raw(),
            ref_logp: self.ref_logp.as_raw(),
            num_responses: self.num_responses,
            out: self.out.as_raw(),
            status: self.status.as_raw(),
        }
    }
}
