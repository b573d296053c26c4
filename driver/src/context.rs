//! [`Gpu`]: a CUDA context (the device's primary context, or one another framework made
//! current), a stream of our own, and the loaded `bnf-kernels` modules.

use crate::error::GpuError;
use crate::ffi::{self, check, Handle};
use bnf_kernels::{
    dynamic_shared_bytes, entry_params, uses_row_cache, Dtype, Launch, BNF_PTX,
    DEFAULT_SHARED_BYTES, NAIVE_PTX,
};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CString};

/// A `CUstream` handle owned by the caller (PyTorch's `torch.cuda.current_stream().cuda_stream`,
/// candle's or cudarc's stream). Null is the legacy default stream.
pub type RawStream = *mut c_void;

/// Which PTX module a kernel lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// `bnf_kernels::BNF_PTX`, loaded with the context.
    Bnf,
    /// `bnf_kernels::NAIVE_PTX` (benchmark baseline), loaded on first use.
    Naive,
}

impl Module {
    fn ptx(self) -> (&'static str, &'static str) {
        match self {
            Module::Bnf => ("bnf", BNF_PTX),
            Module::Naive => ("naive", NAIVE_PTX),
        }
    }
}

/// One argument of [`Gpu::launch`]: where its value is and how many bytes it has, so the
/// launch can be checked against the kernel's PTX signature.
#[derive(Clone, Copy, Debug)]
pub struct KernelArg {
    ptr: *mut c_void,
    bytes: usize,
}

impl KernelArg {
    /// The argument `value`, which must stay alive and in place until the launch returns.
    pub fn new<T: Copy>(value: &mut T) -> KernelArg {
        KernelArg {
            ptr: value as *mut T as *mut c_void,
            bytes: std::mem::size_of::<T>(),
        }
    }
}

/// `[KernelArg; N]` of local variables, in the kernel's parameter order.
macro_rules! kernel_args {
    ($($a:ident),*) => { [$( $crate::context::KernelArg::new(&mut $a) ),*] };
}
pub(crate) use kernel_args;

/// A kernel's handle, the byte sizes of its parameters (from its PTX) and the most dynamic
/// shared memory it may be launched with here.
#[derive(Clone)]
struct Kernel {
    function: Handle,
    params: Vec<u32>,
    max_dynamic_shared: u32,
}

/// A CUDA context with the BNF kernels loaded. Not `Send`: use it on the thread that made it.
pub struct Gpu {
    ctx: Handle,
    device: c_int,
    owns_primary: bool,
    stream: Handle,
    bnf: Handle,
    naive: OnceCell<Handle>,
    kernels: RefCell<HashMap<&'static str, Kernel>>,
}

impl Gpu {
    /// Use device `ordinal`'s primary context (shared with the CUDA runtime, so PyTorch or
    /// CuPy in the same process see the same memory) and make it current on this thread.
    pub fn new(ordinal: u32) -> Result<Gpu, GpuError> {
        init()?;
        let count = device_count()?;
        if ordinal >= count {
            return Err(GpuError::NoDevice { ordinal, count });
        }
        let mut device: c_int = 0;
        // SAFETY: plain out-parameters.
        check("cuDeviceGet", unsafe {
            ffi::cuDeviceGet(&mut device, ordinal as c_int)
        })?;
        let mut ctx: Handle = std::ptr::null_mut();
        check("cuDevicePrimaryCtxRetain", unsafe {
            ffi::cuDevicePrimaryCtxRetain(&mut ctx, device)
        })?;
        Gpu::setup(ctx, device, true)
    }

    /// Attach to the context current on this thread (made by another framework); the context
    /// stays the caller's and is not released on drop.
    pub fn attach_current() -> Result<Gpu, GpuError> {
        init()?;
        let ctx = current_context()?;
        if ctx.is_null() {
            return Err(GpuError::NoContext);
        }
        let mut device: c_int = 0;
        check("cuCtxGetDevice", unsafe {
            ffi::cuCtxGetDevice(&mut device)
        })?;
        Gpu::setup(ctx, device, false)
    }

