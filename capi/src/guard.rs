//! The boundary: every entry point runs its body through [`entry`], which catches panics and
//! turns a failure into a status code plus the thread-local message; and raw pointers become
//! slices only through [`slice`] / [`slice_mut`], which reject NULL, misalignment, zero and
//! unaddressable lengths with a message naming the argument.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{set_last_error, BnfStatus, Fail};

/// Run `body` for the entry point `name`: `BNF_OK` and an empty message on success; otherwise
/// the failure's code and `"name: message"`. A panic becomes `BNF_ERR_INTERNAL`.
pub(crate) fn entry(name: &str, body: impl FnOnce() -> Result<(), Fail>) -> BnfStatus {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(Fail::new(
            BnfStatus::BNF_ERR_INTERNAL,
            format!("internal error (caught panic): {what}"),
        ))
    });
    match result {
        Ok(()) => {
            set_last_error("");
            BnfStatus::BNF_OK
        }
        Err(f) => {
            set_last_error(&format!("{name}: {}", f.message));
            f.status
        }
    }
}

/// The end of an overlap message where an `_in_place` entry exists.
pub(crate) const IN_PLACE: &str = "; use the _in_place entry to write over the logits";

/// Reject a NULL or misaligned pointer named `what` (host or device: only the address is read).
pub(crate) fn check_ptr<T>(p: *const T, what: &str) -> Result<(), Fail> {
    if p.is_null() {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_NULL_POINTER,
            format!("argument `{what}` is NULL"),
        ));
    }
    if (p as usize) % std::mem::align_of::<T>() != 0 {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_MISALIGNED,
            format!(
                "argument `{what}` ({p:p}) is not aligned to {} bytes",
                std::mem::align_of::<T>()
            ),
        ));
    }
    Ok(())
}

/// Reject a zero length, or one whose byte size does not fit an `isize`.
fn check_len<T>(len: usize, what: &str) -> Result<(), Fail> {
    if len == 0 {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_ZERO_SIZE,
            format!("argument `{what}` has length 0"),
        ));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_ZERO_SIZE,
            format!("argument `{what}`: length {len} is too large to address"),
        ));
    }
    Ok(())
}

/// `len` elements at `p` as a slice, after the checks above.
///
/// # Safety
/// If `p` is non-NULL and aligned, it must point to `len` initialised `T`s that nothing writes
/// while the slice lives (the caller's contract, stated in the header).
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T], Fail> {
    check_ptr(p, what)?;
    check_len::<T>(len, what)?;
    Ok(std::slice::from_raw_parts(p, len))
}

/// `len` writable elements at `p` as a slice, after the checks above.
///
/// # Safety
/// As [`slice`], and nothing else reads or writes them while the slice lives.
pub(crate) unsafe fn slice_mut<'a, T>(
    p: *mut T,
    len: usize,
    what: &str,
) -> Result<&'a mut [T], Fail> {
    check_ptr(p, what)?;
    check_len::<T>(len, what)?;
    Ok(std::slice::from_raw_parts_mut(p, len))
}

/// A reference to one `T` at `p`, or `None` for NULL (optional outputs).
///
/// # Safety
/// If non-NULL, `p` must point to a writable `T`.
pub(crate) unsafe fn optional_mut<'a, T>(p: *mut T, what: &str) -> Result<Option<&'a mut T>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    check_ptr(p, what)?;
    Ok(Some(&mut *p))
}

/// A required reference to one `T` at `p`.
///
/// # Safety
/// If non-NULL and aligned, `p` must point to an initialised `T`.
pub(crate) unsafe fn required<'a, T>(p: *const T, what: &str) -> Result<&'a T, Fail> {
    check_ptr(p, what)?;
    Ok(&*p)
}

/// A memory range an entry reads or writes, for the overlap checks: the argument's name, its
/// start address and its size in bytes (empty for a NULL pointer, which is rejected, or
/// skipped when optional, elsewhere).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region<'a> {
    name: &'a str,
    start: usize,
    bytes: usize,
    /// The length, when its byte size does not fit an `isize` (no buffer can be that long).
    too_large: Option<usize>,
}

impl<'a> Region<'a> {
    /// `len` `T`s at `p` (host or device; only the address is read). A size too large to
    /// address is kept aside, for [`check_outputs`] and [`check_disjoint`] to report as such
    /// before they compare ranges (a saturated size would read as an overlap).
    pub(crate) fn of<T>(p: *const T, len: usize, name: &'a str) -> Self {
        let size = len.checked_mul(std::mem::size_of::<T>());
        let too_large = match size {
            Some(b) if b <= isize::MAX as usize => None,
            _ if p.is_null() => None,
            _ => Some(len),
        };
        let bytes = match p.is_null() {
            true => 0,
            false => size.unwrap_or(usize::MAX),
        };
        Region {
            name,
            start: p as usize,
            bytes,
            too_large,
        }
    }

