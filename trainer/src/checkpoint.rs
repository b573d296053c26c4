//! Checkpoints: one safetensors file with the parameters (named as [`Params::NAMES`]), and,
//! for training checkpoints, the AdamW moments and the training state in its metadata; plus a
//! JSON copy of the config beside it (`<path>.json`) for people. Every file is written to a
//! temporary name and renamed, so a crash leaves the previous good checkpoint. The JSON copy
//! is written first: a crash between the two leaves it one save ahead of the checkpoint, never
//! behind it (nothing reads it back; the checkpoint's own metadata is what loads).
//!
//! Formats: [`FORMAT`] (`bnf-checkpoint/3`) records a checksum of its tensors' bytes
//! ([`tensor_checksum`]), verified on load, and, in the training state, fingerprints of the
//! training data and reference, checked on resume. `bnf-checkpoint/2` (no checksum) still
//! loads, unverified. The first format had no tag and no fingerprint: its weights still load
//! (`--init`, `eval`, `generate`), but its runs cannot be resumed. Whatever the format, a
//! checkpoint whose parameters or optimizer moments are not all finite is neither written
//! nor loaded: the error names the file, the tensor and the element.

use crate::fingerprint::tensor_checksum;
use crate::model::params::{param_shapes, Params};
use crate::model::{Model, ModelConfig};
use crate::optim::{AdamW, AdamWConfig};
use crate::paths::write_atomic;
use crate::state::TrainState;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensorError, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The format tag of the checkpoints this version writes.
pub const FORMAT: &str = "bnf-checkpoint/3";

/// The previous format: as [`FORMAT`] without the checksum. Loaded without verification.
const FORMAT_2: &str = "bnf-checkpoint/2";

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
    /// [`tensor_checksum`] of the parameters, then (for a training checkpoint) the AdamW
    /// first and second moments, as 16 hex digits; absent before [`FORMAT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
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

/// The JSON config a checkpoint of `model` (and optionally the optimizer and training state)
/// at `path` stores, or an error if it would not read back as written: JSON stores a NaN or
/// infinity as `null`, and a file with one would not load (nor resume), so it must not be
/// written, let alone replace a good checkpoint. Training calls it before step 1 too.
pub fn config_json(
    path: &str,
    model: &Model,
    optimizer: Option<&AdamW>,
    train: Option<&TrainState>,
) -> Result<String, String> {
    let info = CheckpointInfo {
        format: FORMAT.into(),
        model: model.config,
        optimizer: optimizer.map(|o| o.config),
        optimizer_steps: optimizer.map(|o| o.t),
        train: train.cloned(),
        checksum: Some(checksum(
            &model.params,
            optimizer.map(|o| (&o.m[..], &o.v[..])),
        )),
    };
    let json = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
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
    Ok(json)
}

/// The checksum a checkpoint records of its parameters and (if any) AdamW moments.
fn checksum(params: &[f32], moments: Option<(&[f32], &[f32])>) -> String {
    let sum = match moments {
        Some((m, v)) => tensor_checksum(&[params, m, v]),
        None => tensor_checksum(&[params]),
    };
    format!("{sum:016x}")
}

/// The first element of `buf` (laid out as [`Params`], tensor names prefixed by `prefix`)
/// that is not finite, as "tensor NAME element I is V", or `None`.
fn non_finite(buf: &[f32], prefix: &str, shapes: &[Vec<usize>]) -> Option<String> {
    let i = buf.iter().position(|v| !v.is_finite())?;
    let mut start = 0;
    for (name, shape) in Params::NAMES.iter().zip(shapes) {
        let n: usize = shape.iter().product();
        if i < start + n {
            return Some(format!(
                "tensor {prefix}{name} element {} is {}",
                i - start,
                buf[i]
            ));
        }
        start += n;
    }
    Some(format!("element {i} is {}", buf[i]))
}

/// The first non-finite value of the parameters or moments, named as [`non_finite`] does.
fn first_non_finite(
    params: &[f32],
    optimizer: Option<(&[f32], &[f32])>,
    shapes: &[Vec<usize>],
) -> Option<String> {
    non_finite(params, "", shapes).or_else(|| {
        let (m, v) = optimizer?;
        non_finite(m, "adam_m.", shapes).or_else(|| non_finite(v, "adam_v.", shapes))
    })
}

