//! Embeddings: class embeddings from label prompts (template ensembles) and image embeddings from
//! files, in batches, with unreadable images returned as values for the caller to count.

use std::path::PathBuf;

use candle_core::Tensor;
use rayon::prelude::*;

use crate::images::{AlphaMode, ImageLimits, ImageLoadError, load_rgb_with};
use crate::model::LoadedModel;
use crate::model::clip::l2_normalize;
use crate::model::preprocess::preprocess;
use crate::model::tokenizer::TokenizerError;

/// The placeholder a template must contain.
pub const LABEL_PLACEHOLDER: &str = "{label}";

/// Why embeddings could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A template lacks the `{label}` placeholder.
    #[error("template {0:?} has no `{{label}}` placeholder")]
    TemplateWithoutLabel(String),
    /// No labels or no templates were given.
    #[error("nothing to embed: {0}")]
    Empty(&'static str),
    /// A prompt could not be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The model failed.
    #[error("model forward pass failed")]
    Candle(#[from] candle_core::Error),
}

/// Fills every `{label}` in `template` with `label`.
pub fn fill_template(template: &str, label: &str) -> Result<String, EmbedError> {
    if !template.contains(LABEL_PLACEHOLDER) {
        return Err(EmbedError::TemplateWithoutLabel(template.to_string()));
    }
    Ok(template.replace(LABEL_PLACEHOLDER, label))
}

/// How many prompts go through the text tower at once.
const TEXT_BATCH: usize = 256;

/// Normalised projected text embeddings `[N, P]` of prompts, in order.
pub fn text_embeddings(model: &LoadedModel, prompts: &[String]) -> Result<Tensor, EmbedError> {
    if prompts.is_empty() {
        return Err(EmbedError::Empty("no prompts"));
    }
    let mut parts = Vec::new();
    for chunk in prompts.chunks(TEXT_BATCH) {
        let ids = model.tokenizer.encode_batch(chunk)?;
        parts.push(l2_normalize(&model.clip.text_features(&ids)?)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// The prompts of each label: every template filled with it.
pub fn template_prompts(
    labels: &[String],
    templates: &[String],
) -> Result<Vec<Vec<String>>, EmbedError> {
    if templates.is_empty() {
        return Err(EmbedError::Empty("no templates"));
    }
    labels
        .iter()
        .map(|label| templates.iter().map(|t| fill_template(t, label)).collect())
        .collect()
}

/// One embedding per class `[C, P]` from each class's prompts: embeddings normalised, averaged
/// over the class's prompts and normalised again (the CLIP paper's prompt ensembling).
pub fn class_embeddings(
    model: &LoadedModel,
    class_prompts: &[Vec<String>],
) -> Result<Tensor, EmbedError> {
    if class_prompts.is_empty() {
        return Err(EmbedError::Empty("no labels"));
    }
    if class_prompts.iter().any(Vec::is_empty) {
        return Err(EmbedError::Empty("a class without prompts"));
    }
    let flat: Vec<String> = class_prompts.iter().flatten().cloned().collect();
    let all = text_embeddings(model, &flat)?;
    let mut start = 0;
    let mut rows = Vec::with_capacity(class_prompts.len());
    for prompts in class_prompts {
        rows.push(all.narrow(0, start, prompts.len())?.mean(0)?);
        start += prompts.len();
    }
    Ok(l2_normalize(&Tensor::stack(&rows, 0)?)?)
}

/// Image embeddings of a list of files, with the files that could not be read.
pub struct ImageEmbeddings {
    /// Normalised embeddings `[K, P]` of the readable images.
    pub embeddings: Tensor,
    /// For each embedding row, the index of its file in the input list.
    pub indices: Vec<usize>,
    /// Files that could not be read or decoded, by input index.
    pub failures: Vec<(usize, ImageLoadError)>,
}

/// Pixel tensor `[B, 3, H, W]` for already-preprocessed CHW images.
pub fn pixel_batch(model: &LoadedModel, pixels: Vec<Vec<f32>>) -> Result<Tensor, EmbedError> {
    // `LoadedModel::load` checked that preprocessing yields exactly this square size
    let side = model.clip.config().vision_config.image_size;
    let b = pixels.len();
    let flat: Vec<f32> = pixels.into_iter().flatten().collect();
    Ok(Tensor::from_vec(flat, (b, 3, side, side), &model.device)?)
}

/// Normalised image embeddings `[B, P]` for a pixel tensor.
pub fn image_embeddings(model: &LoadedModel, pixels: &Tensor) -> Result<Tensor, EmbedError> {
    Ok(l2_normalize(&model.clip.image_features(pixels)?)?)
}

/// Decodes (within `limits`), preprocesses (in parallel, one image per worker thread) and encodes
/// image files `batch_size` at a time; `on_batch` is told how many files each batch covered.
pub fn embed_image_files(
    model: &LoadedModel,
    paths: &[PathBuf],
    batch_size: usize,
    limits: &ImageLimits,
    mut on_batch: impl FnMut(usize),
) -> Result<ImageEmbeddings, EmbedError> {
    let batch_size = batch_size.max(1);
    let mut parts = Vec::new();
    let mut indices = Vec::new();
    let mut failures = Vec::new();
    for (chunk_no, chunk) in paths.chunks(batch_size).enumerate() {
        let loaded: Vec<Result<Vec<f32>, ImageLoadError>> = chunk
            .par_iter()
            .map(|p| {
                load_rgb_with(p, AlphaMode::default(), limits)
                    .map(|img| preprocess(&img, &model.preprocess))
            })
            .collect();
        let mut pixels = Vec::with_capacity(chunk.len());
        for (offset, result) in loaded.into_iter().enumerate() {
            let index = chunk_no * batch_size + offset;
            match result {
                Ok(p) => {
                    pixels.push(p);
                    indices.push(index);
                }
                Err(e) => failures.push((index, e)),
            }
        }
        if !pixels.is_empty() {
            let batch = pixel_batch(model, pixels)?;
            parts.push(image_embeddings(model, &batch)?);
        }
        on_batch(chunk.len());
    }
    let embeddings = if parts.is_empty() {
        Tensor::zeros(
            (0, model.clip.config().projection_dim),
            candle_core::DType::F32,
            &model.device,
        )?
    } else {
        Tensor::cat(&parts, 0)?
    };
    Ok(ImageEmbeddings {
        embeddings,
        indices,
        failures,
    })
}

/// Cosine similarities `[B, C]` between normalised image and class embeddings.
pub fn cosine(images: &Tensor, classes: &Tensor) -> Result<Tensor, EmbedError> {
    Ok(images.matmul(&classes.t()?)?.contiguous()?)
}
