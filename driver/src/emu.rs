//! The `emu` feature's stand-in for `libcuda`: the driver functions of `ffi.rs` over host
//! memory, with kernel launches run by the C++ emulator of the CUDA sources (kernels/emu).
//! One emulated device, synchronous streams, device pointers are host addresses. It lets
//! the GPU tests exercise the kernels and this crate end to end without a GPU; it says
//! nothing about speed, and the hardware's `expf`/`logf` differ from the host's in the last
//! bits.
#![allow(non_snake_case, clippy::missing_safety_doc, clippy::too_many_arguments)]

use crate::ffi::{
    DevicePtr, Handle, JIT_ERROR_LOG_BUFFER, JIT_ERROR_LOG_BUFFER_SIZE_BYTES, SUCCESS,
};
use std::alloc::{alloc, dealloc, Layout};
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::Mutex;
use std::time::Instant;

extern "C" {
    fn bnf_emu_launch(
        name: *const c_char,
        blocks: c_uint,
        threads: c_uint,
        shared: c_uint,
        args: *mut *mut c_void,
    ) -> c_int;
    fn bnf_emu_has_kernel(name: *const c_char) -> c_int;
}

const INVALID_VALUE: i32 = 1;
const OUT_OF_MEMORY: i32 = 2;
const INVALID_IMAGE: i32 = 200;
const UNSUPPORTED_PTX_VERSION: i32 = 222;
const NOT_FOUND: i32 = 500;
const MISALIGNED_ADDRESS: i32 = 716;
const LAUNCH_FAILED: i32 = 719;
/// The emulated device's opt-in shared memory per block: a compute capability 9.0 device's.
const SHARED_OPT_IN: c_int = 227 * 1024;
/// Shared memory per block without opting in.
const SHARED_DEFAULT: u32 = 48 * 1024;
/// The one context's handle (any non-null value).
const CONTEXT: Handle = 0x10 as Handle;
const ALIGN: usize = 256;

static ALLOCATIONS: Mutex<Option<HashMap<u64, Layout>>> = Mutex::new(None);
/// Kernel names handed out as function handles, one allocation per name.
static FUNCTIONS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
/// The dynamic shared memory each function opted in to (`cuFuncSetAttribute`), by handle.
static OPTED_IN: Mutex<Option<HashMap<usize, u32>>> = Mutex::new(None);
/// The emulator's shared memory and barrier are global: one launch at a time.
static LAUNCH: Mutex<()> = Mutex::new(());

thread_local! {
    static CURRENT: Cell<Handle> = const { Cell::new(std::ptr::null_mut()) };
    /// How many times this thread called `cuCtxSetCurrent` (for the tests of `make_current`).
    static SET_CURRENT_CALLS: Cell<usize> = const { Cell::new(0) };
}

/// The number of `cuCtxSetCurrent` calls made on this thread so far.
#[cfg(test)]
pub(crate) fn set_current_calls() -> usize {
    SET_CURRENT_CALLS.with(|c| c.get())
}

