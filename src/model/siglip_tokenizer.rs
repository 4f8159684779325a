//! SigLIP's tokenizer from a checkpoint's `tokenizer.json` (SigLIP 2 ships Gemma's: the file's
//! own normaliser, pre-tokeniser and post-processor) or, failing that, its SentencePiece
//! `spiece.model` (the `google/siglip-*` repositories: transformers' `SiglipTokenizer`, with its
//! text canonicalisation and `</s>` appended); every prompt cut to the text tower's context length
//! and padded to exactly that length with the configured pad id, as transformers' processor does
//! (`padding="max_length"`, `truncation=True`).

use std::path::Path;

use tokenizers::{PaddingParams, PaddingStrategy, TruncationParams};

use super::spiece::{self, SpieceModel};
use super::tokenizer::TokenizerError;

/// The SentencePiece model file name of the `google/siglip-*` repositories.
pub const SPIECE_FILE: &str = "spiece.model";

/// A SigLIP tokenizer producing rows of exactly the context length.
pub struct SiglipTokenizer {
    inner: tokenizers::Tokenizer,
    /// Whether prompts are canonicalised first (`SiglipTokenizer` over `spiece.model`).
    canonical: bool,
    /// Pieces `SiglipTokenizer` splits out of a prompt as special tokens before canonicalising
    /// (`</s>`, the unknown piece and the pad piece); a prompt containing one is refused.
    reserved: Vec<String>,
}

impl SiglipTokenizer {
    /// Loads `tokenizer.json` (or a file named `spiece.model`, read as SentencePiece) for a text
    /// tower with `context_length` positions, `vocab_size` token embeddings and pad id `pad_id`;
    /// a vocabulary larger than the embedding table is an error naming the file.
    pub fn from_file(
        path: &Path,
        context_length: usize,
        vocab_size: usize,
        pad_id: u32,
    ) -> Result<Self, TokenizerError> {
        let file = path.display().to_string();
        let canonical = path.file_name() == Some(std::ffi::OsStr::new(SPIECE_FILE));
        let load = |reason: String| {
            let file = file.clone();
            if canonical {
                TokenizerError::Spiece { file, reason }
            } else {
                TokenizerError::Load { file, reason }
            }
        };
        let bytes = crate::input_file::read_regular_file(
            path,
            crate::input_file::MAX_TEXT_INPUT_BYTES,
            "limit for text inputs",
        )
        .map_err(|e| load(e.to_string()))?;
        let (mut inner, mut reserved) = if canonical {
            spiece_tokenizer(&bytes).map_err(load)?
        } else {
            let inner =
                tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| load(e.to_string()))?;
            (inner, Vec::new())
        };
        let size = inner.get_vocab_size(true);
        if size > vocab_size {
            return Err(load(format!(
                "its vocabulary has {size} tokens, but the text tower's embedding table \
                 (config.json `text_config.vocab_size`) has {vocab_size}"
            )));
        }
        let pad_token = inner.id_to_token(pad_id).unwrap_or_default();
        if canonical && !pad_token.is_empty() && !reserved.contains(&pad_token) {
            reserved.push(pad_token.clone());
        }
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
        Ok(SiglipTokenizer {
            inner,
            canonical,
            reserved,
        })
    }

    /// Token ids of one prompt, exactly the context length long.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let canonical;
        if let Some(piece) = self.reserved.iter().find(|p| text.contains(p.as_str())) {
            return Err(TokenizerError::Encode {
                text: text.to_string(),
                reason: format!(
                    "it contains `{piece}`, which SiglipTokenizer reads as a special token, not \
                     as text (the ids would not be the prompt's words); reword the prompt"
                ),
            });
        }
        let input = if self.canonical {
            canonical = spiece::canonicalize(text);
            canonical.as_str()
        } else {
            text
        };
        let encoding = self
            .inner
            .encode(input, true)
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

/// The tokenizer of a `spiece.model`'s bytes, ending every prompt with its `</s>` piece, and the
/// special pieces (`</s>`, the unknown piece) a prompt must not contain.
fn spiece_tokenizer(bytes: &[u8]) -> Result<(tokenizers::Tokenizer, Vec<String>), String> {
    let model = SpieceModel::parse(bytes)?;
    let eos = model.id_of(spiece::EOS_PIECE).ok_or_else(|| {
        format!(
            "the vocabulary has no `{}` piece, which SigLIP ends every prompt with",
            spiece::EOS_PIECE
        )
    })?;
    let mut reserved = vec![spiece::EOS_PIECE.to_string()];
    let unknown = &model.pieces[model.unk_id].piece;
    if !reserved.contains(unknown) {
        reserved.push(unknown.clone());
    }
    Ok((model.tokenizer(eos)?, reserved))
}
