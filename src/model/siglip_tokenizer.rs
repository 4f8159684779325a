//! SigLIP's tokenizer from a checkpoint's `tokenizer.json` (SigLIP 2 ships Gemma's): the file's
//! own normaliser, pre-tokeniser and post-processor, every prompt cut to the text tower's context
//! length and padded to exactly that length with the configured pad id, as transformers'
//! processor does (`padding="max_length"`, `truncation=True`).

use std::path::Path;

use tokenizers::{PaddingParams, PaddingStrategy, TruncationParams};

use super::tokenizer::TokenizerError;

/// A SigLIP tokenizer producing rows of exactly the context length.
pub struct SiglipTokenizer {
    inner: tokenizers::Tokenizer,
}

impl SiglipTokenizer {
    /// Loads `tokenizer.json` for a text tower with `context_length` positions, `vocab_size`
    /// token embeddings and pad id `pad_id`; a vocabulary larger than the embedding table is an
    /// error naming the file.
    pub fn from_file(
        path: &Path,
        context_length: usize,
        vocab_size: usize,
        pad_id: u32,
    ) -> Result<Self, TokenizerError> {
        let file = path.display().to_string();
        let load = |reason: String| TokenizerError::Load {
            file: file.clone(),
            reason,
        };
        let bytes = crate::input_file::read_regular_file(
            path,
            crate::input_file::MAX_TEXT_INPUT_BYTES,
            "limit for text inputs",
        )
        .map_err(|e| load(e.to_string()))?;
        let mut inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| load(e.to_string()))?;
        let size = inner.get_vocab_size(true);
        if size > vocab_size {
            return Err(load(format!(
                "its vocabulary has {size} tokens, but the text tower's embedding table \
                 (config.json `text_config.vocab_size`) has {vocab_size}"
            )));
        }
        let pad_token = inner.id_to_token(pad_id).unwrap_or_default();
        inner
            .with_truncation(Some(TruncationParams {
                max_length: context_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| load(e.to_string()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(context_length),
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        Ok(SiglipTokenizer { inner })
    }

    /// Token ids of one prompt, exactly the context length long.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| TokenizerError::Encode {
                text: text.to_string(),
                reason: e.to_string(),
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of several prompts, each exactly the context length long.
    pub fn encode_batch(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        texts.iter().map(|t| self.encode(t)).collect()
    }
}