pub unsafe fn cuInit(_flags: c_uint) -> i32 {
    SUCCESS
}
pub unsafe fn cuDriverGetVersion(version: *mut c_int) -> i32 {
    *version = 13000;
    SUCCESS
}
pub unsafe fn cuDeviceGetCount(count: *mut c_int) -> i32 {
    *count = 1;
    SUCCESS
}
pub unsafe fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> i32 {
    *device = ordinal;
    if ordinal == 0 {
        SUCCESS
    } else {
        INVALID_VALUE
    }
}
pub unsafe fn cuDeviceGetName(name: *mut c_char, len: c_int, _device: c_int) -> i32 {
    let text = b"bnf-emu (host emulation of the CUDA kernels)\0";
    let n = text.len().min(len.max(0) as usize);
    std::ptr::copy_nonoverlapping(text.as_ptr() as *const c_char, name, n);
    if n > 0 {
        *name.add(n - 1) = 0;
    }
    SUCCESS
}
pub unsafe fn cuDeviceGetAttribute(value: *mut c_int, attribute: c_int, _device: c_int) -> i32 {
    match attribute {
        crate::ffi::DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN => {
            *value = SHARED_OPT_IN;
            SUCCESS
        }
        _ => INVALID_VALUE,
    }
}
pub unsafe fn cuDevicePrimaryCtxRetain(ctx: *mut Handle, _device: c_int) -> i32 {
    *ctx = CONTEXT;
    SUCCESS
}
pub unsafe fn cuDevicePrimaryCtxRelease_v2(_device: c_int) -> i32 {
    SUCCESS
}
pub unsafe fn cuCtxGetCurrent(ctx: *mut Handle) -> i32 {
    *ctx = CURRENT.with(|c| c.get());
    SUCCESS
}
pub unsafe fn cuCtxSetCurrent(ctx: Handle) -> i32 {
    CURRENT.with(|c| c.set(ctx));
    SET_CURRENT_CALLS.with(|c| c.set(c.get() + 1));
    SUCCESS
}
pub unsafe fn cuCtxGetDevice(device: *mut c_int) -> i32 {
    *device = 0;
    SUCCESS
}
fn error_name(code: i32) -> &'static CStr {
    match code {
        INVALID_VALUE => c"CUDA_ERROR_INVALID_VALUE",
        OUT_OF_MEMORY => c"CUDA_ERROR_OUT_OF_MEMORY",
        INVALID_IMAGE => c"CUDA_ERROR_INVALID_IMAGE",
        UNSUPPORTED_PTX_VERSION => c"CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        NOT_FOUND => c"CUDA_ERROR_NOT_FOUND",
        MISALIGNED_ADDRESS => c"CUDA_ERROR_MISALIGNED_ADDRESS",
        LAUNCH_FAILED => c"CUDA_ERROR_LAUNCH_FAILED",
        _ => c"CUDA_ERROR_UNKNOWN",
    }
}
pub unsafe fn cuGetErrorName(code: i32, name: *mut *const c_char) -> i32 {
    *name = error_name(code).as_ptr();
    SUCCESS
}
pub unsafe fn cuGetErrorString(code: i32, text: *mut *const c_char) -> i32 {
    *text = match code {
        LAUNCH_FAILED => c"the emulator rejected the launch shape".as_ptr(),
        _ => c"(bnf-emu)".as_ptr(),
    };
    SUCCESS
}
/// The newest PTX ISA a CUDA 13.0 driver JIT-compiles (the version this emulator reports).
const MAX_PTX_ISA: (u32, u32) = (9, 0);

pub unsafe fn cuModuleLoadDataEx(
    module: *mut Handle,
    image: *const c_void,
    num_options: c_uint,
    options: *mut c_int,
    values: *mut *mut c_void,
) -> i32 {
    // The emulator runs the sources, not the PTX; still refuse what a CUDA 13.0 driver would:
    // text that is not PTX, or a newer PTX ISA, with a message in the JIT error log.
    let text = CStr::from_ptr(image as *const c_char).to_string_lossy();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix(".version "))
        .and_then(|v| v.trim().split_once('.'))
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    let (code, log) = match version {
        None => (
            INVALID_IMAGE,
            "bnf-emu: no .version directive: not PTX".to_string(),
        ),
        Some(v) if v > MAX_PTX_ISA => (
            UNSUPPORTED_PTX_VERSION,
            format!(
                "bnf-emu: PTX ISA {}.{} is newer than this driver's {}.{}",
                v.0, v.1, MAX_PTX_ISA.0, MAX_PTX_ISA.1
            ),
        ),
        Some(_) => {
            *module = Box::into_raw(Box::new(text.into_owned())) as Handle;
            return SUCCESS;
        }
    };
    write_jit_log(num_options, options, values, &log);
    code
}

