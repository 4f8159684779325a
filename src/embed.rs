//! Embeddings: class embeddings from label prompts (template ensembles) and image embeddings of
//! preprocessed pixel batches (the streaming [`crate::pipeline`] feeds them).

use candle_core::Tensor;

use crate::model::LoadedModel;
use crate::model::clip::l2_normalize;
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
        parts.push(l2_normalize(&model.towers.text_features(&ids)?)?);
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

/// Pixel tensor `[B, 3, H, W]` for already-preprocessed CHW images.
pub fn pixel_batch(model: &LoadedModel, pixels: Vec<Vec<f32>>) -> Result<Tensor, EmbedError> {
    // `LoadedModel::load` checked that preprocessing yields exactly this square size
    let side = model.towers.image_size();
    let b = pixels.len();
    let flat: Vec<f32> = pixels.into_iter().flatten().collect();
    Ok(Tensor::from_vec(flat, (b, 3, side, side), &model.device)?)
}

/// Normalised image embeddings `[B, P]` for a pixel tensor.
pub fn image_embeddings(model: &LoadedModel, pixels: &Tensor) -> Result<Tensor, EmbedError> {
    Ok(l2_normalize(&model.towers.image_features(pixels)?)?)
}

/// Cosine similarities `[B, C]` between normalised image and class embeddings.
pub fn cosine(images: &Tensor, classes: &Tensor) -> Result<Tensor, EmbedError> {
    Ok(images.matmul(&classes.t()?)?.contiguous()?)
}
