//! SigLIP (transformers `SiglipModel`, `model_type = "siglip"`; also the fixed-resolution SigLIP 2
//! checkpoints): its configuration, read and checked against the weights' header before any tensor
//! is sized from it, and its two towers (candle-transformers' `siglip`).
//!
//! The text tower pools the last position (prompts are padded to `max_position_embeddings`) and
//! projects through `head`; the image tower has no class token and pools with an attention head.
//! Scores are `exp(logit_scale)·cos + logit_bias`, and SigLIP's probabilities are their sigmoids,
//! independent per label.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::siglip;

use super::ModelError;
use super::clip::ImageEncoderKind;
use super::config::{Activation, ConfigError};
use super::fused::{EncoderShape, FusedTextEncoder, FusedVisionEncoder, VisionShape};
use super::lazy_tower::LazyTower;

/// A SigLIP checkpoint's configuration, validated.
#[derive(Debug, Clone)]
pub struct SiglipConfig {
    /// The text and vision towers' settings, as candle-transformers reads them (transformers'
    /// defaults for absent fields).
    pub towers: siglip::Config,
}

impl SiglipConfig {
    /// Parses a Hugging Face SigLIP `config.json`; `file` names it in errors.
    pub fn from_json_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        let parse_error = |reason: String| ConfigError::Parse {
            file: file.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        match value.get("model_type").and_then(|t| t.as_str()) {
            Some("siglip") => {}
            other => {
                return Err(ConfigError::Invalid {
                    file: file.to_string(),
                    field: "model_type",
                    reason: format!("expected \"siglip\", found {other:?}"),
                });
            }
        }
        for field in ["text_config", "vision_config"] {
            if value.get(field).is_none_or(|v| !v.is_object()) {
                return Err(parse_error(format!("missing object field `{field}`")));
            }
        }
        check_unsupported(&value, file)?;
        let towers: siglip::Config =
            serde_json::from_value(value).map_err(|e| parse_error(e.to_string()))?;
        let config = SiglipConfig { towers };
        config.validate(file)?;
        Ok(config)
    }

