//! Holds the hand-written reading (`docs/findings.md`) to the generated report
//! (`docs/results.md`): every number the reading quotes must appear in the report. Numbers in
//! code spans (commands, file names), dates and single digits are not checked; signs are
//! ignored (the report writes `-1.9`, prose may write `−1.9` or "lost 1.9").

use std::collections::HashSet;

/// The numbers of `text` outside code spans, as written (without sign): `12`, `3.25`, `1e-4`.
/// A number glued to letters (`b2`, `7B`), a date or range (`2026-12-01`, `3-5`) and a single
/// digit are left out.
pub fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, part) in text.split('`').enumerate() {
        if k % 2 == 1 {
            continue; // inside a code span
        }
        let b = part.as_bytes();
        let digit = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
        let digits = |mut i: usize| {
            while digit(i) {
                i += 1;
            }
            i
        };
        let mut i = 0;
        while i < b.len() {
            let after_word =
                i > 0 && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'.' | b'_'));
            if !digit(i) || after_word {
                i += 1;
                continue;
            }
            let mut j = digits(i);
            if b.get(j) == Some(&b'.') && digit(j + 1) {
                j = digits(j + 1);
            }
            if b.get(j) == Some(&b'e') {
                let sign = usize::from(matches!(b.get(j + 1), Some(b'-' | b'+')));
                if digit(j + 1 + sign) {
                    j = digits(j + 1 + sign);
                }
            }
            let glued = b.get(j).is_some_and(|c| c.is_ascii_alphabetic());
            let range = b.get(j) == Some(&b'-') && digit(j + 1);
            if range {
                // Skip the rest of the date or range.
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'-') {
                    j += 1;
                }
            } else if !glued && j - i > 1 {
                out.push(part[i..j].to_string());
            }
            i = j;
        }
    }
    out
}

/// The numbers `findings` quotes that `results` does not contain, in order.
pub fn unquoted(findings: &str, results: &str) -> Vec<String> {
    let known: HashSet<String> = numbers(results).into_iter().collect();
    numbers(findings)
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_outside_code_and_dates() {
        let t = "BNF lost 1.9 ± 1.0 points (-3.7 at 3e-5), 12 of 30 runs on 2026-12-01, \
                 `cargo run -- 45` and 5 seeds, 2x faster, b=0.1; 97.5%.";
        assert_eq!(
            numbers(t),
            ["1.9", "1.0", "3.7", "3e-5", "12", "30", "0.1", "97.5"]
                .map(String::from)
                .to_vec()
        );
    }

    #[test]
    fn a_number_missing_from_the_results_is_reported() {
        let results = "| BNF | 29.2 ± 1.0 | 86.8 | -3.7 |";
        assert!(unquoted("BNF kept 29.2 and lost 3.7", results).is_empty());
        assert_eq!(
            unquoted("the run gave 34 and 86.8 and 96", results),
            vec!["34", "96"]
        );
        // A rounded quote is not the reported number.
        assert_eq!(unquoted("about 29", results), vec!["29"]);
    }

    /// The repository's own reading against its own report (the check CI runs).
    #[test]
    fn docs_findings_quote_only_numbers_in_docs_results() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
        let read = |f: &str| std::fs::read_to_string(format!("{docs}/{f}")).unwrap();
        let missing = unquoted(&read("findings.md"), &read("results.md"));
        assert!(
            missing.is_empty(),
            "docs/findings.md quotes numbers that docs/results.md does not contain: {missing:?}"
        );
    }
}
