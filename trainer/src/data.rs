//! Loading preference data in TRL's JSON Lines formats, and turning examples into responses.
//!
//! - paired: `{"prompt": .., "chosen": .., "rejected": ..}`;
//! - unpaired: `{"prompt": .., "completion": .., "label": true|false}`.
//!
//! Each text is a string or a list of chat messages `[{"role": .., "content": ..}]`, a content
//! being a string or a list of text parts `[{"type": "text", "text": ..}]` (concatenated). A
//! chat prompt renders as one `"role: content\n"` line per message followed by
//! `"assistant: "`; a chat completion is the concatenated contents of its messages. A line is
//! one format or the other (fields of both are refused), a UTF-8 byte-order mark at the start
//! of the file is skipped, and any bad line stops loading with its (1-based) line number.

use crate::rng::Rng;
use crate::tokenizer::encode;
use bnf_core::{DISPREFERRED, PREFERRED};
use serde_json::Value;
use std::fmt;

/// A bad input line.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            // About the whole file (it has no examples).
            0 => write!(f, "{}", self.message),
            n => write!(f, "line {n}: {}", self.message),
        }
    }
}

impl std::error::Error for DataError {}

/// One example of the data file.
#[derive(Clone, Debug, PartialEq)]
pub enum Example {
    /// A preference pair.
    Paired {
        /// The rendered prompt.
        prompt: String,
        /// The preferred completion.
        chosen: String,
        /// The dispreferred completion.
        rejected: String,
    },
    /// A single labelled completion.
    Unpaired {
        /// The rendered prompt.
        prompt: String,
        /// The completion.
        completion: String,
        /// Whether it is preferred.
        label: bool,
    },
}

/// A message's `content`: a string, or a list of text parts `[{"type": "text", "text": ..}]`
/// (OpenAI's form), concatenated. `at` names the message in errors.
fn content(m: &Value, at: &str) -> Result<String, String> {
    match m.get("content") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
                match (kind, part.get("text")) {
                    ("text", Some(Value::String(t))) => out.push_str(t),
                    ("text", _) => {
                        return Err(format!(
                            "{at}: content part {j} has no string field \"text\""
                        ))
                    }
                    (other, _) => {
                        return Err(format!(
                            "{at}: content part {j} has type \"{other}\"; only text parts \
                             ({{\"type\": \"text\", \"text\": ..}}) can be trained on"
                        ))
                    }
                }
            }
            Ok(out)
        }
        None => Err(format!("{at}: missing field \"content\"")),
        Some(other) => Err(format!(
            "{at}: field \"content\" must be a string or a list of text parts, got {other}"
        )),
    }
}

fn text(obj: &Value, key: &str, is_prompt: bool) -> Result<String, String> {
    match obj.get(key) {
        None => Err(format!("missing field \"{key}\"")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(msgs)) => {
            let mut out = String::new();
            for (i, m) in msgs.iter().enumerate() {
                let field = |f: &str| {
                    m.get(f).and_then(Value::as_str).ok_or_else(|| {
                        format!("\"{key}\" message {i}: missing string field \"{f}\"")
                    })
                };
                let content = content(m, &format!("\"{key}\" message {i}"))?;
                if is_prompt {
                    out.push_str(&format!("{}: {content}\n", field("role")?));
                } else {
                    out.push_str(&content);
                }
            }
            if is_prompt {
                out.push_str("assistant: ");
            }
            Ok(out)
        }
        Some(other) => Err(format!(
            "field \"{key}\" must be a string or a list of messages, got {other}"
        )),
    }
}

/// The error for a line without `"prompt"`, with how to convert the TRL format it looks like
/// (the README's data section says the same).
fn missing_prompt(v: &Value) -> String {
    let has = |k: &str| v.get(k).is_some();
    let how = if has("chosen") || has("rejected") {
        "it looks like TRL's implicit-prompt preference format: move the shared first messages \
         of \"chosen\" and \"rejected\" (all but the last assistant turn) into \"prompt\", \
         keeping the last turn as each side"
    } else if has("messages") {
        "it looks like TRL's conversational language-modelling format (\"messages\" only): \
         put every message before the last assistant turn in \"prompt\" and that turn in \
         \"completion\", with \"label\": true"
    } else if has("text") {
        "it looks like TRL's language-modelling format (\"text\"): split each text into \
         \"prompt\" and \"completion\", with \"label\": true"
    } else {
        "every line needs \"prompt\" with either \"chosen\"/\"rejected\" or \
         \"completion\"/\"label\""
    };
    format!("missing field \"prompt\": {how} (see trainer/README.md, Data format)")
}

