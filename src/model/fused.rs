//! The ViT image towers (CLIP's and SigLIP's) as one fused CPU forward pass, for throughput.
//!
//! Same weights and the same operations as [`super::clip::ClipVisionTransformer`] followed by the
//! visual projection, or as candle-transformers' SigLIP vision model with its attention-pooling
//! head, but organised for the CPU:
//! - weights are copied once at load into contiguous `[in, out]` matrices, q/k/v as one matrix;
//! - every linear layer is one `gemm` call over the whole batch, with bias and residual added by
//!   accumulating into a destination that already holds them (no extra tensors);
//! - the patch embedding is one matrix product over unfolded patches (its bias, SigLIP's, folded
//!   into the position embedding at load);
//! - attention runs image by image in parallel, reading q/k/v in place (no head transposes);
//!   SigLIP's probe query is computed once at load;
//! - activations, softmax and layer norm use the vectorised kernels of [`super::kernels`].
//!
//! Results agree with the plain candle forward to float rounding (tests in `tests/parity.rs` and
//! `tests/siglip.rs`).

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::bf16::{self, PackedBf16};
use super::config::{Activation, ClipConfig, ClipVisionConfig};
use super::kernels::{self, MatRef};

/// Layer-norm parameters.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, width: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            gamma: vector(&vb.get(width, "weight")?)?,
            beta: vector(&vb.get(width, "bias")?)?,
            eps: eps as f32,
        })
    }

    /// Normalises the rows of `src` into `dst`, in parallel over row blocks.
    fn apply(&self, src: &[f32], dst: &mut [f32]) {
        let width = self.gamma.len();
        let block = width * ROWS_PER_TASK;
        src.par_chunks(block)
            .zip(dst.par_chunks_mut(block))
            .for_each(|(s, d)| kernels::layer_norm(s, d, &self.gamma, &self.beta, self.eps));
    }
}

/// Rows per parallel task of the element-wise passes.
const ROWS_PER_TASK: usize = 16;

/// A linear layer's weight matrix in the form its products use.
enum Weight {
    /// Contiguous `[in, out]` f32.
    F32(Vec<f32>),
    /// Rounded to bf16 and packed for `vdpbf16ps`.
    Bf16(PackedBf16),
}

impl Weight {
    /// A row-major `[inputs, outputs]` matrix, packed for bf16 products when `bf16`.
    fn new(weight: Vec<f32>, inputs: usize, outputs: usize, bf16: bool) -> Self {
        if bf16 {
            Weight::Bf16(PackedBf16::pack(&weight, inputs, outputs))
        } else {
            Weight::F32(weight)
        }
    }

    /// `dst (+)= src · W` for `rows` rows.
    #[allow(clippy::too_many_arguments)]
    fn product(
        &self,
        src: &[f32],
        dst: &mut [f32],
        rows: usize,
        inputs: usize,
        outputs: usize,
        accumulate: bool,
        threads: usize,
    ) {
        match self {
            Weight::F32(weight) => kernels::matmul(
                dst,
                outputs,
                MatRef::new(src, rows, inputs),
                MatRef::new(weight, inputs, outputs),
                1.0,
                accumulate,
                threads,
            ),
            Weight::Bf16(packed) => bf16::matmul(dst, src, rows, packed, accumulate),
        }
    }
}

/// A linear layer and its bias.
struct Dense {
    weight: Weight,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// Loads `weight [out, in]` and `bias [out]` of each named sub-layer and stacks them along
    /// the output dimension (one matrix for q, k and v).
    fn load(vbs: &[VarBuilder], inputs: usize, outputs: usize, bf16: bool) -> Result<Self> {
        let weights = vbs
            .iter()
            .map(|vb| vb.get((outputs, inputs), "weight"))
            .collect::<Result<Vec<_>>>()?;
        let biases = vbs
            .iter()
            .map(|vb| vb.get(outputs, "bias"))
            .collect::<Result<Vec<_>>>()?;
        Self::from_tensors(&Tensor::cat(&weights, 0)?, &Tensor::cat(&biases, 0)?, bf16)
    }

    /// A layer from its `weight [out, in]` and `bias [out]` (in bf16 with `bf16`).
    fn from_tensors(weight: &Tensor, bias: &Tensor, bf16: bool) -> Result<Self> {
        let (outputs, inputs) = weight.dims2()?;
        let weight = vector(&weight.t()?.contiguous()?.flatten_all()?)?;
        Ok(Self {
            weight: Weight::new(weight, inputs, outputs, bf16),
            bias: vector(bias)?,
            inputs,
            outputs,
        })
    }

