//! The status codes every entry point returns, and the thread-local message that says what
//! went wrong (`bnf_last_error_message`). A failing call sets both; a successful call sets the
//! message to the empty string.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use bnf_core::BnfError;

/// What an entry point returns. `BNF_OK` (0) is success; every other value comes with a message
/// from `bnf_last_error_message()` naming the entry point, the argument, the row and the value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum BnfStatus {
    /// Success.
    BNF_OK = 0,
    /// A required pointer argument is NULL.
    BNF_ERR_NULL_POINTER = 1,
    /// A pointer is not aligned for its element type.
    BNF_ERR_MISALIGNED = 2,
    /// A size is 0 (vocabulary, rows) or too large to address.
    BNF_ERR_ZERO_SIZE = 3,
    /// Two sizes disagree, or an output buffer overlaps an input or another output (only a
    /// GPU entry's gradient may be the logits pointer itself: in place).
    BNF_ERR_LENGTH_MISMATCH = 4,
    /// A scored row's target id is not below the vocabulary size.
    BNF_ERR_TARGET_OUT_OF_RANGE = 5,
    /// A scored row has NaN or `+inf` logits, or `-inf` at its target.
    BNF_ERR_NON_FINITE_LOGITS = 6,
    /// A reference log-prob is NaN or above 0 by more than 1e-3 (`(0, 1e-3]` is f32 rounding,
    /// read as 0), or `-inf` where a sequence objective needs a finite one.
    BNF_ERR_INVALID_REF_LOGP = 7,
    /// A row weight is NaN or infinite.
    BNF_ERR_INVALID_WEIGHT = 8,
    /// Response offsets are malformed, a response has no scored row, a label is not finite, or
    /// pairs are missing or malformed.
    BNF_ERR_INVALID_RESPONSES = 9,
    /// Row statistics passed to `bnf_row_grad*` / `bnf_scalars` are not ones `bnf_row_stats*`
    /// can produce, or (`bnf_row_grad*`) not the row's: a logit is above their `max`.
    BNF_ERR_INVALID_STATS = 10,
    /// A bug inside the library (a caught panic), or a kernel status this build does not know;
    /// the message says where.
    BNF_ERR_INTERNAL = 11,
    /// A GPU entry found no CUDA to run on: libbnf built without the `cuda` feature, no CUDA
    /// driver, no device, or no context current on the calling thread.
    BNF_ERR_CUDA_UNAVAILABLE = 12,
    /// A CUDA driver call failed (launch, PTX load...); the message has the driver's words.
    BNF_ERR_CUDA = 13,
    /// An argument's value is not one the entry accepts: an unknown `dtype`, objective kind or
    /// objective name, or an objective parameter out of its range (`beta <= 0`...).
    BNF_ERR_INVALID_ARGUMENT = 14,
    /// Every input is finite, but a result is too large for its type: a loss, a summed
    /// log-prob or a derivative beyond `float`, a gradient beyond the logits' type (`f16`:
    /// 65504), or `log pi_y = z_y - max` beyond `float` (a row's logits spanning more than
    /// `FLT_MAX`). The message names the row, response or pair, the quantity and its value.
    /// Nothing is written.
    BNF_ERR_OVERFLOW = 15,
}

impl BnfStatus {
    /// The code of a core error.
    pub fn of(e: &BnfError) -> Self {
        match e {
            BnfError::EmptyVocab => BnfStatus::BNF_ERR_ZERO_SIZE,
            BnfError::LengthMismatch { .. } => BnfStatus::BNF_ERR_LENGTH_MISMATCH,
            BnfError::TargetOutOfRange { .. } => BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE,
            BnfError::NonFiniteLogits { .. } => BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
            BnfError::InvalidRefLogProb { .. } => BnfStatus::BNF_ERR_INVALID_REF_LOGP,
            BnfError::InvalidWeight { .. } => BnfStatus::BNF_ERR_INVALID_WEIGHT,
            BnfError::InvalidOffsets { .. }
            | BnfError::EmptyResponse { .. }
            | BnfError::InvalidLabel { .. }
            | BnfError::NoResponses
            | BnfError::InvalidPair { .. }
            | BnfError::MissingPairs { .. } => BnfStatus::BNF_ERR_INVALID_RESPONSES,
            BnfError::InvalidConfig { .. } => BnfStatus::BNF_ERR_INVALID_ARGUMENT,
            BnfError::Overflow { .. } => BnfStatus::BNF_ERR_OVERFLOW,
            // Reference log-probs are missing only when the pointer is NULL (the C structs have
            // no other way to leave them out); the entries name `batch->ref_logp`.
            BnfError::MissingReference { .. } => BnfStatus::BNF_ERR_NULL_POINTER,
            BnfError::InvalidStats { .. } => BnfStatus::BNF_ERR_INVALID_STATS,
        }
    }