    /// Checks what the shapes depend on: positive sizes, widths divisible by the head count,
    /// the image divisible into patches.
    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let (t, v) = (&self.towers.text_config, &self.towers.vision_config);
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            field,
            reason,
        };
        self.check_positive(&invalid)?;
        for (field, width, heads) in [
            (
                "text_config.hidden_size",
                t.hidden_size,
                t.num_attention_heads,
            ),
            (
                "vision_config.hidden_size",
                v.hidden_size,
                v.num_attention_heads,
            ),
        ] {
            if width % heads != 0 {
                return Err(invalid(
                    field,
                    format!("{width} is not divisible by num_attention_heads {heads}"),
                ));
            }
        }
        if t.hidden_size != v.hidden_size {
            return Err(invalid(
                "text_config.hidden_size",
                format!(
                    "{} differs from vision_config.hidden_size {}: the two towers must embed into \
                     one space",
                    t.hidden_size, v.hidden_size
                ),
            ));
        }
        if v.image_size % v.patch_size != 0 {
            return Err(invalid(
                "vision_config.image_size",
                format!(
                    "{} is not a multiple of patch_size {}",
                    v.image_size, v.patch_size
                ),
            ));
        }
        Ok(())
    }

    /// Every size the shapes are built from must be at least 1.
    fn check_positive(
        &self,
        invalid: &dyn Fn(&'static str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let (t, v) = (&self.towers.text_config, &self.towers.vision_config);
        let positive = [
            ("text_config.vocab_size", t.vocab_size),
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.intermediate_size", t.intermediate_size),
            ("text_config.num_hidden_layers", t.num_hidden_layers),
            ("text_config.num_attention_heads", t.num_attention_heads),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
            ),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_hidden_layers", v.num_hidden_layers),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.num_channels", v.num_channels),
            ("vision_config.image_size", v.image_size),
            ("vision_config.patch_size", v.patch_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(invalid(field, "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// Width of the joint embedding space (the text head's output, the vision tower's width).
    pub fn embedding_dim(&self) -> usize {
        self.towers.vision_config.hidden_size
    }

    /// Side of the square input image.
    pub fn image_size(&self) -> usize {
        self.towers.vision_config.image_size
    }

    /// The image tower's shape for the fused CPU tower; `None` for an activation it does not
    /// implement (the candle tower computes those).
    pub fn vision_shape(&self) -> Option<VisionShape> {
        let v = &self.towers.vision_config;
        Some(VisionShape {
            encoder: encoder_shape(
                (v.hidden_size, v.num_attention_heads, v.intermediate_size),
                v.num_hidden_layers,
                v.hidden_act,
                v.layer_norm_eps,
            )?,
            channels: v.num_channels,
            image_size: v.image_size,
            patch: v.patch_size,
        })
    }

    /// The text tower's shape for the fused CPU tower; `None` as for [`Self::vision_shape`].
    pub fn text_shape(&self) -> Option<EncoderShape> {
        let t = &self.towers.text_config;
        encoder_shape(
            (t.hidden_size, t.num_attention_heads, t.intermediate_size),
            t.num_hidden_layers,
            t.hidden_act,
            t.layer_norm_eps,
        )
    }

    /// Tokens per prompt: prompts are padded (or cut) to this length.
    pub fn context_length(&self) -> usize {
        self.towers.text_config.max_position_embeddings
    }

    /// Every tensor `SiglipModel` reads, with its shape (transformers' names).
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (t, v) = (&self.towers.text_config, &self.towers.vision_config);
        let mut out = vec![
            (
                "text_model.embeddings.token_embedding.weight".to_string(),
                vec![t.vocab_size, t.hidden_size],
            ),
            (
                "text_model.embeddings.position_embedding.weight".to_string(),
                vec![t.max_position_embeddings, t.hidden_size],
            ),
        ];
        let text_layers = (t.num_hidden_layers, t.hidden_size, t.intermediate_size);
        push_encoder("text_model.encoder", text_layers, &mut out);
        push_norm("text_model.final_layer_norm", t.hidden_size, &mut out);
        push_linear("text_model.head", t.hidden_size, t.hidden_size, &mut out);
        let (h, patch) = (v.hidden_size, v.patch_size);
        let patches = (v.image_size / patch) * (v.image_size / patch);
        out.push((
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![h, v.num_channels, patch, patch],
        ));
        out.push((
            "vision_model.embeddings.patch_embedding.bias".into(),
            vec![h],
        ));
        out.push((
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![patches, h],
        ));
        let vision_layers = (v.num_hidden_layers, h, v.intermediate_size);
        push_encoder("vision_model.encoder", vision_layers, &mut out);
        push_norm("vision_model.post_layernorm", h, &mut out);
        out.push(("vision_model.head.probe".into(), vec![1, 1, h]));
        out.push((
            "vision_model.head.attention.in_proj_weight".into(),
            vec![3 * h, h],
        ));
        out.push((
            "vision_model.head.attention.in_proj_bias".into(),
            vec![3 * h],
        ));
        push_linear("vision_model.head.attention.out_proj", h, h, &mut out);
        push_norm("vision_model.head.layernorm", h, &mut out);
        push_linear(
            "vision_model.head.mlp.fc1",
            h,
            v.intermediate_size,
            &mut out,
        );
        push_linear(
            "vision_model.head.mlp.fc2",
            v.intermediate_size,
            h,
            &mut out,
        );
        out.push(("logit_scale".into(), vec![1]));
        out.push(("logit_bias".into(), vec![1]));
        out
    }
}

/// A fused encoder's shape from (width, heads, MLP width), depth, activation and epsilon;
/// `None` for an activation the fused kernels do not implement.
fn encoder_shape(
    (width, heads, intermediate): (usize, usize, usize),
    layers: usize,
    activation: candle_nn::Activation,
    eps: f64,
) -> Option<EncoderShape> {
    let activation = match activation {
        candle_nn::Activation::Gelu => Activation::Gelu,
        candle_nn::Activation::NewGelu | candle_nn::Activation::GeluPytorchTanh => {
            Activation::GeluTanh
        }
        candle_nn::Activation::Relu => Activation::Relu,
        _ => return None,
    };
    Some(EncoderShape {
        width,
        heads,
        intermediate,
        layers,
        activation,
        eps,
    })
}

/// Refuses settings the towers do not implement, naming the field: a text projection to another
/// width than the text tower's, and a vision tower without its pooling head.
fn check_unsupported(value: &serde_json::Value, file: &str) -> Result<(), ConfigError> {
    let text = &value["text_config"];
    let hidden = text.get("hidden_size").and_then(|h| h.as_u64());
    if let Some(projection) = text.get("projection_size").and_then(|p| p.as_u64())
        && Some(projection) != hidden.or(Some(768))
    {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            field: "text_config.projection_size",
            reason: format!(
                "{projection} differs from text_config.hidden_size; only a square text head is \
                 supported"
            ),
        });
    }
    if value["vision_config"].get("vision_use_head") == Some(&serde_json::Value::Bool(false)) {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            field: "vision_config.vision_use_head",
            reason: "false: SigLIP's image features need the attention-pooling head".into(),
        });
    }
    Ok(())
}

