//! Checkpoints are written atomically: a save that fails part-way leaves the previous
//! checkpoint byte for byte, a crash's leftover temporary file does not disturb loading or the
//! next save, and what loads is what was saved.

use bnf_trainer::checkpoint::{load, save};
use bnf_trainer::model::params::Params;
use bnf_trainer::model::{Model, ModelConfig};
use bnf_trainer::optim::{AdamW, AdamWConfig};
use bnf_trainer::paths::write_atomic;
use bnf_trainer::train::{TrainConfig, TrainState};

const CFG: ModelConfig = ModelConfig {
    vocab: 11,
    block_size: 8,
    channels: 8,
    heads: 2,
    layers: 1,
};

#[test]
fn failed_save_keeps_the_last_good_checkpoint() {
    let dir = std::env::temp_dir().join(format!("bnf-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    let path = path.to_str().unwrap();
    let first = Model::new(CFG, 1).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), Params::NAMES, first.param_sizes());
    opt.t = 3;
    save(path, &first, Some(&opt), None).unwrap();
    let good = std::fs::read(path).unwrap();

    // The next save cannot write its temporary file (a folder is in the way): it fails with
    // the path in the message, and the previous checkpoint is untouched and loads.
    let blocker = format!("{path}.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let second = Model::new(CFG, 2).unwrap();
    let err = save(path, &second, None, None).unwrap_err();
    assert!(err.contains(".tmp"), "{err}");
    assert_eq!(std::fs::read(path).unwrap(), good);
    let back = load(path).unwrap();
    assert_eq!(back.model.params, first.params);
    assert_eq!(back.optimizer.unwrap().t, 3);
    std::fs::remove_dir(&blocker).unwrap();

    // A crash mid-write leaves a partial temporary file: loading ignores it, and the next
    // save replaces both.
    std::fs::write(&blocker, &good[..good.len() / 2]).unwrap();
    assert_eq!(load(path).unwrap().model.params, first.params);
    save(path, &second, None, None).unwrap();
    assert!(!std::path::Path::new(&blocker).exists());
    let back = load(path).unwrap();
    assert_eq!(back.model.params, second.params);
    assert!(back.optimizer.is_none());

    // The same for any file written this way.
    let text = dir.join("t.json");
    let text = text.to_str().unwrap();
    write_atomic(text, b"old").unwrap();
    std::fs::create_dir(format!("{text}.tmp")).unwrap();
    assert!(write_atomic(text, b"new").is_err());
    assert_eq!(std::fs::read(text).unwrap(), b"old");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint whose config would not read back (JSON writes a NaN as `null`) is not written:
/// the save fails, naming the file, and the previous checkpoint stays and loads.
#[test]
fn a_config_that_would_not_read_back_is_not_written() {
    let dir = std::env::temp_dir().join(format!("bnf-ckpt-nan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    let path = path.to_str().unwrap();
    let model = Model::new(CFG, 1).unwrap();
    let opt = AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes());
    let mut state = TrainState {
        config: TrainConfig::DEFAULT,
        step: 1,
        responses: 4,
        data_fingerprint: None,
        ref_fingerprint: None,
        ref_model: None,
    };
    save(path, &model, Some(&opt), Some(&state)).unwrap();
    let good = std::fs::read(path).unwrap();
    state.config.grad_clip = f32::NAN;
    let err = save(path, &model, Some(&opt), Some(&state)).unwrap_err();
    assert!(err.contains(path) && err.contains("not written"), "{err}");
    assert_eq!(std::fs::read(path).unwrap(), good);
    assert_eq!(
        load(path).unwrap().train.unwrap().config,
        TrainConfig::DEFAULT
    );
    let mut bad_opt = opt.clone();
    bad_opt.config.eps = f32::INFINITY;
    assert!(save(path, &model, Some(&bad_opt), None).is_err());
    assert_eq!(std::fs::read(path).unwrap(), good);
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}"); // the checkpoint and its JSON copy
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every finite value reads back as written, f64 included: the pairing ratio is an f64, and
/// JSON parsed without exact float parsing read about 1 in 10 of them back 1 ulp off (such as
/// these), which the read-back check then refused at the first save.
#[test]
fn f64_pairing_ratios_survive_a_save() {
    let dir = std::env::temp_dir().join(format!("bnf-ckpt-f64-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    let path = path.to_str().unwrap();
    let model = Model::new(CFG, 1).unwrap();
    let mut state = TrainState {
        config: TrainConfig::DEFAULT,
        step: 1,
        responses: 4,
        data_fingerprint: Some(7),
        ref_fingerprint: None,
        ref_model: None,
    };
    // Reproducible pseudo-random ratios in [0, 1), plus the two the review found.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut ratios = vec![0.9073038322028689, 0.9999999999999999];
    for _ in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ratios.push((x >> 11) as f64 / (1u64 << 53) as f64);
    }
    for r in ratios {
        state.config.pairing_ratio = r;
        save(path, &model, None, Some(&state)).unwrap_or_else(|e| panic!("{r}: {e}"));
        let back = load(path).unwrap().train.unwrap().config.pairing_ratio;
        assert_eq!(back.to_bits(), r.to_bits(), "{r}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A folder where the JSON copy goes fails the save before the checkpoint is replaced, and a
/// rename that fails takes its temporary file with it.
#[test]
fn a_blocked_json_copy_fails_before_the_checkpoint_changes() {
    let dir = std::env::temp_dir().join(format!("bnf-ckpt-json-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    let path = path.to_str().unwrap();
    let first = Model::new(CFG, 1).unwrap();
    save(path, &first, None, None).unwrap();
    let good = std::fs::read(path).unwrap();
    std::fs::remove_file(format!("{path}.json")).unwrap();
    std::fs::create_dir(format!("{path}.json")).unwrap();
    let err = save(path, &Model::new(CFG, 2).unwrap(), None, None).unwrap_err();
    assert!(err.contains(&format!("{path}.json")), "{err}");
    assert_eq!(std::fs::read(path).unwrap(), good);
    // write_atomic onto a folder: the rename fails, and no temporary file stays.
    let folder = format!("{path}.json");
    assert!(write_atomic(&folder, b"x").is_err());
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["run.safetensors", "run.safetensors.json"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file that is not a checkpoint (a data file, the JSON copy beside one, an empty or
/// truncated file) is named and described in words, not by safetensors' error names.
#[test]
fn a_file_that_is_not_a_checkpoint_is_described() {
    let dir = std::env::temp_dir().join(format!("bnf-ckpt-not-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    save(
        &p("m.safetensors"),
        &Model::new(CFG, 1).unwrap(),
        None,
        None,
    )
    .unwrap();
    let good = std::fs::read(p("m.safetensors")).unwrap();
    let jsonl = "{\"prompt\":\"59+63=\",\"chosen\":\"122\",\"rejected\":\"123\"}\n";
    let mut longer = good.clone();
    longer.extend(b"junk");
    let cases: [(&str, &[u8], &str); 7] = [
        (
            "empty.safetensors",
            b"",
            "not a safetensors checkpoint (the file is empty)",
        ),
        ("short.safetensors", b"abc", "has only 3 bytes"),
        (
            "pair.jsonl",
            jsonl.as_bytes(),
            "starts with the text \"{\\\"prompt\"",
        ),
        (
            "cut-header.safetensors",
            &good[..40],
            "truncated checkpoint",
        ),
        (
            "cut-data.safetensors",
            &good[..good.len() - 10],
            "truncated checkpoint",
        ),
        (
            "long.safetensors",
            &longer,
            "4 bytes more than its header describes",
        ),
        (
            "zeros.safetensors",
            &[0xff; 64],
            "not a safetensors checkpoint",
        ),
    ];
    for (name, bytes, words) in cases {
        std::fs::write(p(name), bytes).unwrap();
        let err = load(&p(name)).err().unwrap();
        assert!(
            err.starts_with(&p(name)) && err.contains(words),
            "{name}: {err}"
        );
        for raw in [
            "HeaderTooLarge",
            "HeaderTooSmall",
            "MetadataIncomplete",
            "InvalidHeader",
        ] {
            assert!(!err.contains(raw), "{name}: {err}");
        }
    }
    let err = load(&p("m.safetensors.json")).err().unwrap();
    assert!(
        err.contains("not a safetensors checkpoint")
            && err.contains(&format!(
                "JSON copy of the config beside the checkpoint {}",
                p("m.safetensors")
            )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A training checkpoint of `CFG` (parameters and AdamW moments all non-zero) at `path`.
fn training_checkpoint(path: &str) -> (Model, AdamW) {
    let model = Model::new(CFG, 3).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), Params::NAMES, model.param_sizes());
    for (i, (m, v)) in opt.m.iter_mut().zip(opt.v.iter_mut()).enumerate() {
        *m = (i as f32 * 0.37).sin();
        *v = 1.0 + (i % 7) as f32;
    }
    opt.t = 4;
    save(path, &model, Some(&opt), None).unwrap();
    (model, opt)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bnf-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A single flipped bit anywhere in the tensors' bytes (parameters or moments) is refused on
/// load, naming the file, while the untouched file loads.
#[test]
fn a_flipped_bit_in_any_tensor_is_refused_naming_the_file() {
    let dir = temp_dir("flip");
    let good = dir.join("good.safetensors");
    let good = good.to_str().unwrap();
    training_checkpoint(good);
    assert!(load(good).is_ok());
    let bytes = std::fs::read(good).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let data = 8 + header..bytes.len();
    let bad = dir.join("bad.safetensors");
    let bad = bad.to_str().unwrap();
    // 101 positions spread over the data section (first and last bytes included), each bit.
    let positions = (0..=100).map(|k| data.start + k * (data.len() - 1) / 100);
    for (k, pos) in positions.enumerate() {
        let mut flipped = bytes.clone();
        flipped[pos] ^= 1 << (k % 8);
        std::fs::write(bad, &flipped).unwrap();
        let err = load(bad).err().expect("a flipped bit must not load");
        assert!(
            err.starts_with(bad) && err.contains("damaged checkpoint"),
            "byte {pos}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Non-finite parameters are not written (the previous file is kept), and a checkpoint with
/// `+inf` in an AdamW moment (one of the previous format, which had no checksum) is refused on
/// load, naming the file and the tensor.
#[test]
fn non_finite_parameters_or_moments_are_neither_saved_nor_loaded() {
    let dir = temp_dir("nonfinite");
    let path = dir.join("run.safetensors");
    let path = path.to_str().unwrap();
    let (mut model, _) = training_checkpoint(path);
    let before = std::fs::read(path).unwrap();
    let i = model.param_sizes()[0] + 5; // wpe, element 5
    model.params[i] = f32::NAN;
    let err = save(path, &model, None, None).unwrap_err();
    assert!(err.contains("tensor wpe element 5 is NaN"), "{err}");
    assert_eq!(std::fs::read(path).unwrap(), before);

    // The same checkpoint in format 2 (no checksum), with adam_m.ln1w's element 3 at +inf.
    let st = safetensors::SafeTensors::deserialize(&before).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&before).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["bnf"]).unwrap();
    meta["format"] = "bnf-checkpoint/2".into();
    meta.as_object_mut().unwrap().remove("checksum").unwrap();
    let m = st.tensor("adam_m.ln1w").unwrap();
    let mut inf = m.data().to_vec();
    inf[12..16].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let mut tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "adam_m.ln1w")
        .collect();
    let view = safetensors::tensor::TensorView::new(m.dtype(), m.shape().to_vec(), &inf).unwrap();
    tensors.push(("adam_m.ln1w".into(), view));
    let meta = std::collections::HashMap::from([("bnf".to_string(), meta.to_string())]);
    let old = dir.join("old.safetensors");
    let old = old.to_str().unwrap();
    std::fs::write(old, safetensors::serialize(tensors, &Some(meta)).unwrap()).unwrap();
    let err = load(old).err().unwrap();
    assert!(
        err.starts_with(old) && err.contains("tensor adam_m.ln1w element 3 is inf"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