    /// `dst (+)= src · W` for `rows` rows.
    fn product(&self, src: &[f32], dst: &mut [f32], rows: usize, accumulate: bool, threads: usize) {
        self.weight.product(
            src,
            dst,
            rows,
            self.inputs,
            self.outputs,
            accumulate,
            threads,
        );
    }

    /// `dst = src · W + b` for `rows` rows (dst overwritten).
    fn forward(&self, src: &[f32], dst: &mut [f32], rows: usize, threads: usize) {
        self.product(src, dst, rows, false, threads);
        add_bias(dst, &self.bias);
    }

    /// `dst += src · W + b` for `rows` rows (the residual connection).
    fn forward_residual(&self, src: &[f32], dst: &mut [f32], rows: usize, threads: usize) {
        add_bias(dst, &self.bias);
        self.product(src, dst, rows, true, threads);
    }
}

fn add_bias(dst: &mut [f32], bias: &[f32]) {
    dst.par_chunks_mut(bias.len() * ROWS_PER_TASK)
        .for_each(|rows| kernels::add_rows(rows, bias));
}

/// The shape of a pre-norm transformer encoder (either tower).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderShape {
    /// Token width.
    pub width: usize,
    /// Attention heads per layer.
    pub heads: usize,
    /// Width of each MLP's hidden layer.
    pub intermediate: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// The MLPs' activation.
    pub activation: Activation,
    /// Every layer norm's epsilon.
    pub eps: f64,
}

impl EncoderShape {
    /// Applies the MLP activation to a `[rows, intermediate]` buffer, in parallel.
    fn activate(&self, hidden: &mut [f32]) {
        let activation = self.activation;
        hidden
            .par_chunks_mut(self.intermediate * ROWS_PER_TASK)
            .for_each(|h| match activation {
                Activation::QuickGelu => kernels::quick_gelu(h),
                Activation::Gelu => kernels::gelu_erf(h),
                Activation::GeluTanh => kernels::gelu_tanh(h),
                Activation::Relu => kernels::relu(h),
            });
    }
}

/// The shape of a ViT image tower, read from whichever family's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisionShape {
    /// The transformer's shape.
    pub encoder: EncoderShape,
    /// Colour channels of the input.
    pub channels: usize,
    /// Side of the square input image.
    pub image_size: usize,
    /// Side of a square patch.
    pub patch: usize,
}

impl VisionShape {
    /// The shape of a CLIP image tower.
    pub fn of_clip(c: &ClipVisionConfig) -> Self {
        Self {
            encoder: EncoderShape {
                width: c.hidden_size,
                heads: c.num_attention_heads,
                intermediate: c.intermediate_size,
                layers: c.num_hidden_layers,
                activation: c.hidden_act,
                eps: c.layer_norm_eps,
            },
            channels: c.num_channels,
            image_size: c.image_size,
            patch: c.patch_size,
        }
    }

    /// Patches per image.
    fn patches(&self) -> usize {
        let side = self.image_size / self.patch;
        side * side
    }
}

/// A pre-norm MLP with its residual connection: `x += fc2(act(fc1(norm(x))))`.
struct Mlp {
    norm: Norm,
    fc1: Dense,
    fc2: Dense,
}

impl Mlp {
    /// The norm under `norm`, the layers `fc1` and `fc2` under `mlp` (in bf16 with `bf16`).
    fn load(norm: &VarBuilder, mlp: &VarBuilder, c: &EncoderShape, bf16: bool) -> Result<Self> {
        Ok(Self {
            norm: Norm::load(norm, c.width, c.eps)?,
            fc1: Dense::load(&[mlp.pp("fc1")], c.width, c.intermediate, bf16)?,
            fc2: Dense::load(&[mlp.pp("fc2")], c.intermediate, c.width, bf16)?,
        })
    }

    /// Adds the MLP of `x`'s rows to `x`; `normed` (`[rows, W]`) and `hidden` (`[rows, I]`)
    /// are scratch.
    fn residual(
        &self,
        x: &mut [f32],
        (normed, hidden): (&mut [f32], &mut [f32]),
        c: &EncoderShape,
        threads: usize,
    ) {
        let rows = x.len() / c.width;
        self.norm.apply(x, normed);
        self.fc1.forward(normed, hidden, rows, threads);
        c.activate(hidden);
        self.fc2.forward_residual(hidden, x, rows, threads);
    }
}

