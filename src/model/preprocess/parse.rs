//! Reading a `preprocessor_config.json` (modern, legacy `CLIPFeatureExtractor`, or transformers
//! 5's nested `processor_config.json`) into a [`PreprocessConfig`], with errors naming the field.

use std::path::Path;

use serde_json::{Map, Value};

use super::config::PreprocessConfig;
use super::resample::Resample;

/// Error reading or interpreting a `preprocessor_config.json`.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read")]
    Io {
        /// File name.
        file: String,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not JSON, or not a JSON object.
    #[error("{file}: not a valid preprocessor config: {reason}")]
    Json {
        /// File name.
        file: String,
        /// Parser message.
        reason: String,
    },
    /// A field has the wrong type or value.
    #[error("{file}: field `{field}`: expected {expected}, got {got}")]
    Field {
        /// File name.
        file: String,
        /// JSON field name (dotted for nested keys).
        field: String,
        /// What was expected.
        expected: String,
        /// What was found.
        got: String,
    },
    /// `resample` names a filter that is not implemented.
    #[error(
        "{file}: field `resample`: unsupported resample {value} \
         (supported: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)"
    )]
    UnsupportedResample {
        /// File name.
        file: String,
        /// The PIL number found.
        value: i64,
    },
}

impl PreprocessConfig {
    /// Parses a `preprocessor_config.json` text (modern or legacy `CLIPFeatureExtractor` keys);
    /// errors name the file as `preprocessor_config.json`.
    pub fn from_json_str(text: &str) -> Result<Self, PreprocessConfigError> {
        Self::from_json_str_named(text, "preprocessor_config.json")
    }

    /// Like [`Self::from_json_str`], naming `source` in error messages.
    pub fn from_json_str_named(text: &str, source: &str) -> Result<Self, PreprocessConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PreprocessConfigError::Json {
            file: source.to_string(),
            reason: e.to_string(),
        })?;
        Parser { file: source }.parse(&value)
    }

    /// Reads and parses a `preprocessor_config.json` file (or a transformers 5
    /// `processor_config.json`, whose `image_processor` section is used).
    pub fn from_file(path: &Path) -> Result<Self, PreprocessConfigError> {
        let file = path.display().to_string();
        let text = crate::input_file::read_regular_text(path).map_err(|source| {
            PreprocessConfigError::Io {
                file: file.clone(),
                source,
            }
        })?;
        Self::from_json_str_named(&text, &file)
    }
}

struct Parser<'a> {
    file: &'a str,
}

/// The defaults of the processor class `image_processor_type` names: `SiglipImageProcessor`
/// resizes to 224×224 with a bilinear filter, does not crop, and normalises with mean and std
/// 0.5; any other class gets `CLIPImageProcessor`'s.
fn defaults_for(obj: &Map<String, Value>) -> PreprocessConfig {
    let class = obj.get("image_processor_type").and_then(Value::as_str);
    if class.is_some_and(|c| c.starts_with("SiglipImageProcessor")) {
        PreprocessConfig {
            exact_size: Some([224, 224]),
            resample: Resample::Bilinear,
            do_center_crop: false,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            ..PreprocessConfig::default()
        }
    } else {
        PreprocessConfig::default()
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(_) => "an object".to_string(),
    }
}

