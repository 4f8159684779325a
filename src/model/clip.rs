//! CLIP (Radford et al. 2021) in the Hugging Face `transformers` layout, on candle tensors.
//!
//! The configuration is read from a checkpoint's `config.json`; the forward passes follow
//! `transformers.models.clip.modeling_clip` operation by operation so that embeddings match the
//! reference to float rounding. Weight names are the Hugging Face ones (`vision_model.pre_layrnorm`
//! with its historical spelling included).

use candle_core::{D, DType, IndexOp, Module, Result, Tensor};
use candle_nn::{Conv2dConfig, Embedding, LayerNorm, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use std::sync::{Mutex, OnceLock};

use super::fused::FusedVisionEncoder;

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

    fn validate(&self, file: &str) -> std::result::Result<(), ConfigError> {
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
        let mut out = vec![
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
        ];
        let norm = |out: &mut Vec<(String, Vec<usize>)>, p: String, w: usize| {
            out.push((format!("{p}.weight"), vec![w]));
            out.push((format!("{p}.bias"), vec![w]));
        };
        norm(
            &mut out,
            "text_model.final_layer_norm".into(),
            t.hidden_size,
        );
        norm(&mut out, "vision_model.pre_layrnorm".into(), v.hidden_size);
        norm(
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
                let p = format!("{tower}.encoder.layers.{i}");
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    out.push((format!("{p}.self_attn.{proj}.weight"), vec![w, w]));
                    out.push((format!("{p}.self_attn.{proj}.bias"), vec![w]));
                }
                norm(&mut out, format!("{p}.layer_norm1"), w);
                norm(&mut out, format!("{p}.layer_norm2"), w);
                out.push((format!("{p}.mlp.fc1.weight"), vec![m, w]));
                out.push((format!("{p}.mlp.fc1.bias"), vec![m]));
                out.push((format!("{p}.mlp.fc2.weight"), vec![w, m]));
                out.push((format!("{p}.mlp.fc2.bias"), vec![w]));
            }
        }
        out
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

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    fn new(vb: VarBuilder, width: usize, heads: usize) -> Result<Self> {
        let head_dim = width / heads;
        Ok(Self {
            q_proj: candle_nn::linear(width, width, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear(width, width, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear(width, width, vb.pp("v_proj"))?,
            out_proj: candle_nn::linear(width, width, vb.pp("out_proj"))?,
            heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
        })
    }

    /// `[B, T, W]` → `[B·H, T, Dh]`.
    fn split_heads(&self, xs: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        xs.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * self.heads, t, self.head_dim))
    }

    fn forward(&self, xs: &Tensor, causal_mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, w) = xs.dims3()?;
        let q = self.split_heads(&self.q_proj.forward(xs)?, b, t)?;
        let k = self.split_heads(&self.k_proj.forward(xs)?, b, t)?;
        let v = self.split_heads(&self.v_proj.forward(xs)?, b, t)?;
        let mut scores = (q.matmul(&k.t()?)? * self.scale)?;
        if let Some(mask) = causal_mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .reshape((b, self.heads, t, self.head_dim))?
            .transpose(1, 2)?
            .reshape((b, t, w))?;
        self.out_proj.forward(&out)
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, shape: &TowerShape) -> Result<Self> {
        let w = shape.width;
        Ok(Self {
            layer_norm1: candle_nn::layer_norm(w, shape.eps, vb.pp("layer_norm1"))?,
            self_attn: Attention::new(vb.pp("self_attn"), w, shape.heads)?,
            layer_norm2: candle_nn::layer_norm(w, shape.eps, vb.pp("layer_norm2"))?,
            fc1: candle_nn::linear(w, shape.intermediate, vb.pp("mlp").pp("fc1"))?,
            fc2: candle_nn::linear(shape.intermediate, w, vb.pp("mlp").pp("fc2"))?,
            activation: shape.activation,
        })
    }

    fn forward(&self, xs: &Tensor, causal_mask: Option<&Tensor>) -> Result<Tensor> {
        let h = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, causal_mask)?;
        let xs = (xs + h)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&xs)?)?;
        let h = self.fc2.forward(&self.activation.forward(&h)?)?;
        xs + h
    }
}