/// One pre-norm transformer block.
struct Block {
    norm1: Norm,
    qkv: Dense,
    out: Dense,
    mlp: Mlp,
}

impl Block {
    /// Copies encoder layer `layer`'s weights into the fused layout (linear layers in bf16 with
    /// `bf16`).
    fn load(layer: &VarBuilder, c: &EncoderShape, bf16: bool) -> Result<Self> {
        let w = c.width;
        let attn = layer.pp("self_attn");
        Ok(Self {
            norm1: Norm::load(&layer.pp("layer_norm1"), w, c.eps)?,
            qkv: Dense::load(
                &[attn.pp("q_proj"), attn.pp("k_proj"), attn.pp("v_proj")],
                w,
                w,
                bf16,
            )?,
            out: Dense::load(&[attn.pp("out_proj")], w, w, bf16)?,
            mlp: Mlp::load(&layer.pp("layer_norm2"), &layer.pp("mlp"), c, bf16)?,
        })
    }
}

/// A stack of pre-norm blocks with bidirectional attention (no mask), fused.
pub(super) struct Encoder {
    shape: EncoderShape,
    blocks: Vec<Block>,
}

impl Encoder {
    /// Every block of `encoder.layers.*`, loaded in parallel (each copies and transposes its
    /// weights out of the mapped file); linear layers in bf16 with `bf16`.
    pub(super) fn load(encoder: &VarBuilder, shape: EncoderShape, bf16: bool) -> Result<Self> {
        let blocks = (0..shape.layers)
            .into_par_iter()
            .map(|i| Block::load(&encoder.pp("layers").pp(i.to_string()), &shape, bf16))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { shape, blocks })
    }

    /// Runs every block over the residual stream `x` (`[batch · tokens, width]`) in place.
    pub(super) fn forward(&self, x: &mut [f32], batch: usize, tokens: usize, threads: usize) {
        let (rows, w) = (batch * tokens, self.shape.width);
        let mut scratch = Scratch {
            normed: vec![0.0; rows * w],
            qkv: vec![0.0; rows * 3 * w],
            attended: vec![0.0; rows * w],
            hidden: vec![0.0; rows * self.shape.intermediate],
        };
        for block in &self.blocks {
            self.block(block, x, &mut scratch, tokens, threads);
        }
    }

    /// One transformer block, updating the residual stream `x` in place.
    fn block(&self, block: &Block, x: &mut [f32], s: &mut Scratch, tokens: usize, threads: usize) {
        let rows = x.len() / self.shape.width;
        block.norm1.apply(x, &mut s.normed);
        block.qkv.forward(&s.normed, &mut s.qkv, rows, threads);
        self.attention(&s.qkv, &mut s.attended, tokens);
        block.out.forward_residual(&s.attended, x, rows, threads);
        let scratch = (&mut s.normed[..], &mut s.hidden[..]);
        block.mlp.residual(x, scratch, &self.shape, threads);
    }

    /// Multi-head self-attention of every sequence of `t` tokens, in parallel over sequences;
    /// `qkv` rows are `[q | k | v]` of width `3W`, heads side by side within each.
    fn attention(&self, qkv: &[f32], out: &mut [f32], t: usize) {
        let (w, heads) = (self.shape.width, self.shape.heads);
        let head_dim = w / heads;
        let scale = (head_dim as f32).powf(-0.5);
        out.par_chunks_mut(t * w)
            .zip(qkv.par_chunks(t * 3 * w))
            .for_each(|(out, qkv)| {
                let mut scores = vec![0.0f32; t * t];
                for head in 0..heads {
                    let q = MatRef::strided(&qkv[head * head_dim..], t, head_dim, 3 * w, 1);
                    let k = MatRef::strided(&qkv[w + head * head_dim..], t, head_dim, 3 * w, 1);
                    let v = MatRef::strided(&qkv[2 * w + head * head_dim..], t, head_dim, 3 * w, 1);
                    kernels::matmul(&mut scores, t, q, k.t(), scale, false, 1);
                    kernels::softmax_rows(&mut scores, t);
                    kernels::matmul(
                        &mut out[head * head_dim..],
                        w,
                        MatRef::new(&scores, t, t),
                        v,
                        1.0,
                        false,
                        1,
                    );
                }
            });
    }
}