/// Copy `log` (NUL-terminated, truncated to fit) into the caller's JIT error log buffer, if
/// the options name one.
unsafe fn write_jit_log(
    num_options: c_uint,
    options: *mut c_int,
    values: *mut *mut c_void,
    log: &str,
) {
    let (mut buf, mut size) = (std::ptr::null_mut::<u8>(), 0usize);
    for i in 0..num_options as usize {
        match *options.add(i) {
            JIT_ERROR_LOG_BUFFER => buf = *values.add(i) as *mut u8,
            JIT_ERROR_LOG_BUFFER_SIZE_BYTES => size = *values.add(i) as usize,
            _ => {}
        }
    }
    if buf.is_null() || size == 0 {
        return;
    }
    let n = log.len().min(size - 1);
    std::ptr::copy_nonoverlapping(log.as_ptr(), buf, n);
    *buf.add(n) = 0;
}
pub unsafe fn cuModuleUnload(module: Handle) -> i32 {
    drop(Box::from_raw(module as *mut String));
    SUCCESS
}
pub unsafe fn cuModuleGetFunction(
    function: *mut Handle,
    module: Handle,
    name: *const c_char,
) -> i32 {
    let ptx = &*(module as *const String);
    let entry = format!(".entry {}(", CStr::from_ptr(name).to_string_lossy());
    if !ptx.contains(&entry) || bnf_emu_has_kernel(name) == 0 {
        return NOT_FOUND;
    }
    // The handle is the kernel's name, interned for the life of the process.
    let key = CStr::from_ptr(name).to_string_lossy().into_owned();
    let mut map = FUNCTIONS.lock().unwrap_or_else(|e| e.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    let handle = *map
        .entry(key)
        .or_insert_with(|| CStr::from_ptr(name).to_owned().into_raw() as usize);
    *function = handle as Handle;
    SUCCESS
}
/// The static shared memory of every kernel the emulator runs: `bnf_kernels`' (the naive
/// kernels use less, which only makes this check stricter for them).
const STATIC_SHARED: u32 = bnf_kernels::STATIC_SHARED_BYTES;

pub unsafe fn cuFuncGetAttribute(value: *mut c_int, attribute: c_int, _function: Handle) -> i32 {
    match attribute {
        crate::ffi::FUNC_ATTRIBUTE_SHARED_SIZE_BYTES => {
            *value = STATIC_SHARED as c_int;
            SUCCESS
        }
        _ => INVALID_VALUE,
    }
}
/// As the driver: a kernel's dynamic shared memory may be raised up to the device's opt-in
/// limit less its static shared memory, no further.
pub unsafe fn cuFuncSetAttribute(function: Handle, attribute: c_int, value: c_int) -> i32 {
    if attribute != crate::ffi::FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
        || value < 0
        || value as u32 + STATIC_SHARED > SHARED_OPT_IN as u32
    {
        return INVALID_VALUE;
    }
    let mut map = OPTED_IN.lock().unwrap_or_else(|e| e.into_inner());
    map.get_or_insert_with(HashMap::new)
        .insert(function as usize, value as u32);
    SUCCESS
}
/// The dynamic shared memory `function` may be launched with: 48 KiB less its static shared
/// memory, or what it opted in to.
fn max_dynamic_shared(function: Handle) -> u32 {
    let map = OPTED_IN.lock().unwrap_or_else(|e| e.into_inner());
    map.as_ref()
        .and_then(|m| m.get(&(function as usize)).copied())
        .unwrap_or(SHARED_DEFAULT - STATIC_SHARED)
}
pub unsafe fn cuLaunchKernel(
    function: Handle,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    shared_bytes: c_uint,
    _stream: Handle,
    params: *mut *mut c_void,
    _extra: *mut *mut c_void,
) -> i32 {
    if grid_y != 1 || grid_z != 1 || block_y != 1 || block_z != 1 {
        return INVALID_VALUE;
    }
    if shared_bytes > max_dynamic_shared(function) {
        return INVALID_VALUE;
    }
    let _one_at_a_time = LAUNCH.lock().unwrap_or_else(|e| e.into_inner());
    match bnf_emu_launch(
        function as *const c_char,
        grid_x,
        block_x,
        shared_bytes,
        params,
    ) {
        0 => SUCCESS,
        1 => NOT_FOUND,
        3 => MISALIGNED_ADDRESS,
        _ => LAUNCH_FAILED,
    }
}
pub unsafe fn cuStreamCreate(stream: *mut Handle, _flags: c_uint) -> i32 {
    *stream = 0x20 as Handle;
    SUCCESS
}
pub unsafe fn cuStreamDestroy_v2(_stream: Handle) -> i32 {
    SUCCESS
}
pub unsafe fn cuStreamSynchronize(_stream: Handle) -> i32 {
    SUCCESS
}
pub unsafe fn cuMemAlloc_v2(ptr: *mut DevicePtr, bytes: usize) -> i32 {
    let Ok(layout) = Layout::from_size_align(bytes.max(1), ALIGN) else {
        return OUT_OF_MEMORY;
    };
    let p = alloc(layout);
    if p.is_null() {
        return OUT_OF_MEMORY;
    }
    let mut map = ALLOCATIONS.lock().unwrap_or_else(|e| e.into_inner());
    map.get_or_insert_with(HashMap::new)
        .insert(p as u64, layout);
    *ptr = p as u64;
    SUCCESS
}
pub unsafe fn cuMemFree_v2(ptr: DevicePtr) -> i32 {
    let mut map = ALLOCATIONS.lock().unwrap_or_else(|e| e.into_inner());
    match map.get_or_insert_with(HashMap::new).remove(&ptr) {
        Some(layout) => {
            dealloc(ptr as *mut u8, layout);
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}
/// The emulated device's memory size (the host's is what limits it in fact).
const TOTAL_MEMORY: usize = 64 << 30;

pub unsafe fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> i32 {
    let map = ALLOCATIONS.lock().unwrap_or_else(|e| e.into_inner());
    let used: usize = map.iter().flat_map(|m| m.values()).map(|l| l.size()).sum();
    *free = TOTAL_MEMORY.saturating_sub(used);
    *total = TOTAL_MEMORY;
    SUCCESS
}
pub unsafe fn cuMemcpyHtoDAsync_v2(
    dst: DevicePtr,
    src: *const c_void,
    bytes: usize,
    _s: Handle,
) -> i32 {
    std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes);
    SUCCESS
}
pub unsafe fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: DevicePtr,
    bytes: usize,
    _s: Handle,
) -> i32 {
    std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes);
    SUCCESS
}
pub unsafe fn cuMemcpyDtoDAsync_v2(
    dst: DevicePtr,
    src: DevicePtr,
    bytes: usize,
    _s: Handle,
) -> i32 {
    std::ptr::copy(src as *const u8, dst as *mut u8, bytes);
    SUCCESS
}
pub unsafe fn cuEventCreate(event: *mut Handle, _flags: c_uint) -> i32 {
    *event = Box::into_raw(Box::new(Instant::now())) as Handle;
    SUCCESS
}
pub unsafe fn cuEventDestroy_v2(event: Handle) -> i32 {
    drop(Box::from_raw(event as *mut Instant));
    SUCCESS
}
pub unsafe fn cuEventRecord(event: Handle, _stream: Handle) -> i32 {
    *(event as *mut Instant) = Instant::now();
    SUCCESS
}
pub unsafe fn cuEventSynchronize(_event: Handle) -> i32 {
    SUCCESS
}
pub unsafe fn cuEventElapsedTime(ms: *mut f32, start: Handle, end: Handle) -> i32 {
    let (a, b) = (*(start as *const Instant), *(end as *const Instant));
    *ms = b.saturating_duration_since(a).as_secs_f32() * 1e3;
    SUCCESS
}
