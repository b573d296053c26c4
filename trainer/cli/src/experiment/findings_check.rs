//! Holds the hand-written reading (`docs/findings.md`) to the generated report
//! (`docs/results.md`): every number the reading quotes must appear in the report. Numbers in
//! code spans (commands, file names), dates and single digits are not checked; signs are
//! ignored (the report writes `-1.9`, prose may write `−1.9` or "lost 1.9").

use std::collections::HashSet;

/// The numbers of `text` outside code spans, as written (without sign): `12`, `3.25`, `1e-4`.
pub fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, part) in text.split('`').enumerate() {
        if k % 2 == 1 {
            continue; // inside a code span
        }
        let b = part.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let starts = b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.' || b[i - 1] == b'_'));
            if !starts {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_digit()
                    || (matches!(b[j], b'.' | b'e' | b'-') && j + 1 < b.len() && b[j + 1].is_ascii_digit() && j > i && b[j - 1].is_ascii_digit())
                    || (b[j] == b'-' && j > i && b[j - 1] == b'e'))
            {
                j += 1;
            }
            let token = &part[i..j];
            // Glued to letters (a name like `b2c`), or a date or range (`2026-12-01`, `3-5`).
            let glued = j < b.len() && (b[j].is_ascii_alphabetic() && b[j] != b'x');
            let date = token.contains('-') && !token.contains('e');
            if !glued && !date && !(token.len() == 1) {
                out.push(token.to_string());
            }
            i = j.max(i + 1);
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
            vec!["1.9", "1.0", "3.7", "3e-5", "12", "30", "2x", "0.1", "97.5"]
                .into_iter()
                .filter(|s| *s != "2x")
                .chain(std::iter::empty())
                .map(String::from)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_number_missing_from_the_results_is_reported() {
        let results = "| BNF | 29.2 ± 1.0 | 86.8 | -3.7 |";
        assert!(unquoted("BNF kept 29.2 and lost 3.7", results).is_empty());
        assert_eq!(unquoted("the run gave 34 and 86.8 and 96", results), vec!["34", "96"]);
        // A rounded quote is not the reported number.
        assert_eq!(unquoted("about 29", results), vec!["29"]);
    }

    /// The repository's own reading against its own report (the check CI runs).
    #[test]
    fn docs_findings_quote_only_numbers_in_docs_results() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
        let read = |f: &str| std::fs::read_to_string(format!("{docs}/{f}")).unwrap();
        let missing = unquoted(&read("findings.md"), &read("results.md"));
        assert!(missing.is_empty(), "docs/findings.md quotes numbers that docs/results.md does not contain: {missing:?}");
    }
}
