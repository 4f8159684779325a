//! OpenCLIP-native checkpoints (`open_clip_config.json` + `open_clip_model.safetensors`) with
//! ViT towers: the config becomes a [`ClipConfig`] and the state dict is renamed onto
//! transformers' CLIP names, so the CLIP engine (candle and fused towers) runs them unchanged.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde_json::{Map, Value};

use super::ModelError;
use super::config::{Activation, ClipConfig, ClipTextConfig, ClipVisionConfig, ConfigError};
use super::preprocess::{CropRounding, PreprocessConfig, Resample};

/// OpenCLIP's configuration file in a Hub-style folder.
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// OpenCLIP's safetensors weights in a Hub-style folder.
pub const WEIGHTS_FILE: &str = "open_clip_model.safetensors";

/// Whether `config` is an OpenCLIP configuration file (by its name).
pub fn is_openclip_config(config: &Path) -> bool {
    config.file_name().and_then(|n| n.to_str()) == Some(CONFIG_FILE)
}

/// An OpenCLIP checkpoint's architecture and preprocessing, in clip-audit's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClipConfig {
    /// The architecture as transformers' CLIP would describe it.
    pub clip: ClipConfig,
    /// The preprocessing `preprocess_cfg` declares (OpenCLIP's defaults where it is silent).
    pub preprocess: PreprocessConfig,
}

/// Fields OpenCLIP reads that change nothing at inference, or that are checked elsewhere.
const INERT: &[&str] = &[
    "patch_dropout",
    "output_tokens",
    "pad_id",
    "eos_id",
    "timm_model_pretrained",
    "timm_pool",
    "timm_proj",
    "timm_proj_bias",
    "timm_drop",
    "timm_drop_path",
    "attn_pooler_queries",
    "attn_pooler_heads",
];

/// Fields whose OpenCLIP default is a string this reader implements.
const STRING_DEFAULTS: &[(&str, &str)] = &[
    ("vision_cfg.pool_type", "tok"),
    ("vision_cfg.pos_embed_type", "learnable"),
    ("text_cfg.pool_type", "argmax"),
    ("text_cfg.proj_type", "linear"),
    ("vision_cfg.block_type", "default"),
    ("text_cfg.block_type", "default"),
];

impl OpenClipConfig {
    /// Parses `open_clip_config.json`; `file` names it in errors. Towers other than OpenCLIP's
    /// own ViT and text transformer are refused, naming the field that asks for them.
    pub fn from_json_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        let reader = Reader { file };
        let root: Value = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        let model = reader.object(root.get("model_cfg"), "model_cfg")?;
        reader.check_model(model)?;
        let vision = reader.object(model.get("vision_cfg"), "model_cfg.vision_cfg")?;
        let text_cfg = reader.object(model.get("text_cfg"), "model_cfg.text_cfg")?;
        reader.check_tower("vision_cfg", vision)?;
        reader.check_tower("text_cfg", text_cfg)?;
        let act = match model.get("quick_gelu") {
            Some(Value::Bool(true)) => Activation::QuickGelu,
            _ => Activation::Gelu,
        };
        let clip = ClipConfig {
            vision_config: reader.vision(vision, act)?,
            text_config: reader.text(text_cfg, act)?,
            projection_dim: reader.usize_or(model, "model_cfg.embed_dim", None)?,
            logit_scale_init_value: (1.0f64 / 0.07).ln(),
        };
        clip.validate(file)?;
        let side = clip.vision_config.image_size as u32;
        let empty = Map::new();
        let pp = match root.get("preprocess_cfg") {
            None | Some(Value::Null) => &empty,
            other => reader.object(other, "preprocess_cfg")?,
        };
        let preprocess = reader.preprocess(pp, side)?;
        Ok(Self { clip, preprocess })
    }

    /// Reads and parses an `open_clip_config.json` file.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = crate::input_file::read_regular_text(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_json_str(&text, &path.display().to_string())?)
    }
}

/// Reads fields of one `open_clip_config.json`, naming it in errors.
struct Reader<'a> {
    file: &'a str,
}