/// The hyper-parameters one encoder stack needs.
struct TowerShape {
    width: usize,
    intermediate: usize,
    layers: usize,
    heads: usize,
    eps: f64,
    activation: Activation,
}

struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    fn new(vb: VarBuilder, shape: &TowerShape) -> Result<Self> {
        let layers = (0..shape.layers)
            .map(|i| EncoderLayer::new(vb.pp("layers").pp(i.to_string()), shape))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    fn forward(&self, mut xs: Tensor, causal_mask: Option<&Tensor>) -> Result<Tensor> {
        for layer in &self.layers {
            xs = layer.forward(&xs, causal_mask)?;
        }
        Ok(xs)
    }
}

/// The text tower: token + position embeddings, causal transformer, final layer norm.
pub struct ClipTextTransformer {
    token_embedding: Embedding,
    position_embedding: Embedding,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    eos_token_id: u32,
}

impl ClipTextTransformer {
    /// Builds the tower from weights under `text_model.`.
    pub fn new(vb: VarBuilder, c: &ClipTextConfig) -> Result<Self> {
        let shape = TowerShape {
            width: c.hidden_size,
            intermediate: c.intermediate_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            activation: c.hidden_act,
        };
        let emb = vb.pp("embeddings");
        Ok(Self {
            token_embedding: candle_nn::embedding(
                c.vocab_size,
                c.hidden_size,
                emb.pp("token_embedding"),
            )?,
            position_embedding: candle_nn::embedding(
                c.max_position_embeddings,
                c.hidden_size,
                emb.pp("position_embedding"),
            )?,
            encoder: Encoder::new(vb.pp("encoder"), &shape)?,
            final_layer_norm: candle_nn::layer_norm(
                c.hidden_size,
                c.layer_norm_eps,
                vb.pp("final_layer_norm"),
            )?,
            eos_token_id: c.eos_token_id,
        })
    }

    /// Where each row is pooled, as transformers does it: the first end-of-text token, or for the
    /// legacy `eos_token_id == 2` the first position of the largest id.
    pub fn pooling_positions(&self, ids: &[Vec<u32>]) -> Vec<u32> {
        ids.iter()
            .map(|row| {
                let pos = if self.eos_token_id == 2 {
                    // first index of the maximum, like torch.argmax
                    let max = row.iter().copied().max().unwrap_or(0);
                    row.iter().position(|&x| x == max)
                } else {
                    row.iter().position(|&x| x == self.eos_token_id)
                };
                pos.unwrap_or(row.len().saturating_sub(1)) as u32
            })
            .collect()
    }

    /// Pooled text features `[B, W]` (before the projection) for token ids padded to equal length.
    pub fn forward(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let device = self.token_embedding.embeddings().device().clone();
        let b = ids.len();
        let t = ids.first().map_or(0, Vec::len);
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let input = Tensor::from_vec(flat, (b, t), &device)?;
        let positions = Tensor::arange(0u32, t as u32, &device)?;
        let xs = self
            .token_embedding
            .forward(&input)?
            .broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let mask = causal_mask(t, &device)?;
        let xs = self.encoder.forward(xs, Some(&mask))?;
        let xs = self.final_layer_norm.forward(&xs)?;
        let pool = self.pooling_positions(ids);
        let rows = (0..b)
            .map(|i| xs.i((i, pool[i] as usize)))
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&rows, 0)
    }
}

fn causal_mask(t: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (t, t), device)
}

