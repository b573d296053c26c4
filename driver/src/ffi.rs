//! The CUDA driver API functions this crate calls, declared once for both builds.
//!
//! With the `cuda` feature they are the real `libcuda` symbols (linked through `cust`, whose
//! build script finds the library). Results are read as plain `i32`: `cust_raw` 0.11 declares
//! `CUresult` as a Rust enum of the CUDA 11.4 codes, and a newer driver's code outside it would
//! be undefined behaviour. Without the feature every function is a Rust stub that returns
//! [`BUILT_WITHOUT_CUDA`], so all higher-level code is the same in both builds and fails with
//! `GpuError::BuiltWithoutCuda` at its first driver call. With the `emu` feature (and not
//! `cuda`) they are `crate::emu`'s host emulation instead.
#![allow(non_snake_case, clippy::missing_safety_doc)]

#[cfg_attr(all(feature = "emu", not(feature = "cuda")), allow(unused_imports))]
use std::ffi::{c_char, c_int, c_uint, c_void};

/// A code no CUDA driver returns, used by the stubs of a build without CUDA.
pub const BUILT_WITHOUT_CUDA: i32 = -1;
/// `CUDA_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// `CUDA_ERROR_NO_DEVICE`.
pub const ERROR_NO_DEVICE: i32 = 100;
/// `CUDA_ERROR_STUB_LIBRARY`: the toolkit's stub `libcuda.so` was loaded instead of a driver.
pub const ERROR_STUB_LIBRARY: i32 = 34;
/// `CUDA_ERROR_INSUFFICIENT_DRIVER`: the driver is older than this program needs.
pub const ERROR_INSUFFICIENT_DRIVER: i32 = 35;
/// `CUDA_ERROR_SYSTEM_DRIVER_MISMATCH`: the kernel module and the user-mode driver (`libcuda`)
/// are different versions (a driver update without a reboot, a container's libcuda).
pub const ERROR_SYSTEM_DRIVER_MISMATCH: i32 = 803;
/// `CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE`: a forward-compatibility libcuda on a GPU that
/// does not support it.
pub const ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE: i32 = 804;
/// `CUDA_ERROR_UNKNOWN`: what `cuInit` returns, among others, when the kernel module is not
/// loaded or the device nodes are missing.
pub const ERROR_UNKNOWN: i32 = 999;
/// `CU_JIT_ERROR_LOG_BUFFER`.
pub const JIT_ERROR_LOG_BUFFER: c_int = 5;
/// `CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES`.
pub const JIT_ERROR_LOG_BUFFER_SIZE_BYTES: c_int = 6;

/// `CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN`.
pub const DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: c_int = 97;
/// `CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES`: a kernel's static shared memory.
pub const FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: c_int = 1;
/// `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`: the dynamic shared memory a kernel may
/// be launched with (above 48 KiB only after setting it).
pub const FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: c_int = 8;

/// `CUdeviceptr`.
pub type DevicePtr = u64;
/// `CUcontext`, `CUmodule`, `CUfunction`, `CUstream`, `CUevent`: opaque handles.
pub type Handle = *mut c_void;

macro_rules! driver_api {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ); )*) => {
        #[cfg(feature = "cuda")]
        #[link(name = "cuda")]
        extern "C" {
            $( pub fn $name($($arg: $ty),*) -> i32; )*
        }
        #[cfg(all(feature = "emu", not(feature = "cuda")))]
        pub use crate::emu::{$($name),*};
        $(
            #[cfg(not(any(feature = "cuda", feature = "emu")))]
            #[allow(unused_variables, clippy::too_many_arguments)]
            pub unsafe fn $name($($arg: $ty),*) -> i32 {
                BUILT_WITHOUT_CUDA
            }
        )*
    };
}

