//! Tensor memory as slices. The Python side passes `tensor.data_ptr()` with the element count
//! of a contiguous tensor of the right dtype that it checked; these functions add only the
//! checks that keep the slice itself sound (non-null and aligned when non-empty).

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// Check that `addr` can hold `len` elements of `T`; `what` names the argument in the error.
fn check<T>(addr: usize, len: usize, what: &str) -> PyResult<()> {
    if len > 0 && (addr == 0 || addr % core::mem::align_of::<T>() != 0) {
        return Err(PyValueError::new_err(format!(
            "bnf._native: {what} at address {addr:#x} is null or misaligned for {len} elements"
        )));
    }
    Ok(())
}

/// `len` elements of `T` at `addr` (an empty slice for `len == 0`, whatever `addr` is).
///
/// # Safety
/// When `len > 0`, `addr` must point to `len` initialised elements of `T` that stay alive and
/// are not written by anyone else while the slice is used.
pub unsafe fn slice<'a, T>(addr: usize, len: usize, what: &str) -> PyResult<&'a [T]> {
    check::<T>(addr, len, what)?;
    Ok(match len {
        0 => &[],
        // SAFETY: non-null and aligned (checked); the caller vouches for the rest.
        _ => unsafe { std::slice::from_raw_parts(addr as *const T, len) },
    })
}

/// `len` elements of `T` at `addr`, writable; as [`slice`].
///
/// # Safety
/// As [`slice`], and nothing else may read or write the memory while the slice is used.
pub unsafe fn slice_mut<'a, T>(addr: usize, len: usize, what: &str) -> PyResult<&'a mut [T]> {
    check::<T>(addr, len, what)?;
    Ok(match len {
        0 => &mut [],
        // SAFETY: non-null and aligned (checked); the caller vouches for the rest.
        _ => unsafe { std::slice::from_raw_parts_mut(addr as *mut T, len) },
    })
}

/// `rows * vocab`, or an error naming the sizes when it does not fit in `usize`.
pub fn elements(rows: usize, vocab: usize) -> PyResult<usize> {
    rows.checked_mul(vocab).ok_or_else(|| {
        PyValueError::new_err(format!(
            "bnf._native: {rows} rows x {vocab} columns overflow"
        ))
    })
}
