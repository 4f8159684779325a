//! Parity with the reference implementations: OpenAI's tokenizer ids, transformers'
//! CLIPImageProcessor pixels, and transformers' CLIPModel features, embeddings and logits.

mod common;

use candle_core::{Device, Tensor};
use clip_audit::classify::ZeroShotClassifier;
use clip_audit::embed::{class_embeddings, image_embeddings, template_prompts, text_embeddings};
use clip_audit::images::load_rgb;
use clip_audit::model::ImageEncoderKind;
use clip_audit::model::preprocess::{PreprocessConfig, preprocess, preprocess_u8};
use clip_audit::model::tokenizer::ClipTokenizer;
use common::*;

#[test]
fn token_ids_equal_openai_tokenizer() {
    let tok = ClipTokenizer::from_file(&fixture("tiny-clip/tokenizer.json"), 77).unwrap();
    let cases = golden("tokens.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 30, "only {} prompts", cases.len());
    let mut long = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text).unwrap();
        assert_eq!(got, want, "token ids of {text:?}");
        if want.len() == 77 {
            long += 1;
            assert_eq!(*got.last().unwrap(), tok.end_id());
        }
    }
    assert!(long >= 1, "no prompt exercised truncation");
}

/// Images whose decoding PIL and clip-audit agree on (see `sixteen_bit_png_is_scaled`).
fn parity_images(golden: &serde_json::Value) -> Vec<(usize, String)> {
    golden["images"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| (i, v.as_str().unwrap().to_string()))
        .filter(|(_, name)| !name.starts_with("gray16"))
        .collect()
}

#[test]
fn pixels_equal_clip_image_processor_at_224() {
    let reference =
        candle_core::safetensors::load(fixture("golden/pixels224.safetensors"), &Device::Cpu)
            .unwrap();
    let cfg = PreprocessConfig::default();
    let mut checked = 0;
    for (name, want) in &reference {
        if name.starts_with("gray16") {
            continue;
        }
        let img = load_rgb(&fixture(&format!("images/{name}"))).unwrap();
        let got = preprocess_u8(&img, &cfg);
        let want: Vec<u8> = want.flatten_all().unwrap().to_vec1().unwrap();
        // golden is CHW, ours HWC
        let (w, h) = (224usize, 224usize);
        let mut worst = 0i32;
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let a = got.get_pixel(x as u32, y as u32)[c] as i32;
                    let b = want[c * h * w + y * w + x] as i32;
                    worst = worst.max((a - b).abs());
                }
            }
        }
        assert!(worst <= 1, "{name}: max pixel difference {worst}/255");
        checked += 1;
    }
    assert!(checked >= 8);
}

/// Prints a measured relative error (for the record) and checks it against 1e-4.
fn within(model: &str, what: &str, e: f32) {
    eprintln!("{model}: {what}: relative error {e:.2e}");
    assert!(e < 1e-4, "{model}: {what}: relative error {e}");
}

