//! The loss curve of a run as JSON Lines (`<out>.metrics.jsonl` from the command line): one
//! object per optimizer step (`step`, `loss`, `lr`, `grad_norm`, `tokens`, `seconds` since
//! this call to `train` started), appended and flushed as each step ends, so a run that is
//! killed keeps its curve. On resume from step `k`, lines of steps after `k` (written after
//! the checkpoint it resumes) are dropped first, so the file has each step once.

use crate::train::StepLog;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// An open metrics file.
pub struct Metrics {
    path: String,
    file: File,
}

impl Metrics {
    /// Open `path` for a run at step `step`: keep its lines of steps `1..=step`, drop the rest
    /// (a fresh run, `step` 0, starts an empty file).
    pub fn open(path: &str, step: usize) -> Result<Metrics, String> {
        let err = |e: std::io::Error| format!("{path}: {e}");
        let kept: String = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter(|l| line_step(l).is_some_and(|s| s <= step))
                .map(|l| format!("{l}\n"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(err(e)),
        };
        crate::paths::write_atomic(path, kept.as_bytes())?;
        let file = OpenOptions::new().append(true).open(path).map_err(err)?;
        Ok(Metrics {
            path: path.to_string(),
            file,
        })
    }

    /// Append `log`'s line, `seconds` after the start, and flush it.
    pub fn append(&mut self, log: &StepLog, seconds: f64) -> Result<(), String> {
        let line = serde_json::json!({
            "step": log.step,
            "loss": log.loss,
            "lr": log.lr,
            "grad_norm": log.grad_norm,
            "tokens": log.tokens,
            "seconds": seconds,
        });
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .map_err(|e| format!("{}: {e}", self.path))
    }
}

/// The `step` of a metrics line, or `None` for a line that is not one.
fn line_step(line: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("step")?.as_u64().map(|s| s as usize)
}
