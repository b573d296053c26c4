//! The element types a row of logits (and its gradient) may have: `f32`, `half::f16` and
//! `half::bf16`. Every computation reads them into `f32` and accumulates in `f32`; a
//! low-precision type is only ever a storage format.

use half::{bf16, f16};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// A storage type for logits and gradients. Implemented for `f32`, `half::f16` and
/// `half::bf16`; sealed. `Pod`, so callers can cast raw byte buffers with `bytemuck`.
pub trait Logit: Copy + Send + Sync + bytemuck::Pod + sealed::Sealed + core::fmt::Debug {
    /// A short name for messages and benchmarks ("f32", "f16", "bf16").
    const NAME: &'static str;
    /// Widen to `f32` (exact).
    fn to_f32(self) -> f32;
    /// Narrow from `f32`, rounding to nearest even.
    fn from_f32(v: f32) -> Self;
}

impl Logit for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Logit for f16 {
    const NAME: &'static str = "f16";
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

impl Logit for bf16 {
    const NAME: &'static str = "bf16";
    #[inline(always)]
    fn to_f32(self) -> f32 {
        // Exact and branch-free: a bf16 is the top half of an f32.
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}
