//! Fingerprints (FNV-1a, 64-bit) of what a run or a reference file depends on: a response's
//! tokens, a run's training responses, and their reference log-probs. A reference file and a
//! training checkpoint record them, so that data or references that changed are refused.

use crate::data::Response;

/// FNV-1a (64-bit) of a response's tokens: the prompt's length, the prompt, then the
/// completion, each token as 4 little-endian bytes. Its log-probs depend on nothing else.
pub fn fingerprint(r: &Response) -> u64 {
    let len = u32::try_from(r.prompt.len()).unwrap_or(u32::MAX);
    let tokens = std::iter::once(len).chain(r.prompt.iter().chain(&r.completion).copied());
    tokens.fold(FNV_OFFSET, |h, t| fnv1a(h, &t.to_le_bytes()))
}

/// FNV-1a's starting value.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64-bit): `h` followed by `bytes`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a (64-bit) of a run's training responses, in order: each one's id, [`fingerprint`],
/// label and partner (the data order and every loss depend on nothing else). Recorded in a
/// training checkpoint, so that resuming on other data is refused even when it has as many
/// responses.
pub fn data_fingerprint(responses: &[Response]) -> u64 {
    responses.iter().fold(FNV_OFFSET, |h, r| {
        let partner = r.partner.map_or(u64::MAX, |p| p as u64);
        let h = fnv1a(h, &(r.id as u64).to_le_bytes());
        let h = fnv1a(h, &fingerprint(r).to_le_bytes());
        let h = fnv1a(h, &r.label.to_bits().to_le_bytes());
        fnv1a(h, &partner.to_le_bytes())
    })
}

/// FNV-1a (64-bit) of the reference log-probs of `responses` (`logps[id]`: a response's
/// per-token values, as [`crate::reference::RefLogps::responses`]; by id, in order), every value's
/// bits: recorded in a training checkpoint, so that resuming with another reference file of
/// the same data (say, of another SFT model) is refused.
pub fn ref_fingerprint(logps: &[Vec<f32>], responses: &[Response]) -> u64 {
    responses.iter().fold(FNV_OFFSET, |h, r| {
        let lps = logps.get(r.id).map_or(&[][..], Vec::as_slice);
        let h = fnv1a(h, &(lps.len() as u64).to_le_bytes());
        lps.iter()
            .fold(h, |h, v| fnv1a(h, &v.to_bits().to_le_bytes()))
    })
}

/// FNV-1a (64-bit) of the bytes of `tensors` in order (each `f32` as its 4 little-endian
/// bytes, as a checkpoint stores it): a checkpoint records it, and loading recomputes it, so a
/// file changed after it was written (a flipped bit, a bad copy) is refused. Any change of one
/// byte changes it (each FNV-1a step is a bijection of the running value).
pub fn tensor_checksum(tensors: &[&[f32]]) -> u64 {
    tensors.iter().fold(FNV_OFFSET, |h, t| {
        t.iter().fold(h, |h, v| fnv1a(h, &v.to_le_bytes()))
    })
}

/// A model's fingerprint: [`tensor_checksum`] of its parameters, as 16 hex digits. A reference
/// file records the fingerprint of the model that computed it, and an aligned checkpoint
/// that of its reference model, so that a reference file of another model is refused.
pub fn model_fingerprint(params: &[f32]) -> String {
    format!("{:016x}", tensor_checksum(&[params]))
}