impl Reader<'_> {
    fn invalid(&self, field: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            field,
            reason: reason.into(),
        }
    }

    /// A field refused because clip-audit does not implement what it asks for.
    fn refused(&self, field: &str, value: &Value, what: &str) -> ConfigError {
        ConfigError::Parse {
            file: self.file.to_string(),
            reason: format!(
                "field `model_cfg.{field}` is {value}: {what}; clip-audit reads OpenCLIP \
                 checkpoints with OpenCLIP's own ViT image tower and text transformer only"
            ),
        }
    }

    fn object<'v>(
        &self,
        value: Option<&'v Value>,
        field: &'static str,
    ) -> Result<&'v Map<String, Value>, ConfigError> {
        match value {
            Some(Value::Object(map)) => Ok(map),
            Some(other) => Err(self.invalid(field, format!("expected an object, found {other}"))),
            None => Err(self.invalid(field, "missing")),
        }
    }

    /// Refuses model-level options that change the architecture.
    fn check_model(&self, model: &Map<String, Value>) -> Result<(), ConfigError> {
        for (key, what) in [
            (
                "custom_text",
                "a custom text tower layout (`text.*` weights)",
            ),
            ("multimodal_cfg", "a multimodal decoder (CoCa)"),
            (
                "init_logit_bias",
                "a sigmoid loss with a logit bias (SigLIP-style)",
            ),
        ] {
            if let Some(v) = model.get(key).filter(|v| !is_off(v)) {
                return Err(self.refused(key, v, what));
            }
        }
        Ok(())
    }

    /// Refuses tower options that ask for another tower or a variant the engine lacks.
    fn check_tower(&self, tower: &str, cfg: &Map<String, Value>) -> Result<(), ConfigError> {
        let handled = [
            "image_size",
            "layers",
            "width",
            "patch_size",
            "head_width",
            "mlp_ratio",
            "context_length",
            "vocab_size",
            "heads",
        ];
        for (key, value) in cfg {
            let field = format!("{tower}.{key}");
            let what = match key.as_str() {
                "timm_model_name" => "a timm image tower (ConvNeXt, EVA, …) is not supported",
                "hf_model_name" | "hf_tokenizer_name" | "tokenizer_mode" | "tokenizer_kwargs" => {
                    "a Hugging Face text encoder or tokenizer is not supported"
                }
                "layers" if !value.is_u64() => "a ResNet image tower is not supported",
                "image_size" if !value.is_u64() => "a non-square input is not supported",
                _ if handled.contains(&key.as_str()) || INERT.contains(&key.as_str()) => continue,
                _ if is_off(value) => continue,
                _ if STRING_DEFAULTS
                    .iter()
                    .any(|(f, d)| *f == field && value.as_str() == Some(d)) =>
                {
                    continue;
                }
                _ => "this option is not implemented",
            };
            if !is_off(value) {
                return Err(self.refused(&field, value, what));
            }
        }
        Ok(())
    }

    /// A positive integer field, or `default` when absent.
    fn usize_or(
        &self,
        cfg: &Map<String, Value>,
        field: &'static str,
        default: Option<usize>,
    ) -> Result<usize, ConfigError> {
        let key = field.rsplit('.').next().unwrap_or(field);
        match cfg.get(key) {
            None | Some(Value::Null) => default.ok_or_else(|| self.invalid(field, "missing")),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 && n <= u32::MAX as u64 => Ok(n as usize),
                _ => Err(self.invalid(field, format!("expected a positive integer, found {v}"))),
            },
        }
    }

    /// `mlp_ratio` (default 4) times `width`, as OpenCLIP's `int(width * mlp_ratio)`.
    fn mlp_width(
        &self,
        cfg: &Map<String, Value>,
        field: &'static str,
        width: usize,
    ) -> Result<usize, ConfigError> {
        let ratio = match cfg.get("mlp_ratio") {
            None | Some(Value::Null) => 4.0,
            Some(v) => v
                .as_f64()
                .filter(|r| *r > 0.0 && *r <= 64.0)
                .ok_or_else(|| self.invalid(field, format!("expected a ratio, found {v}")))?,
        };
        Ok((width as f64 * ratio) as usize)
    }

    fn vision(
        &self,
        v: &Map<String, Value>,
        act: Activation,
    ) -> Result<ClipVisionConfig, ConfigError> {
        let width = self.usize_or(v, "model_cfg.vision_cfg.width", Some(768))?;
        let head_width = self.usize_or(v, "model_cfg.vision_cfg.head_width", Some(64))?;
        if width % head_width != 0 {
            return Err(self.invalid(
                "model_cfg.vision_cfg.head_width",
                format!("{head_width} does not divide the width {width}"),
            ));
        }
        Ok(ClipVisionConfig {
            hidden_size: width,
            intermediate_size: self.mlp_width(v, "model_cfg.vision_cfg.mlp_ratio", width)?,
            num_hidden_layers: self.usize_or(v, "model_cfg.vision_cfg.layers", Some(12))?,
            num_attention_heads: width / head_width,
            num_channels: 3,
            image_size: self.usize_or(v, "model_cfg.vision_cfg.image_size", Some(224))?,
            patch_size: self.usize_or(v, "model_cfg.vision_cfg.patch_size", Some(16))?,
            hidden_act: act,
            layer_norm_eps: 1e-5,
        })
    }

    fn text(&self, t: &Map<String, Value>, act: Activation) -> Result<ClipTextConfig, ConfigError> {
        let width = self.usize_or(t, "model_cfg.text_cfg.width", Some(512))?;
        Ok(ClipTextConfig {
            vocab_size: self.usize_or(t, "model_cfg.text_cfg.vocab_size", Some(49408))?,
            hidden_size: width,
            intermediate_size: self.mlp_width(t, "model_cfg.text_cfg.mlp_ratio", width)?,
            num_hidden_layers: self.usize_or(t, "model_cfg.text_cfg.layers", Some(12))?,
            num_attention_heads: self.usize_or(t, "model_cfg.text_cfg.heads", Some(8))?,
            max_position_embeddings: self.usize_or(
                t,
                "model_cfg.text_cfg.context_length",
                Some(77),
            )?,
            hidden_act: act,
            layer_norm_eps: 1e-5,
            // OpenCLIP pools at the largest token id (`pool_type` "argmax"): CLIP's legacy eos 2.
            eos_token_id: 2,
        })
    }

    /// OpenCLIP's transform: resize (`resize_mode` "shortest": the shorter side to the image
    /// size, then torchvision's center crop; "squash": both sides), `interpolation`, `mean`/`std`.
    fn preprocess(
        &self,
        pp: &Map<String, Value>,
        side: u32,
    ) -> Result<PreprocessConfig, ConfigError> {
        let mut out = PreprocessConfig {
            shortest_edge: side,
            crop_height: side,
            crop_width: side,
            crop_rounding: CropRounding::HalfEven,
            ..PreprocessConfig::default()
        };
        if let Some(v) = pp
            .get("size")
            .filter(|v| !v.is_null() && v.as_u64() != Some(u64::from(side)))
        {
            return Err(self.invalid(
                "preprocess_cfg.size",
                format!("{v} differs from model_cfg.vision_cfg.image_size {side}"),
            ));
        }
        out.resample = match pp.get("interpolation").and_then(Value::as_str) {
            None | Some("bicubic") => Resample::Bicubic,
            Some("bilinear") => Resample::Bilinear,
            Some(other) => {
                return Err(self.invalid(
                    "preprocess_cfg.interpolation",
                    format!("{other:?}: expected \"bicubic\" or \"bilinear\""),
                ));
            }
        };
        match pp.get("resize_mode").and_then(Value::as_str) {
            None | Some("shortest") => {}
            Some("squash") => {
                out.do_center_crop = false;
                out.exact_size = Some([side, side]);
            }
            Some(other) => {
                return Err(self.invalid(
                    "preprocess_cfg.resize_mode",
                    format!("{other:?}: expected \"shortest\" or \"squash\""),
                ));
            }
        }
        for (key, field, slot) in [
            ("mean", "preprocess_cfg.mean", &mut out.image_mean),
            ("std", "preprocess_cfg.std", &mut out.image_std),
        ] {
            if let Some(v) = pp.get(key).filter(|v| !v.is_null()) {
                *slot = self.triple(field, v)?;
            }
        }
        Ok(out)
    }

    fn triple(&self, field: &'static str, v: &Value) -> Result<[f32; 3], ConfigError> {
        let bad = || self.invalid(field, format!("expected three numbers, found {v}"));
        let items = v.as_array().filter(|a| a.len() == 3).ok_or_else(bad)?;
        let mut out = [0f32; 3];
        for (slot, item) in out.iter_mut().zip(items) {
            *slot = item.as_f64().ok_or_else(bad)? as f32;
        }
        Ok(out)
    }
}