/// Parse one JSON object into an example.
fn parse_line(line: &str) -> Result<Example, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    if !v.is_object() {
        return Err("expected a JSON object".into());
    }
    if v.get("prompt").is_none() {
        return Err(missing_prompt(&v));
    }
    let prompt = text(&v, "prompt", true)?;
    let paired = v.get("chosen").is_some() || v.get("rejected").is_some();
    if paired && (v.get("completion").is_some() || v.get("label").is_some()) {
        return Err(
            "has both paired fields (\"chosen\"/\"rejected\") and unpaired ones \
             (\"completion\"/\"label\"); a line is one example of one format: a pair, or one \
             labelled completion"
                .into(),
        );
    }
    if paired {
        return Ok(Example::Paired {
            prompt,
            chosen: text(&v, "chosen", false)?,
            rejected: text(&v, "rejected", false)?,
        });
    }
    let completion = text(&v, "completion", false)?;
    let label = match v.get("label") {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "field \"label\" must be true or false, got {other}"
            ))
        }
        None => return Err("missing field \"label\" (or \"chosen\"/\"rejected\")".into()),
    };
    Ok(Example::Unpaired {
        prompt,
        completion,
        label,
    })
}

/// Parse JSON Lines text; blank lines are skipped, and so is a UTF-8 byte-order mark at the
/// start (some editors write one). Returns each example with its line number.
pub fn parse_jsonl(src: &str) -> Result<Vec<(usize, Example)>, DataError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ex = parse_line(line).map_err(|message| DataError {
            line: i + 1,
            message,
        })?;
        out.push((i + 1, ex));
    }
    if out.is_empty() {
        let message = match src.lines().count() {
            0 => "no examples (the file is empty)".to_string(),
            n => format!("no examples (its {n} lines are blank)"),
        };
        return Err(DataError { line: 0, message });
    }
    Ok(out)
}

/// Read and parse a JSON Lines file; the error names the file and line (also for bytes that
/// are not UTF-8).
pub fn load(path: &str) -> Result<Vec<(usize, Example)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let src = utf8(&bytes).map_err(|e| format!("{path}: {e}"))?;
    parse_jsonl(src).map_err(|e| format!("{path}: {e}"))
}

/// `bytes` as text, or the line (1-based) and column (byte, 1-based) of the first byte that is
/// not UTF-8.
fn utf8(bytes: &[u8]) -> Result<&str, DataError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        DataError {
            line: 1 + good.iter().filter(|&&b| b == b'\n').count(),
            message: format!(
                "not valid UTF-8 (byte 0x{:02x} at column {})",
                bytes[e.valid_up_to()],
                e.valid_up_to() - line_start + 1
            ),
        }
    })
}

/// One response: a prompt, a completion and a label, tokenized.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// Index in the full list of responses of the file (the reference file's index).
    pub id: usize,
    /// Line of the data file it came from.
    pub line: usize,
    /// Prompt tokens (without BOS).
    pub prompt: Vec<u32>,
    /// Completion tokens (without EOS).
    pub completion: Vec<u32>,
    /// `PREFERRED` (+1) or `DISPREFERRED` (-1).
    pub label: f32,
    /// The `id` of its partner when it is one side of a pair.
    pub partner: Option<usize>,
}

/// All responses of the examples, in file order (a pair gives chosen then rejected).
pub fn responses(examples: &[(usize, Example)]) -> Vec<Response> {
    let mut out = Vec::new();
    for (line, ex) in examples {
        let id = out.len();
        let mut push = |prompt: &str, completion: &str, label: f32, partner: Option<usize>| {
            out.push(Response {
                id: out.len(),
                line: *line,
                prompt: encode(prompt),
                completion: encode(completion),
                label,
                partner,
            });
        };
        match ex {
            Example::Paired {
                prompt,
                chosen,
                rejected,
            } => {
                push(prompt, chosen, PREFERRED, Some(id + 1));
                push(prompt, rejected, DISPREFERRED, Some(id));
            }
            Example::Unpaired {
                prompt,
                completion,
                label,
            } => {
                let l = if *label { PREFERRED } else { DISPREFERRED };
                push(prompt, completion, l, None);
            }
        }
    }
    out
}

