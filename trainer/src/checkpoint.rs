//! Checkpoints: one safetensors file with the parameters (named as [`Params::NAMES`]), and,
//! for training checkpoints, the AdamW moments and the training state in its metadata; plus a
//! JSON copy of the config beside it (`<path>.json`) for people. Every file is written to a
//! temporary name and renamed, so a crash leaves the previous good checkpoint.
//!
//! Formats: [`FORMAT`] (`bnf-checkpoint/2`) records, in the training state, a fingerprint of
//! the training data, checked on `--resume`. The first format had no tag and no fingerprint:
//! its weights still load (`--init`, `eval`, `generate`), but its runs cannot be resumed.

use crate::model::params::{param_shapes, Params};
use crate::model::{Model, ModelConfig};
use crate::optim::{AdamW, AdamWConfig};
use crate::train::TrainState;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;

/// The format tag of the checkpoints this version writes.
pub const FORMAT: &str = "bnf-checkpoint/2";

/// What the JSON beside a checkpoint (and the safetensors metadata) holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// [`FORMAT`]; empty in checkpoints of the first format, which had no tag.
    #[serde(default)]
    pub format: String,
    /// The model's shape.
    pub model: ModelConfig,
    /// Optimizer hyperparameters, for a training checkpoint.
    pub optimizer: Option<AdamWConfig>,
    /// AdamW updates taken (its bias-correction step), for a training checkpoint.
    pub optimizer_steps: Option<u64>,
    /// Where training stands, for a training checkpoint.
    pub train: Option<TrainState>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The model.
    pub model: Model,
    /// AdamW state, when saved.
    pub optimizer: Option<AdamW>,
    /// Training state, when saved.
    pub train: Option<TrainState>,
}

/// Write `bytes` to `path` through a temporary file in the same folder and a rename: `path`
/// holds either its previous content or all of `bytes`, never a part. On failure (also of the
/// rename) the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &str, bytes: &[u8]) -> Result<(), String> {
    let tmp = format!("{path}.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        // Only a file of ours is removed (not, say, a folder someone put there).
        if std::fs::metadata(&tmp).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(format!("{tmp}: {e}"));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{path}: {e}")
    })
}

/// Save `model` (and optionally the optimizer and training state) to `path`.
pub fn save(
    path: &str,
    model: &Model,
    optimizer: Option<&AdamW>,
    train: Option<&TrainState>,
) -> Result<(), String> {
    let info = CheckpointInfo {
        format: FORMAT.into(),
        model: model.config,
        optimizer: optimizer.map(|o| o.config),
        optimizer_steps: optimizer.map(|o| o.t),
        train: train.cloned(),
    };
    let json = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
    // What cannot be read back is not written: JSON stores a NaN or infinity as `null`, and a
    // file with one would not load (nor resume), so it must not replace a good checkpoint.
    let back = serde_json::from_str::<CheckpointInfo>(&json);
    if back.as_ref().ok() != Some(&info) {
        let why = match back {
            Err(e) => e.to_string(),
            Ok(_) => "a value changes on the way".into(),
        };
        return Err(format!(
            "{path}: not written, its config would not read back ({why}); the previous file, \
             if any, is kept"
        ));
    }
    // One metadata key, so the header's bytes do not depend on hash order.
    let meta = HashMap::from([("bnf".to_string(), json.clone())]);
    let shapes = param_shapes(&model.config);
    let mut tensors: Vec<(String, TensorView<'_>)> = Vec::new();
    add_views(&mut tensors, "", &model.params, &shapes)?;
    if let Some(o) = optimizer {
        add_views(&mut tensors, "adam_m.", &o.m, &shapes)?;
        add_views(&mut tensors, "adam_v.", &o.v, &shapes)?;
    }
    let bytes = safetensors::serialize(tensors, &Some(meta)).map_err(|e| format!("{path}: {e}"))?;
    // Both files can be written before either is: a folder named like the JSON copy fails
    // the save before the checkpoint changes.
    let json_path = format!("{path}.json");
    crate::paths::check_target("checkpoint", path)?;
    crate::paths::check_target("checkpoint's JSON copy", &json_path)?;
    write_atomic(path, &bytes)?;
    write_atomic(&json_path, json.as_bytes())
}

/// Append one named view per parameter tensor of `buf` (laid out as [`Params`]).
fn add_views<'a>(
    out: &mut Vec<(String, TensorView<'a>)>,
    prefix: &str,
    buf: &'a [f32],
    shapes: &[Vec<usize>],
) -> Result<(), String> {
    let mut start = 0;
    for (name, shape) in Params::NAMES.iter().zip(shapes) {
        let n: usize = shape.iter().product();
        let bytes: &[u8] = bytemuck::cast_slice(&buf[start..start + n]);
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(|e| e.to_string())?;
        out.push((format!("{prefix}{name}"), view));
        start += n;
    }
    Ok(())
}

fn read_tensors(
    st: &SafeTensors<'_>,
    prefix: &str,
    shapes: &[Vec<usize>],
    path: &str,
) -> Result<Vec<f32>, String> {
    let mut out = Vec::new();
    for (name, shape) in Params::NAMES.iter().zip(shapes) {
        let key = format!("{prefix}{name}");
        let t = st
            .tensor(&key)
            .map_err(|e| format!("{path}: tensor {key}: {e}"))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
            return Err(format!(
                "{path}: tensor {key} is {:?} {:?}, expected F32 {shape:?}",
                t.dtype(),
                t.shape()
            ));
        }
        out.extend(
            t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
    }
    Ok(out)
}

/// Load a checkpoint written by [`save`].
pub fn load(path: &str) -> Result<Checkpoint, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let json = meta
        .get("bnf")
        .ok_or_else(|| format!("{path}: no \"bnf\" metadata (not a bnf-trainer checkpoint)"))?;
    let info: CheckpointInfo =
        serde_json::from_str(json).map_err(|e| format!("{path}: metadata: {e}"))?;
    if !info.format.is_empty() && info.format != FORMAT {
        return Err(format!(
            "{path}: checkpoint format \"{}\", this version reads \"{FORMAT}\" (and the \
             first, untagged one); it was written by another version of bnf",
            info.format
        ));
    }
    info.model.validate().map_err(|e| format!("{path}: {e}"))?;
    let shapes = param_shapes(&info.model);
    let model = Model::from_params(info.model, read_tensors(&st, "", &shapes, path)?)?;
    let optimizer = match info.optimizer {
        Some(cfg) => {
            let mut o = AdamW::new(cfg, Params::NAMES, model.param_sizes());
            o.m = read_tensors(&st, "adam_m.", &shapes, path)?;
            o.v = read_tensors(&st, "adam_v.", &shapes, path)?;
            o.t = info
                .optimizer_steps
                .ok_or_else(|| format!("{path}: missing optimizer_steps"))?;
            Some(o)
        }
        None => None,
    };
    Ok(Checkpoint {
        model,
        optimizer,
        train: info.train,
    })
}