/// Reusable activations of one forward pass.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    hidden: Vec<f32>,
}

/// How the tower turns its tokens into one feature vector per image.
enum Pooling {
    /// CLIP: the post-norm of the class token, then the visual projection.
    ClassToken {
        post_norm: Norm,
        /// `[width, projection_dim]`.
        projection: Vec<f32>,
        projection_dim: usize,
    },
    /// SigLIP: the post-norm of every token, then a one-query attention head with an MLP.
    AttentionHead(Box<AttentionHead>),
}

/// SigLIP's pooling head (transformers' `SiglipMultiheadAttentionPoolingHead`): a learned probe
/// attends over the tokens, and an MLP with a residual connection follows.
struct AttentionHead {
    post_norm: Norm,
    /// The probe's query `(probe · Wq + bq) / √head_dim`, the same for every image: `[width]`.
    query: Vec<f32>,
    /// Keys and values side by side: `width → 2·width`.
    key_value: Dense,
    out: Dense,
    mlp: Mlp,
}

impl AttentionHead {
    /// Loads `vision_model.post_layernorm` and `vision_model.head.*` (torch's
    /// `MultiheadAttention` stores q, k and v stacked in `in_proj_weight`).
    fn load(vision: &VarBuilder, c: &EncoderShape, bf16: bool) -> Result<Self> {
        let w = c.width;
        let head = vision.pp("head");
        let attention = head.pp("attention");
        let in_weight = attention.get((3 * w, w), "in_proj_weight")?;
        let in_bias = attention.get(3 * w, "in_proj_bias")?;
        let probe = head.get((1, 1, w), "probe")?.reshape((1, w))?;
        let query = probe
            .matmul(&in_weight.narrow(0, 0, w)?.t()?)?
            .broadcast_add(&in_bias.narrow(0, 0, w)?)?;
        let query = (query * ((w / c.heads) as f64).powf(-0.5))?;
        Ok(Self {
            post_norm: Norm::load(&vision.pp("post_layernorm"), w, c.eps)?,
            query: vector(&query.flatten_all()?)?,
            key_value: Dense::from_tensors(
                &in_weight.narrow(0, w, 2 * w)?,
                &in_bias.narrow(0, w, 2 * w)?,
                bf16,
            )?,
            out: Dense::load(&[attention.pp("out_proj")], w, w, bf16)?,
            mlp: Mlp::load(&head.pp("layernorm"), &head.pp("mlp"), c, bf16)?,
        })
    }

    /// Pooled features `[B, width]` of the residual stream `x` (`[B·T, width]`).
    fn forward(&self, x: &[f32], c: &EncoderShape, batch: usize, threads: usize) -> Vec<f32> {
        let (w, rows) = (c.width, x.len() / c.width);
        let mut normed = vec![0.0; x.len()];
        self.post_norm.apply(x, &mut normed);
        let mut key_value = vec![0.0; rows * 2 * w];
        self.key_value
            .forward(&normed, &mut key_value, rows, threads);
        drop(normed);
        let mut attended = vec![0.0; batch * w];
        self.attend(&key_value, &mut attended, c, rows / batch.max(1));
        let mut pooled = vec![0.0; batch * w];
        self.out.forward(&attended, &mut pooled, batch, threads);
        let mut normed = vec![0.0; batch * w];
        let mut hidden = vec![0.0; batch * c.intermediate];
        self.mlp
            .residual(&mut pooled, (&mut normed, &mut hidden), c, threads);
        pooled
    }

    /// The probe's attention over each image's tokens, in parallel over images; `key_value` rows
    /// are `[k | v]` of width `2W`, heads side by side within each.
    fn attend(&self, key_value: &[f32], out: &mut [f32], c: &EncoderShape, tokens: usize) {
        let (w, head_dim) = (c.width, c.width / c.heads);
        out.par_chunks_mut(w)
            .zip(key_value.par_chunks(tokens * 2 * w))
            .for_each(|(out, kv)| {
                let mut scores = vec![0.0f32; tokens];
                for head in 0..c.heads {
                    let columns = head * head_dim..(head + 1) * head_dim;
                    let q = MatRef::new(&self.query[columns.clone()], 1, head_dim);
                    let k = MatRef::strided(&kv[head * head_dim..], tokens, head_dim, 2 * w, 1);
                    let v = MatRef::strided(&kv[w + head * head_dim..], tokens, head_dim, 2 * w, 1);
                    kernels::matmul(&mut scores, tokens, q, k.t(), 1.0, false, 1);
                    kernels::softmax_rows(&mut scores, tokens);
                    let weights = MatRef::new(&scores, 1, tokens);
                    kernels::matmul(&mut out[columns], w, weights, v, 1.0, false, 1);
                }
            });
    }
}

