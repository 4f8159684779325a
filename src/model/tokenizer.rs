//! CLIP's tokenizer: the checkpoint's `tokenizer.json` (byte-level BPE) behind the text clean-up
//! that OpenAI's `clip.tokenize` applies and Hugging Face's tokenizer does not (HTML entities,
//! curly quotes, ligatures, full-width letters), with start/end tokens and truncation that keeps
//! the end token.

use std::path::Path;

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file does not parse as a `tokenizers` JSON file.
    #[error("{file}: not a valid tokenizer.json: {reason}")]
    Load {
        /// The tokenizer file.
        file: String,
        /// What the parser reported.
        reason: String,
    },
    /// The file does not parse as a SentencePiece model (or one clip-audit can use).
    #[error("{file}: not a usable SentencePiece model: {reason}")]
    Spiece {
        /// The `spiece.model` file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The vocabulary lacks a special token CLIP needs.
    #[error("{file}: the vocabulary has no `{token}` token, so it is not a CLIP tokenizer")]
    MissingSpecial {
        /// The tokenizer file.
        file: String,
        /// The missing token.
        token: &'static str,
    },
    /// Encoding a prompt failed.
    #[error("cannot tokenize {text:?}: {reason}")]
    Encode {
        /// The prompt.
        text: String,
        /// What the tokenizer reported.
        reason: String,
    },
}

/// Start-of-text token of CLIP's vocabulary.
pub const START_OF_TEXT: &str = "<|startoftext|>";
/// End-of-text token of CLIP's vocabulary (also used for padding).
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// OpenAI's CLIP tokenizer (its BPE vocabulary as a `tokenizer.json`), built in for checkpoints
/// that ship none (OpenCLIP's) and for `bench`'s random-weight presets.
pub const BUILTIN_CLIP_TOKENIZER: &[u8] =
    include_bytes!("../../tests/fixtures/tiny-clip/tokenizer.json");

/// How provenance and errors name [`BUILTIN_CLIP_TOKENIZER`].
pub const BUILTIN_CLIP_TOKENIZER_NAME: &str = "tokenizer.json (built-in OpenAI CLIP BPE)";

/// A CLIP tokenizer producing id rows ready for the text tower.
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    context_length: usize,
    start_id: u32,
    end_id: u32,
}

impl ClipTokenizer {
    /// Loads `tokenizer.json`; prompts are cut to `context_length` tokens.
    pub fn from_file(path: &Path, context_length: usize) -> Result<Self, TokenizerError> {
        let file = path.display().to_string();
        let bytes = crate::input_file::read_regular_file(
            path,
            crate::input_file::MAX_TEXT_INPUT_BYTES,
            "limit for text inputs",
        )
        .map_err(|e| TokenizerError::Load {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &file, context_length)
    }

    /// OpenAI's CLIP tokenizer built into clip-audit ([`BUILTIN_CLIP_TOKENIZER`]).
    pub fn builtin(context_length: usize) -> Result<Self, TokenizerError> {
        Self::from_bytes(
            BUILTIN_CLIP_TOKENIZER,
            BUILTIN_CLIP_TOKENIZER_NAME,
            context_length,
        )
    }

    /// Reads a `tokenizer.json` held in memory; `file` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        file: &str,
        context_length: usize,
    ) -> Result<Self, TokenizerError> {
        let file = file.to_string();
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError::Load {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let id = |token| {
            inner
                .token_to_id(token)
                .ok_or_else(|| TokenizerError::MissingSpecial {
                    file: file.clone(),
                    token,
                })
        };
        Ok(Self {
            start_id: id(START_OF_TEXT)?,
            end_id: id(END_OF_TEXT)?,
            inner,
            context_length,
        })
    }

    /// The id of the end-of-text token (pads batches).
    pub fn end_id(&self) -> u32 {
        self.end_id
    }

    /// Token ids of one prompt: start token, BPE tokens, end token; at most the context length,
    /// cut like `clip.tokenize(truncate=True)` (the last kept position becomes the end token).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let clean = clean_prompt(text);
        let encoding =
            self.inner
                .encode(clean.as_str(), false)
                .map_err(|e| TokenizerError::Encode {
                    text: text.to_string(),
                    reason: e.to_string(),
                })?;
        let mut ids = Vec::with_capacity(encoding.len() + 2);
        ids.push(self.start_id);
        ids.extend_from_slice(encoding.get_ids());
        ids.push(self.end_id);
        if ids.len() > self.context_length {
            ids.truncate(self.context_length);
            if let Some(last) = ids.last_mut() {
                *last = self.end_id;
            }
        }
        Ok(ids)
    }

    /// Token ids of several prompts, padded with the end token to the longest row.
    pub fn encode_batch(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        let mut rows = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        for row in &mut rows {
            row.resize(width, self.end_id);
        }
        Ok(rows)
    }
}

/// OpenAI's prompt clean-up (`basic_clean` + `whitespace_clean` + lower-casing in
/// `clip/simple_tokenizer.py`): the parts of `ftfy.fix_text` that matter for prompts, HTML
/// entities unescaped twice, runs of white space collapsed, lower case. Mojibake repair is not done.
pub fn clean_prompt(text: &str) -> String {
    let fixed = fix_text(text);
    let once = html_escape::decode_html_entities(&fixed).into_owned();
    let twice = html_escape::decode_html_entities(&once).into_owned();
    let collapsed = twice.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.to_lowercase()
}

/// The character-level fixes of `ftfy.fix_text` (defaults): curly quotes straightened, Latin
/// ligatures split, full-width ASCII narrowed, control characters dropped.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{02bc}' | '\u{2018}'..='\u{201b}' => out.push('\''),
            '\u{201c}'..='\u{201f}' => out.push('"'),
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ff5e}' => {
                out.push(char::from_u32(c as u32 - 0xfee0).unwrap_or(c));
            }
            '\t' | '\n' | '\r' | '\u{0c}' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_openai() {
        assert_eq!(
            clean_prompt("  A PHOTO of\t\n a Thief!! "),
            "a photo of a thief!!"
        );
        assert_eq!(clean_prompt("Tom &amp; Jerry"), "tom & jerry");
        assert_eq!(clean_prompt("Tom &amp;amp; Jerry"), "tom & jerry");
        assert_eq!(clean_prompt("don\u{2019}t"), "don't");
        assert_eq!(clean_prompt("\u{fb01}sh \u{ff21}B"), "fish ab");
        assert_eq!(clean_prompt("a\u{0007}b"), "ab");
    }
}
