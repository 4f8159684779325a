//! The configuration of a CLIP checkpoint (`config.json` in the Hugging Face layout), read and
//! validated before any weight is touched; shared by the candle model and the fused image tower.

use candle_core::{Module, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Activation function of the transformer MLPs (`hidden_act` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Activation {
    /// `x · sigmoid(1.702 x)`, used by OpenAI's checkpoints.
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact GELU, `x · Φ(x)` (PyTorch `gelu`).
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    /// Rectified linear unit.
    #[serde(rename = "relu")]
    Relu,
}

impl Module for Activation {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702f64)?)?,
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Relu => xs.relu(),
        }
    }
}

fn default_quick_gelu() -> Activation {
    Activation::QuickGelu
}
fn default_eps() -> f64 {
    1e-5
}

/// The text tower's settings (`text_config` in `config.json`; defaults as in `CLIPTextConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ClipTextConfig {
    /// Number of token embeddings.
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Width of the transformer.
    #[serde(default = "defaults::text_hidden")]
    pub hidden_size: usize,
    /// Width of the MLP inside each layer.
    #[serde(default = "defaults::text_intermediate")]
    pub intermediate_size: usize,
    /// Number of transformer layers.
    #[serde(default = "defaults::twelve")]
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    #[serde(default = "defaults::text_heads")]
    pub num_attention_heads: usize,
    /// Context length: the most tokens a prompt may have, start and end tokens included.
    #[serde(default = "defaults::context")]
    pub max_position_embeddings: usize,
    /// MLP activation.
    #[serde(default = "default_quick_gelu")]
    pub hidden_act: Activation,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// End-of-text id; `2` is the legacy value for which pooling uses the largest token id.
    #[serde(default = "defaults::eos")]
    pub eos_token_id: u32,
}

/// The image tower's settings (`vision_config` in `config.json`; defaults as in `CLIPVisionConfig`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ClipVisionConfig {
    /// Width of the transformer.
    #[serde(default = "defaults::vision_hidden")]
    pub hidden_size: usize,
    /// Width of the MLP inside each layer.
    #[serde(default = "defaults::vision_intermediate")]
    pub intermediate_size: usize,
    /// Number of transformer layers.
    #[serde(default = "defaults::twelve")]
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    #[serde(default = "defaults::twelve")]
    pub num_attention_heads: usize,
    /// Input channels (3 for RGB).
    #[serde(default = "defaults::three")]
    pub num_channels: usize,
    /// Side of the square input image in pixels.
    #[serde(default = "defaults::image_size")]
    pub image_size: usize,
    /// Side of one square patch in pixels.
    #[serde(default = "defaults::patch_size")]
    pub patch_size: usize,
    /// MLP activation.
    #[serde(default = "default_quick_gelu")]
    pub hidden_act: Activation,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

/// A whole CLIP checkpoint's architecture, as in Hugging Face `CLIPConfig`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ClipConfig {
    /// Text tower.
    pub text_config: ClipTextConfig,
    /// Image tower.
    pub vision_config: ClipVisionConfig,
    /// Width of the shared embedding space.
    #[serde(default = "defaults::projection_dim")]
    pub projection_dim: usize,
    /// Initial value of the log logit scale (the checkpoint's `logit_scale` tensor wins).
    #[serde(default = "defaults::logit_scale")]
    pub logit_scale_init_value: f64,
}

mod defaults {
    pub fn vocab_size() -> usize {
        49408
    }
    pub fn text_hidden() -> usize {
        512
    }
    pub fn text_intermediate() -> usize {
        2048
    }
    pub fn text_heads() -> usize {
        8
    }
    pub fn twelve() -> usize {
        12
    }
    pub fn three() -> usize {
        3
    }
    pub fn context() -> usize {
        77
    }
    pub fn eos() -> u32 {
        2
    }
    pub fn vision_hidden() -> usize {
        768
    }
    pub fn vision_intermediate() -> usize {
        3072
    }
    pub fn image_size() -> usize {
        224
    }
    pub fn patch_size() -> usize {
        32
    }
    pub fn projection_dim() -> usize {
        512
    }
    pub fn logit_scale() -> f64 {
        2.6592
    }
}

