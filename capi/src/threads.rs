//! Thread count and version: the library-wide settings a caller may query or change.

use std::ffi::c_char;

/// Set how many threads the batch entries may use (0: all cores, the default). Results are
/// bitwise identical for every value. Process-wide. Any value is accepted: a batch starts at
/// most one thread per row and per 16384 logits, and runs on the calling thread what the
/// system refuses to start.
#[no_mangle]
pub extern "C" fn bnf_set_num_threads(n: usize) {
    bnf_core::set_num_threads(n);
}

/// The number of threads the batch entries use now.
#[no_mangle]
pub extern "C" fn bnf_num_threads() -> usize {
    bnf_core::num_threads()
}

/// The library version, e.g. `"0.1.0"` (static storage).
#[no_mangle]
pub extern "C" fn bnf_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
