//! A SentencePiece `spiece.model` (what the `google/siglip-*` repositories ship instead of a
//! `tokenizer.json`) read with a small, strict protobuf reader, and turned into a `tokenizers`
//! unigram tokenizer that splits words on `▁` and applies the file's NFKC rules, as SentencePiece
//! does. [`canonicalize`] is transformers' `SiglipTokenizer.canonicalize_text`.

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Replace, Sequence, Strip};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;

/// The end-of-sequence piece `SiglipTokenizer` appends.
pub const EOS_PIECE: &str = "</s>";

/// Piece types of SentencePiece's `ModelProto.SentencePiece.Type`.
const TYPE_NORMAL: u64 = 1;
const TYPE_UNKNOWN: u64 = 2;
const TYPE_BYTE: u64 = 6;
/// `TrainerSpec.ModelType.UNIGRAM`.
const MODEL_UNIGRAM: u64 = 1;

/// One piece of the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The piece's text (`▁` marks a word start).
    pub piece: String,
    /// Its log-probability.
    pub score: f32,
    /// Its SentencePiece type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    pub kind: u64,
}

/// What clip-audit reads from a `spiece.model`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpieceModel {
    /// The vocabulary, in id order.
    pub pieces: Vec<Piece>,
    /// The id of the single unknown piece.
    pub unk_id: usize,
    /// Whether unknown characters fall back to byte pieces.
    pub byte_fallback: bool,
    /// The normaliser's compiled character map (empty for the identity normaliser).
    pub charsmap: Vec<u8>,
}

impl SpieceModel {
    /// Parses the bytes of a `spiece.model`; the error says what is wrong (the caller names the file).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let (mut model_type, mut byte_fallback, mut charsmap) = (MODEL_UNIGRAM, false, Vec::new());
        let mut fields = Fields::new(bytes);
        while let Some((number, value)) = fields.next_field()? {
            match number {
                1 => pieces.push(parse_piece(value.bytes("ModelProto.pieces")?)?),
                2 => {
                    let spec = parse_trainer_spec(value.bytes("ModelProto.trainer_spec")?)?;
                    (model_type, byte_fallback) = spec;
                }
                3 => charsmap = parse_normalizer_spec(value.bytes("ModelProto.normalizer_spec")?)?,
                _ => {}
            }
        }
        if model_type != MODEL_UNIGRAM {
            return Err(format!(
                "trainer_spec.model_type is {model_type}; only unigram models (1) are supported"
            ));
        }
        let unk: Vec<usize> = (0..pieces.len())
            .filter(|&i| pieces[i].kind == TYPE_UNKNOWN)
            .collect();
        let [unk_id] = unk[..] else {
            return Err(format!(
                "expected exactly one piece of type unknown (2), found {} among {} pieces",
                unk.len(),
                pieces.len()
            ));
        };
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = pieces.iter().find(|p| !seen.insert(p.piece.as_str())) {
            return Err(format!("the piece {:?} is defined twice", dup.piece));
        }
        Ok(Self {
            pieces,
            unk_id,
            byte_fallback,
            charsmap,
        })
    }

    /// The id of `piece`, if the vocabulary has it.
    pub fn id_of(&self, piece: &str) -> Option<u32> {
        let id = self.pieces.iter().position(|p| p.piece == piece)?;
        u32::try_from(id).ok()
    }

    /// A `tokenizers` tokenizer: NFKC rules of the file (when it has any), white space collapsed
    /// and stripped, words split on `▁` (one prepended), unigram pieces, then `eos_id` appended.
    pub fn tokenizer(&self, eos_id: u32) -> Result<tokenizers::Tokenizer, String> {
        let vocab = self
            .pieces
            .iter()
            .map(|p| (p.piece.clone(), f64::from(p.score)))
            .collect();
        let model = Unigram::from(vocab, Some(self.unk_id), self.byte_fallback)
            .map_err(|e| e.to_string())?;
        let mut steps: Vec<NormalizerWrapper> = Vec::new();
        if !self.charsmap.is_empty() {
            let map = Precompiled::from(&self.charsmap)
                .map_err(|e| format!("normalizer_spec.precompiled_charsmap: {e}"))?;
            steps.push(map.into());
        }
        steps.push(
            Replace::new(ReplacePattern::Regex(" {2,}".into()), " ")
                .map_err(|e| e.to_string())?
                .into(),
        );
        steps.push(Strip::new(true, true).into());
        let mut inner = tokenizers::Tokenizer::new(model);
        inner
            .with_normalizer(Some(Sequence::new(steps)))
            .map_err(|e| e.to_string())?;
        inner.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
        let eos = TemplateProcessing::builder()
            .try_single(format!("$A {EOS_PIECE}"))
            .and_then(|b| {
                b.special_tokens(vec![(EOS_PIECE, eos_id)])
                    .build()
                    .map_err(|e| e.to_string())
            })?;
        inner.with_post_processor(Some(eos));
        Ok(inner)
    }
}

