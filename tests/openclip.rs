//! Parity of OpenCLIP-native checkpoints (`open_clip_config.json` + `open_clip_model.safetensors`)
//! with OpenCLIP itself on a tiny random-weight ViT that `open_clip_torch` wrote
//! (scripts/make_fixtures.py `--only openclip`), and the refusal of towers the engine lacks.

mod common;

use candle_core::{Device, Tensor};
use clip_audit::model::Scoring;
use clip_audit::model::clip::l2_normalize;
use common::*;

/// Prints a measured relative error (for the record) and checks it against 1e-4.
fn within(what: &str, e: f32) {
    eprintln!("tiny-openclip: {what}: relative error {e:.2e}");
    assert!(e < 1e-4, "tiny-openclip: {what}: relative error {e}");
}

fn ids(g: &serde_json::Value) -> Vec<Vec<u32>> {
    g["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn check_against_openclip(kind: clip_audit::model::ImageEncoderKind) {
    let model = load_dir_with(&fixture("tiny-openclip"), kind);
    let g = golden("tiny-openclip.json");
    let n_images = g["images"].as_array().unwrap().len();
    let pixels = Tensor::from_vec(
        flat(&g["pixel_values"]),
        (n_images, 3, 64, 64),
        &Device::Cpu,
    )
    .unwrap();
    let text = model.towers.text_features(&ids(&g)).unwrap();
    within(
        "encode_text",
        relative_error(&values(&text), &flat(&g["text_features"])),
    );
    let image = model.towers.image_features(&pixels).unwrap();
    within(
        "encode_image",
        relative_error(&values(&image), &flat(&g["image_features"])),
    );
    let (text, image) = (l2_normalize(&text).unwrap(), l2_normalize(&image).unwrap());
    within(
        "text embeds",
        relative_error(&values(&text), &flat(&g["text_embeds"])),
    );
    within(
        "image embeds",
        relative_error(&values(&image), &flat(&g["image_embeds"])),
    );
    let Scoring::Softmax { scale } = model.towers.scoring() else {
        panic!("OpenCLIP scores with a softmax");
    };
    assert!((scale - g["logit_scale"].as_f64().unwrap() as f32).abs() < 1e-4);
    let logits = (image.matmul(&text.t().unwrap()).unwrap() * scale as f64).unwrap();
    within(
        "logits",
        relative_error(&values(&logits), &flat(&g["logits_per_image"])),
    );
    let probs = candle_nn::ops::softmax_last_dim(&logits).unwrap();
    within("probs", relative_error(&values(&probs), &flat(&g["probs"])));
}

#[test]
fn tiny_openclip_matches_openclip_with_the_fused_tower() {
    check_against_openclip(clip_audit::model::ImageEncoderKind::Fused);
}

#[test]
fn tiny_openclip_matches_openclip_with_the_candle_tower() {
    check_against_openclip(clip_audit::model::ImageEncoderKind::Candle);
}

/// The folder has no tokenizer.json: OpenAI's built-in tokenizer gives open_clip's ids (it pads
/// with 0 to the context length; clip-audit pads to the longest row, which the causal mask and
/// argmax pooling make equivalent).
#[test]
fn token_ids_equal_open_clip_tokenizer() {
    let model = load_dir(&fixture("tiny-openclip"));
    assert!(model.files.tokenizer.is_none());
    let g = golden("tiny-openclip.json");
    let prompts: Vec<String> = g["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let ours = model.tokenizer.encode_batch(&prompts).unwrap();
    for ((text, ours), theirs) in prompts.iter().zip(ours).zip(ids(&g)) {
        let trim = |row: &[u32]| {
            let end = row.iter().position(|&t| t == 49407).unwrap();
            row[..=end].to_vec()
        };
        assert_eq!(trim(&ours), trim(&theirs), "{text:?}");
    }
    let hashes = model.files.sha256_hashes().unwrap();
    let names: Vec<&str> = hashes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "open_clip_config.json",
            "open_clip_model.safetensors",
            "tokenizer.json (built-in OpenAI CLIP BPE)"
        ]
    );
}

