//! Parity of the SigLIP family with transformers' `SiglipModel` on a tiny random-weight checkpoint
//! (scripts/make_fixtures.py writes it and the golden values), and its configuration errors.

mod common;

use candle_core::{Device, Tensor};
use clip_audit::model::ImageEncoderKind;
use clip_audit::model::clip::l2_normalize;
use clip_audit::model::siglip::{SiglipConfig, SiglipModel};
use common::*;

/// Prints a measured relative error (for the record) and checks it against 1e-4.
fn within(what: &str, e: f32) {
    eprintln!("tiny-siglip: {what}: relative error {e:.2e}");
    assert!(e < 1e-4, "tiny-siglip: {what}: relative error {e}");
}

fn load() -> SiglipModel {
    load_with(ImageEncoderKind::Candle)
}

/// The tiny checkpoint with the given image tower.
fn load_with(kind: ImageEncoderKind) -> SiglipModel {
    let dir = fixture("tiny-siglip");
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config = SiglipConfig::from_json_str(&text, "config.json").unwrap();
    SiglipModel::with_config(config, &dir.join("model.safetensors"), &Device::Cpu, kind).unwrap()
}

/// Token id rows of the golden file.
fn golden_ids(g: &serde_json::Value) -> Vec<Vec<u32>> {
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

/// The golden file's preprocessed pixels `[N, 3, S, S]`.
fn golden_pixels(g: &serde_json::Value, side: usize) -> Tensor {
    let n_images = g["images"].as_array().unwrap().len();
    Tensor::from_vec(
        flat(&g["pixel_values"]),
        (n_images, 3, side, side),
        &Device::Cpu,
    )
    .unwrap()
}

#[test]
fn tiny_siglip_matches_transformers() {
    let model = load();
    let g = golden("tiny-siglip.json");
    let pixels = golden_pixels(&g, model.config().image_size());
    let text = model.text_features(&golden_ids(&g)).unwrap();
    within(
        "text features",
        relative_error(&values(&text), &flat(&g["text_features"])),
    );
    let image = model.image_features(&pixels).unwrap();
    within(
        "image features",
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
    assert!((model.logit_scale() - g["logit_scale"].as_f64().unwrap() as f32).abs() < 1e-5);
    assert!((model.logit_bias() - g["logit_bias"].as_f64().unwrap() as f32).abs() < 1e-6);
    let logits = ((image.matmul(&text.t().unwrap()).unwrap() * model.logit_scale() as f64)
        .unwrap()
        + model.logit_bias() as f64)
        .unwrap();
    let logits = values(&logits);
    within(
        "logits_per_image",
        relative_error(&logits, &flat(&g["logits_per_image"])),
    );
    let probs: Vec<f32> = logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect();
    within("sigmoid probs", relative_error(&probs, &flat(&g["probs"])));
}

/// The fused CPU towers equal transformers': the text tower (bidirectional blocks, last
/// position, head) and the image tower (patch bias, no class token, attention-pooling head);
/// with bf16 products (where the CPU has them) the image tower stays within bf16 rounding and is
/// not secretly f32.
#[test]
fn fused_siglip_towers_match_transformers() {
    let g = golden("tiny-siglip.json");
    let expected = flat(&g["image_features"]);
    let fused = load_with(ImageEncoderKind::Fused);
    assert_eq!(fused.image_encoder_kind(), ImageEncoderKind::Fused);
    let text = fused.text_features(&golden_ids(&g)).unwrap();
    within(
        "fused text features",
        relative_error(&values(&text), &flat(&g["text_features"])),
    );
    let err = fused.text_features(&[vec![300; 64]]).unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    let pixels = golden_pixels(&g, fused.config().image_size());
    let f32_features = values(&fused.image_features(&pixels).unwrap());
    within(
        "fused image features",
        relative_error(&f32_features, &expected),
    );
    if !clip_audit::model::bf16::available() {
        eprintln!("bf16 kernel not available on this CPU: checked the f32 fused tower only");
        return;
    }
    let bf16 = values(
        &load_with(ImageEncoderKind::FusedBf16)
            .image_features(&pixels)
            .unwrap(),
    );
    let e = relative_error(&bf16, &expected);
    eprintln!("tiny-siglip: bf16 fused image features: relative error {e:.2e}");
    assert!(e < 1e-2, "bf16 image features off by {e}");
    assert_ne!(bf16, f32_features, "bf16 gave exactly the f32 result");
}

#[test]
fn prompts_must_be_padded_to_the_context_length() {
    let model = load();
    let err = model.text_features(&[vec![2, 5, 3]]).unwrap_err();
    assert!(err.to_string().contains("exactly 64"), "{err}");
}

/// A change to a configuration.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn configuration_errors_name_the_file_and_field() {
    let text = std::fs::read_to_string(fixture("tiny-siglip/config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|c| c["model_type"] = "clip".into()), "model_type"),
        (
            Box::new(|c| c["vision_config"]["patch_size"] = 15.into()),
            "vision_config.image_size",
        ),
        (
            Box::new(|c| c["text_config"]["num_attention_heads"] = 5.into()),
            "text_config.hidden_size",
        ),
        (
            Box::new(|c| c["text_config"]["vocab_size"] = 0.into()),
            "text_config.vocab_size",
        ),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("vision_config");
            }),
            "vision_config",
        ),
        (
            Box::new(|c| c["vision_config"]["hidden_size"] = "wide".into()),
            "invalid type",
        ),
        (
            Box::new(|c| c["text_config"]["projection_size"] = 32.into()),
            "text_config.projection_size",
        ),
        (
            Box::new(|c| c["vision_config"]["vision_use_head"] = false.into()),
            "vision_config.vision_use_head",
        ),
        (
            Box::new(|c| c["text_config"]["hidden_size"] = 32.into()),
            "text_config",
        ),
    ];
    for (edit, field) in cases {
        let mut bad = config.clone();
        edit(&mut bad);
        let err = SiglipConfig::from_json_str(&bad.to_string(), "x/config.json").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("x/config.json") && message.contains(field),
            "{field}: {message}"
        );
    }
    // a valid configuration that disagrees with the weights: named by tensor, before loading
    config["text_config"]["vocab_size"] = 300.into();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = SiglipModel::load(
        &dir.path().join("config.json"),
        &fixture("tiny-siglip/model.safetensors"),
        &Device::Cpu,
    )
    .err()
    .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("model.safetensors")
            && message.contains("text_model.embeddings.token_embedding.weight")
            && message.contains("300"),
        "{message}"
    );
}

