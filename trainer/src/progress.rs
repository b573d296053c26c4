//! Progress: a bar (indicatif) with loss and tokens/s when stderr is a terminal; otherwise
//! (a log file, nohup, a batch scheduler) one plain line per [`Progress::every`] steps and at
//! the last one: `label: step k/n loss L tok/s T`. A bar with an empty label (the experiment's
//! hundreds of in-process runs) prints no plain lines, so a log is not flooded.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// A bar over optimizer steps (or any counted work).
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    tokens: usize,
    /// Plain lines instead of the bar (stderr is not a terminal).
    plain: bool,
    label: String,
    done: usize,
    total: usize,
}

impl Progress {
    /// A bar labelled `label`, at `done` of `total`.
    pub fn new(label: &str, done: usize, total: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.set_position(done as u64);
        Progress {
            bar,
            start: Instant::now(),
            tokens: 0,
            plain: !label.is_empty() && !std::io::stderr().is_terminal(),
            label: label.to_string(),
            done,
            total,
        }
    }

    /// Steps between two plain lines: a twentieth of the run (at least 1), so a log holds
    /// about 20 lines whatever the run's length.
    pub fn every(total: usize) -> usize {
        total.div_ceil(20).max(1)
    }

    /// Seconds since the bar started.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// One unit done, with its loss and tokens.
    pub fn step(&mut self, loss: f32, tokens: usize) {
        self.tokens += tokens;
        self.done += 1;
        if self.plain && (self.done % Self::every(self.total) == 0 || self.done == self.total) {
            eprintln!(
                "{}: step {}/{} loss {loss:.4} tok/s {:.0}",
                self.label,
                self.done,
                self.total,
                self.tokens_per_sec()
            );
        }
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "loss {loss:.4} | {:.0} tok/s",
            self.tokens as f64 / secs
        ));
        self.bar.inc(1);
    }

    /// One unit done, without a loss.
    pub fn tick(&mut self, tokens: usize) {
        self.tokens += tokens;
        self.bar
            .set_message(format!("{:.0} tok/s", self.tokens_per_sec()));
        self.bar.inc(1);
    }

    /// Tokens per second so far.
    pub fn tokens_per_sec(&self) -> f64 {
        self.tokens as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    /// Clear the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