    fn setup(ctx: Handle, device: c_int, owns_primary: bool) -> Result<Gpu, GpuError> {
        let mut gpu = Gpu {
            ctx,
            device,
            owns_primary,
            stream: std::ptr::null_mut(),
            bnf: std::ptr::null_mut(),
            naive: OnceCell::new(),
            kernels: RefCell::new(HashMap::new()),
        };
        gpu.make_current()?;
        // SAFETY: out-parameter; flags 0 = a blocking stream in the current context.
        check("cuStreamCreate", unsafe {
            ffi::cuStreamCreate(&mut gpu.stream, 0)
        })?;
        gpu.bnf = load_module("bnf", BNF_PTX)?;
        for d in Dtype::ALL {
            let k = d.kernels();
            for name in [k.row_stats, k.row_grad, k.bnf_fwd_bwd, k.gather_logp] {
                gpu.kernel(Module::Bnf, name)?;
            }
        }
        Ok(gpu)
    }

    /// Make this context current on the calling thread (every method does it first). A no-op
    /// when it already is, as after [`Gpu::attach_current`]: another framework's current
    /// context is switched only when this one is a different context. It is not switched back
    /// afterwards (a framework sharing the device's primary context sees no change).
    pub fn make_current(&self) -> Result<(), GpuError> {
        if current_context()? == self.ctx {
            return Ok(());
        }
        // SAFETY: `ctx` is a live context for the lifetime of `self`.
        check("cuCtxSetCurrent", unsafe { ffi::cuCtxSetCurrent(self.ctx) })
    }

    /// This context's own stream (every safe method runs on it and waits for it).
    pub fn stream(&self) -> RawStream {
        self.stream
    }

    /// Wait until all work on this context's own stream is done.
    pub fn synchronize(&self) -> Result<(), GpuError> {
        // SAFETY: `stream` lives as long as `self`.
        check("cuStreamSynchronize", unsafe {
            ffi::cuStreamSynchronize(self.stream)
        })
    }