#[test]
fn weights_without_logit_bias_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let weights =
        candle_core::safetensors::load(fixture("tiny-siglip/model.safetensors"), &Device::Cpu)
            .unwrap();
    let without: std::collections::HashMap<String, Tensor> = weights
        .into_iter()
        .filter(|(name, _)| name != "logit_bias")
        .collect();
    candle_core::safetensors::save(&without, dir.path().join("model.safetensors")).unwrap();
    let err = SiglipModel::load(
        &fixture("tiny-siglip/config.json"),
        &dir.path().join("model.safetensors"),
        &Device::Cpu,
    )
    .err()
    .unwrap();
    let message = err.to_string();
    assert!(message.contains("logit_bias"), "{message}");
}

/// `SiglipImageProcessor`'s pixels (resize to the square size with its bilinear filter, no crop,
/// rescale, normalise with mean and std 0.5) from the checkpoint's preprocessor_config.json.
#[test]
fn pixels_equal_siglip_image_processor() {
    use clip_audit::images::load_rgb;
    use clip_audit::model::preprocess::{PreprocessConfig, preprocess};
    let config =
        PreprocessConfig::from_file(&fixture("tiny-siglip/preprocessor_config.json")).unwrap();
    let g = golden("tiny-siglip.json");
    let golden_pixels = flat(&g["pixel_values"]);
    let size = 3 * 64 * 64;
    for (i, name) in g["images"].as_array().unwrap().iter().enumerate() {
        let name = name.as_str().unwrap();
        let image = load_rgb(&fixture(&format!("images/{name}"))).unwrap();
        let ours = preprocess(&image, &config);
        assert_eq!(ours.len(), size, "{name}");
        let theirs = &golden_pixels[i * size..(i + 1) * size];
        let worst = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("tiny-siglip pixels {name}: max abs difference {worst:.2e}");
        assert!(worst < 1e-5, "{name}: {worst}");
    }
}