/// The image tower: patch + class + position embeddings, pre-norm, transformer, post-norm of CLS.
pub struct ClipVisionTransformer {
    patch_embedding: candle_nn::Conv2d,
    class_embedding: Tensor,
    position_embedding: Embedding,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    positions: usize,
}

impl ClipVisionTransformer {
    /// Builds the tower from weights under `vision_model.`.
    pub fn new(vb: VarBuilder, c: &ClipVisionConfig, positions: usize) -> Result<Self> {
        let shape = TowerShape {
            width: c.hidden_size,
            intermediate: c.intermediate_size,
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            activation: c.hidden_act,
        };
        let emb = vb.pp("embeddings");
        let conv = Conv2dConfig {
            stride: c.patch_size,
            ..Default::default()
        };
        Ok(Self {
            patch_embedding: candle_nn::conv2d_no_bias(
                c.num_channels,
                c.hidden_size,
                c.patch_size,
                conv,
                emb.pp("patch_embedding"),
            )?,
            class_embedding: emb.get(c.hidden_size, "class_embedding")?,
            position_embedding: candle_nn::embedding(
                positions,
                c.hidden_size,
                emb.pp("position_embedding"),
            )?,
            pre_layrnorm: candle_nn::layer_norm(
                c.hidden_size,
                c.layer_norm_eps,
                vb.pp("pre_layrnorm"),
            )?,
            encoder: Encoder::new(vb.pp("encoder"), &shape)?,
            post_layernorm: candle_nn::layer_norm(
                c.hidden_size,
                c.layer_norm_eps,
                vb.pp("post_layernorm"),
            )?,
            positions,
        })
    }

    /// Pooled image features `[B, W]` (before the projection) for pixels `[B, C, H, W]`.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let b = pixel_values.dim(0)?;
        let patches = self
            .patch_embedding
            .forward(pixel_values)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let width = self.class_embedding.dim(0)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, width))?
            .repeat((b, 1, 1))?;
        let positions = Tensor::arange(0u32, self.positions as u32, pixel_values.device())?;
        let xs = Tensor::cat(&[&cls, &patches], 1)?
            .broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let xs = self.pre_layrnorm.forward(&xs)?;
        let xs = self.encoder.forward(xs, None)?;
        self.post_layernorm.forward(&xs.i((.., 0, ..))?)
    }
}

/// How the image tower is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageEncoderKind {
    /// The layer-by-layer candle forward above (any device).
    Candle,
    /// [`FusedVisionEncoder`]: one fused f32 pass on the CPU, several times faster.
    Fused,
    /// [`FusedVisionEncoder`] with bf16 products (CPUs with AVX512-BF16; `--dtype bf16`).
    FusedBf16,
}

impl ImageEncoderKind {
    /// `candle` or `fused` (whatever the number format).
    pub fn tower_name(self) -> &'static str {
        match self {
            Self::Candle => "candle",
            Self::Fused | Self::FusedBf16 => "fused",
        }
    }
}

/// The image tower in the form it is computed in.
enum ImageTower {
    Candle {
        vision: ClipVisionTransformer,
        projection: Linear,
    },
    Fused(FusedVisionEncoder),
}

/// A CLIP model: both towers, their projections into the shared space and the logit scale.
///
/// The image tower is built from the weights on first use, so a run whose image embeddings all
/// come from the cache never loads it.
pub struct ClipModel {
    text_model: ClipTextTransformer,
    image_tower: OnceLock<ImageTower>,
    /// The weights the image tower is built from, until it is.
    pending_image_tower: Mutex<Option<VarBuilder<'static>>>,
    image_encoder: ImageEncoderKind,
    text_projection: Linear,
    logit_scale: f32,
    config: ClipConfig,
}

impl ClipModel {
    /// Builds the model from Hugging Face-named weights, with the candle image tower.
    pub fn new(vb: VarBuilder<'static>, config: &ClipConfig) -> Result<Self> {
        Self::with_image_encoder(vb, config, ImageEncoderKind::Candle)
    }