/// A ViT image tower and its pooling, fused for the CPU: CLIP's (class token, pre-norm, visual
/// projection) or SigLIP's (patch bias, no class token, attention-pooling head).
pub struct FusedVisionEncoder {
    shape: VisionShape,
    /// `[channels · patch · patch, width]`.
    patch_weight: Weight,
    class_embedding: Option<Vec<f32>>,
    /// `[tokens, width]`, with the patch embedding's bias (if any) added to the patch rows.
    position_embedding: Vec<f32>,
    pre_norm: Option<Norm>,
    encoder: Encoder,
    pooling: Pooling,
}

impl FusedVisionEncoder {
    /// Copies a CLIP image tower's weights (`vision_model.*`, `visual_projection.weight`) out of
    /// a checkpoint into the fused layout. With `bf16`, the transformer blocks' linear layers are
    /// rounded to bf16 and computed with [`bf16::matmul`] (the CPU must pass
    /// [`bf16::available`]); the patch embedding, attention scores, norms and projection stay f32.
    pub fn load(vb: &VarBuilder, config: &ClipConfig, bf16: bool) -> Result<Self> {
        check_bf16(bf16)?;
        let c = VisionShape::of_clip(&config.vision_config);
        let (w, eps) = (c.encoder.width, c.encoder.eps);
        let vision = vb.pp("vision_model");
        let emb = vision.pp("embeddings");
        let projection = vb
            .get((config.projection_dim, w), "visual_projection.weight")?
            .t()?
            .contiguous()?;
        let positions = emb.get((config.vision_positions(), w), "position_embedding.weight")?;
        Ok(Self {
            patch_weight: patch_weight(&emb, &c)?,
            class_embedding: Some(vector(&emb.get(w, "class_embedding")?)?),
            position_embedding: vector(&positions.flatten_all()?)?,
            pre_norm: Some(Norm::load(&vision.pp("pre_layrnorm"), w, eps)?),
            encoder: Encoder::load(&vision.pp("encoder"), c.encoder, bf16)?,
            pooling: Pooling::ClassToken {
                post_norm: Norm::load(&vision.pp("post_layernorm"), w, eps)?,
                projection: vector(&projection.flatten_all()?)?,
                projection_dim: config.projection_dim,
            },
            shape: c,
        })
    }

    /// Copies a SigLIP image tower's weights (under `vision`, i.e. `vision_model.*`) into the
    /// fused layout; `bf16` as for [`Self::load`], covering the pooling head's products too.
    pub fn load_siglip(vision: &VarBuilder, c: VisionShape, bf16: bool) -> Result<Self> {
        check_bf16(bf16)?;
        let w = c.encoder.width;
        let emb = vision.pp("embeddings");
        let bias = emb.get(w, "patch_embedding.bias")?;
        let positions = emb
            .get((c.patches(), w), "position_embedding.weight")?
            .broadcast_add(&bias)?;
        Ok(Self {
            patch_weight: patch_weight(&emb, &c)?,
            class_embedding: None,
            position_embedding: vector(&positions.flatten_all()?)?,
            pre_norm: None,
            encoder: Encoder::load(&vision.pp("encoder"), c.encoder, bf16)?,
            pooling: Pooling::AttentionHead(Box::new(AttentionHead::load(
                vision, &c.encoder, bf16,
            )?)),
            shape: c,
        })
    }

    /// Tokens per image: one per patch, plus the class token if there is one.
    fn tokens(&self) -> usize {
        self.shape.patches() + usize::from(self.class_embedding.is_some())
    }

    /// Width of the features [`Self::forward`] returns.
    pub fn output_dim(&self) -> usize {
        match &self.pooling {
            Pooling::ClassToken { projection_dim, .. } => *projection_dim,
            Pooling::AttentionHead(_) => self.shape.encoder.width,
        }
    }