/// Token ids equal transformers' (the fast tokenizer over the same tokenizer.json, padded to
/// `max_length` 64 with truncation) on every golden prompt, the long one included.
#[test]
fn token_ids_equal_transformers() {
    use clip_audit::model::siglip_tokenizer::SiglipTokenizer;
    let tokenizer =
        SiglipTokenizer::from_file(&fixture("tiny-siglip/tokenizer.json"), 64, 256, 1).unwrap();
    let cases = golden("tiny-siglip.json")["tokens"].clone();
    assert_ids_equal(&tokenizer, &cases);
    // a vocabulary larger than the embedding table is refused, naming the file and the field
    let err = SiglipTokenizer::from_file(&fixture("tiny-siglip/tokenizer.json"), 64, 100, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("text_config.vocab_size"),
        "{err}"
    );
}

/// Checks the tokenizer's ids against every `{text, ids}` case of a golden file (at least 30).
fn assert_ids_equal(
    tokenizer: &clip_audit::model::siglip_tokenizer::SiglipTokenizer,
    cases: &serde_json::Value,
) {
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tokenizer.encode(text).unwrap(), expected, "{text:?}");
    }
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn clip_audit() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

/// The family is read from config.json, not the folder name: `classify` and `run` on the tiny
/// SigLIP checkpoint give independent sigmoid probabilities of `scale·cos + bias` logits and say
/// so in their JSON and in run.json.
#[test]
fn classify_and_run_use_the_siglip_family_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("renamed-clip-folder");
    std::fs::create_dir(&model).unwrap();
    for file in [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer.json",
    ] {
        std::fs::copy(fixture(&format!("tiny-siglip/{file}")), model.join(file)).unwrap();
    }
    let out = clip_audit()
        .args(["classify", "--format", "json", "--model"])
        .arg(&model)
        .args([
            "--label",
            "white man",
            "--label",
            "gorilla",
            "--label",
            "thief",
        ])
        .arg(fixture("images/square_448.jpg"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["scores"], "sigmoid");
    let image = &json["images"][0];
    let logits = flat(&image["logits"]);
    let probs = flat(&image["probs"]);
    for (l, p) in logits.iter().zip(&probs) {
        assert!((1.0 / (1.0 + (-l).exp()) - p).abs() < 1e-6, "{l} {p}");
    }
    assert!(
        (probs.iter().sum::<f32>() - 1.0).abs() > 1e-3,
        "sigmoids, not a softmax"
    );

    let report = dir.path().join("report");
    let out = clip_audit()
        .args(["run", "--no-cache", "--probe"])
        .arg(root().join("probes/clip-paper-race.toml"))
        .arg("--dataset")
        .arg(root().join("datasets/demo.toml"))
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["model"]["family"], "siglip");
    assert_eq!(run["model"]["scores"], "sigmoid");
    assert_eq!(run["model"]["logit_bias"], -3.5);
    assert_eq!(run["classified"], 42);
}

/// A config.json of another family is an exit-2 error naming the file and `model_type`; SigLIP
/// 2's NaFlex model says what it is.
#[test]
fn an_unknown_model_type_is_refused_by_name() {
    for (model_type, says) in [("blip", "blip"), ("siglip2", "NaFlex")] {
        let dir = tempfile::tempdir().unwrap();
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            std::fs::copy(
                fixture(&format!("tiny-siglip/{file}")),
                dir.path().join(file),
            )
            .unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            text.replace(
                "\"model_type\": \"siglip\"",
                &format!("\"model_type\": \"{model_type}\""),
            ),
        )
        .unwrap();
        let out = clip_audit()
            .args(["classify", "--model"])
            .arg(dir.path())
            .args(["--label", "cat"])
            .arg(fixture("images/square_448.jpg"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("config.json")
                && stderr.contains("model_type")
                && stderr.contains(says),
            "{stderr}"
        );
    }
}