/// A linear layer's weight `[out, in]` and bias `[out]`.
fn push_linear(prefix: &str, inputs: usize, outputs: usize, out: &mut Vec<(String, Vec<usize>)>) {
    out.push((format!("{prefix}.weight"), vec![outputs, inputs]));
    out.push((format!("{prefix}.bias"), vec![outputs]));
}

/// A layer norm's weight and bias.
fn push_norm(prefix: &str, width: usize, out: &mut Vec<(String, Vec<usize>)>) {
    out.push((format!("{prefix}.weight"), vec![width]));
    out.push((format!("{prefix}.bias"), vec![width]));
}

/// Every layer of a transformer encoder: (layers, width, MLP width).
fn push_encoder(
    prefix: &str,
    (layers, width, mlp): (usize, usize, usize),
    out: &mut Vec<(String, Vec<usize>)>,
) {
    for i in 0..layers {
        let layer = format!("{prefix}.layers.{i}");
        for projection in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            push_linear(
                &format!("{layer}.self_attn.{projection}"),
                width,
                width,
                out,
            );
        }
        push_norm(&format!("{layer}.layer_norm1"), width, out);
        push_linear(&format!("{layer}.mlp.fc1"), width, mlp, out);
        push_linear(&format!("{layer}.mlp.fc2"), mlp, width, out);
        push_norm(&format!("{layer}.layer_norm2"), width, out);
    }
}

/// The text tower in the form it is computed in.
enum TextTower {
    /// candle-transformers' text model (any device).
    Candle(siglip::TextModel),
    /// The fused CPU tower (built with a fused image tower).
    Fused(Box<FusedTextEncoder>),
}

/// The image tower in the form it is computed in.
enum ImageTower {
    /// candle-transformers' vision model with its pooling head (any device).
    Candle(siglip::VisionModel),
    /// The fused CPU tower.
    Fused(FusedVisionEncoder),
}

/// A loaded SigLIP checkpoint.
///
/// The image tower is built from the weights on first use, so a run whose image embeddings all
/// come from the cache never loads it.
pub struct SiglipModel {
    text_tower: TextTower,
    image_tower: LazyTower<ImageTower>,
    image_encoder: ImageEncoderKind,
    config: SiglipConfig,
    /// `exp(logit_scale)`.
    logit_scale: f32,
    logit_bias: f32,
    device: Device,
}

impl SiglipModel {
    /// Reads `config.json`, then the weights (see [`Self::with_config`]), with the candle image
    /// tower.
    pub fn load(config_file: &Path, weights: &Path, device: &Device) -> Result<Self, ModelError> {
        let text =
            crate::input_file::read_regular_text(config_file).map_err(|source| ModelError::Io {
                path: config_file.to_path_buf(),
                source,
            })?;
        let config = SiglipConfig::from_json_str(&text, &config_file.display().to_string())?;
        Self::with_config(config, weights, device, ImageEncoderKind::Candle)
    }