    /// Builds the model with the chosen image tower (the fused one needs f32 weights on the CPU);
    /// the image tower itself is built on first use.
    pub fn with_image_encoder(
        vb: VarBuilder<'static>,
        config: &ClipConfig,
        image_encoder: ImageEncoderKind,
    ) -> Result<Self> {
        let t = &config.text_config;
        let logit_scale = vb
            .get_with_hints(
                (),
                "logit_scale",
                candle_nn::Init::Const(config.logit_scale_init_value),
            )?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        Ok(Self {
            text_model: ClipTextTransformer::new(vb.pp("text_model"), t)?,
            image_tower: OnceLock::new(),
            pending_image_tower: Mutex::new(Some(vb.clone())),
            image_encoder,
            text_projection: candle_nn::linear_no_bias(
                t.hidden_size,
                config.projection_dim,
                vb.pp("text_projection"),
            )?,
            logit_scale,
            config: config.clone(),
        })
    }

    /// The architecture this model was built with.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The multiplier applied to cosine similarities: `exp(logit_scale)`.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// The text tower, for callers that need pooled features before the projection.
    pub fn text_model(&self) -> &ClipTextTransformer {
        &self.text_model
    }

    /// The candle image tower, for callers that need pooled features before the projection
    /// (`None` when the model was built with the fused tower).
    pub fn vision_model(&self) -> Result<Option<&ClipVisionTransformer>> {
        Ok(match self.image_tower()? {
            ImageTower::Candle { vision, .. } => Some(vision),
            ImageTower::Fused(_) => None,
        })
    }

    /// Which image tower this model computes with.
    pub fn image_encoder_kind(&self) -> ImageEncoderKind {
        self.image_encoder
    }

    /// Builds the image tower now rather than on first use (so its cost shows up in load time).
    pub fn load_image_tower(&self) -> Result<()> {
        self.image_tower().map(|_| ())
    }

    /// The image tower, built from the weights on the first call.
    fn image_tower(&self) -> Result<&ImageTower> {
        if let Some(tower) = self.image_tower.get() {
            return Ok(tower);
        }
        let mut pending = self.pending_image_tower.lock().map_err(|_| {
            candle_core::Error::Msg("image tower: a loading thread panicked".into())
        })?;
        if let Some(tower) = self.image_tower.get() {
            return Ok(tower);
        }
        let vb = pending.take().ok_or_else(|| {
            candle_core::Error::Msg("image tower: loading the weights failed earlier".into())
        })?;
        let config = &self.config;
        let v = &config.vision_config;
        let tower = match self.image_encoder {
            ImageEncoderKind::Candle => ImageTower::Candle {
                vision: ClipVisionTransformer::new(
                    vb.pp("vision_model"),
                    v,
                    config.vision_positions(),
                )?,
                projection: candle_nn::linear_no_bias(
                    v.hidden_size,
                    config.projection_dim,
                    vb.pp("visual_projection"),
                )?,
            },
            ImageEncoderKind::Fused => {
                ImageTower::Fused(FusedVisionEncoder::load(&vb, config, false)?)
            }
            ImageEncoderKind::FusedBf16 => {
                ImageTower::Fused(FusedVisionEncoder::load(&vb, config, true)?)
            }
        };
        Ok(self.image_tower.get_or_init(|| tower))
    }

    /// Projected (unnormalised) text features `[B, P]` for equal-length token id rows.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        self.text_projection.forward(&self.text_model.forward(ids)?)
    }

    /// Projected (unnormalised) image features `[B, P]` for pixels `[B, C, H, W]`.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        match self.image_tower()? {
            ImageTower::Candle { vision, projection } => {
                projection.forward(&vision.forward(pixel_values)?)
            }
            ImageTower::Fused(fused) => fused.forward(pixel_values),
        }
    }
}

/// Divides each row by its L2 norm.
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    xs.broadcast_div(&xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}
