//! # bnf-driver
//!
//! The thin GPU shim of the BNF workspace: it loads the `bnf-kernels` PTX into a CUDA context
//! and runs the row primitives of `bnf-core` on device memory, mirroring core's names:
//! [`Gpu::forward`], [`Gpu::forward_backward`], [`Gpu::forward_backward_in_place`] (BNF or
//! NLL, fused in one launch), [`Gpu::row_stats`], [`Gpu::row_grad`] and [`Gpu::gather_logp`].
//! The `*_raw` entries ([`Gpu::bnf_fwd_bwd_raw`] and friends) take device pointers and a
//! `CUstream` owned by another framework (PyTorch, candle), after [`Gpu::attach_current`].
//!
//! CUDA comes from `cust` (which links `libcuda`) behind the `cuda` feature, off by default.
//! Without it every entry returns [`GpuError::BuiltWithoutCuda`]; with it, a machine without a
//! driver or device gives [`GpuError::NoDriver`] or [`GpuError::NoDevice`]. Nothing panics.
//!
//! ```
//! match bnf_driver::Gpu::new(0) {
//!     Ok(gpu) => println!("running on {}", gpu.device_name().unwrap()),
//!     Err(e) if e.is_unavailable() => println!("no GPU: {e}"),
//!     Err(e) => panic!("{e}"),
//! }
//! ```
#![warn(missing_docs)]

// Linked for its build script, which finds and links libcuda (see ffi.rs for why the calls
// themselves are declared here).
#[cfg(feature = "cuda")]
use cust as _;

mod buffer;
mod context;
#[cfg(all(feature = "emu", not(feature = "cuda")))]
mod emu;
mod error;
mod ffi;
mod naive;
mod ops;
mod raw;
mod validate;

/// Core's description of the rows a primitive runs over (re-exported: the driver's entries take
/// it).
pub use bnf_core::Rows;
pub use buffer::DeviceBuffer;
pub use context::{device_count, driver_version, Gpu, KernelArg, Module, RawStream};
pub use error::GpuError;
pub use naive::NaiveBuffers;
pub use ops::{GpuOutput, GpuRow, LogProbs};
pub use raw::{RawBnf, RawRows};
pub use validate::{check_batch, check_rows, status_error};

pub use bnf_kernels as kernels;

/// Whether this build runs the kernels on the host emulator (`emu` feature without `cuda`).
pub const EMULATED: bool = cfg!(all(feature = "emu", not(feature = "cuda")));

/// Whether this build can use CUDA at all (the `cuda` feature).
pub const CUDA_ENABLED: bool = cfg!(feature = "cuda");