/// A SentencePiece `spiece.model` (what the google/siglip-* repositories ship) gives the ids of
/// transformers' `SiglipTokenizer` (canonicalised text, `</s>`, padded with `<pad>` to 64) on
/// every golden prompt: punctuation, HTML entities, curly quotes, ligatures, white space, emoji,
/// CJK and a prompt longer than the context.
#[test]
fn spiece_token_ids_equal_siglip_tokenizer() {
    use clip_audit::model::siglip_tokenizer::SiglipTokenizer;
    let tokenizer =
        SiglipTokenizer::from_file(&fixture("tiny-siglip-spiece/spiece.model"), 64, 256, 1)
            .unwrap();
    let cases = golden("tiny-siglip-spiece.json")["tokens"].clone();
    assert_ids_equal(&tokenizer, &cases);
}

/// A corrupt or truncated `spiece.model` is an error naming the file, never a panic.
#[test]
fn a_corrupt_spiece_model_is_an_error_naming_the_file() {
    use clip_audit::model::siglip_tokenizer::SiglipTokenizer;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spiece.model");
    let good = std::fs::read(fixture("tiny-siglip-spiece/spiece.model")).unwrap();
    let corrupt: [&[u8]; 4] = [
        b"{\"model\": \"not protobuf\"}",
        &good[..good.len() / 2],
        &good[..7],
        &[],
    ];
    for bytes in corrupt {
        std::fs::write(&path, bytes).unwrap();
        let err = SiglipTokenizer::from_file(&path, 64, 256, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("SentencePiece"),
            "{err}"
        );
    }
}

/// A folder with `spiece.model` and no `tokenizer.json` loads and classifies; one with neither
/// is an error naming both.
#[test]
fn a_folder_with_only_spiece_model_classifies() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("siglip");
    std::fs::create_dir(&model).unwrap();
    for file in ["config.json", "model.safetensors", "spiece.model"] {
        std::fs::copy(
            fixture(&format!("tiny-siglip-spiece/{file}")),
            model.join(file),
        )
        .unwrap();
    }
    let classify = || {
        clip_audit()
            .args(["classify", "--format", "json", "--model"])
            .arg(&model)
            .args(["--label", "white man", "--label", "gorilla"])
            .arg(fixture("images/square_448.jpg"))
            .output()
            .unwrap()
    };
    let out = classify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["scores"], "sigmoid");
    assert_eq!(flat(&json["images"][0]["probs"]).len(), 2);

    std::fs::remove_file(model.join("spiece.model")).unwrap();
    let out = classify();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tokenizer.json") && stderr.contains("spiece.model"),
        "{stderr}"
    );
}

/// A prompt holding one of the pieces `SiglipTokenizer` splits out as special tokens (`</s>`,
/// `<unk>`, `<pad>`) is refused by name (exit 2) rather than tokenised differently from
/// transformers; other angle-bracket text is ordinary punctuation (ids in the golden file).
#[test]
fn spiece_prompts_with_special_pieces_are_refused_by_name() {
    let tokenizer = clip_audit::model::siglip_tokenizer::SiglipTokenizer::from_file(
        &fixture("tiny-siglip-spiece/spiece.model"),
        64,
        256,
        1,
    )
    .unwrap();
    for piece in ["</s>", "<unk>", "<pad>"] {
        let prompt = format!("a photo of a {piece} thief");
        let err = tokenizer.encode(&prompt).unwrap_err().to_string();
        assert!(err.contains(&prompt) && err.contains(piece), "{err}");
    }
    assert!(tokenizer.encode("a photo of a <s> dog").is_ok());
    let dir = fixture("tiny-siglip-spiece");
    let out = clip_audit()
        .args(["classify", "--model"])
        .arg(&dir)
        .args(["--label", "white man", "--label", "a </s> thief"])
        .arg(fixture("images/square_448.jpg"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("</s>") && stderr.contains("special token"),
        "{stderr}"
    );
}
