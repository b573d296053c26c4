//! The byte-level tokenizer: token `b` is byte `b` (0..=255), plus three specials. Nothing to
//! download, and every string round-trips.

/// Beginning of sequence.
pub const BOS: u32 = 256;
/// End of sequence (scored: the model must learn to stop).
pub const EOS: u32 = 257;
/// Padding (never scored).
pub const PAD: u32 = 258;
/// Vocabulary size.
pub const VOCAB: usize = 259;

/// The UTF-8 bytes of `s` as tokens.
pub fn encode(s: &str) -> Vec<u32> {
    s.bytes().map(u32::from).collect()
}

/// The text of `tokens` up to the first EOS, skipping BOS and padding (invalid UTF-8 is
/// replaced, never an error).
pub fn decode(tokens: &[u32]) -> String {
    let bytes: Vec<u8> = tokens
        .iter()
        .take_while(|&&t| t != EOS)
        .filter(|&&t| t < 256)
        .map(|&t| t as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_specials() {
        let s = "12+7=19 é";
        let mut t = vec![BOS];
        t.extend(encode(s));
        t.extend([EOS, PAD, 65]);
        assert_eq!(decode(&t), s);
        assert!(encode(s).iter().all(|&x| x < 256));
    }
}