    /// Pooled (unnormalised) image features `[B, D]` for pixels `[B, C, H, W]` (f32, CPU).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = pixel_values.dims4()?;
        let s = &self.shape;
        if (c, h, w) != (s.channels, s.image_size, s.image_size) {
            candle_core::bail!(
                "fused image encoder: expected pixels [B, {}, {n}, {n}], got [{b}, {c}, {h}, {w}]",
                s.channels,
                n = s.image_size
            );
        }
        let pixels = pixel_values
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let features = self.forward_slice(&pixels, b);
        Tensor::from_vec(features, (b, self.output_dim()), pixel_values.device())
    }

    /// [`Self::forward`] on a flat `[B, C, H, W]` slice; returns `[B, D]` row-major.
    pub fn forward_slice(&self, pixels: &[f32], batch: usize) -> Vec<f32> {
        let threads = rayon::current_num_threads();
        let (t, w) = (self.tokens(), self.shape.encoder.width);
        let mut x = self.embed(pixels, batch, threads);
        self.encoder.forward(&mut x, batch, t, threads);
        match &self.pooling {
            Pooling::ClassToken {
                post_norm,
                projection,
                projection_dim,
            } => class_token_features(&x, t, w, post_norm, projection, *projection_dim),
            Pooling::AttentionHead(head) => head.forward(&x, &self.shape.encoder, batch, threads),
        }
    }

    /// Patch, class and position embeddings, then the pre-norm if any: `[B·T, W]`.
    fn embed(&self, pixels: &[f32], batch: usize, threads: usize) -> Vec<f32> {
        let (t, w) = (self.tokens(), self.shape.encoder.width);
        let patches = self.shape.patches();
        let unfolded = unfold_patches(pixels, batch, &self.shape);
        let patch_len = unfolded.len() / (batch * patches).max(1);
        let mut embedded = vec![0.0f32; batch * patches * w];
        self.patch_weight.product(
            &unfolded,
            &mut embedded,
            batch * patches,
            patch_len,
            w,
            false,
            threads,
        );
        drop(unfolded);
        let first = t - patches;
        let mut x = vec![0.0f32; batch * t * w];
        x.par_chunks_mut(t * w)
            .zip(embedded.par_chunks((patches * w).max(1)))
            .for_each(|(image, patches)| {
                if let Some(class) = &self.class_embedding {
                    image[..w].copy_from_slice(class);
                }
                image[first * w..].copy_from_slice(patches);
                for (v, pos) in image.iter_mut().zip(&self.position_embedding) {
                    *v += pos;
                }
            });
        match &self.pre_norm {
            Some(norm) => {
                let mut normed = vec![0.0f32; x.len()];
                norm.apply(&x, &mut normed);
                normed
            }
            None => x,
        }
    }
}

/// SigLIP's text tower fused for the CPU: token and position embeddings, the bidirectional
/// blocks, then the final norm of each prompt's last position and the head (f32).
pub struct FusedTextEncoder {
    shape: EncoderShape,
    /// Positions per prompt; every prompt is exactly this long.
    context: usize,
    /// `[vocab, width]`.
    token_embedding: Vec<f32>,
    /// `[context, width]`.
    position_embedding: Vec<f32>,
    encoder: Encoder,
    final_norm: Norm,
    head: Dense,
}

impl FusedTextEncoder {
    /// Copies a SigLIP text tower's weights (under `text`, i.e. `text_model.*`) into the fused
    /// layout.
    pub fn load_siglip(
        text: &VarBuilder,
        shape: EncoderShape,
        vocab: usize,
        context: usize,
    ) -> Result<Self> {
        let w = shape.width;
        let emb = text.pp("embeddings");
        let tokens = emb.get((vocab, w), "token_embedding.weight")?;
        let positions = emb.get((context, w), "position_embedding.weight")?;
        Ok(Self {
            context,
            token_embedding: vector(&tokens.flatten_all()?)?,
            position_embedding: vector(&positions.flatten_all()?)?,
            encoder: Encoder::load(&text.pp("encoder"), shape, false)?,
            final_norm: Norm::load(&text.pp("final_layer_norm"), w, shape.eps)?,
            head: Dense::load(&[text.pp("head")], w, w, false)?,
            shape,
        })
    }