/// Save `model` (and optionally the optimizer and training state) to `path`. Refused, with the
/// previous file kept, when a parameter or moment is not finite.
pub fn save(
    path: &str,
    model: &Model,
    optimizer: Option<&AdamW>,
    train: Option<&TrainState>,
) -> Result<(), String> {
    let shapes = param_shapes(&model.config);
    let moments = optimizer.map(|o| (&o.m[..], &o.v[..]));
    if let Some(bad) = first_non_finite(&model.params, moments, &shapes) {
        return Err(format!(
            "{path}: not written: {bad} (training diverged); the previous file, if any, is kept"
        ));
    }
    let json = config_json(path, model, optimizer, train)?;
    // One metadata key, so the header's bytes do not depend on hash order.
    let meta = HashMap::from([("bnf".to_string(), json.clone())]);
    let mut tensors: Vec<(String, TensorView<'_>)> = Vec::new();
    add_views(&mut tensors, "", &model.params, &shapes)?;
    if let Some(o) = optimizer {
        add_views(&mut tensors, "adam_m.", &o.m, &shapes)?;
        add_views(&mut tensors, "adam_v.", &o.v, &shapes)?;
    }
    let bytes = safetensors::serialize(tensors, &Some(meta)).map_err(|e| format!("{path}: {e}"))?;
    // Both files can be written before either is: a folder named like the JSON copy fails
    // the save before the checkpoint changes.
    let json_path = crate::paths::json_copy_path(path);
    crate::paths::check_target("checkpoint", path)?;
    crate::paths::check_target("checkpoint's JSON copy", &json_path)?;
    // The copy first: a crash between the two leaves it ahead of the checkpoint, not behind.
    write_atomic(&json_path, json.as_bytes())?;
    write_atomic(path, &bytes)
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

/// Why `bytes`, the content of `path`, are not a safetensors file, in words (safetensors' own
/// error names, such as `HeaderTooLarge`, mean little to a user). A safetensors file is an
/// 8-byte little-endian header length `n`, `n` bytes of JSON header, then the tensors, which
/// end exactly where the file does.
fn not_safetensors(path: &str, bytes: &[u8], e: SafeTensorError) -> String {
    let len = bytes.len();
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let looks_like_header = bytes.get(8) == Some(&b'{');
    // How long the file should be, from its header's largest tensor end.
    let expected = || -> Option<u64> {
        let n = usize::try_from(n?).ok()?;
        let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + n)?).ok()?;
        let end = header
            .as_object()?
            .values()
            .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
            .max()
            .unwrap_or(0);
        Some(8 + n as u64 + end)
    };
    let truncated = |what: &str, want: u64| {
        format!(
            "{path}: truncated checkpoint: {what} {want} bytes, the file has {len} (it was cut \
             short, by a crash or a copy that did not finish)"
        )
    };
    let why = match e {
        _ if len == 0 => "the file is empty".to_string(),
        SafeTensorError::HeaderTooSmall => format!(
            "the file has only {len} bytes; a checkpoint starts with an 8-byte header length"
        ),
        SafeTensorError::HeaderTooLarge | SafeTensorError::InvalidHeaderLength => {
            let n = n.unwrap_or(0);
            if looks_like_header && n < (100 << 20) {
                return truncated("its header alone takes", 8 + n);
            }
            let start = &bytes[..8];
            if start
                .iter()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            {
                format!(
                    "it starts with the text {:?}, where a checkpoint has its header length",
                    String::from_utf8_lossy(start)
                )
            } else {
                format!("its first 8 bytes give a header length of {n}, the file has {len} bytes")
            }
        }
        SafeTensorError::MetadataIncompleteBuffer => match expected() {
            Some(want) if want > len as u64 => return truncated("its header describes", want),
            Some(want) => format!(
                "the file has {} bytes more than its header describes",
                len as u64 - want
            ),
            None => "its tensors do not end where the file ends".to_string(),
        },
        SafeTensorError::InvalidHeader
        | SafeTensorError::InvalidHeaderStart
        | SafeTensorError::InvalidHeaderDeserialization => {
            "its header is not the JSON a safetensors file starts with".to_string()
        }
        other => format!("{other:?}"),
    };
    let copy_of = path
        .strip_suffix(".json")
        .filter(|c| std::path::Path::new(c).is_file());
    let hint = match copy_of {
        Some(c) => format!(
            "; it looks like the JSON copy of the config beside the checkpoint {c}: give that file"
        ),
        None => String::new(),
    };
    format!("{path}: not a safetensors checkpoint ({why}){hint}")
}

/// Load a checkpoint written by [`save`].
pub fn load(path: &str) -> Result<Checkpoint, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| not_safetensors(path, &bytes, e))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| not_safetensors(path, &bytes, e))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let json = meta
        .get("bnf")
        .ok_or_else(|| format!("{path}: no \"bnf\" metadata (not a bnf-trainer checkpoint)"))?;
    let info: CheckpointInfo =
        serde_json::from_str(json).map_err(|e| format!("{path}: metadata: {e}"))?;
    if !["", FORMAT_2, FORMAT].contains(&info.format.as_str()) {
        return Err(format!(
            "{path}: checkpoint format \"{}\", this version reads \"{FORMAT}\" (and the \
             older \"{FORMAT_2}\" and untagged ones); it was written by another version of bnf",
            info.format
        ));
    }
    if info.format == FORMAT && info.checksum.is_none() {
        return Err(format!(
            "{path}: format \"{FORMAT}\" without its checksum: the metadata was edited or damaged"
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
    let moments = optimizer.as_ref().map(|o| (&o.m[..], &o.v[..]));
    if let Some(want) = &info.checksum {
        let got = checksum(&model.params, moments);
        if &got != want {
            return Err(format!(
                "{path}: damaged checkpoint: its tensors' checksum is {got}, the checkpoint \
                 recorded {want} when it was written (a flipped bit on disk or a copy that went \
                 wrong); use another copy or an earlier checkpoint"
            ));
        }
    }
    if let Some(bad) = first_non_finite(&model.params, moments, &shapes) {
        return Err(format!(
            "{path}: {bad}: a checkpoint's parameters and optimizer moments must be finite \
             (the run that wrote it diverged, or the file was edited)"
        ));
    }
    Ok(Checkpoint {
        model,
        optimizer,
        train: info.train,
    })
}