/// Why a `config.json` cannot describe a usable CLIP model.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not parse or a field has the wrong type or value.
    #[error("{file}: {reason}")]
    Parse {
        /// The configuration file.
        file: String,
        /// What serde reported (names the field).
        reason: String,
    },
    /// Fields parse but contradict each other.
    #[error("{file}: field `{field}`: {reason}")]
    Invalid {
        /// The configuration file.
        file: String,
        /// The offending field.
        field: &'static str,
        /// What was expected.
        reason: String,
    },
}

impl ClipConfig {
    /// Parses a Hugging Face CLIP `config.json`; `file` names it in errors.
    pub fn from_json_str(text: &str, file: &str) -> std::result::Result<Self, ConfigError> {
        let cfg: ClipConfig = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        cfg.validate(file)?;
        Ok(cfg)
    }

    /// Checks that the fields agree with each other; `file` names the configuration in errors.
    pub(crate) fn validate(&self, file: &str) -> std::result::Result<(), ConfigError> {
        let bad = |field, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            field,
            reason,
        };
        let t = &self.text_config;
        let v = &self.vision_config;
        for (field, width, heads) in [
            (
                "text_config.num_attention_heads",
                t.hidden_size,
                t.num_attention_heads,
            ),
            (
                "vision_config.num_attention_heads",
                v.hidden_size,
                v.num_attention_heads,
            ),
        ] {
            if heads == 0 || width % heads != 0 {
                return Err(bad(
                    field,
                    format!("{heads} heads do not divide the width {width}"),
                ));
            }
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(bad(
                "vision_config.patch_size",
                format!(
                    "{} does not divide image_size {}",
                    v.patch_size, v.image_size
                ),
            ));
        }
        if t.max_position_embeddings < 2 {
            return Err(bad(
                "text_config.max_position_embeddings",
                "must allow at least the start and end tokens".into(),
            ));
        }
        if (t.eos_token_id as usize) >= t.vocab_size {
            return Err(bad(
                "text_config.eos_token_id",
                format!(
                    "{} is outside the vocabulary of {}",
                    t.eos_token_id, t.vocab_size
                ),
            ));
        }
        Ok(())
    }

    /// Number of image patches plus the class token.
    pub fn vision_positions(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size;
        side * side + 1
    }

    /// Every tensor the model reads, with its shape, in Hugging Face naming.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let mut out = self.embedding_tensors();
        push_norm(
            &mut out,
            "text_model.final_layer_norm".into(),
            t.hidden_size,
        );
        push_norm(&mut out, "vision_model.pre_layrnorm".into(), v.hidden_size);
        push_norm(
            &mut out,
            "vision_model.post_layernorm".into(),
            v.hidden_size,
        );
        for (tower, w, m, n) in [
            (
                "text_model",
                t.hidden_size,
                t.intermediate_size,
                t.num_hidden_layers,
            ),
            (
                "vision_model",
                v.hidden_size,
                v.intermediate_size,
                v.num_hidden_layers,
            ),
        ] {
            for i in 0..n {
                push_encoder_layer(&mut out, &format!("{tower}.encoder.layers.{i}"), w, m);
            }
        }
        out
    }

    /// The logit scale, the projections and both towers' embeddings, with their shapes.
    fn embedding_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let t = &self.text_config;
        let v = &self.vision_config;
        vec![
            ("logit_scale".to_string(), vec![]),
            (
                "text_projection.weight".to_string(),
                vec![self.projection_dim, t.hidden_size],
            ),
            (
                "visual_projection.weight".to_string(),
                vec![self.projection_dim, v.hidden_size],
            ),
            (
                "text_model.embeddings.token_embedding.weight".into(),
                vec![t.vocab_size, t.hidden_size],
            ),
            (
                "text_model.embeddings.position_embedding.weight".into(),
                vec![t.max_position_embeddings, t.hidden_size],
            ),
            (
                "vision_model.embeddings.class_embedding".into(),
                vec![v.hidden_size],
            ),
            (
                "vision_model.embeddings.patch_embedding.weight".into(),
                vec![v.hidden_size, v.num_channels, v.patch_size, v.patch_size],
            ),
            (
                "vision_model.embeddings.position_embedding.weight".into(),
                vec![self.vision_positions(), v.hidden_size],
            ),
        ]
    }

    /// OpenAI ViT-B/32 (`openai/clip-vit-base-patch32`).
    pub fn vit_base_patch32() -> Self {
        Self::preset(512, 8, 12, 768, 12, 12, 224, 32, 512)
    }
    /// OpenAI ViT-B/16 (`openai/clip-vit-base-patch16`).
    pub fn vit_base_patch16() -> Self {
        Self::preset(512, 8, 12, 768, 12, 12, 224, 16, 512)
    }
    /// OpenAI ViT-L/14 (`openai/clip-vit-large-patch14`).
    pub fn vit_large_patch14() -> Self {
        Self::preset(768, 12, 12, 1024, 16, 24, 224, 14, 768)
    }
    /// OpenAI ViT-L/14 at 336 pixels (`openai/clip-vit-large-patch14-336`).
    pub fn vit_large_patch14_336() -> Self {
        Self::preset(768, 12, 12, 1024, 16, 24, 336, 14, 768)
    }

    /// Looks a preset up by its short name (`vitb32`, `vitb16`, `vitl14`, `vitl14-336`).
    pub fn by_preset_name(name: &str) -> Option<Self> {
        match name {
            "vitb32" => Some(Self::vit_base_patch32()),
            "vitb16" => Some(Self::vit_base_patch16()),
            "vitl14" => Some(Self::vit_large_patch14()),
            "vitl14-336" => Some(Self::vit_large_patch14_336()),
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn preset(
        text_width: usize,
        text_heads: usize,
        text_layers: usize,
        vision_width: usize,
        vision_heads: usize,
        vision_layers: usize,
        image_size: usize,
        patch_size: usize,
        projection_dim: usize,
    ) -> Self {
        Self {
            text_config: ClipTextConfig {
                vocab_size: 49408,
                hidden_size: text_width,
                intermediate_size: 4 * text_width,
                num_hidden_layers: text_layers,
                num_attention_heads: text_heads,
                max_position_embeddings: 77,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
                eos_token_id: 2,
            },
            vision_config: ClipVisionConfig {
                hidden_size: vision_width,
                intermediate_size: 4 * vision_width,
                num_hidden_layers: vision_layers,
                num_attention_heads: vision_heads,
                num_channels: 3,
                image_size,
                patch_size,
                hidden_act: Activation::QuickGelu,
                layer_norm_eps: 1e-5,
            },
            projection_dim,
            logit_scale_init_value: 2.6592,
        }
    }
}

/// The weight and bias of layer norm `prefix`, of width `w`.
fn push_norm(out: &mut Vec<(String, Vec<usize>)>, prefix: String, w: usize) {
    out.push((format!("{prefix}.weight"), vec![w]));
    out.push((format!("{prefix}.bias"), vec![w]));
}

/// The tensors of encoder layer `p` (attention, norms, MLP) of width `w` and MLP width `m`.
fn push_encoder_layer(out: &mut Vec<(String, Vec<usize>)>, p: &str, w: usize, m: usize) {
    for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
        out.push((format!("{p}.self_attn.{proj}.weight"), vec![w, w]));
        out.push((format!("{p}.self_attn.{proj}.bias"), vec![w]));
    }
    push_norm(out, format!("{p}.layer_norm1"), w);
    push_norm(out, format!("{p}.layer_norm2"), w);
    out.push((format!("{p}.mlp.fc1.weight"), vec![m, w]));
    out.push((format!("{p}.mlp.fc1.bias"), vec![m]));
    out.push((format!("{p}.mlp.fc2.weight"), vec![w, m]));
    out.push((format!("{p}.mlp.fc2.bias"), vec![w]));
}
