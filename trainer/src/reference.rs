//! The reference model's per-token target log-probs, computed once (`precompute-ref`) and saved
//! beside the data (`<data>.ref.json`), so the reference model never runs while aligning.

use crate::data::Response;
use crate::model::Model;
use crate::objective::row_logps;
use crate::seq::TokenBatch;
use serde::{Deserialize, Serialize};

const FORMAT: &str = "bnf-ref-logp/1";

/// `log pi_ref(y)` for every scored row of every response of a data file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefLogps {
    /// File format tag.
    pub format: String,
    /// One list per response (in [`crate::data::responses`] order): completion tokens then EOS.
    pub responses: Vec<Vec<f32>>,
}

/// The default reference file of a data file.
pub fn default_path(data: &str) -> String {
    format!("{data}.ref.json")
}

impl RefLogps {
    /// Run `model` over every response (`batch` at a time) and keep its target log-probs.
    pub fn compute(
        model: &mut Model,
        responses: &[Response],
        batch: usize,
    ) -> Result<Self, String> {
        let mut out = Vec::with_capacity(responses.len());
        let mut bar =
            crate::progress::Progress::new("ref", 0, responses.len().div_ceil(batch.max(1)));
        for chunk in responses.chunks(batch.max(1)) {
            let refs: Vec<&Response> = chunk.iter().collect();
            let tb = TokenBatch::new(&refs);
            model.forward(&tb.tokens, tb.b, tb.t)?;
            let rows = row_logps(model.logits(), model.config.vocab, &tb)?;
            for w in tb.offsets.windows(2) {
                out.push(
                    (w[0]..w[1])
                        .filter(|&r| tb.scored[r])
                        .map(|r| rows[r])
                        .collect(),
                );
            }
            bar.tick(tb.b * tb.t);
        }
        bar.finish();
        Ok(RefLogps {
            format: FORMAT.into(),
            responses: out,
        })
    }

    /// Check that the file matches the data: same responses, same number of scored tokens,
    /// every value a valid log-prob.
    pub fn check(&self, responses: &[Response]) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "reference file: format \"{}\", expected \"{FORMAT}\"",
                self.format
            ));
        }
        for r in responses {
            let v = self.responses.get(r.id).ok_or_else(|| {
                format!(
                    "reference file: has {} responses, data needs response {}",
                    self.responses.len(),
                    r.id
                )
            })?;
            if v.len() != r.completion.len() + 1 {
                return Err(format!(
                    "reference file: response {} (line {}) has {} log-probs, the data has {} scored tokens",
                    r.id,
                    r.line,
                    v.len(),
                    r.completion.len() + 1
                ));
            }
            if let Some(x) = v.iter().find(|x| x.is_nan() || **x > 0.0) {
                return Err(format!(
                    "reference file: response {} has log-prob {x}",
                    r.id
                ));
            }
        }
        Ok(())
    }

    /// Per-row reference log-probs for `batch` (0 on unscored rows).
    pub fn rows(&self, batch: &TokenBatch) -> Vec<f32> {
        let mut out = vec![0.0f32; batch.targets.len()];
        for (i, &id) in batch.ids.iter().enumerate() {
            let rows = (batch.offsets[i]..batch.offsets[i + 1]).filter(|&r| batch.scored[r]);
            for (r, &v) in rows.zip(&self.responses[id]) {
                out[r] = v;
            }
        }
        out
    }

    /// `log pi_ref(y)` of response `id`, summed in f64.
    pub fn sequence(&self, id: usize) -> f64 {
        self.responses[id].iter().map(|&x| x as f64).sum()
    }

    /// Write as JSON, atomically.
    pub fn save(&self, path: &str) -> Result<(), String> {
        let text = serde_json::to_string(self).map_err(|e| format!("{path}: {e}"))?;
        crate::checkpoint::write_atomic(path, text.as_bytes())
    }

    /// Read a file written by [`RefLogps::save`].
    pub fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e} (run precompute-ref first)"))?;
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
    }
}