impl Parser<'_> {
    fn err(&self, field: &str, expected: &str, got: impl Into<String>) -> PreprocessConfigError {
        PreprocessConfigError::Field {
            file: self.file.to_string(),
            field: field.to_string(),
            expected: expected.to_string(),
            got: got.into(),
        }
    }

    fn parse(&self, root: &Value) -> Result<PreprocessConfig, PreprocessConfigError> {
        let obj = self.settings(root)?;
        let mut cfg = defaults_for(obj);
        self.resize_and_crop(obj, &mut cfg)?;
        self.pixel_values(obj, &mut cfg)?;
        Ok(cfg)
    }

    /// The object holding the image processor settings: the root, or transformers 5's nested
    /// `image_processor` section of a `processor_config.json`.
    fn settings<'v>(
        &self,
        root: &'v Value,
    ) -> Result<&'v Map<String, Value>, PreprocessConfigError> {
        let Value::Object(obj) = root else {
            return Err(PreprocessConfigError::Json {
                file: self.file.to_string(),
                reason: format!("expected a JSON object, got {}", describe(root)),
            });
        };
        // transformers 5 processor_config.json nests the image processor settings.
        Ok(match obj.get("image_processor") {
            Some(Value::Object(inner)) if !obj.contains_key("size") => inner,
            _ => obj,
        })
    }

    /// The geometry fields, in order: `do_resize`, `default_to_square`, `size`, `resample`,
    /// `do_center_crop`, `crop_size`.
    fn resize_and_crop(
        &self,
        obj: &Map<String, Value>,
        cfg: &mut PreprocessConfig,
    ) -> Result<(), PreprocessConfigError> {
        if let Some(v) = get(obj, "do_resize") {
            cfg.do_resize = self.bool("do_resize", v)?;
        }
        let default_to_square = match get(obj, "default_to_square") {
            Some(v) => self.bool("default_to_square", v)?,
            None => false, // CLIPImageProcessor.default_to_square
        };
        if let Some(v) = get(obj, "size") {
            self.size(v, default_to_square, cfg)?;
        }
        if let Some(v) = get(obj, "resample") {
            cfg.resample = self.resample(v)?;
        }
        if let Some(v) = get(obj, "do_center_crop") {
            cfg.do_center_crop = self.bool("do_center_crop", v)?;
        }
        if let Some(v) = get(obj, "crop_size") {
            let [h, w] = self.crop_size(v)?;
            cfg.crop_height = h;
            cfg.crop_width = w;
        }
        Ok(())
    }

    /// The pixel value fields, in order: `do_rescale`, `rescale_factor`, `do_normalize`,
    /// `image_mean`, `image_std`, `do_convert_rgb`.
    fn pixel_values(
        &self,
        obj: &Map<String, Value>,
        cfg: &mut PreprocessConfig,
    ) -> Result<(), PreprocessConfigError> {
        if let Some(v) = get(obj, "do_rescale") {
            cfg.do_rescale = self.bool("do_rescale", v)?;
        }
        if let Some(v) = get(obj, "rescale_factor") {
            cfg.rescale_factor = v
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.err("rescale_factor", "a number", describe(v)))?;
        }
        if let Some(v) = get(obj, "do_normalize") {
            cfg.do_normalize = self.bool("do_normalize", v)?;
        }
        if let Some(v) = get(obj, "image_mean") {
            cfg.image_mean = self.triple("image_mean", v)?;
        }
        if let Some(v) = get(obj, "image_std") {
            let std = self.triple("image_std", v)?;
            if std.contains(&0.0) {
                return Err(self.err("image_std", "3 non-zero numbers", format!("{std:?}")));
            }
            cfg.image_std = std;
        }
        if let Some(v) = get(obj, "do_convert_rgb") {
            cfg.do_convert_rgb = self.bool("do_convert_rgb", v)?;
        }
        Ok(())
    }

    /// `resample`: a PIL resampling number of an implemented filter.
    fn resample(&self, v: &Value) -> Result<Resample, PreprocessConfigError> {
        let code = v.as_i64().ok_or_else(|| {
            self.err("resample", "a PIL resampling number (integer)", describe(v))
        })?;
        Resample::from_pil(code).ok_or_else(|| PreprocessConfigError::UnsupportedResample {
            file: self.file.to_string(),
            value: code,
        })
    }

    fn bool(&self, field: &str, v: &Value) -> Result<bool, PreprocessConfigError> {
        v.as_bool()
            .ok_or_else(|| self.err(field, "true or false", describe(v)))
    }

    fn positive(&self, field: &str, v: &Value) -> Result<u32, PreprocessConfigError> {
        v.as_u64()
            .filter(|&n| n > 0)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.err(field, "a positive integer", describe(v)))
    }

    fn triple(&self, field: &str, v: &Value) -> Result<[f32; 3], PreprocessConfigError> {
        let expected = "3 numbers";
        match v {
            // A single number applies to every channel (transformers broadcasts it).
            Value::Number(n) => n
                .as_f64()
                .map(|x| [x as f32; 3])
                .ok_or_else(|| self.err(field, expected, describe(v))),
            Value::Array(items) if items.len() == 3 => {
                let mut out = [0f32; 3];
                for (o, item) in out.iter_mut().zip(items) {
                    // transformers builds a float32 array from the JSON doubles.
                    *o = item.as_f64().ok_or_else(|| {
                        self.err(field, expected, format!("{} in the list", describe(item)))
                    })? as f32;
                }
                Ok(out)
            }
            Value::Array(items) => Err(self.err(field, expected, items.len().to_string())),
            other => Err(self.err(field, expected, describe(other))),
        }
    }

    /// `size`: int (shortest edge, or square with `default_to_square`), `[h, w]`, or a dict
    /// with keys {shortest_edge}, {shortest_edge, longest_edge} or {height, width}.
    fn size(
        &self,
        v: &Value,
        default_to_square: bool,
        cfg: &mut PreprocessConfig,
    ) -> Result<(), PreprocessConfigError> {
        let expected = "an integer, [height, width], or an object with `shortest_edge` \
                        (optionally `longest_edge`) or `height` and `width`";
        match v {
            Value::Number(_) => {
                let s = self.positive("size", v)?;
                if default_to_square {
                    cfg.exact_size = Some([s, s]);
                }
                cfg.shortest_edge = s;
            }
            Value::Array(_) => {
                let [h, w] = self.pair("size", v)?;
                cfg.exact_size = Some([h, w]);
                cfg.shortest_edge = h.min(w);
            }
            Value::Object(map) => {
                let keys = sorted_keys(map);
                match keys.as_slice() {
                    ["shortest_edge"] => {
                        cfg.shortest_edge =
                            self.positive("size.shortest_edge", &map["shortest_edge"])?;
                    }
                    ["longest_edge", "shortest_edge"] => {
                        cfg.shortest_edge =
                            self.positive("size.shortest_edge", &map["shortest_edge"])?;
                        let longest = self.positive("size.longest_edge", &map["longest_edge"])?;
                        if longest <= cfg.shortest_edge {
                            return Err(self.err(
                                "size.longest_edge",
                                "a value greater than `shortest_edge`",
                                longest.to_string(),
                            ));
                        }
                        cfg.longest_edge = Some(longest);
                    }
                    ["height", "width"] => {
                        let h = self.positive("size.height", &map["height"])?;
                        let w = self.positive("size.width", &map["width"])?;
                        cfg.exact_size = Some([h, w]);
                        cfg.shortest_edge = h.min(w);
                    }
                    _ => return Err(self.err("size", expected, format!("keys {keys:?}"))),
                }
            }
            other => return Err(self.err("size", expected, describe(other))),
        }
        Ok(())
    }

    /// `crop_size`: int (square), `[h, w]`, or `{"height", "width"}`.
    fn crop_size(&self, v: &Value) -> Result<[u32; 2], PreprocessConfigError> {
        match v {
            Value::Number(_) => {
                let s = self.positive("crop_size", v)?;
                Ok([s, s])
            }
            Value::Array(_) => self.pair("crop_size", v),
            Value::Object(map) => {
                let keys = sorted_keys(map);
                if keys != ["height", "width"] {
                    return Err(self.err(
                        "crop_size",
                        "an object with exactly `height` and `width`",
                        format!("keys {keys:?}"),
                    ));
                }
                Ok([
                    self.positive("crop_size.height", &map["height"])?,
                    self.positive("crop_size.width", &map["width"])?,
                ])
            }
            other => Err(self.err(
                "crop_size",
                "an integer, [height, width] or {\"height\", \"width\"}",
                describe(other),
            )),
        }
    }

    fn pair(&self, field: &str, v: &Value) -> Result<[u32; 2], PreprocessConfigError> {
        match v {
            Value::Array(items) if items.len() == 2 => Ok([
                self.positive(field, &items[0])?,
                self.positive(field, &items[1])?,
            ]),
            other => Err(self.err(field, "[height, width]", describe(other))),
        }
    }
}

