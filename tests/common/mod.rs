//! Helpers shared by the integration tests: fixture paths, golden values, tolerances.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use clip_audit::model::{LoadedModel, ModelFiles};

pub mod dataset;

/// `tests/fixtures/<parts>`.
pub fn fixture(parts: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(parts)
}

/// Golden values written by scripts/make_fixtures.py.
pub fn golden(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(&format!("golden/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of numbers (any nesting) flattened to f32.
pub fn flat(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
        serde_json::Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        other => panic!("not a number array: {other}"),
    }
}

/// max |a − b| / max |b|.
pub fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

/// A tensor's values, flattened.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Loads a model folder on the CPU.
pub fn load_dir(dir: &Path) -> LoadedModel {
    LoadedModel::load(ModelFiles::from_dir(dir).unwrap(), &Device::Cpu).unwrap()
}

/// Loads a model folder on the CPU with the given image tower.
pub fn load_dir_with(dir: &Path, kind: clip_audit::model::ImageEncoderKind) -> LoadedModel {
    let options = clip_audit::model::LoadOptions {
        image_encoder: Some(kind),
        ..Default::default()
    };
    LoadedModel::load_with(ModelFiles::from_dir(dir).unwrap(), &Device::Cpu, &options).unwrap()
}

/// A temporary folder holding a fixture model plus the shared tokenizer.json.
pub fn model_with_tokenizer(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let tok = dir.path().join("tokenizer.json");
    if !tok.exists() {
        std::fs::copy(fixture("tiny-clip/tokenizer.json"), tok).unwrap();
    }
    dir
}
