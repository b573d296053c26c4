//! The reference model's per-token target log-probs, computed once ([`RefLogps::compute`]) and saved
//! beside the data (`<data>.ref.json`), so the reference model never runs while aligning. Each
//! response's log-probs are stored with a fingerprint of its tokens, so a file computed for
//! other data (an edited data file with the same lengths, say) is refused, not silently used;
//! and with the fingerprint of the model that computed them ([`model_fingerprint`]), so that a
//! run aligning another model against them, or an evaluation against another model's
//! reference, is refused ([`RefLogps::check_model`]).

use crate::data::Response;
use crate::fingerprint::{fingerprint, model_fingerprint};
use crate::model::Model;
use crate::names::Names;
use crate::objective::row_logps;
use crate::seq::TokenBatch;
use serde::{Deserialize, Serialize};

/// The format tag of files this version writes and reads.
pub const FORMAT: &str = "bnf-ref-logp/3";
/// The tag of the first format (no fingerprints): refused, with a request to recompute.
const FORMAT_1: &str = "bnf-ref-logp/1";
/// The tag of the second format (no model fingerprint): refused, with a request to recompute.
const FORMAT_2: &str = "bnf-ref-logp/2";

/// `log pi_ref(y)` for every scored row of every response of a data file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefLogps {
    /// File format tag ([`FORMAT`]).
    pub format: String,
    /// One list per response (in [`crate::data::responses`] order): completion tokens then EOS.
    /// Every value is finite and at most 0.
    pub responses: Vec<Vec<f32>>,
    /// [`fingerprint`] of each response the log-probs were computed for (same order).
    #[serde(default)]
    pub fingerprints: Vec<u64>,
    /// [`model_fingerprint`] of the model that computed them.
    #[serde(default)]
    pub model: String,
}

/// The advice every mismatch ends with, in the caller's words (`names`).
fn rerun(names: Names) -> String {
    format!("rerun {} on this data", names.step("precompute_ref"))
}

/// The default reference file of a data file.
pub fn default_path(data: &str) -> String {
    format!("{data}.ref.json")
}

/// The reference file a command reads: `given` (`--ref`), else [`default_path`] of `data`.
pub fn path_or_default(given: Option<&str>, data: &str) -> String {
    given.map_or_else(|| default_path(data), str::to_string)
}