/// `null`, `false` or zero: an option left off.
fn is_off(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The transformers name of an OpenCLIP tensor, and how its data moves.
enum Rename {
    /// Same data under another name.
    Same(String),
    /// Transposed (`visual.proj`, `text_projection`: OpenCLIP multiplies `x @ proj`).
    Transpose(String),
    /// A fused `in_proj` split into q, k and v under `{prefix}.{q,k,v}_proj.{suffix}`.
    SplitQkv(String, &'static str),
}

/// Maps one OpenCLIP state-dict name onto transformers' CLIP naming (`None`: not used).
fn rename(name: &str) -> Option<Rename> {
    use Rename::*;
    let fixed = match name {
        "logit_scale" => Same("logit_scale".into()),
        "visual.proj" => Transpose("visual_projection.weight".into()),
        "text_projection" => Transpose("text_projection.weight".into()),
        "visual.conv1.weight" => Same("vision_model.embeddings.patch_embedding.weight".into()),
        "visual.class_embedding" => Same("vision_model.embeddings.class_embedding".into()),
        "visual.positional_embedding" => {
            Same("vision_model.embeddings.position_embedding.weight".into())
        }
        "token_embedding.weight" => Same("text_model.embeddings.token_embedding.weight".into()),
        "positional_embedding" => Same("text_model.embeddings.position_embedding.weight".into()),
        _ => return rename_norm_or_layer(name),
    };
    Some(fixed)
}

/// The layer norms outside the blocks, and everything inside `transformer.resblocks.{i}`.
fn rename_norm_or_layer(name: &str) -> Option<Rename> {
    let (tower, rest) = match name.strip_prefix("visual.") {
        Some(rest) => ("vision_model", rest),
        None => ("text_model", name),
    };
    for (from, to) in [
        ("ln_pre.", "pre_layrnorm."),
        ("ln_post.", "post_layernorm."),
        ("ln_final.", "final_layer_norm."),
    ] {
        if let Some(param) = rest.strip_prefix(from) {
            return Some(Rename::Same(format!("{tower}.{to}{param}")));
        }
    }
    let rest = rest.strip_prefix("transformer.resblocks.")?;
    let (index, part) = rest.split_once('.')?;
    index.parse::<usize>().ok()?;
    let layer = format!("{tower}.encoder.layers.{index}");
    let renamed = match part {
        "attn.in_proj_weight" => {
            return Some(Rename::SplitQkv(format!("{layer}.self_attn"), "weight"));
        }
        "attn.in_proj_bias" => return Some(Rename::SplitQkv(format!("{layer}.self_attn"), "bias")),
        _ => {
            let (module, param) = part.rsplit_once('.')?;
            let hf = match module {
                "attn.out_proj" => "self_attn.out_proj",
                "ln_1" => "layer_norm1",
                "ln_2" => "layer_norm2",
                "mlp.c_fc" => "mlp.fc1",
                "mlp.c_proj" => "mlp.fc2",
                _ => return None,
            };
            format!("{layer}.{hf}.{param}")
        }
    };
    Some(Rename::Same(renamed))
}

/// Loads `open_clip_model.safetensors` under transformers' CLIP names, after checking every
/// tensor `config` needs against the file's header (layer counts first, so an absurd config
/// fails before per-layer names are built). `config_file` names the configuration in errors.
pub fn open_weights(
    path: &Path,
    config: &ClipConfig,
    config_file: &Path,
    device: &Device,
) -> Result<VarBuilder<'static>, ModelError> {
    let candle = |context: String| move |source| ModelError::Candle { context, source };
    // SAFETY: the file is mapped read-only; clip-audit never writes checkpoint files, and a file
    // truncated underneath us is a user error outside what any loader can guard against.
    let file = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }.map_err(
        candle(format!("reading safetensors file {}", path.display())),
    )?;
    let names: Vec<String> = file.tensors().into_iter().map(|(n, _)| n).collect();
    check_layer_counts(&names, config, config_file, path)?;
    let mut tensors = HashMap::new();
    for name in &names {
        let Some(plan) = rename(name) else { continue };
        let t = file
            .load(name, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(candle(format!("reading `{name}` from {}", path.display())))?;
        insert_renamed(&mut tensors, plan, t);
    }
    check_expected(&tensors, config, path)?;
    Ok(VarBuilder::from_tensors(tensors, DType::F32, device))
}

/// Puts `t` into `out` under its transformers name(s). A tensor that cannot be reshaped, split
/// or transposed as its name implies is left out, so [`check_expected`] names what is missing.
fn insert_renamed(out: &mut HashMap<String, Tensor>, plan: Rename, t: Tensor) {
    match plan {
        Rename::Same(hf) if hf == "logit_scale" => {
            // 0-d in OpenCLIP; some exports store it as [1].
            if let Ok(t) = t.reshape(()) {
                out.insert(hf, t);
            }
        }
        Rename::Same(hf) => {
            out.insert(hf, t);
        }
        Rename::Transpose(hf) => {
            if let Ok(t) = t.t().and_then(|t| t.contiguous()) {
                out.insert(hf, t);
            }
        }
        Rename::SplitQkv(prefix, param) => {
            let rows = t.dims().first().copied().unwrap_or(0);
            if rows == 0 || rows % 3 != 0 {
                return;
            }
            for (i, proj) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                if let Ok(part) = t
                    .narrow(0, i * rows / 3, rows / 3)
                    .and_then(|p| p.contiguous())
                {
                    out.insert(format!("{prefix}.{proj}.{param}"), part);
                }
            }
        }
    }
}

