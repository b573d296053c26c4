//! [`DeviceBuffer`]: device memory of `len` plain values, freed on drop, with upload, download
//! and device-to-device copy on the context's own stream.

use crate::context::{with_context, Gpu};
use crate::error::GpuError;
use crate::ffi::{self, check, DevicePtr, Handle};
use bytemuck::Pod;
use std::ffi::c_void;
use std::marker::PhantomData;

/// `len` values of `T` in device memory of one context.
pub struct DeviceBuffer<T: Pod> {
    ptr: DevicePtr,
    len: usize,
    ctx: Handle,
    _t: PhantomData<T>,
}

impl<T: Pod> DeviceBuffer<T> {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw device pointer (`CUdeviceptr`), for the `*_raw` entries; 0 when empty.
    pub fn as_raw(&self) -> u64 {
        self.ptr
    }

    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
}

impl<T: Pod> Drop for DeviceBuffer<T> {
    fn drop(&mut self) {
        if self.ptr != 0 {
            // In its own context, switched to (and back) only when another one is current.
            // SAFETY: `ptr` was allocated in `ctx` by `Gpu::alloc` and is freed once.
            with_context(self.ctx, || unsafe {
                ffi::cuMemFree_v2(self.ptr);
            });
        }
    }
}

impl Gpu {
    /// Allocate `len` values (contents unspecified, but valid for a `Pod` type).
    pub fn alloc<T: Pod>(&self, len: usize) -> Result<DeviceBuffer<T>, GpuError> {
        self.make_current()?;
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(GpuError::TooLarge {
                what: "buffer",
                value: len,
            })?;
        let mut ptr: DevicePtr = 0;
        if bytes > 0 {
            // SAFETY: plain out-parameter.
            check("cuMemAlloc", unsafe { ffi::cuMemAlloc_v2(&mut ptr, bytes) })?;
        }
        Ok(DeviceBuffer {
            ptr,
            len,
            ctx: self.context(),
            _t: PhantomData,
        })
    }

    /// Copy `host` into new device memory.
    pub fn upload<T: Pod>(&self, host: &[T]) -> Result<DeviceBuffer<T>, GpuError> {
        let buf = self.alloc(host.len())?;
        self.write(&buf, host)?;
        Ok(buf)
    }

    /// Overwrite `buf` with `host` (same length).
    pub fn write<T: Pod>(&self, buf: &DeviceBuffer<T>, host: &[T]) -> Result<(), GpuError> {
        check_same("upload source", buf.len, host.len())?;
        if buf.len == 0 {
            return Ok(());
        }
        self.make_current()?;
        // SAFETY: both ranges hold `bytes()` bytes; we wait for the copy before returning, so
        // `host` outlives it.
        check("cuMemcpyHtoDAsync", unsafe {
            ffi::cuMemcpyHtoDAsync_v2(
                buf.ptr,
                host.as_ptr() as *const c_void,
                buf.bytes(),
                self.stream(),
            )
        })?;
        self.synchronize()
    }

    /// Copy `buf` into `host` (same length).
    pub fn download<T: Pod>(&self, buf: &DeviceBuffer<T>, host: &mut [T]) -> Result<(), GpuError> {
        check_same("download target", buf.len, host.len())?;
        // SAFETY: `buf` holds `host.len()` `T`s of this context's memory.
        unsafe { self.download_raw(buf.ptr, host) }
    }

    /// Copy the `host.len()` `T`s at device address `src` into `host`.
    ///
    /// # Safety
    /// `src` must start `host.len()` `T`s of live device memory of this context.
    pub(crate) unsafe fn download_raw<T: Pod>(
        &self,
        src: DevicePtr,
        host: &mut [T],
    ) -> Result<(), GpuError> {
        if host.is_empty() {
            return Ok(());
        }
        self.make_current()?;
        // SAFETY: both ranges hold `size_of_val(host)` bytes (the caller's contract for `src`);
        // we wait for the copy before returning.
        check("cuMemcpyDtoHAsync", unsafe {
            ffi::cuMemcpyDtoHAsync_v2(
                host.as_mut_ptr() as *mut c_void,
                src,
                std::mem::size_of_val(host),
                self.stream(),
            )
        })?;
        self.synchronize()
    }

    /// `buf` as a new host vector.
    pub fn to_host<T: Pod>(&self, buf: &DeviceBuffer<T>) -> Result<Vec<T>, GpuError> {
        let mut v = vec![T::zeroed(); buf.len];
        self.download(buf, &mut v)?;
        Ok(v)
    }

    /// Queue a device-to-device copy of `src` into `dst` (same length) on the own stream,
    /// without waiting.
    pub fn copy<T: Pod>(
        &self,
        src: &DeviceBuffer<T>,
        dst: &mut DeviceBuffer<T>,
    ) -> Result<(), GpuError> {
        check_same("copy target", src.len, dst.len)?;
        if src.len == 0 {
            return Ok(());
        }
        self.make_current()?;
        // SAFETY: both buffers hold `bytes()` bytes in this context.
        check("cuMemcpyDtoDAsync", unsafe {
            ffi::cuMemcpyDtoDAsync_v2(dst.ptr, src.ptr, src.bytes(), self.stream())
        })
    }
}

fn check_same(what: &'static str, expected: usize, found: usize) -> Result<(), GpuError> {
    if expected == found {
        Ok(())
    } else {
        Err(GpuError::Input(bnf_core::BnfError::LengthMismatch {
            what,
            expected,
            found,
        }))
    }
}
