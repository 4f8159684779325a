//! The OpenAI architectures (ViT-B/32, B/16, L/14, L/14-336) load from Hugging Face layout and run,
//! at full width with one layer per tower, and agree with candle-transformers' own CLIP.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::clip as reference;
use clip_audit::commands::bench::write_random_checkpoint;
use clip_audit::model::ClipConfig;
use common::*;

fn reference_config(c: &ClipConfig) -> reference::ClipConfig {
    let t = &c.text_config;
    let v = &c.vision_config;
    reference::ClipConfig {
        text_config: reference::text_model::ClipTextConfig {
            vocab_size: t.vocab_size,
            embed_dim: t.hidden_size,
            activation: reference::text_model::Activation::QuickGelu,
            intermediate_size: t.intermediate_size,
            max_position_embeddings: t.max_position_embeddings,
            pad_with: None,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            projection_dim: c.projection_dim,
        },
        vision_config: reference::vision_model::ClipVisionConfig {
            embed_dim: v.hidden_size,
            activation: reference::text_model::Activation::QuickGelu,
            intermediate_size: v.intermediate_size,
            num_hidden_layers: v.num_hidden_layers,
            num_attention_heads: v.num_attention_heads,
            projection_dim: c.projection_dim,
            num_channels: v.num_channels,
            image_size: v.image_size,
            patch_size: v.patch_size,
        },
        logit_scale_init_value: c.logit_scale_init_value as f32,
        image_size: v.image_size,
    }
}

fn check_preset(name: &str, expected_width: usize, expected_positions: usize) {
    let mut config = ClipConfig::by_preset_name(name).unwrap();
    assert_eq!(config.vision_config.hidden_size, expected_width);
    assert_eq!(config.vision_positions(), expected_positions);
    config.text_config.num_hidden_layers = 1;
    config.vision_config.num_hidden_layers = 1;
    let dir = tempfile::tempdir().unwrap();
    write_random_checkpoint(&config, &fixture("tiny-clip/tokenizer.json"), dir.path(), 7).unwrap();
    let model = load_dir(dir.path());
    assert_eq!(
        model.preprocess.crop_height as usize,
        config.vision_config.image_size
    );

    let side = config.vision_config.image_size;
    let pixels = Tensor::randn(0f32, 1f32, (2, 3, side, side), &Device::Cpu).unwrap();
    // the default CPU image tower is the fused one: this compares it with the plain forward
    assert_eq!(
        model.towers.image_encoder_kind(),
        clip_audit::model::ImageEncoderKind::Fused
    );
    let ours_image = model.towers.image_features(&pixels).unwrap();
    assert_eq!(ours_image.dims(), &[2, config.projection_dim]);
    let prompts = vec![
        "a photo of a gorilla.".to_string(),
        "a photo of a thief in a dark alley".to_string(),
    ];
    let ids = model.tokenizer.encode_batch(&prompts).unwrap();
    let ours_text = model.towers.text_features(&ids).unwrap();

    let weights = dir.path().join("model.safetensors");
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu) }
        .unwrap();
    let theirs = reference::ClipModel::new(vb, &reference_config(&config)).unwrap();
    let their_image = theirs.get_image_features(&pixels).unwrap();
    let id_tensor = Tensor::new(ids.clone(), &Device::Cpu).unwrap();
    let their_text = theirs.get_text_features(&id_tensor).unwrap();
    let e = relative_error(&values(&ours_image), &values(&their_image));
    assert!(
        e < 1e-4,
        "{name}: fused image features differ from candle-transformers by {e}"
    );
    let e = relative_error(&values(&ours_text), &values(&their_text));
    assert!(
        e < 1e-4,
        "{name}: text features differ from candle-transformers by {e}"
    );
}

#[test]
fn vit_base_patch32() {
    check_preset("vitb32", 768, 50);
}

#[test]
fn vit_base_patch16() {
    check_preset("vitb16", 768, 197);
}

#[test]
fn vit_large_patch14() {
    check_preset("vitl14", 1024, 257);
}

#[test]
fn vit_large_patch14_336() {
    check_preset("vitl14-336", 1024, 577);
}