    /// The constant's name as a static NUL-terminated string.
    fn name(self) -> &'static std::ffi::CStr {
        match self {
            BnfStatus::BNF_OK => c"BNF_OK",
            BnfStatus::BNF_ERR_NULL_POINTER => c"BNF_ERR_NULL_POINTER",
            BnfStatus::BNF_ERR_MISALIGNED => c"BNF_ERR_MISALIGNED",
            BnfStatus::BNF_ERR_ZERO_SIZE => c"BNF_ERR_ZERO_SIZE",
            BnfStatus::BNF_ERR_LENGTH_MISMATCH => c"BNF_ERR_LENGTH_MISMATCH",
            BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE => c"BNF_ERR_TARGET_OUT_OF_RANGE",
            BnfStatus::BNF_ERR_NON_FINITE_LOGITS => c"BNF_ERR_NON_FINITE_LOGITS",
            BnfStatus::BNF_ERR_INVALID_REF_LOGP => c"BNF_ERR_INVALID_REF_LOGP",
            BnfStatus::BNF_ERR_INVALID_WEIGHT => c"BNF_ERR_INVALID_WEIGHT",
            BnfStatus::BNF_ERR_INVALID_RESPONSES => c"BNF_ERR_INVALID_RESPONSES",
            BnfStatus::BNF_ERR_INVALID_STATS => c"BNF_ERR_INVALID_STATS",
            BnfStatus::BNF_ERR_INTERNAL => c"BNF_ERR_INTERNAL",
            BnfStatus::BNF_ERR_CUDA_UNAVAILABLE => c"BNF_ERR_CUDA_UNAVAILABLE",
            BnfStatus::BNF_ERR_CUDA => c"BNF_ERR_CUDA",
            BnfStatus::BNF_ERR_INVALID_ARGUMENT => c"BNF_ERR_INVALID_ARGUMENT",
            BnfStatus::BNF_ERR_OVERFLOW => c"BNF_ERR_OVERFLOW",
        }
    }
}

/// A failed call: its code and its message (without the entry point's name).
#[derive(Debug)]
pub struct Fail {
    /// The code returned to the caller.
    pub status: BnfStatus,
    /// What went wrong.
    pub message: String,
}

impl Fail {
    /// A failure with this code and message.
    pub fn new(status: BnfStatus, message: impl Into<String>) -> Self {
        Fail {
            status,
            message: message.into(),
        }
    }
}

impl From<BnfError> for Fail {
    fn from(e: BnfError) -> Self {
        Fail::new(BnfStatus::of(&e), e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Store `message` as this thread's last error message (an interior NUL is replaced). During
/// the thread's teardown, once the thread-local is gone, the message is dropped (`with` would
/// panic there).
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|m| *m.borrow_mut() = c);
}

/// The message of the last call on this thread that failed, or `""` if the last call
/// succeeded. The pointer stays valid until the next `bnf_*` call on the same thread (other than
/// `bnf_last_error_message` and `bnf_status_name`); never NULL, never to be freed.
#[no_mangle]
pub extern "C" fn bnf_last_error_message() -> *const c_char {
    // A static "" once the thread-local is destroyed (a call from another thread-local's
    // destructor): `with` would panic, and no panic may cross the boundary.
    LAST_ERROR
        .try_with(|m| m.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// The name of a status code (`"BNF_ERR_TARGET_OUT_OF_RANGE"`...), or `"BNF_UNKNOWN_STATUS"`.
/// Static storage; never NULL.
#[no_mangle]
pub extern "C" fn bnf_status_name(status: i32) -> *const c_char {
    const ALL: [BnfStatus; 16] = [
        BnfStatus::BNF_OK,
        BnfStatus::BNF_ERR_NULL_POINTER,
        BnfStatus::BNF_ERR_MISALIGNED,
        BnfStatus::BNF_ERR_ZERO_SIZE,
        BnfStatus::BNF_ERR_LENGTH_MISMATCH,
        BnfStatus::BNF_ERR_TARGET_OUT_OF_RANGE,
        BnfStatus::BNF_ERR_NON_FINITE_LOGITS,
        BnfStatus::BNF_ERR_INVALID_REF_LOGP,
        BnfStatus::BNF_ERR_INVALID_WEIGHT,
        BnfStatus::BNF_ERR_INVALID_RESPONSES,
        BnfStatus::BNF_ERR_INVALID_STATS,
        BnfStatus::BNF_ERR_INTERNAL,
        BnfStatus::BNF_ERR_CUDA_UNAVAILABLE,
        BnfStatus::BNF_ERR_CUDA,
        BnfStatus::BNF_ERR_INVALID_ARGUMENT,
        BnfStatus::BNF_ERR_OVERFLOW,
    ];
    ALL.iter()
        .find(|s| **s as i32 == status)
        .map_or(c"BNF_UNKNOWN_STATUS".as_ptr(), |s| s.name().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::sync::Mutex;

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// The header's docs (BNF_ERR_INVALID_REF_LOGP, the `ref_logp` fields) state the tolerance
    /// as 1e-3.
    #[test]
    fn documented_ref_logp_tolerance_is_cores() {
        assert_eq!(bnf_core::REF_LOGP_TOLERANCE, 1e-3);
    }

    /// Calls into the library from its destructor, which runs during the thread's teardown,
    /// possibly after `LAST_ERROR` is gone.
    struct Probe;

    impl Drop for Probe {
        fn drop(&mut self) {
            set_last_error("from a destructor");
            let p = bnf_last_error_message();
            let m = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
            SEEN.lock().unwrap().push(m);
        }
    }

    thread_local! {
        static PROBE: Probe = const { Probe };
    }

    #[test]
    fn the_message_functions_survive_thread_teardown() {
        let t = std::thread::spawn(|| {
            // The probe's destructor is registered before LAST_ERROR exists, so (destructors
            // running in reverse order) it runs after LAST_ERROR is destroyed.
            PROBE.with(|_| {});
            set_last_error("set in the thread");
        });
        assert!(t.join().is_ok(), "no panic during teardown");
        let seen = SEEN.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].is_empty() || seen[0] == "from a destructor",
            "{seen:?}"
        );
    }
}