    /// Loads `model.safetensors` for an already read configuration, checking every tensor's
    /// presence and shape against it before loading; the image tower is `image_encoder` (a fused
    /// one needs the CPU and an activation [`SiglipConfig::vision_shape`] covers).
    pub fn with_config(
        config: SiglipConfig,
        weights: &Path,
        device: &Device,
        image_encoder: ImageEncoderKind,
    ) -> Result<Self, ModelError> {
        // SAFETY: the file is mapped read-only; clip-audit never writes checkpoint files, and a
        // file truncated underneath us is a user error outside what any loader can guard against.
        let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::new(weights) }
            .map_err(|source| candle_error(weights, "reading safetensors file", source))?;
        let shapes: HashMap<String, Vec<usize>> = tensors
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect();
        super::header_check::check_expected_shapes(
            config.expected_tensors(),
            |name| shapes.get(name).cloned(),
            weights,
        )?;
        if image_encoder != ImageEncoderKind::Candle && config.vision_shape().is_none() {
            return Err(candle_error(
                weights,
                "building the SigLIP image tower",
                candle_core::Error::Msg(
                    "the fused image tower does not implement this vision_config.hidden_act".into(),
                ),
            ));
        }
        let vb = VarBuilder::from_backend(Box::new(tensors), DType::F32, device.clone());
        let text_tower = text_tower(&config, &vb, image_encoder)
            .map_err(|source| candle_error(weights, "building the SigLIP text tower", source))?;
        let scalar = |name: &str| -> Result<f32, ModelError> {
            vb.get(1, name)
                .and_then(|t| t.to_vec1::<f32>())
                .map(|v| v[0])
                .map_err(|source| candle_error(weights, "reading a scalar", source))
        };
        Ok(SiglipModel {
            logit_scale: scalar("logit_scale")?.exp(),
            logit_bias: scalar("logit_bias")?,
            text_tower,
            image_tower: LazyTower::new(vb.pp("vision_model")),
            image_encoder,
            config,
            device: device.clone(),
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &SiglipConfig {
        &self.config
    }

    /// `exp(logit_scale)`, the factor on cosine similarities.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// `logit_bias`, added to the scaled cosine similarities.
    pub fn logit_bias(&self) -> f32 {
        self.logit_bias
    }

    /// Which image tower this model computes with.
    pub fn image_encoder_kind(&self) -> ImageEncoderKind {
        self.image_encoder
    }

    /// Builds the image tower now rather than on first use (so its cost shows up in load time).
    pub fn load_image_tower(&self) -> candle_core::Result<()> {
        self.image_tower().map(|_| ())
    }

    /// The image tower, built from the weights on the first call.
    fn image_tower(&self) -> candle_core::Result<&ImageTower> {
        self.image_tower.get(|vision| {
            let v = &self.config.towers.vision_config;
            let shape = self.config.vision_shape();
            Ok(match (self.image_encoder, shape) {
                (ImageEncoderKind::Candle, _) | (_, None) => {
                    ImageTower::Candle(siglip::VisionModel::new(v, true, vision)?)
                }
                (ImageEncoderKind::Fused, Some(shape)) => {
                    ImageTower::Fused(FusedVisionEncoder::load_siglip(&vision, shape, false)?)
                }
                (ImageEncoderKind::FusedBf16, Some(shape)) => {
                    ImageTower::Fused(FusedVisionEncoder::load_siglip(&vision, shape, true)?)
                }
            })
        })
    }

    /// Projected text features `[N, D]` (not normalised) of token ids, each exactly
    /// [`SiglipConfig::context_length`] long (padded by the tokenizer).
    pub fn text_features(&self, ids: &[Vec<u32>]) -> candle_core::Result<Tensor> {
        let length = self.config.context_length();
        if let Some(bad) = ids.iter().find(|row| row.len() != length) {
            candle_core::bail!(
                "a prompt has {} token ids; SigLIP needs exactly {length} (padded)",
                bad.len()
            );
        }
        match &self.text_tower {
            TextTower::Candle(text) => {
                let flat: Vec<u32> = ids.iter().flatten().copied().collect();
                Tensor::from_vec(flat, (ids.len(), length), &self.device)?.apply(text)
            }
            TextTower::Fused(text) => {
                let features = text.forward(ids)?;
                Tensor::from_vec(
                    features,
                    (ids.len(), self.config.embedding_dim()),
                    &self.device,
                )
            }
        }
    }

    /// Pooled image features `[B, D]` (not normalised) of preprocessed pixels `[B, 3, S, S]`.
    pub fn image_features(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        match self.image_tower()? {
            ImageTower::Candle(vision) => pixels.apply(vision),
            ImageTower::Fused(fused) => fused.forward(pixels),
        }
    }
}

/// The text tower: fused on the CPU when the image tower is (and its activation is covered),
/// candle's otherwise.
fn text_tower(
    config: &SiglipConfig,
    vb: &VarBuilder<'static>,
    image_encoder: ImageEncoderKind,
) -> candle_core::Result<TextTower> {
    let t = &config.towers.text_config;
    let vb = vb.pp("text_model");
    Ok(match (image_encoder, config.text_shape()) {
        (ImageEncoderKind::Fused | ImageEncoderKind::FusedBf16, Some(shape)) => {
            TextTower::Fused(Box::new(FusedTextEncoder::load_siglip(
                &vb,
                shape,
                t.vocab_size,
                t.max_position_embeddings,
            )?))
        }
        _ => TextTower::Candle(siglip::TextModel::new(t, vb)?),
    })
}

/// A candle error with the file and what was being done.
fn candle_error(file: &Path, action: &str, source: candle_core::Error) -> ModelError {
    ModelError::Candle {
        context: format!("{action}: {}", file.display()),
        source,
    }
}
