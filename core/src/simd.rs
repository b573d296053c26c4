//! Which instruction set the hot row loops run with. The loops are plain Rust written for
//! auto-vectorisation; compiled for baseline x86-64 they use 4-wide SSE2. On x86-64 with `std`,
//! each hot loop is compiled a second time with AVX2 enabled (8 lanes) and chosen at run time
//! when the CPU has it: `cargo bench -p bnf-core --bench ratio` measured 1.34-1.47x more
//! throughput for the fused BNF pass with AVX2 (docs/benchmarks.md).
//!
//! The two versions give the same bits: Rust never contracts `a * b + c` into a fused
//! multiply-add on its own, so both compute the same IEEE operations in the same order, only
//! more of them at once ([`set_simd`] turns AVX2 off, and a test compares the two).
//!
//! This is the crate's only `unsafe` (the `dispatch!` macro's): calling a `#[target_feature]`
//! function, which is sound only after `is_x86_feature_detected!` has confirmed the feature.
#![allow(unsafe_code)]

#[cfg(all(feature = "std", target_arch = "x86_64"))]
static DISABLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Allow (`true`, the default) or forbid the AVX2 versions of the row loops. Results are the
/// same bits either way; this exists to show it and to compare speeds. A no-op where there is
/// no AVX2 version (not x86-64, or no `std`).
pub fn set_simd(enabled: bool) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    DISABLED.store(!enabled, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let _ = enabled;
}

/// Whether the row loops run their AVX2 versions now.
pub fn simd_avx2() -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        !DISABLED.load(core::sync::atomic::Ordering::Relaxed)
            && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        false
    }
}

/// Define `fn $name<T: Logit>(args) -> ret` that runs `$body` (an `#[inline(always)]`
/// function with the same arguments) compiled with AVX2 when [`simd_avx2`] says so, and as
/// compiled for the target otherwise.
macro_rules! dispatch {
    ($(#[$m:meta])* fn $name:ident<T: Logit>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:ident;) => {
        $(#[$m])*
        #[allow(unsafe_code)]
        pub(crate) fn $name<T: Logit>($($arg: $ty),*) -> $ret {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            {
                #[target_feature(enable = "avx2")]
                fn wide<T: Logit>($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if $crate::simd::simd_avx2() {
                    // SAFETY: the CPU has AVX2 (checked by `simd_avx2`).
                    return unsafe { wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use dispatch;
