//! Checkpoint loading: local folders, the Hugging Face cache offline, and every refusal with a
//! message that names the file, tensor or field.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use clip_audit::model::{
    LoadedModel, ModelError, ModelFiles, ModelOrigin, ModelSpec, SourceOptions,
};
use common::*;

fn copy_tiny() -> tempfile::TempDir {
    model_with_tokenizer("tiny-clip")
}

fn rewrite_weights(dir: &std::path::Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
}

fn load_err(dir: &std::path::Path) -> ModelError {
    match ModelFiles::from_dir(dir).and_then(|f| LoadedModel::load(f, &Device::Cpu)) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn extra_tensors_are_ignored() {
    let dir = copy_tiny();
    rewrite_weights(dir.path(), |t| {
        let ids = Tensor::arange(0i64, 77, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        t.insert("text_model.embeddings.position_ids".into(), ids);
    });
    load_dir(dir.path());
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_tiny();
    rewrite_weights(dir.path(), |t| {
        t.remove("vision_model.encoder.layers.1.mlp.fc2.bias");
    });
    let msg = load_err(dir.path()).to_string();
    assert!(
        msg.contains("missing tensor `vision_model.encoder.layers.1.mlp.fc2.bias`"),
        "{msg}"
    );
    assert!(msg.contains("[64]"), "{msg}");
}

#[test]
fn shape_mismatch_names_tensor_and_both_shapes() {
    let dir = copy_tiny();
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let config = config.replace("\"projection_dim\": 32", "\"projection_dim\": 48");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let msg = load_err(dir.path()).to_string();
    assert!(msg.contains("text_projection.weight"), "{msg}");
    assert!(
        msg.contains("[32, 32]") && msg.contains("[48, 32]"),
        "{msg}"
    );
}

#[test]
fn bad_config_field_is_named() {
    let dir = copy_tiny();
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let config = config.replacen(
        "\"hidden_act\": \"quick_gelu\"",
        "\"hidden_act\": \"swish\"",
        1,
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let msg = load_err(dir.path()).to_string();
    assert!(
        msg.contains("config.json") && msg.contains("swish"),
        "{msg}"
    );
}

#[test]
fn pickle_only_folder_is_refused_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tiny-clip/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not really a pickle").unwrap();
    let msg = load_err(dir.path()).to_string();
    assert!(msg.contains("pickle") && msg.contains("execute"), "{msg}");
    assert!(msg.contains("safe_serialization=True"), "{msg}");
}

#[test]
fn missing_tokenizer_is_named() {
    let dir = copy_tiny();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let msg = load_err(dir.path()).to_string();
    assert!(msg.contains("tokenizer.json"), "{msg}");
}

#[test]
fn legacy_preprocessor_config_is_read() {
    let dir = model_with_tokenizer("tiny-clip-gelu");
    let model = load_dir(dir.path());
    assert_eq!(
        (model.preprocess.crop_height, model.preprocess.crop_width),
        (64, 64)
    );
    assert_eq!(model.preprocess.shortest_edge, 64);
}

/// Lays out a Hugging Face cache holding the tiny model at a fake commit.
fn fake_hub_cache(with_weights: bool) -> (tempfile::TempDir, String) {
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567".to_string();
    let repo = cache.path().join("models--acme--tiny-clip");
    let snap = repo.join("snapshots").join(&commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), &commit).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
    ] {
        if f == "model.safetensors" && !with_weights {
            continue;
        }
        std::fs::copy(fixture(&format!("tiny-clip/{f}")), snap.join(f)).unwrap();
    }
    (cache, commit)
}

#[test]
fn hub_id_resolves_offline_from_cache_with_commit() {
    let (cache, commit) = fake_hub_cache(true);
    let spec = ModelSpec::parse("acme/tiny-clip", None).unwrap();
    let options = SourceOptions {
        offline: true,
        cache_dir: Some(cache.path().to_path_buf()),
    };
    let files = ModelFiles::resolve(&spec, &options).unwrap();
    assert_eq!(
        files.origin,
        ModelOrigin::Hub {
            repo: "acme/tiny-clip".into(),
            revision: "main".into(),
            commit: commit.clone()
        }
    );
    assert_eq!(files.display_name(), format!("acme/tiny-clip@{commit}"));
    let hashes = files.sha256_hashes().unwrap();
    assert_eq!(hashes.len(), 4);
    assert!(hashes.iter().all(|(_, h)| h.len() == 64));
    LoadedModel::load(files, &Device::Cpu).unwrap();

    // pinned to the commit itself
    let spec = ModelSpec::parse("acme/tiny-clip", Some(&commit)).unwrap();
    ModelFiles::resolve(&spec, &options).unwrap();
}

#[test]
fn offline_cache_miss_says_what_is_missing() {
    let (cache, _) = fake_hub_cache(false);
    let spec = ModelSpec::parse("acme/tiny-clip", None).unwrap();
    let options = SourceOptions {
        offline: true,
        cache_dir: Some(cache.path().to_path_buf()),
    };
    let msg = ModelFiles::resolve(&spec, &options)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("--offline"),
        "{msg}"
    );
    let spec = ModelSpec::parse("acme/other-model", None).unwrap();
    let msg = ModelFiles::resolve(&spec, &options)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("config.json") && msg.contains("acme/other-model"),
        "{msg}"
    );
}

#[test]
fn preprocessing_that_does_not_fit_the_model_is_refused() {
    let dir = copy_tiny();
    let path = dir.path().join("preprocessor_config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"height\": 64", "\"height\": 60")).unwrap();
    let msg = load_err(dir.path()).to_string();
    assert!(
        msg.contains("preprocessor_config.json") && msg.contains("60×64"),
        "{msg}"
    );
}

/// The family comes from the files and `model_type`: CLIP, SigLIP and OpenCLIP's own layout.
#[test]
fn each_fixture_loads_as_its_family() {
    use clip_audit::model::{Family, ModelRequest};
    for (dir, family) in [
        ("tiny-clip", Family::Clip),
        ("tiny-siglip", Family::Siglip),
        ("tiny-siglip-spiece", Family::Siglip),
        ("tiny-openclip", Family::OpenClip),
    ] {
        let model = ModelRequest::local(&fixture(dir)).load().unwrap();
        assert_eq!(model.family, family, "{dir}");
    }
}