/// The paper's pairing ratio (section 5.2): each pair stays a pair with probability `ratio`;
/// otherwise one side, chosen at random, is dropped and the other becomes unpaired.
pub fn apply_pairing_ratio(
    responses: Vec<Response>,
    ratio: f64,
    seed: u64,
) -> Result<Vec<Response>, String> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(format!("pairing ratio must be in [0, 1], got {ratio}"));
    }
    let mut rng = Rng::new(seed);
    let mut drop = vec![false; responses.len()];
    for r in &responses {
        if let Some(p) = r.partner {
            if p > r.id && rng.uniform() >= ratio {
                let dropped = if rng.uniform() < 0.5 { r.id } else { p };
                drop[dropped] = true;
            }
        }
    }
    Ok(responses
        .into_iter()
        .filter(|r| !drop[r.id])
        .map(|mut r| {
            if r.partner.is_some_and(|p| drop[p]) {
                r.partner = None;
            }
            r
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of another TRL format, without "prompt", is refused with how to convert it.
    #[test]
    fn other_trl_formats_are_refused_with_how_to_convert_them() {
        let cases = [
            (
                r#"{"chosen":[{"role":"user","content":"a"}],"rejected":[]}"#,
                "implicit-prompt",
            ),
            (
                r#"{"messages":[{"role":"user","content":"a"}]}"#,
                "\"messages\" only",
            ),
            (r#"{"text":"abc"}"#, "language-modelling format (\"text\")"),
            (
                r#"{"completion":"abc","label":true}"#,
                "every line needs \"prompt\"",
            ),
        ];
        for (line, want) in cases {
            let err = parse_jsonl(line).unwrap_err().to_string();
            assert!(
                err.contains("line 1")
                    && err.contains("missing field \"prompt\"")
                    && err.contains(want),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn both_formats_strings_and_messages() {
        let src = concat!(
            "{\"prompt\":\"1+1=\",\"chosen\":\"2\",\"rejected\":\"3\"}\n",
            "\n",
            "{\"prompt\":[{\"role\":\"user\",\"content\":\"hi\"}],",
            "\"completion\":[{\"role\":\"assistant\",\"content\":\"yo\"}],\"label\":false}\n"
        );
        let ex = parse_jsonl(src).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].0, 3);
        let Example::Unpaired {
            prompt,
            completion,
            label,
        } = &ex[1].1
        else {
            panic!("unpaired expected")
        };
        assert_eq!(prompt, "user: hi\nassistant: ");
        assert_eq!(completion, "yo");
        assert!(!label);
        let rs = responses(&ex);
        assert_eq!(rs.len(), 3);
        assert_eq!((rs[0].label, rs[0].partner), (PREFERRED, Some(1)));
        assert_eq!((rs[1].label, rs[1].partner), (DISPREFERRED, Some(0)));
        assert_eq!((rs[2].label, rs[2].partner), (DISPREFERRED, None));
    }

    #[test]
    fn bad_lines_report_their_number() {
        let cases = [
            "{\"prompt\":\"a\",\"chosen\":\"b\"}",
            "{\"prompt\":\"a\",\"completion\":\"b\",\"label\":1}",
            "not json",
            "{\"prompt\":[{\"content\":\"x\"}],\"completion\":\"b\",\"label\":true}",
            "[1,2]",
        ];
        for bad in cases {
            let src = format!("{{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}}\n{bad}\n");
            let err = parse_jsonl(&src).unwrap_err();
            assert_eq!(err.line, 2, "{bad}: {err}");
        }
    }

    /// The rendering README.md documents (and tells users to prompt chat-trained models with).
    #[test]
    fn chat_prompts_render_as_the_readme_says() {
        let line = concat!(
            "{\"prompt\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, ",
            "{\"role\": \"user\", \"content\": \"3+1?\"}], ",
            "\"chosen\": [{\"role\": \"assistant\", \"content\": \"4\"}], \"rejected\": \"5\"}"
        );
        let readme = include_str!("../README.md");
        let rendered = "system: Be brief.\nuser: 3+1?\nassistant: ";
        assert!(readme.contains(&format!("is the text `{:?}`", rendered)));
        let Example::Paired { prompt, chosen, .. } = &parse_jsonl(line).unwrap()[0].1 else {
            panic!("paired expected")
        };
        assert_eq!((prompt.as_str(), chosen.as_str()), (rendered, "4"));
    }

    /// A file without examples says so, and why, about the file (not "line 0").
    #[test]
    fn no_examples_says_why() {
        let err = parse_jsonl("").unwrap_err();
        assert_eq!(err.to_string(), "no examples (the file is empty)");
        let err = parse_jsonl("\n  \n\t\n").unwrap_err();
        assert_eq!(err.to_string(), "no examples (its 3 lines are blank)");
    }

    /// A byte-order mark before the first line is skipped; the line numbers stay the file's.
    #[test]
    fn a_byte_order_mark_is_skipped() {
        let line = "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n";
        let with = parse_jsonl(&format!("\u{feff}{line}\n{line}")).unwrap();
        let without = parse_jsonl(&format!("{line}\n{line}")).unwrap();
        assert_eq!(with, without);
        assert_eq!(with[1].0, 3);
        // Only at the start: elsewhere it is part of the line (here, not JSON).
        assert_eq!(
            parse_jsonl(&format!("{line}\u{feff}{line}"))
                .unwrap_err()
                .line,
            2
        );
    }

    /// Chat content given as a list of text parts is their concatenation; a part that is not
    /// text is refused by name.
    #[test]
    fn content_parts_are_concatenated() {
        let parts = concat!(
            "{\"prompt\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"h\"},",
            "{\"type\":\"text\",\"text\":\"i\"}]}],",
            "\"completion\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"yo\"}]}],",
            "\"label\":true}"
        );
        let plain = concat!(
            "{\"prompt\":[{\"role\":\"user\",\"content\":\"hi\"}],",
            "\"completion\":[{\"role\":\"assistant\",\"content\":\"yo\"}],\"label\":true}"
        );
        assert_eq!(parse_jsonl(parts).unwrap(), parse_jsonl(plain).unwrap());
        let image = parts.replacen(
            "\"type\":\"text\",\"text\":\"i\"",
            "\"type\":\"image_url\"",
            1,
        );
        let err = parse_jsonl(&image).unwrap_err();
        assert!(
            err.message
                .contains("\"prompt\" message 0: content part 1 has type \"image_url\""),
            "{err}"
        );
        let err = parse_jsonl(&parts.replacen("\"text\":\"h\"", "\"text\":1", 1)).unwrap_err();
        assert!(
            err.message
                .contains("content part 0 has no string field \"text\""),
            "{err}"
        );
    }

    /// A line with the fields of both formats is ambiguous: refused with its number, not read
    /// as a pair.
    #[test]
    fn a_line_of_both_formats_is_refused() {
        let good = "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n";
        for extra in ["\"completion\":\"d\"", "\"label\":true"] {
            let both =
                format!("{good}{{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\",{extra}}}\n");
            let err = parse_jsonl(&both).unwrap_err();
            assert_eq!(err.line, 2, "{err}");
            assert!(err.message.contains("both paired fields"), "{err}");
        }
    }

    #[test]
    fn invalid_utf8_reports_its_line() {
        let mut bytes = b"{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n\n".to_vec();
        bytes.extend(b"{\"prompt\":\"\xff\",\"chosen\":\"b\",\"rejected\":\"c\"}\n");
        let err = utf8(&bytes).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(
            err.to_string(),
            "line 3: not valid UTF-8 (byte 0xff at column 12)"
        );
        // A multi-byte character cut short at the end of the first line.
        let err = utf8(b"\xc3\n").unwrap_err();
        assert_eq!((err.line, err.message.contains("column 1")), (1, true));
        assert_eq!(utf8("é\n".as_bytes()).unwrap(), "é\n");
    }

    #[test]
    fn pairing_ratio_keeps_or_splits_pairs() {
        let line = "{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}\n";
        let ex = parse_jsonl(&line.repeat(200)).unwrap();
        let all = responses(&ex);
        assert_eq!(apply_pairing_ratio(all.clone(), 1.0, 7).unwrap(), all);
        let none = apply_pairing_ratio(all.clone(), 0.0, 7).unwrap();
        assert_eq!(none.len(), 200);
        assert!(none.iter().all(|r| r.partner.is_none()));
        let chosen = none.iter().filter(|r| r.label > 0.0).count();
        assert!(
            chosen > 60 && chosen < 140,
            "{chosen} of 200 kept sides are chosen"
        );
        let half = apply_pairing_ratio(all.clone(), 0.5, 7).unwrap();
        let paired = half.iter().filter(|r| r.partner.is_some()).count();
        assert!(paired > 100 && paired < 300, "{paired} paired responses");
        assert!(apply_pairing_ratio(all, 1.5, 7).is_err());
    }
}
