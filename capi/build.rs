//! Generates the f16 and bf16 entry points from the f32 ones. Each `entries_*.rs` writes out
//! its `*_f32` entries by hand (with their documentation); this script reads them and writes,
//! for each, a `*_f16` and a `*_bf16` twin into `$OUT_DIR/<file>_halves.rs`, which the file
//! `include!`s: the same parameters with the logit buffers as `uint16_t` bits, the same body
//! with those buffers cast to `half::f16` / `half::bf16`, and a short doc pointing at the f32
//! entry. `tests/header.rs` hands the generated files to cbindgen beside the crate, so
//! `include/bnf.h` declares every entry.
//!
//! Why not `macro_rules!`: cbindgen does not expand macros unless `parse.expand` is set, and
//! that runs `cargo rustc -- -Zunpretty=expanded`, a nightly-only flag (on stable only with
//! `RUSTC_BOOTSTRAP=1`, whose output format is not stable either); CI builds with stable.

use std::fmt::Write as _;
use std::path::Path;

/// The files whose `*_f32` entries get f16 and bf16 twins.
const FILES: [&str; 4] = [
    "entries_bnf.rs",
    "entries_nll.rs",
    "entries_objective.rs",
    "entries_row.rs",
];

/// Parameters that hold logits (or a gradient of the logits' type), by name: given as
/// `*const f32` / `*mut f32` in the f32 entry, as `uint16_t` bits in the others. Every other
/// parameter (a `float` loss, weight or target distribution) keeps its type.
const LOGIT_PARAMS: [&str; 4] = ["logits", "grad", "z", "out"];

/// `(suffix, half type, how the doc names the bits)`.
const HALVES: [(&str, &str, &str); 2] = [("f16", "f16", "IEEE half"), ("bf16", "bf16", "bfloat16")];

/// One `*_f32` entry: its name without the suffix, its parameters and its body.
struct Entry {
    base: String,
    params: Vec<(String, String)>,
    body: String,
}

/// Every `pub unsafe extern "C" fn NAME_f32(..) -> BnfStatus { .. }` of `src`.
fn entries(src: &str) -> Vec<Entry> {
    const START: &str = "pub unsafe extern \"C\" fn ";
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(START) {
        rest = &rest[i + START.len()..];
        let open = rest.find('(').expect("a parameter list");
        let name = &rest[..open];
        let close = rest
            .find(") -> BnfStatus {")
            .expect("entries return BnfStatus");
        let params_text = &rest[open + 1..close];
        let body_start = close + ") -> BnfStatus {".len();
        let body_end = body_start + rest[body_start..].find("\n}\n").expect("a body");
        let body = rest[body_start..body_end].trim().to_string();
        rest = &rest[body_end..];
        let Some(base) = name.strip_suffix("_f32") else {
            continue;
        };
        let params = params_text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, t) = p.split_once(':').expect("name: type");
                (n.trim().to_string(), t.trim().to_string())
            })
            .collect();
        out.push(Entry {
            base: base.to_string(),
            params,
            body,
        });
    }
    out
}

/// Whether parameter `(name, type)` holds logits.
fn is_logits((name, ty): &(String, String)) -> bool {
    LOGIT_PARAMS.contains(&name.as_str()) && (ty == "*const f32" || ty == "*mut f32")
}

/// `body` with every whole-word `name` replaced by `with`.
fn replace_word(body: &str, name: &str, with: &str) -> String {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + name.len()..].chars().next();
        out.push_str(&rest[..i]);
        let whole = !before.is_some_and(word) && !after.is_some_and(word) && before != Some('"');
        out.push_str(if whole { with } else { name });
        rest = &rest[i + name.len()..];
    }
    out.push_str(rest);
    out
}

/// The f16 and bf16 twins of `e`.
fn twins(e: &Entry) -> String {
    let mut out = String::new();
    let grad = e.base.contains("backward") || e.base.contains("grad");
    for (suffix, half, bits) in HALVES {
        let f32_name = format!("{}_f32", e.base);
        let name = format!("{}_{suffix}", e.base);
        let what = if grad {
            "logits and gradient"
        } else {
            "logits"
        };
        writeln!(
            out,
            "/// As `{f32_name}`, for {bits} {what} passed as `uint16_t` bits."
        )
        .unwrap();
        writeln!(out, "///\n/// # Safety\n/// As `{f32_name}`.").unwrap();
        writeln!(out, "#[no_mangle]\npub unsafe extern \"C\" fn {name}(").unwrap();
        let mut body = e
            .body
            .replace(&format!("\"{f32_name}\""), &format!("\"{name}\""));
        for p in &e.params {
            let ty = if is_logits(p) {
                body = replace_word(&body, &p.0, &format!("{}.cast::<{half}>()", p.0));
                p.1.replace("f32", "u16")
            } else {
                p.1.clone()
            };
            writeln!(out, "    {}: {ty},", p.0).unwrap();
        }
        writeln!(out, ") -> BnfStatus {{\n    {body}\n}}\n").unwrap();
    }
    out
}

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for file in FILES {
        let path = Path::new("src").join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let src = std::fs::read_to_string(&path).expect("read an entries file");
        let mut text = format!("// Generated by capi/build.rs from src/{file}: do not edit.\n\n");
        for e in entries(&src) {
            text.push_str(&twins(&e));
        }
        let target = Path::new(&out_dir).join(file.replace(".rs", "_halves.rs"));
        std::fs::write(target, text).expect("write the generated entries");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
