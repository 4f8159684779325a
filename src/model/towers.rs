//! The one encoder interface the pipeline sees, over the model families: text and image
//! features, the embedding width and input size, and how similarities become scores.

use candle_core::{Result, Tensor};

use super::clip::{ClipModel, ImageEncoderKind};
use super::siglip::SiglipModel;
use super::siglip_tokenizer::SiglipTokenizer;
use super::tokenizer::{ClipTokenizer, TokenizerError};

/// A checkpoint family, chosen from its files (`open_clip_config.json`) and `config.json`'s
/// `model_type`, never from a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// transformers `CLIPModel` (OpenAI CLIP, and checkpoints exported to its layout).
    Clip,
    /// transformers `SiglipModel` (SigLIP, fixed-resolution SigLIP 2).
    Siglip,
    /// OpenCLIP's own layout (`open_clip_config.json`), run by the CLIP engine.
    OpenClip,
}

impl Family {
    /// The family of a `config.json` by its `model_type` (`clip`, or absent in old exports;
    /// `siglip`); another value is `Err` with that value.
    pub fn of_model_type(model_type: Option<&str>) -> std::result::Result<Family, String> {
        match model_type {
            None | Some("clip") => Ok(Family::Clip),
            Some("siglip") => Ok(Family::Siglip),
            Some(other) => Err(other.to_string()),
        }
    }

    /// The lower-case name (`clip`, `siglip`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Clip => "clip",
            Family::Siglip => "siglip",
            Family::OpenClip => "openclip",
        }
    }
}

/// How a model turns cosine similarities into logits and probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// CLIP: `logits = scale·cos`, probabilities their softmax over the labels.
    Softmax {
        /// `exp(logit_scale)`.
        scale: f32,
    },
    /// SigLIP: `logits = scale·cos + bias`, probabilities their sigmoids, independent per label.
    Sigmoid {
        /// `exp(logit_scale)`.
        scale: f32,
        /// `logit_bias`.
        bias: f32,
    },
}

impl Scoring {
    /// How the report says it, e.g. `softmax over the labels (CLIP)`.
    pub fn describe(self) -> &'static str {
        Self::describe_named(self.name()).unwrap_or_default()
    }

    /// [`Self::describe`] of the scoring called `name` (as [`Self::name`] gives it and `run.json`
    /// records it); `None` for an unknown name.
    pub fn describe_named(name: &str) -> Option<&'static str> {
        match name {
            "softmax" => Some("softmax over the labels (CLIP)"),
            "sigmoid" => Some(
                "sigmoid of exp(logit_scale)·cos + logit_bias, independent per label (SigLIP); \
                 the prediction is the most probable label",
            ),
            _ => None,
        }
    }

    /// `softmax` or `sigmoid`, as `run.json` and `classify --format json` say it.
    pub fn name(self) -> &'static str {
        match self {
            Scoring::Softmax { .. } => "softmax",
            Scoring::Sigmoid { .. } => "sigmoid",
        }
    }
}

/// A loaded model's two towers, of whichever family.
pub enum Towers {
    /// A CLIP checkpoint.
    Clip(Box<ClipModel>),
    /// A SigLIP checkpoint.
    Siglip(Box<SiglipModel>),
}

impl Towers {
    /// The CLIP model, for CLIP-only tools (parity tests, the encoder's FLOP count).
    pub fn as_clip(&self) -> Option<&ClipModel> {
        match self {
            Towers::Clip(clip) => Some(clip),
            Towers::Siglip(_) => None,
        }
    }

    /// Projected (unnormalised) text features `[B, D]` of token id rows.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        match self {
            Towers::Clip(clip) => clip.text_features(ids),
            Towers::Siglip(siglip) => siglip.text_features(ids),
        }
    }

    /// Projected (unnormalised) image features `[B, D]` of pixels `[B, 3, S, S]`.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        match self {
            Towers::Clip(clip) => clip.image_features(pixels),
            Towers::Siglip(siglip) => siglip.image_features(pixels),
        }
    }

    /// Width of the joint embedding space.
    pub fn embedding_dim(&self) -> usize {
        match self {
            Towers::Clip(clip) => clip.config().projection_dim,
            Towers::Siglip(siglip) => siglip.config().embedding_dim(),
        }
    }

    /// Side of the square input image.
    pub fn image_size(&self) -> usize {
        match self {
            Towers::Clip(clip) => clip.config().vision_config.image_size,
            Towers::Siglip(siglip) => siglip.config().image_size(),
        }
    }

    /// How similarities become logits and probabilities.
    pub fn scoring(&self) -> Scoring {
        match self {
            Towers::Clip(clip) => Scoring::Softmax {
                scale: clip.logit_scale(),
            },
            Towers::Siglip(siglip) => Scoring::Sigmoid {
                scale: siglip.logit_scale(),
                bias: siglip.logit_bias(),
            },
        }
    }

    /// The image tower computed with.
    pub fn image_encoder_kind(&self) -> ImageEncoderKind {
        match self {
            Towers::Clip(clip) => clip.image_encoder_kind(),
            Towers::Siglip(siglip) => siglip.image_encoder_kind(),
        }
    }

    /// Builds the lazily loaded image tower now (so its cost shows up in load time).
    pub fn load_image_tower(&self) -> Result<()> {
        match self {
            Towers::Clip(clip) => clip.load_image_tower(),
            Towers::Siglip(siglip) => siglip.load_image_tower(),
        }
    }
}

/// A checkpoint's tokenizer, of whichever family.
pub enum TextTokenizer {
    /// CLIP's, with OpenAI's prompt clean-up; rows padded to the longest.
    Clip(ClipTokenizer),
    /// SigLIP's, rows padded to the context length.
    Siglip(SiglipTokenizer),
}

impl TextTokenizer {
    /// Token id rows of prompts, ready for [`Towers::text_features`].
    pub fn encode_batch(
        &self,
        texts: &[String],
    ) -> std::result::Result<Vec<Vec<u32>>, TokenizerError> {
        match self {
            TextTokenizer::Clip(clip) => clip.encode_batch(texts),
            TextTokenizer::Siglip(siglip) => siglip.encode_batch(texts),
        }
    }
}