/// Field `key` of `obj`; `null` means "use the class default", as in transformers.
fn get<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::preprocess::config::OPENAI_CLIP_MEAN;

    #[test]
    fn siglip_processor_defaults_resize_to_a_square_without_cropping() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"image_processor_type": "SiglipImageProcessor", "size": {"height": 384, "width": 384}}"#,
        )
        .unwrap();
        assert_eq!(cfg.exact_size, Some([384, 384]));
        assert!(!cfg.do_center_crop);
        assert_eq!(cfg.resample, Resample::Bilinear);
        assert_eq!((cfg.image_mean, cfg.image_std), ([0.5; 3], [0.5; 3]));
        assert_eq!(cfg.output_size(640, 480), (384, 384));
        let bare = PreprocessConfig::from_json_str(
            r#"{"image_processor_type": "SiglipImageProcessorFast"}"#,
        )
        .unwrap();
        assert_eq!(bare.output_size(640, 480), (224, 224));
        // other classes keep CLIPImageProcessor's defaults
        let clip = PreprocessConfig::from_json_str("{}").unwrap();
        assert!(clip.do_center_crop);
        assert_eq!(clip.image_mean, OPENAI_CLIP_MEAN);
    }

    #[test]
    fn modern_config() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"crop_size": {"height": 224, "width": 224}, "do_center_crop": true,
                "do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_processor_type": "CLIPImageProcessor",
                "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
                "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}}"#,
        )
        .expect("parse");
        assert_eq!(cfg, PreprocessConfig::default());
    }

    #[test]
    fn legacy_config() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"crop_size": 336, "do_center_crop": true, "do_normalize": true,
                "do_resize": true, "feature_extractor_type": "CLIPFeatureExtractor",
                "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                "resample": 2, "size": 336}"#,
        )
        .expect("parse");
        assert_eq!(cfg.shortest_edge, 336);
        assert_eq!(cfg.exact_size, None);
        assert_eq!((cfg.crop_height, cfg.crop_width), (336, 336));
        assert_eq!(cfg.resample, Resample::Bilinear);
        assert_eq!(cfg.image_mean, [0.5; 3]);
        assert!(cfg.do_rescale); // absent -> class default
    }

    #[test]
    fn exact_and_other_size_forms() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"size": {"height": 100, "width": 50}, "crop_size": [40, 30], "unknown": 1}"#,
        )
        .expect("parse");
        assert_eq!(cfg.exact_size, Some([100, 50]));
        assert_eq!((cfg.crop_height, cfg.crop_width), (40, 30));
        assert_eq!(cfg.resized_size(640, 480), (50, 100));
        let cfg = PreprocessConfig::from_json_str(r#"{"size": 64, "default_to_square": true}"#)
            .expect("parse");
        assert_eq!(cfg.exact_size, Some([64, 64]));
        let cfg = PreprocessConfig::from_json_str(
            r#"{"image_processor": {"size": {"shortest_edge": 64}}}"#,
        )
        .expect("nested");
        assert_eq!(cfg.shortest_edge, 64);
        let cfg = PreprocessConfig::from_json_str(r#"{"image_mean": null, "image_std": 0.5}"#)
            .expect("parse");
        assert_eq!(cfg.image_mean, OPENAI_CLIP_MEAN);
        assert_eq!(cfg.image_std, [0.5; 3]);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#"{"image_mean": [0.5]}"#,
                "preprocessor_config.json: field `image_mean`: expected 3 numbers, got 1",
            ),
            (r#"{"size": "big"}"#, "field `size`"),
            (
                r#"{"size": {"shortest_edge": -1}}"#,
                "field `size.shortest_edge`: expected a positive integer, got -1",
            ),
            (r#"{"size": {"longest_edge": 300}}"#, "field `size`"),
            (r#"{"crop_size": {"height": 224}}"#, "field `crop_size`"),
            (
                r#"{"do_resize": "yes"}"#,
                "field `do_resize`: expected true or false",
            ),
            (r#"{"resample": 7}"#, "unsupported resample 7"),
            (r#"{"resample": "bicubic"}"#, "field `resample`"),
            (r#"{"image_std": [1, 0, 1]}"#, "field `image_std`"),
            (r#"[1, 2]"#, "expected a JSON object"),
            (r#"{"size": "#, "not a valid preprocessor config"),
        ];
        for (text, want) in cases {
            let err = PreprocessConfig::from_json_str(text)
                .expect_err(text)
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