/// The number of `{prefix}transformer.resblocks.{i}` blocks in the file must equal the config's.
fn check_layer_counts(
    names: &[String],
    config: &ClipConfig,
    config_file: &Path,
    weights: &Path,
) -> Result<(), ModelError> {
    let count = |prefix: &str| {
        names
            .iter()
            .filter_map(|n| {
                n.strip_prefix(prefix)?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |i| i + 1)
    };
    for (field, value, prefix) in [
        (
            "model_cfg.vision_cfg.layers",
            config.vision_config.num_hidden_layers,
            "visual.transformer.resblocks.",
        ),
        (
            "model_cfg.text_cfg.layers",
            config.text_config.num_hidden_layers,
            "transformer.resblocks.",
        ),
    ] {
        let found = count(prefix);
        if found != value {
            return Err(ModelError::ConfigMismatch {
                config: config_file.to_path_buf(),
                field,
                value,
                weights: weights.to_path_buf(),
                found: format!("{found} blocks `{prefix}N`"),
            });
        }
    }
    Ok(())
}

/// Every tensor the CLIP engine reads is present with the shape the config implies; errors name
/// the tensor in transformers' naming (see [`rename`] for the OpenCLIP name it comes from).
fn check_expected(
    tensors: &HashMap<String, Tensor>,
    config: &ClipConfig,
    path: &Path,
) -> Result<(), ModelError> {
    super::header_check::check_expected_shapes(
        config.expected_tensors(),
        |name| tensors.get(name).map(|t| t.dims().to_vec()),
        path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model_cfg: &str) -> Result<OpenClipConfig, ConfigError> {
        OpenClipConfig::from_json_str(&format!(r#"{{"model_cfg": {model_cfg}}}"#), "cfg.json")
    }

    const TINY: &str = r#"{"embed_dim": 32, "quick_gelu": true,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 16,
                       "mlp_ratio": 2.0, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4,
                     "layers": 2}}"#;

    #[test]
    fn vit_config_maps_onto_clip() {
        let c = config(TINY).unwrap();
        let v = &c.clip.vision_config;
        assert_eq!(
            (v.hidden_size, v.intermediate_size, v.num_attention_heads),
            (64, 128, 4)
        );
        assert_eq!(v.hidden_act, Activation::QuickGelu);
        let t = &c.clip.text_config;
        assert_eq!(
            (
                t.intermediate_size,
                t.max_position_embeddings,
                t.eos_token_id
            ),
            (128, 77, 2)
        );
        assert_eq!(c.clip.projection_dim, 32);
        assert_eq!(
            (c.preprocess.crop_height, c.preprocess.shortest_edge),
            (64, 64)
        );
        assert!(c.preprocess.do_center_crop);
    }

    #[test]
    fn other_towers_are_refused_by_field() {
        let cases = [
            (
                TINY.replace(
                    r#""layers": 2, "width": 64"#,
                    r#""layers": [3, 4, 6, 3], "width": 64"#,
                ),
                "vision_cfg.layers",
            ),
            (
                TINY.replace(
                    r#""image_size": 64,"#,
                    r#""image_size": 64, "timm_model_name": "convnext_base","#,
                ),
                "vision_cfg.timm_model_name",
            ),
            (
                TINY.replace(
                    r#""context_length": 77,"#,
                    r#""hf_model_name": "xlm-roberta-base","#,
                ),
                "text_cfg.hf_model_name",
            ),
            (
                TINY.replace(
                    r#""embed_dim": 32,"#,
                    r#""embed_dim": 32, "init_logit_bias": -10,"#,
                ),
                "init_logit_bias",
            ),
            (
                TINY.replace(
                    r#""patch_size": 16}"#,
                    r#""patch_size": 16, "attentional_pool": true}"#,
                ),
                "vision_cfg.attentional_pool",
            ),
        ];
        for (cfg, field) in cases {
            let err = config(&cfg).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`model_cfg.{field}`")),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn defaults_and_inert_options_are_accepted() {
        let cfg = TINY.replace(
            r#""patch_size": 16}"#,
            r#""patch_size": 16, "pool_type": "tok", "ls_init_value": null, "timm_pool": "avg"}"#,
        );
        assert!(config(&cfg).is_ok());
    }

    #[test]
    fn torchvision_crop_offsets_round_half_to_even() {
        let r = CropRounding::HalfEven;
        assert_eq!(
            [r.offset(35), r.offset(33), r.offset(34), r.offset(0)],
            [18, 16, 17, 0]
        );
        assert_eq!(CropRounding::Floor.offset(35), 17);
    }

    #[test]
    fn names_map_onto_transformers() {
        let same = |n: &str| match rename(n) {
            Some(Rename::Same(hf)) => hf,
            _ => panic!("{n}"),
        };
        assert_eq!(
            same("visual.transformer.resblocks.1.mlp.c_fc.weight"),
            "vision_model.encoder.layers.1.mlp.fc1.weight"
        );
        assert_eq!(same("ln_final.bias"), "text_model.final_layer_norm.bias");
        assert_eq!(
            same("visual.ln_pre.weight"),
            "vision_model.pre_layrnorm.weight"
        );
        assert!(matches!(
            rename("transformer.resblocks.0.attn.in_proj_weight"),
            Some(Rename::SplitQkv(p, "weight")) if p == "text_model.encoder.layers.0.self_attn"
        ));
        assert!(matches!(rename("visual.proj"), Some(Rename::Transpose(_))));
        assert!(rename("attn_mask").is_none());
    }
}