/// The prompts a golden file was computed for.
fn golden_prompts(g: &serde_json::Value) -> Vec<String> {
    g["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn check_model_parity(model_dir: &std::path::Path, golden_name: &str) {
    let model = load_dir(model_dir);
    assert_eq!(model.towers.image_encoder_kind(), ImageEncoderKind::Fused);
    let candle_model = load_dir_with(model_dir, ImageEncoderKind::Candle);
    let g = golden(golden_name);
    let prompts = golden_prompts(&g);

    // pixels: ours vs transformers, within one uint8 level before normalisation
    let pixel_size = 3 * 64 * 64;
    let golden_pixels = flat(&g["pixel_values"]);
    let std = model.preprocess.image_std;
    for (i, name) in parity_images(&g) {
        let img = load_rgb(&fixture(&format!("images/{name}"))).unwrap();
        let ours = preprocess(&img, &model.preprocess);
        let theirs = &golden_pixels[i * pixel_size..(i + 1) * pixel_size];
        for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let unnormalised = (a - b).abs() * std[k / (64 * 64)];
            assert!(
                unnormalised <= 1.0 / 255.0 + 1e-5,
                "{name}: pixel {k} differs by {unnormalised}"
            );
        }
    }

    // image tower on the reference pixels
    let n_images = g["images"].as_array().unwrap().len();
    let pixels =
        Tensor::from_vec(golden_pixels.clone(), (n_images, 3, 64, 64), &Device::Cpu).unwrap();
    let vision = candle_model
        .towers
        .as_clip()
        .unwrap()
        .vision_model()
        .unwrap()
        .expect("candle tower");
    let pooled = vision.forward(&pixels).unwrap();
    let e = relative_error(&values(&pooled), &flat(&g["vision_pooler_output"]));
    within(golden_name, "vision pooled (candle)", e);
    let feats = candle_model.towers.image_features(&pixels).unwrap();
    let e = relative_error(&values(&feats), &flat(&g["image_features"]));
    within(golden_name, "image features (candle)", e);
    let feats = model.towers.image_features(&pixels).unwrap();
    let e = relative_error(&values(&feats), &flat(&g["image_features"]));
    within(golden_name, "image features (fused)", e);
    let image_embeds = image_embeddings(&model, &pixels).unwrap();
    let e = relative_error(&values(&image_embeds), &flat(&g["image_embeds"]));
    within(golden_name, "image embeds", e);

    // text tower
    let ids = model.tokenizer.encode_batch(&prompts).unwrap();
    let pooled = model
        .towers
        .as_clip()
        .unwrap()
        .text_model()
        .forward(&ids)
        .unwrap();
    let e = relative_error(&values(&pooled), &flat(&g["text_pooler_output"]));
    within(golden_name, "text pooled", e);
    let e = relative_error(
        &values(&model.towers.text_features(&ids).unwrap()),
        &flat(&g["text_features"]),
    );
    within(golden_name, "text features", e);
    let text = text_embeddings(&model, &prompts).unwrap();
    let e = relative_error(&values(&text), &flat(&g["text_embeds"]));
    within(golden_name, "text embeds", e);

    // logits and probabilities through the classifier (one template = the prompt itself)
    let labels: Vec<String> = (0..prompts.len()).map(|i| format!("p{i}")).collect();
    let classifier = ZeroShotClassifier::new(labels, text, model.towers.scoring());
    let preds = classifier.classify(&image_embeds, 3).unwrap();
    let logits: Vec<f32> = preds.iter().flat_map(|p| p.logits.clone()).collect();
    let e = relative_error(&logits, &flat(&g["logits_per_image"]));
    within(golden_name, "logits", e);
    let probs: Vec<f32> = preds.iter().flat_map(|p| p.probs.clone()).collect();
    let e = relative_error(&probs, &flat(&g["probs"]));
    within(golden_name, "probs", e);
    let scale = g["logit_scale"].as_f64().unwrap() as f32;
    assert!((model.towers.as_clip().unwrap().logit_scale() - scale.exp()).abs() < 1e-5);
}

#[test]
fn tiny_quick_gelu_model_matches_transformers() {
    check_model_parity(&fixture("tiny-clip"), "tiny-clip.json");
}

#[test]
fn tiny_gelu_legacy_model_matches_transformers() {
    let dir = model_with_tokenizer("tiny-clip-gelu");
    check_model_parity(dir.path(), "tiny-clip-gelu.json");
}

#[test]
fn prompt_ensemble_is_mean_of_normalised_embeddings() {
    let model = load_dir(&fixture("tiny-clip"));
    let labels = vec!["gorilla".to_string(), "thief".to_string()];
    let templates = vec![
        "a photo of a {label}.".to_string(),
        "a blurry photo of a {label}.".to_string(),
    ];
    let ens =
        values(&class_embeddings(&model, &template_prompts(&labels, &templates).unwrap()).unwrap());
    let prompts: Vec<String> = labels
        .iter()
        .flat_map(|l| templates.iter().map(move |t| t.replace("{label}", l)))
        .collect();
    let each = values(&text_embeddings(&model, &prompts).unwrap());
    let d = each.len() / 4;
    for c in 0..2 {
        let mean: Vec<f32> = (0..d)
            .map(|k| (each[2 * c * d + k] + each[(2 * c + 1) * d + k]) / 2.0)
            .collect();
        let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
        let expected: Vec<f32> = mean.iter().map(|x| x / norm).collect();
        let e = relative_error(&ens[c * d..(c + 1) * d], &expected);
        assert!(e < 1e-5, "class {c}: {e}");
    }
}