/// transformers' `SiglipTokenizer` text canonicalisation: lower case, ASCII punctuation removed,
/// runs of white space made one space, ends stripped (a `▁` in the text counts as a space).
pub fn canonicalize(text: &str) -> String {
    // Python's str.isspace (used by `\s` and strip()) also counts the separators U+001C..U+001F
    let space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c) || c == '▁';
    let lower = text.to_lowercase();
    let kept = lower.chars().filter(|c| !c.is_ascii_punctuation());
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in kept {
        if space(c) {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// One `SentencePiece` message: piece, score, type.
fn parse_piece(bytes: &[u8]) -> Result<Piece, String> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: TYPE_NORMAL,
    };
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match number {
            1 => {
                piece.piece = String::from_utf8(value.bytes("SentencePiece.piece")?.to_vec())
                    .map_err(|_| "a piece is not valid UTF-8".to_string())?;
            }
            2 => piece.score = value.float("SentencePiece.score")?,
            3 => piece.kind = value.varint("SentencePiece.type")?,
            _ => {}
        }
    }
    if piece.piece.is_empty() {
        return Err("a piece has no text".into());
    }
    if !piece.score.is_finite() {
        return Err(format!(
            "the piece {:?} has score {}",
            piece.piece, piece.score
        ));
    }
    if !(TYPE_NORMAL..=TYPE_BYTE).contains(&piece.kind) {
        return Err(format!(
            "the piece {:?} has unknown type {}",
            piece.piece, piece.kind
        ));
    }
    Ok(piece)
}

/// `TrainerSpec`: (model_type, byte_fallback).
fn parse_trainer_spec(bytes: &[u8]) -> Result<(u64, bool), String> {
    let (mut model_type, mut byte_fallback) = (MODEL_UNIGRAM, false);
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match number {
            3 => model_type = value.varint("TrainerSpec.model_type")?,
            35 => byte_fallback = value.varint("TrainerSpec.byte_fallback")? != 0,
            _ => {}
        }
    }
    Ok((model_type, byte_fallback))
}

/// `NormalizerSpec`: its precompiled character map.
fn parse_normalizer_spec(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut charsmap = Vec::new();
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        if number == 2 {
            charsmap = value.bytes("NormalizerSpec.precompiled_charsmap")?.to_vec();
        }
    }
    Ok(charsmap)
}

/// One field's value, by protobuf wire type.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// A length-delimited value, else an error naming `field`.
    fn bytes(self, field: &str) -> Result<&'a [u8], String> {
        match self {
            Value::Bytes(b) => Ok(b),
            other => Err(wrong_type(field, other)),
        }
    }

    /// A varint value, else an error naming `field`.
    fn varint(self, field: &str) -> Result<u64, String> {
        match self {
            Value::Varint(v) => Ok(v),
            other => Err(wrong_type(field, other)),
        }
    }

    /// A 32-bit float value, else an error naming `field`.
    fn float(self, field: &str) -> Result<f32, String> {
        match self {
            Value::Fixed32(v) => Ok(f32::from_bits(v)),
            other => Err(wrong_type(field, other)),
        }
    }
}

/// The error for `field` holding a value of the wrong wire type.
fn wrong_type(field: &str, value: Value<'_>) -> String {
    let kind = match value {
        Value::Varint(_) => "varint",
        Value::Fixed64 => "64-bit",
        Value::Bytes(_) => "length-delimited",
        Value::Fixed32(_) => "32-bit",
    };
    format!("{field} has the wrong wire type ({kind}); not a SentencePiece model")
}

/// The fields of one protobuf message, in order.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A varint at the current position.
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!("truncated varint at byte {}", self.pos));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    /// The next `n` bytes.
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "a field of {n} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next (field number, value), or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(format!(
                "field number 0 at byte {at}; not a SentencePiece model"
            ));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => {
                return Err(format!(
                    "wire type {other} at byte {at} is not valid here; not a SentencePiece model"
                ));
            }
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalizes_like_siglip_tokenizer() {
        assert_eq!(
            canonicalize("  A PHOTO of \t a Thief!! "),
            "a photo of a thief"
        );
        assert_eq!(canonicalize("it's (x)\u{1f}y▁z"), "its x y z");
        assert_eq!(canonicalize("!!!"), "");
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        for bad in [
            &b"not a model"[..],
            &[0x0a, 0x05, 0x0a],
            &[0x80; 11],
            &[0x00],
        ] {
            assert!(SpieceModel::parse(bad).is_err(), "{bad:?}");
        }
        // a piece with a score of the wrong wire type
        assert!(SpieceModel::parse(&[0x0a, 0x05, 0x0a, 0x01, b'a', 0x10, 0x01]).is_err());
        // no unknown piece
        let err = SpieceModel::parse(&[0x0a, 0x03, 0x0a, 0x01, b'a']).unwrap_err();
        assert!(err.contains("unknown"), "{err}");
    }
}