    /// `BNF_ERR_ZERO_SIZE` ("too large") for a length no buffer can have.
    fn addressable(&self) -> Result<(), Fail> {
        match self.too_large {
            None => Ok(()),
            Some(len) => Err(Fail::new(
                BnfStatus::BNF_ERR_ZERO_SIZE,
                format!(
                    "argument `{}`: length {len} is too large to address (its size in bytes \
                     exceeds isize::MAX)",
                    self.name
                ),
            )),
        }
    }

    /// Whether the two ranges share a byte.
    fn overlaps(&self, other: &Region<'_>) -> bool {
        self.bytes > 0
            && other.bytes > 0
            && self.start < other.start.saturating_add(other.bytes)
            && other.start < self.start.saturating_add(self.bytes)
    }
}

/// Reject an output buffer `out` of `out_len` `O`s that overlaps the input `input` of `in_len`
/// `I`s (a `&mut` must not alias a `&`; the in-place entries exist for that case). Checked on the
/// raw addresses before any slice is made. `hint` ends the message (say how to write in place).
pub(crate) fn check_disjoint<I, O>(
    input: *const I,
    in_len: usize,
    out: *const O,
    out_len: usize,
    names: (&str, &str),
    hint: &str,
) -> Result<(), Fail> {
    let a = Region::of(input, in_len, names.0);
    let b = Region::of(out, out_len, names.1);
    a.addressable()?;
    b.addressable()?;
    if b.overlaps(&a) {
        return Err(Fail::new(
            BnfStatus::BNF_ERR_LENGTH_MISMATCH,
            format!("argument `{}` overlaps `{}`{hint}", names.1, names.0),
        ));
    }
    Ok(())
}

/// Reject any output that overlaps an input or another output: the library would read what it
/// has overwritten, and a `&mut` slice must alias nothing. Checked on the raw addresses before
/// any slice is made (the header's contract says no output may overlap anything else).
pub(crate) fn check_outputs(outputs: &[Region<'_>], inputs: &[Region<'_>]) -> Result<(), Fail> {
    for r in inputs.iter().chain(outputs) {
        r.addressable()?;
    }
    for (i, o) in outputs.iter().enumerate() {
        if let Some(other) = inputs
            .iter()
            .chain(&outputs[i + 1..])
            .find(|x| o.overlaps(x))
        {
            return Err(Fail::new(
                BnfStatus::BNF_ERR_LENGTH_MISMATCH,
                format!(
                    "argument `{}` overlaps `{}`: an output must not overlap any other argument",
                    o.name, other.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn message() -> String {
        let p = crate::status::bnf_last_error_message();
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_internal_error_with_its_message() {
        let st = entry("bnf_test", || panic!("boom at row {}", 3));
        assert_eq!(st, BnfStatus::BNF_ERR_INTERNAL);
        let m = message();
        assert!(
            m.starts_with("bnf_test: internal error (caught panic): boom at row 3"),
            "{m}"
        );
        assert_eq!(entry("bnf_test", || Ok(())), BnfStatus::BNF_OK);
        assert_eq!(message(), "");
    }

    #[test]
    fn overlap_is_detected_only_when_ranges_intersect() {
        let a = [0.0f32; 8];
        let p = a.as_ptr();
        let (names, h) = (("in", "out"), "");
        assert!(check_disjoint(p, 4, unsafe { p.add(4) }, 4, names, h).is_ok());
        assert!(check_disjoint(unsafe { p.add(4) }, 4, p, 4, names, h).is_ok());
        assert!(check_disjoint(p, 4, unsafe { p.add(3) }, 4, names, h).is_err());
        assert!(check_disjoint(p, 8, p, 8, names, h).is_err());
        assert!(check_disjoint(p, 8, std::ptr::null::<f32>(), 8, names, h).is_ok());
    }

    #[test]
    fn outputs_may_not_overlap_inputs_or_each_other() {
        let a = [0.0f32; 8];
        let p = a.as_ptr();
        let input = [Region::of(p, 4, "x")];
        let out = |off: usize, len: usize, name| Region::of(unsafe { p.add(off) }, len, name);
        assert!(check_outputs(&[out(4, 2, "y"), out(6, 2, "z")], &input).is_ok());
        let e = check_outputs(&[out(3, 2, "y")], &input).unwrap_err();
        assert_eq!(e.status, BnfStatus::BNF_ERR_LENGTH_MISMATCH);
        assert!(e.message.contains("`y` overlaps `x`"), "{}", e.message);
        let e = check_outputs(&[out(4, 3, "y"), out(6, 2, "z")], &input).unwrap_err();
        assert!(e.message.contains("`y` overlaps `z`"), "{}", e.message);
        let null = Region::of(std::ptr::null::<f32>(), 8, "optional");
        assert!(check_outputs(&[null, out(4, 4, "y")], &input).is_ok());
    }
}
