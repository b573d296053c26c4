//! Progress bars (indicatif) showing loss and tokens/s; hidden when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// A bar over optimizer steps (or any counted work).
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    tokens: usize,
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
        }
    }

    /// One unit done, with its loss and tokens.
    pub fn step(&mut self, loss: f32, tokens: usize) {
        self.tokens += tokens;
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