    /// The device's name, e.g. "NVIDIA H200".
    pub fn device_name(&self) -> Result<String, GpuError> {
        let mut buf = [0 as std::ffi::c_char; 256];
        // SAFETY: the driver writes at most `len` bytes, NUL-terminated.
        check("cuDeviceGetName", unsafe {
            ffi::cuDeviceGetName(buf.as_mut_ptr(), buf.len() as c_int, self.device)
        })?;
        // SAFETY: NUL-terminated by the driver (the buffer was zeroed too).
        Ok(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// `(free, total)` device memory in bytes.
    pub fn memory_info(&self) -> Result<(usize, usize), GpuError> {
        self.make_current()?;
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: plain out-parameters.
        check("cuMemGetInfo", unsafe {
            ffi::cuMemGetInfo_v2(&mut free, &mut total)
        })?;
        Ok((free, total))
    }

    /// The handle of kernel `name` in `module` (the naive module is loaded on first use).
    pub fn function(&self, module: Module, name: &'static str) -> Result<Handle, GpuError> {
        Ok(self.kernel(module, name)?.function)
    }

    fn kernel(&self, module: Module, name: &'static str) -> Result<Kernel, GpuError> {
        if let Some(k) = self.kernels.borrow().get(name) {
            return Ok(k.clone());
        }
        let handle = match module {
            Module::Bnf => self.bnf,
            Module::Naive => match self.naive.get() {
                Some(&m) => m,
                None => {
                    self.make_current()?;
                    let m = load_module("naive", NAIVE_PTX)?;
                    *self.naive.get_or_init(|| m)
                }
            },
        };
        let (module_name, ptx) = module.ptx();
        let params = entry_params(ptx, name).ok_or_else(|| GpuError::PtxLoad {
            module: module_name,
            message: format!("kernel {name}: no readable .entry signature in the PTX"),
        })?;
        let function = get_function(handle, name)?;
        let max_dynamic_shared = if uses_row_cache(name) {
            self.opt_in_shared(function)?
        } else {
            0
        };
        let k = Kernel {
            function,
            params,
            max_dynamic_shared,
        };
        self.kernels.borrow_mut().insert(name, k.clone());
        Ok(k)
    }

    /// Let `function` use all the shared memory a block may opt in to on this device, less its
    /// static shared memory; returns that dynamic size.
    fn opt_in_shared(&self, function: Handle) -> Result<u32, GpuError> {
        let (mut opt_in, mut fixed) = (0, 0);
        // SAFETY: plain out-parameters; `function` is a loaded kernel of this context.
        check("cuDeviceGetAttribute", unsafe {
            ffi::cuDeviceGetAttribute(
                &mut opt_in,
                ffi::DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                self.device,
            )
        })?;
        check("cuFuncGetAttribute", unsafe {
            ffi::cuFuncGetAttribute(&mut fixed, ffi::FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, function)
        })?;
        let total = (opt_in.max(0) as u32).max(DEFAULT_SHARED_BYTES);
        let dynamic = total.saturating_sub(fixed.max(0) as u32);
        if total > DEFAULT_SHARED_BYTES {
            check("cuFuncSetAttribute", unsafe {
                ffi::cuFuncSetAttribute(
                    function,
                    ffi::FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    dynamic as c_int,
                )
            })?;
        }
        Ok(dynamic)
    }

    /// Load `ptx` into this context as module `name` and unload it again: whether this driver
    /// accepts it. A refusal is [`GpuError::PtxLoad`] with the driver's result and JIT log.
    pub fn check_ptx(&self, name: &'static str, ptx: &str) -> Result<(), GpuError> {
        self.make_current()?;
        let m = load_module(name, ptx)?;
        // SAFETY: loaded just above, unloaded once.
        check("cuModuleUnload", unsafe { ffi::cuModuleUnload(m) })
    }

    /// Launch kernel `name` of `module` with `shape` on `stream`. The number and byte sizes of
    /// `args` are checked against the kernel's PTX signature first ([`GpuError::KernelArgs`]).
    /// The dynamic shared memory is `shape`'s capped at what the kernel may use on this device
    /// (`bnf_kernels::dynamic_shared_bytes`; the kernel reads the size it got).
    ///
    /// # Safety
    /// `args` must hold one value per kernel parameter, of the parameter's type, and every
    /// device pointer among them must be valid for what the kernel reads and writes.
    pub unsafe fn launch(
        &self,
        module: Module,
        name: &'static str,
        shape: Launch,
        args: &[KernelArg],
        stream: RawStream,
    ) -> Result<(), GpuError> {
        let k = self.kernel(module, name)?;
        let found: Vec<u32> = args.iter().map(|a| a.bytes as u32).collect();
        if found != k.params {
            return Err(GpuError::KernelArgs {
                kernel: name,
                expected: k.params,
                found,
            });
        }
        if shape.blocks == 0 {
            return Ok(());
        }
        let mut ptrs: Vec<*mut c_void> = args.iter().map(|a| a.ptr).collect();
        self.make_current()?;
        check(
            "cuLaunchKernel",
            ffi::cuLaunchKernel(
                k.function,
                shape.blocks,
                1,
                1,
                shape.threads,
                1,
                1,
                dynamic_shared_bytes(name, &shape, k.max_dynamic_shared),
                stream,
                ptrs.as_mut_ptr(),
                std::ptr::null_mut(),
            ),
        )
    }
}

/// The context current on the calling thread (null: none).
fn current_context() -> Result<Handle, GpuError> {
    let mut ctx: Handle = std::ptr::null_mut();
    // SAFETY: plain out-parameter.
    check("cuCtxGetCurrent", unsafe { ffi::cuCtxGetCurrent(&mut ctx) })?;
    Ok(ctx)
}

/// Run `f` with `ctx` current on this thread, then make the previous context current again if
/// it had to be switched: for drops, which may run while another framework's context is
/// current. Errors cannot be reported from drop; the driver frees everything at exit anyway.
pub(crate) fn with_context(ctx: Handle, f: impl FnOnce()) {
    let previous = current_context().ok();
    let switch = previous != Some(ctx);
    if switch {
        // SAFETY: `ctx` is live (the caller's value holds it).
        unsafe { ffi::cuCtxSetCurrent(ctx) };
    }
    f();
    if let (true, Some(p)) = (switch, previous) {
        // SAFETY: `p` was current just before (null: none).
        unsafe { ffi::cuCtxSetCurrent(p) };
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: each handle was created by this value and is released once.
        with_context(self.ctx, || unsafe {
            if let Some(&m) = self.naive.get() {
                ffi::cuModuleUnload(m);
            }
            if !self.bnf.is_null() {
                ffi::cuModuleUnload(self.bnf);
            }
            if !self.stream.is_null() {
                ffi::cuStreamDestroy_v2(self.stream);
            }
            if self.owns_primary {
                ffi::cuDevicePrimaryCtxRelease_v2(self.device);
            }
        });
    }
}

/// `cuInit`, mapping "no driver" and "no device" to their own errors.
fn init() -> Result<(), GpuError> {
    // SAFETY: no arguments besides flags (must be 0).
    init_result(unsafe { ffi::cuInit(0) })
}

/// What `cuInit`'s result `code` means here. Every code that says this machine's driver cannot
/// be used (the toolkit's stub, a driver too old, kernel module and libcuda of different
/// versions, a forward-compatibility libcuda the GPU does not support, or the unknown error a
/// missing kernel module gives) is [`GpuError::NoDriver`] with the driver's words: there is no
/// GPU to run on, which tests report as skipped.
fn init_result(code: i32) -> Result<(), GpuError> {
    match code {
        ffi::SUCCESS => Ok(()),
        ffi::ERROR_NO_DEVICE => Err(GpuError::NoDevice {
            ordinal: 0,
            count: 0,
        }),
        ffi::ERROR_STUB_LIBRARY
        | ffi::ERROR_INSUFFICIENT_DRIVER
        | ffi::ERROR_SYSTEM_DRIVER_MISMATCH
        | ffi::ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE
        | ffi::ERROR_UNKNOWN => Err(GpuError::NoDriver {
            code,
            message: ffi::describe(code),
        }),
        code => check("cuInit", code),
    }
}

/// The number of CUDA devices (initialises the driver).
pub fn device_count() -> Result<u32, GpuError> {
    init()?;
    let mut n: c_int = 0;
    // SAFETY: plain out-parameter.
    check("cuDeviceGetCount", unsafe { ffi::cuDeviceGetCount(&mut n) })?;
    Ok(n.max(0) as u32)
}

/// Load PTX text into the current context, returning the driver's JIT log on failure.
fn load_module(name: &'static str, ptx: &str) -> Result<Handle, GpuError> {
    let image = CString::new(ptx).map_err(|_| GpuError::PtxLoad {
        module: name,
        message: "PTX text contains a NUL byte".to_string(),
    })?;
    let mut log = vec![0u8; 16 * 1024];
    let mut options = [
        ffi::JIT_ERROR_LOG_BUFFER,
        ffi::JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
    ];
    let mut values = [log.as_mut_ptr() as *mut c_void, log.len() as *mut c_void];
    let mut module: Handle = std::ptr::null_mut();
    // SAFETY: `image` is NUL-terminated; the option arrays have 2 entries; the log buffer
    // outlives the call and its size is passed by value as the driver expects.
    let code = unsafe {
        ffi::cuModuleLoadDataEx(
            &mut module,
            image.as_ptr() as *const c_void,
            2,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    };
    match code {
        ffi::SUCCESS => Ok(module),
        ffi::BUILT_WITHOUT_CUDA => Err(GpuError::BuiltWithoutCuda),
        _ => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let jit = String::from_utf8_lossy(&log[..end]);
            Err(GpuError::PtxLoad {
                module: name,
                message: format!("{} {}", ffi::describe(code), jit.trim()),
            })
        }
    }
}

fn get_function(module: Handle, name: &'static str) -> Result<Handle, GpuError> {
    let cname = CString::new(name).map_err(|_| GpuError::PtxLoad {
        module: "function lookup",
        message: format!("kernel name {name:?} contains a NUL byte"),
    })?;
    let mut f: Handle = std::ptr::null_mut();
    // SAFETY: `module` is loaded; `cname` is NUL-terminated.
    check("cuModuleGetFunction", unsafe {
        ffi::cuModuleGetFunction(&mut f, module, cname.as_ptr())
    })?;
    Ok(f)
}

impl Gpu {
    /// The raw `CUcontext`.
    pub fn context(&self) -> Handle {
        self.ctx
    }
}

impl Gpu {
    /// Milliseconds of device time that the work `f` queues on the own stream takes, measured
    /// with CUDA events recorded before and after it.
    pub fn time_ms(&self, f: impl FnOnce() -> Result<(), GpuError>) -> Result<f32, GpuError> {
        self.make_current()?;
        let mut ev: [Handle; 2] = [std::ptr::null_mut(); 2];
        for e in ev.iter_mut() {
            // SAFETY: out-parameter; flags 0 = default (timing) event.
            check("cuEventCreate", unsafe { ffi::cuEventCreate(e, 0) })?;
        }
        let run = || -> Result<f32, GpuError> {
            // SAFETY: the events and the stream are live in this context.
            check("cuEventRecord", unsafe {
                ffi::cuEventRecord(ev[0], self.stream)
            })?;
            f()?;
            check("cuEventRecord", unsafe {
                ffi::cuEventRecord(ev[1], self.stream)
            })?;
            check("cuEventSynchronize", unsafe {
                ffi::cuEventSynchronize(ev[1])
            })?;
            let mut ms = 0.0f32;
            check("cuEventElapsedTime", unsafe {
                ffi::cuEventElapsedTime(&mut ms, ev[0], ev[1])
            })?;
            Ok(ms)
        };
        let result = run();
        for e in ev {
            // SAFETY: created above, destroyed once.
            unsafe { ffi::cuEventDestroy_v2(e) };
        }
        result
    }
}

/// The CUDA version the installed driver supports, as `(major, minor)` (e.g. `(13, 0)`).
pub fn driver_version() -> Result<(u32, u32), GpuError> {
    let mut v: c_int = 0;
    // SAFETY: plain out-parameter; callable before cuInit.
    check("cuDriverGetVersion", unsafe {
        ffi::cuDriverGetVersion(&mut v)
    })?;
    Ok(((v / 1000) as u32, (v % 1000 / 10) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_codes_that_say_no_usable_driver_are_no_driver() {
        assert_eq!(init_result(ffi::SUCCESS), Ok(()));
        for code in [34, 35, 803, 804, 999] {
            let e = init_result(code).unwrap_err();
            assert!(
                matches!(e, GpuError::NoDriver { code: c, .. } if c == code),
                "{code}: {e:?}"
            );
            assert!(e.is_unavailable() && e.to_string().starts_with("no CUDA driver found"));
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
        assert!(matches!(init_result(100), Err(GpuError::NoDevice { .. })));
        // Anything else is a driver failure, with the call named.
        let e = init_result(2).unwrap_err();
        assert!(
            matches!(
                e,
                GpuError::Driver {
                    call: "cuInit",
                    code: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!e.is_unavailable());
    }

    /// On the emulator (which keeps the current context per thread and counts the switches):
    /// methods switch only when another context is current, drops switch back.
    #[cfg(all(feature = "emu", not(feature = "cuda")))]
    #[test]
    fn the_current_context_is_switched_only_when_needed_and_restored_by_drops() {
        use crate::emu::set_current_calls;
        let foreign = 0x30 as Handle;
        let gpu = Gpu::new(0).unwrap();
        assert_eq!(current_context().unwrap(), gpu.context());
        let before = set_current_calls();
        let buf = gpu.upload(&[1.0f32, 2.0]).unwrap();
        assert_eq!(gpu.to_host(&buf).unwrap(), [1.0, 2.0]);
        drop(buf);
        assert_eq!(
            set_current_calls(),
            before,
            "already current: no cuCtxSetCurrent"
        );
        // Another framework's context is current: a method switches to ours (it must).
        unsafe { ffi::cuCtxSetCurrent(foreign) };
        let buf = gpu.alloc::<f32>(4).unwrap();
        assert_eq!(current_context().unwrap(), gpu.context());
        // A drop while the foreign context is current frees in ours and switches back.
        unsafe { ffi::cuCtxSetCurrent(foreign) };
        drop(buf);
        assert_eq!(current_context().unwrap(), foreign);
        drop(gpu);
        assert_eq!(current_context().unwrap(), foreign);
        unsafe { ffi::cuCtxSetCurrent(std::ptr::null_mut()) };
    }
}