impl RefLogps {
    /// Run `model` over every response (`batch` at a time) and keep its target log-probs
    /// (finite: core refuses logits that would make one `-inf`).
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
            fingerprints: responses.iter().map(fingerprint).collect(),
            responses: out,
            model: model_fingerprint(&model.params),
        })
    }

    /// Check the format tag: the current one, or an error that names the file's.
    fn check_format(&self, names: Names) -> Result<(), String> {
        match self.format.as_str() {
            FORMAT => Ok(()),
            FORMAT_1 => Err(format!(
                "reference file: format \"{FORMAT_1}\" (written by an older version, without \
                 the fingerprints that tie it to its data); {}",
                rerun(names)
            )),
            FORMAT_2 => Err(format!(
                "reference file: format \"{FORMAT_2}\" (written by an older version, without \
                 the fingerprint of the model that computed it); {}",
                rerun(names)
            )),
            other => Err(format!(
                "reference file: format \"{other}\", expected \"{FORMAT}\""
            )),
        }
    }

    /// Check that the file matches the data: the same responses (by fingerprint), the same
    /// number of scored tokens, every value a finite log-prob (at most 0). The advice names the
    /// step that recomputes the file as the caller does (`names`).
    pub fn check(&self, responses: &[Response], names: Names) -> Result<(), String> {
        self.check_format(names)?;
        if self.fingerprints.len() != self.responses.len() {
            return Err(format!(
                "reference file: {} fingerprints for {} responses",
                self.fingerprints.len(),
                self.responses.len()
            ));
        }
        for r in responses {
            let v = self.responses.get(r.id).ok_or_else(|| {
                format!(
                    "reference file: has {} responses, the data needs response {} (line {} of the data file); \
                     {}",
                    self.responses.len(),
                    r.id,
                    r.line,
                    rerun(names)
                )
            })?;
            if self.fingerprints[r.id] != fingerprint(r) {
                return Err(format!(
                    "reference file: response {} (line {} of the data file) is not the one its \
                     log-probs were computed for (the data or the file changed since); {}",
                    r.id,
                    r.line,
                    rerun(names)
                ));
            }
            if v.len() != r.completion.len() + 1 {
                return Err(format!(
                    "reference file: response {} (line {} of the data file) has {} log-probs, the data has {} \
                     scored tokens; {}",
                    r.id,
                    r.line,
                    v.len(),
                    r.completion.len() + 1,
                    rerun(names)
                ));
            }
            if let Some(x) = v.iter().find(|x| !x.is_finite() || **x > 0.0) {
                return Err(format!(
                    "reference file: response {} (line {} of the data file) has log-prob {x} (must be finite and \
                     at most 0)",
                    r.id, r.line
                ));
            }
        }
        Ok(())
    }

    /// Check that these log-probs were computed by the model whose fingerprint is `expected`
    /// ([`model_fingerprint`]); `whose` says what that model is, in the caller's words (say,
    /// "`init` model.safetensors"). A file of another model is refused with the step that
    /// recomputes it.
    pub fn check_model(&self, expected: &str, whose: &str, names: Names) -> Result<(), String> {
        if self.model == expected {
            return Ok(());
        }
        Err(format!(
            "reference file: computed by the model with fingerprint {}, not by {whose} \
             (fingerprint {expected}): alignment needs the reference log-probs of its own \
             reference model; {} with that model",
            self.model,
            rerun(names)
        ))
    }

    /// [`RefLogps::check`], with the message naming the reference file (`path`) and the data
    /// file (`data`).
    pub fn check_file(
        &self,
        path: &str,
        data: &str,
        responses: &[Response],
        names: Names,
    ) -> Result<(), String> {
        self.check(responses, names).map_err(|e| {
            let what = e.strip_prefix("reference file: ").unwrap_or(&e);
            format!("{path} (the reference file for {data}): {what}")
        })
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

    /// Write as JSON, atomically. A value that is not finite is refused (JSON would write it
    /// as `null`, which no file can be read back with).
    pub fn save(&self, path: &str) -> Result<(), String> {
        for (id, v) in self.responses.iter().enumerate() {
            if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                return Err(format!(
                    "{path}: response {id} has log-prob {x}, which JSON cannot store (it would \
                     be written as null and not read back); not written"
                ));
            }
        }
        let text = serde_json::to_string(self).map_err(|e| format!("{path}: {e}"))?;
        crate::paths::write_atomic(path, text.as_bytes())
    }

    /// Read a file written by [`RefLogps::save`] (its format tag is checked here; whether it
    /// matches the data, by [`RefLogps::check`]). A file that cannot be read is an error that
    /// names the step that writes it as the caller does (`names`).
    pub fn load(path: &str, names: Names) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e} (run {} first)", names.step("precompute_ref")))?;
        let refs: RefLogps = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        refs.check_format(names)
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(refs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{parse_jsonl, responses};
    use crate::model::ModelConfig;

    const CFG: ModelConfig = ModelConfig {
        vocab: crate::tokenizer::VOCAB,
        block_size: 16,
        channels: 8,
        heads: 2,
        layers: 1,
    };

    fn data(text: &str) -> Vec<Response> {
        responses(&parse_jsonl(text).unwrap())
    }

    const PAIRS: &str = "{\"prompt\":\"1+1=\",\"chosen\":\"2\",\"rejected\":\"3\"}\n\
                         {\"prompt\":\"2+2=\",\"chosen\":\"4\",\"rejected\":\"5\"}\n";

    #[test]
    fn saved_file_reads_back_and_matches_its_data() {
        let rs = data(PAIRS);
        let refs = RefLogps::compute(&mut Model::new(CFG, 1).unwrap(), &rs, 3).unwrap();
        assert_eq!(refs.fingerprints.len(), 4);
        let path = std::env::temp_dir().join(format!("bnf-ref-{}.json", std::process::id()));
        let path = path.to_str().unwrap();
        refs.save(path).unwrap();
        let back = RefLogps::load(path, Names::FIELDS).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(back, refs);
        back.check(&rs, Names::FIELDS).unwrap();
    }

    /// Same lengths, different tokens (an edited data file): refused, with what to do.
    #[test]
    fn out_of_date_file_is_refused() {
        let rs = data(PAIRS);
        let refs = RefLogps::compute(&mut Model::new(CFG, 1).unwrap(), &rs, 4).unwrap();
        let edited = data(&PAIRS.replace("\"5\"", "\"6\""));
        let err = refs.check(&edited, Names::FIELDS).unwrap_err();
        assert!(
            err.contains("response 3 (line 2 of the data file)")
                && err.ends_with("rerun `RefLogps::compute` on this data"),
            "{err}"
        );
        // In a caller's words.
        let caller = Names::new(str::to_uppercase, |s| format!("`run {s}`"));
        let err = refs.check(&edited, caller).unwrap_err();
        assert!(
            err.ends_with("rerun `run precompute_ref` on this data"),
            "{err}"
        );
        // Swapped lines: every response has the lengths of the one it replaces.
        let swapped: String = PAIRS.lines().rev().map(|l| format!("{l}\n")).collect();
        let err = refs.check(&data(&swapped), Names::FIELDS).unwrap_err();
        assert!(
            err.contains("response 0 (line 1 of the data file)"),
            "{err}"
        );
        // A file of the first format (no fingerprints) is refused by name.
        let mut old = serde_json::to_value(&refs).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.insert("format".into(), FORMAT_1.into());
        assert!(obj.remove("fingerprints").is_some());
        let old: RefLogps = serde_json::from_value(old).unwrap();
        let err = old.check(&rs, Names::FIELDS).unwrap_err();
        assert!(
            err.contains(FORMAT_1) && err.contains("RefLogps::compute"),
            "{err}"
        );
    }

    /// JSON writes a non-finite value as `null`, which does not read back: `save` refuses it,
    /// naming the response, and `check` refuses it in a file built by hand.
    #[test]
    fn non_finite_log_probs_are_refused() {
        let rs = data(PAIRS);
        let mut refs = RefLogps::compute(&mut Model::new(CFG, 1).unwrap(), &rs, 4).unwrap();
        refs.responses[2][0] = f32::NEG_INFINITY;
        let err = refs.save("/nonexistent/never-written.json").unwrap_err();
        assert!(err.contains("response 2") && err.contains("-inf"), "{err}");
        let err = refs.check(&rs, Names::FIELDS).unwrap_err();
        assert!(
            err.contains("response 2 (line 2 of the data file)"),
            "{err}"
        );
    }
}