/// open_clip's transform (shortest side to 64 bicubic, center crop, OpenAI mean/std), from the
/// config's preprocess_cfg.
#[test]
fn pixels_equal_open_clip_transform() {
    use clip_audit::images::load_rgb;
    use clip_audit::model::preprocess::preprocess;
    let model = load_dir(&fixture("tiny-openclip"));
    let g = golden("tiny-openclip.json");
    let golden_pixels = flat(&g["pixel_values"]);
    let size = 3 * 64 * 64;
    for (i, name) in g["images"].as_array().unwrap().iter().enumerate() {
        let name = name.as_str().unwrap();
        let image = load_rgb(&fixture(&format!("images/{name}"))).unwrap();
        let ours = preprocess(&image, &model.preprocess);
        assert_eq!(ours.len(), size, "{name}");
        let theirs = &golden_pixels[i * size..(i + 1) * size];
        let worst = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("tiny-openclip pixels {name}: max abs difference {worst:.2e}");
        assert!(worst < 1e-4, "{name}: {worst}");
    }
}

/// A copy of the fixture folder with `edit` applied to its open_clip_config.json.
fn folder_with_config(edit: impl Fn(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["open_clip_config.json", "open_clip_model.safetensors"] {
        std::fs::copy(
            fixture(&format!("tiny-openclip/{file}")),
            dir.path().join(file),
        )
        .unwrap();
    }
    let path = dir.path().join("open_clip_config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&path, cfg.to_string()).unwrap();
    dir
}

fn load_error(dir: &std::path::Path) -> String {
    use clip_audit::model::{LoadedModel, ModelFiles};
    match LoadedModel::load(ModelFiles::from_dir(dir).unwrap(), &Device::Cpu) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

/// A change to an open_clip_config.json.
type Edit = fn(&mut serde_json::Value);

/// ResNet, timm and Hugging Face towers are refused, naming the file and the field.
#[test]
fn unsupported_towers_are_refused_by_field() {
    let cases: [(&str, Edit); 3] = [
        ("model_cfg.vision_cfg.layers", |c| {
            c["model_cfg"]["vision_cfg"]["layers"] = serde_json::json!([3, 4, 6, 3]);
        }),
        ("model_cfg.vision_cfg.timm_model_name", |c| {
            c["model_cfg"]["vision_cfg"]["timm_model_name"] = "convnext_base".into();
        }),
        ("model_cfg.text_cfg.hf_model_name", |c| {
            c["model_cfg"]["text_cfg"]["hf_model_name"] = "xlm-roberta-base".into();
        }),
    ];
    for (field, edit) in cases {
        let dir = folder_with_config(edit);
        let err = load_error(dir.path());
        assert!(
            err.contains("open_clip_config.json") && err.contains(&format!("`{field}`")),
            "{field}: {err}"
        );
    }
    let dir = folder_with_config(|c| c["model_cfg"]["vision_cfg"]["layers"] = 3.into());
    let err = load_error(dir.path());
    assert!(
        err.contains("model_cfg.vision_cfg.layers") && err.contains("2 blocks"),
        "{err}"
    );
}

/// `classify` on the fixture folder: the OpenCLIP checkpoint runs end to end with softmax scores.
#[test]
fn classify_runs_on_an_openclip_folder() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .args(["classify", "--format", "json", "--model"])
        .arg(fixture("tiny-openclip"))
        .args(["--label", "cat", "--label", "dog", "--label", "thief"])
        .arg(fixture("images/square_448.jpg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["scores"], "softmax");
    let probs = flat(&json["images"][0]["probs"]);
    assert_eq!(probs.len(), 3);
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

/// An OpenCLIP repository in the Hugging Face cache is found offline: no config.json, the
/// OpenCLIP files instead, and no tokenizer.json (so the built-in one).
#[test]
fn an_openclip_hub_repository_resolves_from_the_cache_offline() {
    use clip_audit::model::{ModelFiles, ModelOrigin, ModelSpec, SourceOptions};
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = cache.path().join("models--someone--tiny-openclip");
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for file in ["open_clip_config.json", "open_clip_model.safetensors"] {
        std::fs::copy(
            fixture(&format!("tiny-openclip/{file}")),
            snapshot.join(file),
        )
        .unwrap();
    }
    let spec = ModelSpec::parse("someone/tiny-openclip", None).unwrap();
    let options = SourceOptions {
        offline: true,
        cache_dir: Some(cache.path().to_path_buf()),
    };
    let files = ModelFiles::resolve(&spec, &options).unwrap();
    assert!(files.config.ends_with("open_clip_config.json"));
    assert!(files.weights.ends_with("open_clip_model.safetensors"));
    assert!(files.tokenizer.is_none() && files.preprocessor.is_none());
    assert!(
        matches!(files.origin, ModelOrigin::Hub { ref commit, .. } if commit == "0123456789abcdef0123456789abcdef01234567")
    );
    let model = clip_audit::model::LoadedModel::load(files, &Device::Cpu).unwrap();
    assert_eq!(model.towers.embedding_dim(), 32);
}
