//! CLIP (Radford et al. 2021) in the Hugging Face `transformers` layout, on candle tensors.
//!
//! The configuration is read from a checkpoint's `config.json`; the forward passes follow
//! `transformers.models.clip.modeling_clip` operation by operation so that embeddings match the
//! reference to float rounding. Weight names are the Hugging Face ones (`vision_model.pre_layrnorm`
//! with its historical spelling included).

use candle_core::{D, DType, IndexOp, Module, Result, Tensor};
use candle_nn::{Conv2dConfig, Embedding, LayerNorm, Linear, VarBuilder};

use super::config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig};
use super::fused::FusedVisionEncoder;
use super::lazy_tower::LazyTower;

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
    image_tower: LazyTower<ImageTower>,
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
            image_tower: LazyTower::new(vb.clone()),
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
        self.image_tower.get(|vb| {
            let config = &self.config;
            let v = &config.vision_config;
            Ok(match self.image_encoder {
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
            })
        })
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
