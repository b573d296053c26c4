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
    /// The largest finite value of the type, as an `f32` (exact): a gradient or value written
    /// in the type must not exceed it in magnitude, or it rounds to infinity.
    const MAX: f32;
    /// Widen to `f32` (exact).
    fn to_f32(self) -> f32;
    /// Narrow from `f32`, rounding to nearest even.
    fn from_f32(v: f32) -> Self;
}

impl Logit for f32 {
    const NAME: &'static str = "f32";
    const MAX: f32 = f32::MAX;
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
    // (2 - 2^-10) 2^15 (a test holds it to `half`'s).
    const MAX: f32 = 65504.0;
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
    // bits 0x7F7F_0000: (2 - 2^-7) 2^127 (a test holds it to `half`'s).
    const MAX: f32 = 3.389_531_4e38;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `MAX` is each type's largest finite value, and one ulp of `f32` above it is beyond the
    /// type (rounds to infinity or to `MAX`, never to a larger finite value).
    #[test]
    fn max_is_the_largest_finite_value() {
        fn check<T: Logit>(half_max: f32) {
            assert_eq!(T::MAX, half_max, "{}", T::NAME);
            assert_eq!(T::from_f32(T::MAX).to_f32(), T::MAX, "{}", T::NAME);
            let above = T::from_f32(T::MAX * 2.0).to_f32();
            assert!(above.is_infinite(), "{}", T::NAME);
        }
        check::<f32>(f32::MAX);
        check::<f16>(f16::MAX.to_f32());
        check::<bf16>(bf16::MAX.to_f32());
        assert_eq!(<bf16 as Logit>::MAX.to_bits(), 0x7F7F_0000);
    }
}
