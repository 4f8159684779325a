//! The CLIP image tower as one fused CPU forward pass, for throughput.
//!
//! Same weights and the same operations as [`super::clip::ClipVisionTransformer`] followed by the
//! visual projection, but organised for the CPU:
//! - weights are copied once at load into contiguous `[in, out]` matrices, q/k/v as one matrix;
//! - every linear layer is one `gemm` call over the whole batch, with bias and residual added by
//!   accumulating into a destination that already holds them (no extra tensors);
//! - the patch embedding is one matrix product over unfolded patches;
//! - attention runs image by image in parallel, reading q/k/v in place (no head transposes);
//! - activations, softmax and layer norm use the vectorised kernels of [`super::kernels`].
//!
//! Results agree with the plain candle forward to float rounding (tests in `tests/parity.rs`).

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
        let weight = Tensor::cat(&weights, 0)?.t()?.contiguous()?;
        let weight = vector(&weight.flatten_all()?)?;
        let outputs = outputs * vbs.len();
        Ok(Self {
            weight: Weight::new(weight, inputs, outputs, bf16),
            bias: vector(&Tensor::cat(&biases, 0)?)?,
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

/// One pre-norm transformer block.
struct Block {
    norm1: Norm,
    qkv: Dense,
    out: Dense,
    norm2: Norm,
    fc1: Dense,
    fc2: Dense,
}

impl Block {
    /// Copies encoder layer `layer`'s weights into the fused layout (linear layers in bf16 with
    /// `bf16`).
    fn load(layer: &VarBuilder, c: &ClipVisionConfig, bf16: bool) -> Result<Self> {
        let w = c.hidden_size;
        let attn = layer.pp("self_attn");
        Ok(Self {
            norm1: Norm::load(&layer.pp("layer_norm1"), w, c.layer_norm_eps)?,
            qkv: Dense::load(
                &[attn.pp("q_proj"), attn.pp("k_proj"), attn.pp("v_proj")],
                w,
                w,
                bf16,
            )?,
            out: Dense::load(&[attn.pp("out_proj")], w, w, bf16)?,
            norm2: Norm::load(&layer.pp("layer_norm2"), w, c.layer_norm_eps)?,
            fc1: Dense::load(&[layer.pp("mlp").pp("fc1")], w, c.intermediate_size, bf16)?,
            fc2: Dense::load(&[layer.pp("mlp").pp("fc2")], c.intermediate_size, w, bf16)?,
        })
    }
}

/// Reusable activations of one forward pass.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    hidden: Vec<f32>,
}

/// The image tower and visual projection, fused for the CPU (f32).
pub struct FusedVisionEncoder {
    width: usize,
    heads: usize,
    intermediate: usize,
    channels: usize,
    image_size: usize,
    patch: usize,
    activation: Activation,
    /// `[channels · patch · patch, width]`.
    patch_weight: Weight,
    class_embedding: Vec<f32>,
    /// `[positions, width]`.
    position_embedding: Vec<f32>,
    pre_norm: Norm,
    blocks: Vec<Block>,
    post_norm: Norm,
    /// `[width, projection_dim]`.
    projection: Vec<f32>,
    projection_dim: usize,
}

impl FusedVisionEncoder {
    /// Copies the image tower's weights (`vision_model.*`, `visual_projection.weight`) out of a
    /// checkpoint into the fused layout. With `bf16`, the transformer blocks' linear layers are
    /// rounded to bf16 and computed with [`bf16::matmul`] (the CPU must pass
    /// [`bf16::available`]); the patch embedding, attention scores, norms and projection stay f32.
    pub fn load(vb: &VarBuilder, config: &ClipConfig, bf16: bool) -> Result<Self> {
        if bf16 && !bf16::available() {
            candle_core::bail!("bf16 image encoder: this CPU has no AVX512-BF16 instructions");
        }
        let c = &config.vision_config;
        let w = c.hidden_size;
        let vision = vb.pp("vision_model");
        let emb = vision.pp("embeddings");
        let patch_weight = emb.get(
            (w, c.num_channels, c.patch_size, c.patch_size),
            "patch_embedding.weight",
        )?;
        let patch_weight = patch_weight.flatten_from(1)?.t()?.contiguous()?;
        let positions = config.vision_positions();
        // blocks load in parallel: each copies and transposes its weights out of the mapped file
        let blocks = (0..c.num_hidden_layers)
            .into_par_iter()
            .map(|i| {
                Block::load(
                    &vision.pp("encoder").pp("layers").pp(i.to_string()),
                    c,
                    bf16,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let projection = vb
            .get((config.projection_dim, w), "visual_projection.weight")?
            .t()?
            .contiguous()?;
        Ok(Self {
            width: w,
            heads: c.num_attention_heads,
            intermediate: c.intermediate_size,
            channels: c.num_channels,
            image_size: c.image_size,
            patch: c.patch_size,
            activation: c.hidden_act,
            patch_weight: Weight::new(
                vector(&patch_weight.flatten_all()?)?,
                c.num_channels * c.patch_size * c.patch_size,
                w,
                // measured: bf16 here costs more accuracy (logit error 1.2e-2 instead of
                // 9.9e-3 on the tiny fixture) than it gains speed (5%)
                false,
            ),
            class_embedding: vector(&emb.get(w, "class_embedding")?)?,
            position_embedding: vector(
                &emb.get((positions, w), "position_embedding.weight")?
                    .flatten_all()?,
            )?,
            pre_norm: Norm::load(&vision.pp("pre_layrnorm"), w, c.layer_norm_eps)?,
            blocks,
            post_norm: Norm::load(&vision.pp("post_layernorm"), w, c.layer_norm_eps)?,
            projection: vector(&projection.flatten_all()?)?,
            projection_dim: config.projection_dim,
        })
    }

    /// Tokens per image: one per patch plus the class token.
    fn tokens(&self) -> usize {
        let side = self.image_size / self.patch;
        side * side + 1
    }

    /// Projected (unnormalised) image features `[B, P]` for pixels `[B, C, H, W]` (f32, CPU).
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = pixel_values.dims4()?;
        if (c, h, w) != (self.channels, self.image_size, self.image_size) {
            candle_core::bail!(
                "fused image encoder: expected pixels [B, {}, {s}, {s}], got [{b}, {c}, {h}, {w}]",
                self.channels,
                s = self.image_size
            );
        }
        let pixels = pixel_values
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let features = self.forward_slice(&pixels, b);
        Tensor::from_vec(features, (b, self.projection_dim), pixel_values.device())
    }

    /// [`Self::forward`] on a flat `[B, C, H, W]` slice; returns `[B, P]` row-major.
    pub fn forward_slice(&self, pixels: &[f32], batch: usize) -> Vec<f32> {
        let threads = rayon::current_num_threads();
        let (t, w) = (self.tokens(), self.width);
        let rows = batch * t;
        let mut x = self.embed(pixels, batch, threads);
        let mut scratch = Scratch {
            normed: vec![0.0; rows * w],
            qkv: vec![0.0; rows * 3 * w],
            attended: vec![0.0; rows * w],
            hidden: vec![0.0; rows * self.intermediate],
        };
        for block in &self.blocks {
            self.block(block, &mut x, &mut scratch, batch, threads);
        }
        // post-norm of each image's class token, then the projection
        let cls: Vec<f32> = x
            .chunks(t * w)
            .flat_map(|image| &image[..w])
            .copied()
            .collect();
        let mut pooled = vec![0.0; batch * w];
        self.post_norm.apply(&cls, &mut pooled);
        let mut features = vec![0.0; batch * self.projection_dim];
        kernels::matmul(
            &mut features,
            self.projection_dim,
            MatRef::new(&pooled, batch, w),
            MatRef::new(&self.projection, w, self.projection_dim),
            1.0,
            false,
            threads,
        );
        features
    }

    /// Patch, class and position embeddings followed by the pre-norm: `[B·T, W]`.
    fn embed(&self, pixels: &[f32], batch: usize, threads: usize) -> Vec<f32> {
        let (t, w, p) = (self.tokens(), self.width, self.patch);
        let side = self.image_size / p;
        let patch_len = self.channels * p * p;
        let image_len = self.channels * self.image_size * self.image_size;
        // unfold: one row per patch, in the conv weight's (channel, y, x) order
        let mut patches = vec![0.0f32; batch * (t - 1) * patch_len];
        patches
            .par_chunks_mut(patch_len)
            .enumerate()
            .for_each(|(index, row)| {
                let (image, patch) = (index / (t - 1), index % (t - 1));
                let (py, px) = (patch / side, patch % side);
                let src = &pixels[image * image_len..(image + 1) * image_len];
                for ch in 0..self.channels {
                    for ky in 0..p {
                        let start = ch * self.image_size * self.image_size
                            + (py * p + ky) * self.image_size
                            + px * p;
                        let dst = (ch * p + ky) * p;
                        row[dst..dst + p].copy_from_slice(&src[start..start + p]);
                    }
                }
            });
        let mut embedded = vec![0.0f32; batch * (t - 1) * w];
        self.patch_weight.product(
            &patches,
            &mut embedded,
            batch * (t - 1),
            patch_len,
            w,
            false,
            threads,
        );
        drop(patches);
        let mut x = vec![0.0f32; batch * t * w];
        x.par_chunks_mut(t * w)
            .zip(embedded.par_chunks(((t - 1) * w).max(1)))
            .for_each(|(image, patches)| {
                image[..w].copy_from_slice(&self.class_embedding);
                image[w..].copy_from_slice(patches);
                for (v, pos) in image.iter_mut().zip(&self.position_embedding) {
                    *v += pos;
                }
            });
        let mut normed = vec![0.0f32; x.len()];
        self.pre_norm.apply(&x, &mut normed);
        normed
    }

    /// One transformer block, updating the residual stream `x` in place.
    fn block(&self, block: &Block, x: &mut [f32], s: &mut Scratch, batch: usize, threads: usize) {
        let rows = batch * self.tokens();
        block.norm1.apply(x, &mut s.normed);
        block.qkv.forward(&s.normed, &mut s.qkv, rows, threads);
        self.attention(&s.qkv, &mut s.attended, batch);
        block.out.forward_residual(&s.attended, x, rows, threads);
        block.norm2.apply(x, &mut s.normed);
        block.fc1.forward(&s.normed, &mut s.hidden, rows, threads);
        let activation = self.activation;
        s.hidden
            .par_chunks_mut(self.intermediate * ROWS_PER_TASK)
            .for_each(|h| match activation {
                Activation::QuickGelu => kernels::quick_gelu(h),
                Activation::Gelu => kernels::gelu_erf(h),
                Activation::GeluTanh => kernels::gelu_tanh(h),
                Activation::Relu => kernels::relu(h),
            });
        block.fc2.forward_residual(&s.hidden, x, rows, threads);
    }

    /// Multi-head self-attention of every image, in parallel over images; `qkv` rows are
    /// `[q | k | v]` of width `3W`, heads side by side within each.
    fn attention(&self, qkv: &[f32], out: &mut [f32], batch: usize) {
        let (t, w) = (self.tokens(), self.width);
        let head_dim = w / self.heads;
        let scale = (head_dim as f32).powf(-0.5);
        out.par_chunks_mut(t * w)
            .zip(qkv.par_chunks(t * 3 * w))
            .take(batch)
            .for_each(|(out, qkv)| {
                let mut scores = vec![0.0f32; t * t];
                for head in 0..self.heads {
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

/// A tensor's values as a flat `Vec<f32>`.
fn vector(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}