#[test]
fn sixteen_bit_gray_png_keeps_the_high_byte() {
    // Pillow clamps 16-bit gray to 255 (a white image); clip-audit scales it like 16-bit RGB.
    let img = load_rgb(&fixture("images/gray16_120x90.png")).unwrap();
    let mean = img.as_raw().iter().map(|&v| v as f64).sum::<f64>() / img.as_raw().len() as f64;
    assert!((20.0..235.0).contains(&mean), "mean {mean}: not scaled");
    assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

/// `--dtype bf16`: on a CPU with AVX512-BF16 the fused tower computes its linear layers in bf16;
/// features stay within 1e-2 of transformers' f32 (relative to the largest), logits within 1.5e-2.
#[test]
fn bf16_image_encoder_stays_close_to_the_f32_reference() {
    use clip_audit::model::{ComputeDtype, LoadOptions, LoadedModel, ModelFiles, bf16};
    for (dir, golden_name) in [
        ("tiny-clip", "tiny-clip.json"),
        ("tiny-clip-gelu", "tiny-clip-gelu.json"),
    ] {
        let dir = model_with_tokenizer(dir);
        let options = LoadOptions {
            dtype: ComputeDtype::Bf16,
            ..Default::default()
        };
        let model = LoadedModel::load_with(
            ModelFiles::from_dir(dir.path()).unwrap(),
            &Device::Cpu,
            &options,
        )
        .unwrap();
        assert_eq!(model.compute.requested, ComputeDtype::Bf16);
        if !bf16::available() {
            assert_eq!(model.compute.used, ComputeDtype::F32);
            assert!(
                model
                    .compute
                    .note
                    .as_deref()
                    .unwrap()
                    .contains("computes in f32")
            );
            eprintln!("bf16 kernel not available on this CPU: checked the fallback only");
            continue;
        }
        assert_eq!(model.compute.used, ComputeDtype::Bf16);
        assert_eq!(model.compute.kernel, "avx512-bf16");
        let g = golden(golden_name);
        let n_images = g["images"].as_array().unwrap().len();
        let pixels = Tensor::from_vec(
            flat(&g["pixel_values"]),
            (n_images, 3, 64, 64),
            &Device::Cpu,
        )
        .unwrap();
        let feats = model.towers.image_features(&pixels).unwrap();
        let e = relative_error(&values(&feats), &flat(&g["image_features"]));
        eprintln!("{golden_name}: bf16 image features: relative error {e:.2e}");
        assert!(e < 1e-2, "{golden_name}: bf16 image features off by {e}");
        assert!(
            e > 0.0,
            "bf16 run gave exactly the f32 result: was bf16 used?"
        );

        let prompts = golden_prompts(&g);
        let text = text_embeddings(&model, &prompts).unwrap();
        let labels: Vec<String> = (0..prompts.len()).map(|i| format!("p{i}")).collect();
        let classifier = ZeroShotClassifier::new(labels, text, model.towers.scoring());
        let preds = classifier
            .classify(&image_embeddings(&model, &pixels).unwrap(), 1)
            .unwrap();
        let want = flat(&g["logits_per_image"]);
        let worst = preds
            .iter()
            .flat_map(|p| p.logits.clone())
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{golden_name}: bf16 logits: max abs error {worst:.2e}");
        assert!(worst < 1.5e-2, "{golden_name}: bf16 logits off by {worst}");
    }
}
