//! Without the `cuda` feature every entry is a clear error value, never a panic.
#![cfg(not(any(feature = "cuda", feature = "emu")))]

use bnf_driver::{device_count, driver_version, Gpu, GpuError};

#[test]
fn every_entry_says_built_without_cuda() {
    const { assert!(!bnf_driver::CUDA_ENABLED) };
    assert_eq!(Gpu::new(0).err(), Some(GpuError::BuiltWithoutCuda));
    assert_eq!(
        Gpu::attach_current().err(),
        Some(GpuError::BuiltWithoutCuda)
    );
    assert_eq!(device_count(), Err(GpuError::BuiltWithoutCuda));
    assert_eq!(driver_version(), Err(GpuError::BuiltWithoutCuda));
}

#[test]
fn unavailable_errors_read_as_such() {
    let e = GpuError::BuiltWithoutCuda;
    assert!(e.is_unavailable());
    assert!(e.to_string().contains("built without CUDA"));
    let e = GpuError::NoDriver {
        code: 34,
        message: "CUDA_ERROR_STUB_LIBRARY".into(),
    };
    assert!(e.is_unavailable() && e.to_string().starts_with("no CUDA driver found"));
    let e = GpuError::NoDevice {
        ordinal: 0,
        count: 0,
    };
    assert!(e.is_unavailable() && e.to_string().starts_with("no CUDA device"));
    let e = GpuError::PtxLoad {
        module: "bnf",
        message: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION".into(),
    };
    assert!(!e.is_unavailable() && e.to_string().contains("CUDA_ERROR_UNSUPPORTED_PTX_VERSION"));
}