    /// Text features `[N, width]` of `N` prompts of exactly the context length, row-major; an
    /// id outside the vocabulary or a row of another length is an error.
    pub fn forward(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>> {
        let (t, w) = (self.context, self.shape.width);
        let vocab = self.token_embedding.len() / w;
        let mut x = vec![0.0f32; ids.len() * t * w];
        for (row, sequence) in ids.iter().zip(x.chunks_mut(t * w)) {
            if row.len() != t {
                candle_core::bail!("a prompt has {} token ids; expected exactly {t}", row.len());
            }
            for ((&id, token), position) in row
                .iter()
                .zip(sequence.chunks_mut(w))
                .zip(self.position_embedding.chunks(w))
            {
                let id = id as usize;
                if id >= vocab {
                    candle_core::bail!("token id {id} is outside the vocabulary ({vocab} ids)");
                }
                let embedding = &self.token_embedding[id * w..(id + 1) * w];
                for ((v, e), p) in token.iter_mut().zip(embedding).zip(position) {
                    *v = e + p;
                }
            }
        }
        let threads = rayon::current_num_threads();
        self.encoder.forward(&mut x, ids.len(), t, threads);
        let last: Vec<f32> = x
            .chunks(t * w)
            .flat_map(|sequence| &sequence[(t - 1) * w..])
            .copied()
            .collect();
        let mut normed = vec![0.0; last.len()];
        self.final_norm.apply(&last, &mut normed);
        let mut features = vec![0.0; last.len()];
        self.head
            .forward(&normed, &mut features, ids.len(), threads);
        Ok(features)
    }
}

/// Refuses bf16 on a CPU without the instructions [`bf16::matmul`] needs.
fn check_bf16(bf16: bool) -> Result<()> {
    if bf16 && !bf16::available() {
        candle_core::bail!("bf16 image encoder: this CPU has no AVX512-BF16 instructions");
    }
    Ok(())
}

/// The patch embedding's convolution as a `[channels · patch · patch, width]` matrix (f32:
/// measured, bf16 here costs more accuracy — logit error 1.2e-2 instead of 9.9e-3 on the tiny
/// CLIP fixture — than it gains speed, 5%).
fn patch_weight(emb: &VarBuilder, c: &VisionShape) -> Result<Weight> {
    let weight = emb.get(
        (c.encoder.width, c.channels, c.patch, c.patch),
        "patch_embedding.weight",
    )?;
    let weight = weight.flatten_from(1)?.t()?.contiguous()?;
    Ok(Weight::new(
        vector(&weight.flatten_all()?)?,
        c.channels * c.patch * c.patch,
        c.encoder.width,
        false,
    ))
}

/// One row per patch, in the convolution weight's (channel, y, x) order: `[B·patches, C·p·p]`.
fn unfold_patches(pixels: &[f32], batch: usize, c: &VisionShape) -> Vec<f32> {
    let (p, size, patches) = (c.patch, c.image_size, c.patches());
    let side = size / p;
    let patch_len = c.channels * p * p;
    let image_len = c.channels * size * size;
    let mut unfolded = vec![0.0f32; batch * patches * patch_len];
    unfolded
        .par_chunks_mut(patch_len)
        .enumerate()
        .for_each(|(index, row)| {
            let (image, patch) = (index / patches, index % patches);
            let (py, px) = (patch / side, patch % side);
            let src = &pixels[image * image_len..(image + 1) * image_len];
            for ch in 0..c.channels {
                for ky in 0..p {
                    let start = ch * size * size + (py * p + ky) * size + px * p;
                    let dst = (ch * p + ky) * p;
                    row[dst..dst + p].copy_from_slice(&src[start..start + p]);
                }
            }
        });
    unfolded
}

/// CLIP's pooling: the post-norm of each image's class token, then the projection: `[B, P]`.
fn class_token_features(
    x: &[f32],
    tokens: usize,
    width: usize,
    post_norm: &Norm,
    projection: &[f32],
    projection_dim: usize,
) -> Vec<f32> {
    let cls: Vec<f32> = x
        .chunks(tokens * width)
        .flat_map(|image| &image[..width])
        .copied()
        .collect();
    let batch = cls.len() / width;
    let mut pooled = vec![0.0; cls.len()];
    post_norm.apply(&cls, &mut pooled);
    let mut features = vec![0.0; batch * projection_dim];
    kernels::matmul(
        &mut features,
        projection_dim,
        MatRef::new(&pooled, batch, width),
        MatRef::new(projection, width, projection_dim),
        1.0,
        false,
        rayon::current_num_threads(),
    );
    features
}

/// A tensor's values as a flat `Vec<f32>`.
fn vector(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}