driver_api! {
    fn cuInit(flags: c_uint);
    fn cuDriverGetVersion(version: *mut c_int);
    fn cuDeviceGetCount(count: *mut c_int);
    fn cuDeviceGet(device: *mut c_int, ordinal: c_int);
    fn cuDeviceGetName(name: *mut c_char, len: c_int, device: c_int);
    fn cuDeviceGetAttribute(value: *mut c_int, attribute: c_int, device: c_int);
    fn cuDevicePrimaryCtxRetain(ctx: *mut Handle, device: c_int);
    fn cuDevicePrimaryCtxRelease_v2(device: c_int);
    fn cuCtxGetCurrent(ctx: *mut Handle);
    fn cuCtxSetCurrent(ctx: Handle);
    fn cuCtxGetDevice(device: *mut c_int);
    fn cuGetErrorName(code: i32, name: *mut *const c_char);
    fn cuGetErrorString(code: i32, text: *mut *const c_char);
    fn cuModuleLoadDataEx(
        module: *mut Handle,
        image: *const c_void,
        num_options: c_uint,
        options: *mut c_int,
        values: *mut *mut c_void,
    );
    fn cuModuleUnload(module: Handle);
    fn cuModuleGetFunction(function: *mut Handle, module: Handle, name: *const c_char);
    fn cuFuncGetAttribute(value: *mut c_int, attribute: c_int, function: Handle);
    fn cuFuncSetAttribute(function: Handle, attribute: c_int, value: c_int);
    fn cuLaunchKernel(
        function: Handle,
        grid_x: c_uint,
        grid_y: c_uint,
        grid_z: c_uint,
        block_x: c_uint,
        block_y: c_uint,
        block_z: c_uint,
        shared_bytes: c_uint,
        stream: Handle,
        params: *mut *mut c_void,
        extra: *mut *mut c_void,
    );
    fn cuStreamCreate(stream: *mut Handle, flags: c_uint);
    fn cuStreamDestroy_v2(stream: Handle);
    fn cuStreamSynchronize(stream: Handle);
    fn cuMemAlloc_v2(ptr: *mut DevicePtr, bytes: usize);
    fn cuMemFree_v2(ptr: DevicePtr);
    fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize);
    fn cuMemcpyHtoDAsync_v2(dst: DevicePtr, src: *const c_void, bytes: usize, stream: Handle);
    fn cuMemcpyDtoHAsync_v2(dst: *mut c_void, src: DevicePtr, bytes: usize, stream: Handle);
    fn cuMemcpyDtoDAsync_v2(dst: DevicePtr, src: DevicePtr, bytes: usize, stream: Handle);
    fn cuEventCreate(event: *mut Handle, flags: c_uint);
    fn cuEventDestroy_v2(event: Handle);
    fn cuEventRecord(event: Handle, stream: Handle);
    fn cuEventSynchronize(event: Handle);
    fn cuEventElapsedTime(ms: *mut f32, start: Handle, end: Handle);
}

/// The driver's name and description of `code` ("CUDA_ERROR_X: text"), or the bare number when
/// the driver cannot say.
pub fn describe(code: i32) -> String {
    if code == BUILT_WITHOUT_CUDA {
        return "built without CUDA".to_string();
    }
    let text = |f: unsafe fn(i32, *mut *const c_char) -> i32| {
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: the driver writes a pointer to a static NUL-terminated string or fails.
        let ok = unsafe { f(code, &mut p) } == SUCCESS && !p.is_null();
        // SAFETY: checked non-null above; the string is static.
        ok.then(|| {
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        })
    };
    match (text(cuGetErrorName_fn), text(cuGetErrorString_fn)) {
        (Some(n), Some(s)) => format!("{n}: {s}"),
        (Some(n), None) => n,
        _ => format!("CUDA error {code}"),
    }
}

// Function-pointer-compatible wrappers (extern "C" items cannot be passed as `unsafe fn`).
unsafe fn cuGetErrorName_fn(code: i32, p: *mut *const c_char) -> i32 {
    cuGetErrorName(code, p)
}
unsafe fn cuGetErrorString_fn(code: i32, p: *mut *const c_char) -> i32 {
    cuGetErrorString(code, p)
}

/// `Ok(())` on success, else `GpuError::Driver` naming `call` (or `BuiltWithoutCuda`).
pub fn check(call: &'static str, code: i32) -> Result<(), crate::GpuError> {
    match code {
        SUCCESS => Ok(()),
        BUILT_WITHOUT_CUDA => Err(crate::GpuError::BuiltWithoutCuda),
        _ => Err(crate::GpuError::Driver {
            call,
            code,
            message: describe(code),
        }),
    }
}
