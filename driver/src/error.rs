//! The driver's one error type: why CUDA is unavailable, what the driver said, or (before any
//! launch) which input core would reject.

use bnf_core::BnfError;
use std::fmt;

/// Why a GPU call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuError {
    /// This build has no CUDA support (the `cuda` feature is off).
    BuiltWithoutCuda,
    /// No usable CUDA driver: `libcuda` is the toolkit's stub, too old for this program, of
    /// another version than the kernel module, a forward-compatibility one the GPU does not
    /// support, or `cuInit` failed with `CUDA_ERROR_UNKNOWN` (no kernel module, no device nodes).
    NoDriver {
        /// The driver API's result code.
        code: i32,
        /// The driver's name for it.
        message: String,
    },
    /// No CUDA device, or none with the requested ordinal.
    NoDevice {
        /// The requested device ordinal.
        ordinal: u32,
        /// How many devices the driver reports.
        count: u32,
    },
    /// `attach_current` found no CUDA context current on this thread.
    NoContext,
    /// The driver refused to load a PTX module; `message` is its JIT error log.
    PtxLoad {
        /// The module ("bnf" or "naive").
        module: &'static str,
        /// The driver's result name and its JIT log.
        message: String,
    },
    /// A driver call failed.
    Driver {
        /// The driver API function.
        call: &'static str,
        /// Its result code.
        code: i32,
        /// The driver's description of the code.
        message: String,
    },
    /// The input is invalid, found on the host before launching or by a kernel's row status.
    Input(BnfError),
    /// A logit type without kernels (every `bnf_core::Logit` has them).
    UnsupportedDtype(&'static str),
    /// A kernel wrote a row status this crate does not know (a kernels/driver version mismatch).
    UnknownStatus {
        /// The row.
        row: usize,
        /// The status code.
        code: i32,
    },
    /// A launch passed arguments whose number or sizes differ from the kernel's PTX signature.
    KernelArgs {
        /// The kernel.
        kernel: &'static str,
        /// Byte size of each parameter the PTX declares.
        expected: Vec<u32>,
        /// Byte size of each argument passed.
        found: Vec<u32>,
    },
    /// A raw entry was given a null (0) device pointer for a buffer it needs.
    NullPointer {
        /// The argument, e.g. `"rows.targets"`.
        what: &'static str,
    },
    /// A raw entry's gradient buffer overlaps the logits without being them (in place is the
    /// same pointer; anything else must be disjoint).
    PartialOverlap {
        /// The gradient argument (`"grad"`, `"out"`).
        what: &'static str,
    },
    /// A size does not fit the kernels' 32-bit row or vocabulary indices.
    TooLarge {
        /// What is too large ("rows", "vocab").
        what: &'static str,
        /// Its value.
        value: usize,
    },
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::BuiltWithoutCuda => {
                write!(
                    f,
                    "built without CUDA (enable the `cuda` feature of bnf-driver)"
                )
            }
            GpuError::NoDriver { code, message } => {
                write!(f, "no CUDA driver found (cuInit: {code} {message})")
            }
            GpuError::NoDevice { ordinal, count } => {
                write!(
                    f,
                    "no CUDA device (asked for device {ordinal}, found {count})"
                )
            }
            GpuError::NoContext => write!(f, "no CUDA context is current on this thread"),
            GpuError::PtxLoad { module, message } => {
                write!(
                    f,
                    "the CUDA driver could not load PTX module {module}: {message}"
                )
            }
            GpuError::Driver {
                call,
                code,
                message,
            } => write!(f, "{call} failed: {code} {message}"),
            GpuError::Input(e) => write!(f, "{e}"),
            GpuError::UnsupportedDtype(name) => write!(f, "no kernels for logit type {name}"),
            GpuError::UnknownStatus { row, code } => {
                write!(f, "row {row}: unknown kernel status {code}")
            }
            GpuError::KernelArgs {
                kernel,
                expected,
                found,
            } => write!(
                f,
                "kernel {kernel} takes parameters of {expected:?} bytes, the launch passed {found:?}"
            ),
            GpuError::NullPointer { what } => {
                write!(f, "device pointer `{what}` is null")
            }
            GpuError::PartialOverlap { what } => write!(
                f,
                "device buffer `{what}` overlaps the logits without being them (pass the \
                 logits pointer itself to write in place, or a disjoint buffer)"
            ),
            GpuError::TooLarge { what, value } => {
                write!(
                    f,
                    "{what} = {value} does not fit the kernels' 32-bit indices"
                )
            }
        }
    }
}

impl std::error::Error for GpuError {}

impl From<BnfError> for GpuError {
    fn from(e: BnfError) -> Self {
        GpuError::Input(e)
    }
}

impl GpuError {
    /// Whether the error says there is no GPU to run on (built without CUDA, no driver, no
    /// device): what tests report as "skipped".
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            GpuError::BuiltWithoutCuda | GpuError::NoDriver { .. } | GpuError::NoDevice { .. }
        )
    }
}
