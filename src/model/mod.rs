//! Models: where checkpoint files come from, how they are checked and loaded, and the encoders.
//!
//! A checkpoint is a folder in Hugging Face layout (`config.json`, `model.safetensors`,
//! `tokenizer.json`, `preprocessor_config.json`), either local or fetched from the Hub into the
//! standard Hugging Face cache. Only safetensors are read: pickle files can execute code.

pub mod bf16;
pub mod clip;
pub mod config;
pub mod fused;
mod header_check;
pub mod kernels;
mod lazy_tower;
pub mod openclip;
pub mod preprocess;
pub mod request;
pub mod siglip;
pub mod siglip_tokenizer;
pub mod source;
pub mod spiece;
pub mod tokenizer;
pub mod towers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

pub use clip::{ClipModel, ImageEncoderKind};
pub use config::ClipConfig;
pub use preprocess::PreprocessConfig;
pub use request::{ModelName, ModelRequest};
pub use source::{ModelFiles, ModelOrigin, ModelSpec, SourceOptions};
pub use tokenizer::ClipTokenizer;
pub use towers::{Family, Scoring, TextTokenizer, Towers};

/// Why a model could not be found, checked or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The argument is neither an existing folder nor a Hub id.
    #[error(
        "model `{0}`: not an existing folder and not a Hugging Face Hub id of the form `owner/name`"
    )]
    BadSpec(String),
    /// A required file is absent from a local folder.
    #[error("model folder {dir}: missing `{file}` (expected a Hugging Face checkpoint folder)")]
    MissingFile {
        /// The checkpoint folder.
        dir: PathBuf,
        /// The missing file name.
        file: &'static str,
    },
    /// Only a pickled PyTorch checkpoint is available.
    #[error(
        "{location}: only `pytorch_model.bin` is available. clip-audit does not load PyTorch pickle \
         files, because unpickling can execute arbitrary code. Convert the checkpoint to safetensors \
         once, in an environment you trust: `python -c \"from transformers import CLIPModel; \
         m = CLIPModel.from_pretrained('SRC'); m.save_pretrained('DST', safe_serialization=True)\"` \
         and copy tokenizer.json and preprocessor_config.json beside it"
    )]
    PickleOnly {
        /// The folder or Hub id.
        location: String,
    },
    /// The Hub could not provide a file.
    #[error("{repo}@{revision}: cannot get `{file}`: {reason}")]
    Hub {
        /// Hub id.
        repo: String,
        /// Requested revision.
        revision: String,
        /// File in the repository.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// `--offline` and the file is not in the local cache.
    #[error(
        "{repo}@{revision}: `{file}` is not in the Hugging Face cache ({cache}) and --offline forbids \
         downloading it; run once without --offline or fetch it with `huggingface-cli download {repo}`"
    )]
    NotCached {
        /// Hub id.
        repo: String,
        /// Requested revision.
        revision: String,
        /// File in the repository.
        file: String,
        /// Cache folder searched.
        cache: PathBuf,
    },
    /// `config.json` is malformed.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// `preprocessor_config.json` is malformed.
    #[error(transparent)]
    Preprocess(#[from] preprocess::PreprocessConfigError),
    /// `tokenizer.json` is malformed or lacks CLIP's special tokens.
    #[error(transparent)]
    Tokenizer(#[from] tokenizer::TokenizerError),
    /// A tensor the architecture needs is absent.
    #[error("{file}: missing tensor `{name}` (expected shape {expected:?})")]
    MissingTensor {
        /// Weights file.
        file: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// `config.json` describes a different model than the weights file holds (found from the
    /// safetensors header, before anything is sized from the config).
    #[error("{}: field `{field}` is {value}, but {} has {found}", config.display(), weights.display())]
    ConfigMismatch {
        /// The configuration file.
        config: PathBuf,
        /// The offending field, e.g. `vision_config.num_hidden_layers`.
        field: &'static str,
        /// Its value in the configuration.
        value: usize,
        /// Weights file.
        weights: PathBuf,
        /// What the weights file has instead.
        found: String,
    },
    /// A tensor's shape differs from what `config.json` implies.
    #[error("{file}: tensor `{name}` has shape {found:?}, but config.json implies {expected:?}")]
    ShapeMismatch {
        /// Weights file.
        file: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// The preprocessing does not produce the image size the model expects.
    #[error("{file}: {reason}")]
    InputSize {
        /// The preprocessing file.
        file: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// Reading a file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tensor library failed (bad safetensors data, device errors).
    #[error("{context}")]
    Candle {
        /// What was being done.
        context: String,
        /// The candle error.
        source: candle_core::Error,
    },
    /// The requested device is not compiled in or not available.
    #[error("device `{0}`: {1}")]
    Device(String, String),
}

/// Where tensors are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU (default).
    Cpu,
    /// An NVIDIA GPU by ordinal (needs the `cuda` cargo feature).
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    /// Parses `cpu`, `cuda` or `cuda:N`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match text.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!("{text:?}: expected `cpu`, `cuda` or `cuda:N`")),
            },
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// Opens the device.
    pub fn open(self) -> Result<Device, ModelError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) if candle_core::utils::cuda_is_available() => Device::new_cuda(n)
                .map_err(|e| ModelError::Device(format!("cuda:{n}"), e.to_string())),
            Self::Cuda(n) => Err(ModelError::Device(
                format!("cuda:{n}"),
                "this build has no CUDA support; rebuild with `cargo install --features cuda`"
                    .into(),
            )),
        }
    }
}

/// A checkpoint ready for zero-shot use: model, tokenizer, image preprocessing and provenance.
pub struct LoadedModel {
    /// The network: both towers, of the checkpoint's family.
    pub towers: Towers,
    /// The checkpoint's tokenizer (CLIP's with its prompt normalisation, or SigLIP's).
    pub tokenizer: TextTokenizer,
    /// The checkpoint's image preprocessing.
    pub preprocess: PreprocessConfig,
    /// Where the files came from.
    pub files: ModelFiles,
    /// The device tensors live on.
    pub device: Device,
    /// How the image tower computes.
    pub compute: ComputePlan,
    /// The checkpoint's family, from its files and `model_type`.
    pub family: Family,
}

/// Number format the image tower computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    /// 32-bit floats, as the reference (the default).
    #[default]
    F32,
    /// bfloat16 matrix products with f32 accumulation.
    Bf16,
}

impl ComputeDtype {
    /// The lower-case name (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }
}

/// Choices about how a checkpoint is computed, beyond its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// The image tower's implementation; `None` picks the fused one on the CPU, candle elsewhere.
    pub image_encoder: Option<ImageEncoderKind>,
    /// The number format asked for.
    pub dtype: ComputeDtype,
}

/// How the image tower really computes: what was asked for, what runs, and why they differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComputePlan {
    /// The number format asked for.
    pub requested: ComputeDtype,
    /// The number format used.
    pub used: ComputeDtype,
    /// The image tower built (`fused` or `candle` in `run.json`).
    #[serde(rename = "image_encoder", serialize_with = "serialize_tower")]
    pub encoder: ImageEncoderKind,
    /// The CPU's matrix instructions the kernels use, e.g. `avx512`.
    pub kernel: String,
    /// Why `used` differs from `requested`, for the user and `run.json`.
    pub note: Option<String>,
}

impl LoadedModel {
    /// Reads, checks and loads every file of a checkpoint, with the default options.
    pub fn load(files: ModelFiles, device: &Device) -> Result<Self, ModelError> {
        Self::load_with(files, device, &LoadOptions::default())
    }

    /// Reads, checks and loads every file of a checkpoint.
    pub fn load_with(
        files: ModelFiles,
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self, ModelError> {
        if openclip::is_openclip_config(&files.config) {
            return Self::load_openclip(files, device, options);
        }
        let config_text = read_to_string(&files.config)?;
        match family_of(&config_text, &files.config)? {
            Family::Siglip => Self::load_siglip(files, &config_text, device, options),
            Family::Clip | Family::OpenClip => {
                Self::load_clip(files, &config_text, device, options)
            }
        }
    }

    /// Loads a CLIP checkpoint.
    fn load_clip(
        files: ModelFiles,
        config_text: &str,
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let config = ClipConfig::from_json_str(config_text, &files.config.display().to_string())?;
        // Checked against the weights' header first: nothing is sized from the config before.
        let vb = open_weights(&files.weights, &config, &files.config, device)?;
        let side = config.vision_config.image_size;
        let preprocess = match &files.preprocessor {
            Some(path) => PreprocessConfig::from_file(path)?,
            None => PreprocessConfig {
                shortest_edge: side as u32,
                crop_height: side as u32,
                crop_width: side as u32,
                ..PreprocessConfig::default()
            },
        };
        check_input_size(&preprocess, side, &files)?;
        Self::build_clip(files, vb, &config, preprocess, device, options)
    }

    /// Loads an OpenCLIP checkpoint (ViT towers) into the CLIP engine, with OpenAI's tokenizer
    /// built in when the folder has no `tokenizer.json`.
    fn load_openclip(
        files: ModelFiles,
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let config = openclip::OpenClipConfig::from_file(&files.config)?;
        let vb = openclip::open_weights(&files.weights, &config.clip, &files.config, device)?;
        check_input_size(
            &config.preprocess,
            config.clip.vision_config.image_size,
            &files,
        )?;
        let model = Self::build_clip(files, vb, &config.clip, config.preprocess, device, options)?;
        Ok(Self {
            family: Family::OpenClip,
            ..model
        })
    }

    /// Builds the CLIP engine over checked weights, with the checkpoint's CLIP tokenizer.
    fn build_clip(
        files: ModelFiles,
        vb: VarBuilder<'static>,
        config: &ClipConfig,
        preprocess: PreprocessConfig,
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let context = config.text_config.max_position_embeddings;
        let tokenizer = match &files.tokenizer {
            Some(path) => ClipTokenizer::from_file(path, context)?,
            None => ClipTokenizer::builtin(context)?,
        };
        let compute = compute_plan(options, device)?;
        let image_encoder = compute.encoder;
        let clip = ClipModel::with_image_encoder(vb, config, image_encoder).map_err(|source| {
            ModelError::Candle {
                context: format!("building the model from {}", files.weights.display()),
                source,
            }
        })?;
        Ok(Self {
            towers: Towers::Clip(Box::new(clip)),
            tokenizer: TextTokenizer::Clip(tokenizer),
            preprocess,
            files,
            device: device.clone(),
            compute,
            family: Family::Clip,
        })
    }

    /// Loads a SigLIP checkpoint.
    fn load_siglip(
        files: ModelFiles,
        config_text: &str,
        device: &Device,
        options: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let config =
            siglip::SiglipConfig::from_json_str(config_text, &files.config.display().to_string())?;
        // an activation the fused tower does not implement is computed by candle's
        let options = match config.vision_shape() {
            Some(_) => *options,
            None => LoadOptions {
                image_encoder: Some(ImageEncoderKind::Candle),
                ..*options
            },
        };
        let compute = compute_plan(&options, device)?;
        let model =
            siglip::SiglipModel::with_config(config, &files.weights, device, compute.encoder)?;
        let side = model.config().image_size();
        let preprocess = match &files.preprocessor {
            Some(path) => PreprocessConfig::from_file(path)?,
            None => PreprocessConfig::from_json_str(&format!(
                r#"{{"image_processor_type": "SiglipImageProcessor",
                    "size": {{"height": {side}, "width": {side}}}}}"#
            ))?,
        };
        check_input_size(&preprocess, side, &files)?;
        let text = &model.config().towers.text_config;
        let tokenizer_file = files
            .tokenizer
            .as_ref()
            .ok_or_else(|| ModelError::MissingFile {
                dir: files
                    .config
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                file: "tokenizer.json",
            })?;
        let tokenizer = siglip_tokenizer::SiglipTokenizer::from_file(
            tokenizer_file,
            text.max_position_embeddings,
            text.vocab_size,
            text.pad_token_id,
        )?;
        Ok(Self {
            towers: Towers::Siglip(Box::new(model)),
            tokenizer: TextTokenizer::Siglip(tokenizer),
            preprocess,
            files,
            device: device.clone(),
            compute,
            family: Family::Siglip,
        })
    }
}

/// The family of a checkpoint from its `config.json` (`model_type`); an unknown family is an
/// error naming the file and the field. A file that is not JSON is left to the CLIP reader,
/// whose error names it.
fn family_of(config_text: &str, config_file: &Path) -> Result<Family, ModelError> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(config_text) else {
        return Ok(Family::Clip);
    };
    let model_type = value.get("model_type").and_then(|t| t.as_str());
    Family::of_model_type(model_type).map_err(|other| {
        let reason = if other == "siglip2" {
            "\"siglip2\" is SigLIP 2's NaFlex model (Siglip2Model: variable-resolution patch \
             sequences), which clip-audit does not read; the fixed-resolution SigLIP 2 checkpoints \
             (model_type \"siglip\") load"
                .to_string()
        } else {
            format!(
                "{other:?} is not a family clip-audit reads (\"clip\" for CLIPModel, \"siglip\" \
                 for SiglipModel)"
            )
        };
        ModelError::Config(config::ConfigError::Invalid {
            file: config_file.display().to_string(),
            field: "model_type",
            reason,
        })
    })
}

/// Decides the image tower, number format and kernel for this machine.
fn compute_plan(options: &LoadOptions, device: &Device) -> Result<ComputePlan, ModelError> {
    let cpu = device.is_cpu();
    let machine = Machine {
        cpu,
        bf16_kernel: cpu && bf16::available(),
        amx: cpu && kernels::cpu_has_amx_bf16(),
    };
    let (encoder, note) = choose_encoder(options, machine);
    if encoder != ImageEncoderKind::Candle && !cpu {
        return Err(ModelError::Device(
            format!("{device:?}"),
            "the fused image encoder runs on the CPU only".into(),
        ));
    }
    let kernel = match encoder {
        ImageEncoderKind::Candle if !cpu => format!("{device:?}"),
        ImageEncoderKind::FusedBf16 => "avx512-bf16".to_string(),
        _ => kernels::cpu_kernel_name().to_string(),
    };
    Ok(ComputePlan {
        requested: options.dtype,
        used: if encoder == ImageEncoderKind::FusedBf16 {
            ComputeDtype::Bf16
        } else {
            ComputeDtype::F32
        },
        encoder,
        kernel,
        note,
    })
}

fn serialize_tower<S: serde::Serializer>(
    kind: &ImageEncoderKind,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.tower_name())
}

/// What the machine offers the image tower.
#[derive(Debug, Clone, Copy)]
struct Machine {
    /// Tensors live on the CPU.
    cpu: bool,
    /// The CPU runs [`bf16::matmul`].
    bf16_kernel: bool,
    /// The CPU reports AMX-BF16.
    amx: bool,
}

/// The image tower for the options on this machine, and why it differs from the request.
fn choose_encoder(options: &LoadOptions, m: Machine) -> (ImageEncoderKind, Option<String>) {
    let default = if m.cpu {
        ImageEncoderKind::Fused
    } else {
        ImageEncoderKind::Candle
    };
    match (options.dtype, options.image_encoder) {
        (ComputeDtype::F32, kind) => (kind.unwrap_or(default), None),
        (ComputeDtype::Bf16, Some(ImageEncoderKind::Candle)) => (
            ImageEncoderKind::Candle,
            Some("--dtype bf16 was requested, but the candle image tower computes in f32".into()),
        ),
        (ComputeDtype::Bf16, _) if m.bf16_kernel => (ImageEncoderKind::FusedBf16, None),
        (ComputeDtype::Bf16, _) => (
            default,
            Some(format!(
                "--dtype bf16 was requested, but {}; the image encoder computes in f32 instead \
                 (results equal --dtype f32)",
                if !m.cpu {
                    "bf16 is implemented for the CPU only"
                } else if m.amx {
                    "this CPU reports AMX-BF16 without AVX512-BF16, which clip-audit's bf16 \
                     kernel needs"
                } else {
                    "this CPU has neither AVX512-BF16 nor AMX-BF16"
                }
            )),
        ),
    }
}

/// The preprocessing must produce exactly the square input the image tower was built for.
fn check_input_size(
    preprocess: &PreprocessConfig,
    side: usize,
    files: &ModelFiles,
) -> Result<(), ModelError> {
    let side = side as u32;
    let produced = if preprocess.do_center_crop {
        Some((preprocess.crop_height, preprocess.crop_width))
    } else {
        preprocess
            .exact_size
            .filter(|_| preprocess.do_resize)
            .map(|[h, w]| (h, w))
    };
    match produced {
        Some(size) if size == (side, side) => Ok(()),
        other => Err(ModelError::InputSize {
            file: files
                .preprocessor
                .clone()
                .unwrap_or_else(|| PathBuf::from("preprocessor_config.json")),
            reason: match other {
                Some((h, w)) => format!(
                    "crops images to {h}×{w}, but config.json has vision_config.image_size {side}"
                ),
                None => "does not center-crop or resize to a fixed size, so image sizes would vary                          (set do_center_crop with crop_size equal to the model's image_size)"
                    .into(),
            },
        }),
    }
}

fn read_to_string(path: &Path) -> Result<String, ModelError> {
    crate::input_file::read_regular_text(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Memory-maps a safetensors file after checking that it holds every tensor `config` needs, with
/// the right shapes. Extra tensors (such as `position_ids`) are ignored. `config_file` names the
/// configuration in errors. Layer counts and widths are checked against the header before any
/// per-layer name is built, so an absurd config fails at once, in little memory.
pub fn open_weights(
    path: &Path,
    config: &ClipConfig,
    config_file: &Path,
    device: &Device,
) -> Result<VarBuilder<'static>, ModelError> {
    // SAFETY: the file is mapped read-only; clip-audit never writes checkpoint files, and a file
    // truncated underneath us is a user error outside what any loader can guard against.
    let tensors =
        unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }.map_err(|source| {
            ModelError::Candle {
                context: format!("reading safetensors file {}", path.display()),
                source,
            }
        })?;
    let shapes: HashMap<String, Vec<usize>> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect();
    header_check::check(config, config_file, &shapes, path)?;
    header_check::check_expected_shapes(
        config.expected_tensors(),
        |n| shapes.get(n).cloned(),
        path,
    )?;
    let backend = LogitScaleAsScalar(tensors);
    Ok(VarBuilder::from_backend(
        Box::new(backend),
        DType::F32,
        device.clone(),
    ))
}

/// Serves a `[1]`-shaped `logit_scale` as the 0-d tensor the model asks for.
struct LogitScaleAsScalar(candle_core::safetensors::MmapedSafetensors);

impl candle_nn::var_builder::SimpleBackend for LogitScaleAsScalar {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        if name == "logit_scale" {
            let t = self.0.load(name, dev)?.to_dtype(dtype)?;
            return t.reshape(s);
        }
        candle_nn::var_builder::SimpleBackend::get(&self.0, s, name, h, dtype, dev)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        candle_nn::var_builder::SimpleBackend::get_unchecked(&self.0, name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.get(name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(
        dtype: ComputeDtype,
        cpu: bool,
        bf16_kernel: bool,
        amx: bool,
    ) -> (ImageEncoderKind, Option<String>) {
        let options = LoadOptions {
            dtype,
            ..Default::default()
        };
        choose_encoder(
            &options,
            Machine {
                cpu,
                bf16_kernel,
                amx,
            },
        )
    }

    #[test]
    fn f32_is_fused_on_the_cpu_and_candle_elsewhere() {
        assert_eq!(
            choose(ComputeDtype::F32, true, true, false),
            (ImageEncoderKind::Fused, None)
        );
        assert_eq!(
            choose(ComputeDtype::F32, false, false, false),
            (ImageEncoderKind::Candle, None)
        );
    }

    #[test]
    fn bf16_uses_the_kernel_where_it_runs_and_says_why_not_elsewhere() {
        assert_eq!(
            choose(ComputeDtype::Bf16, true, true, true),
            (ImageEncoderKind::FusedBf16, None)
        );
        let (kind, note) = choose(ComputeDtype::Bf16, true, false, false);
        assert_eq!(kind, ImageEncoderKind::Fused);
        let note = note.unwrap();
        assert!(
            note.contains("neither AVX512-BF16 nor AMX-BF16") && note.contains("computes in f32")
        );
        let (_, note) = choose(ComputeDtype::Bf16, true, false, true);
        assert!(
            note.unwrap()
                .contains("reports AMX-BF16 without AVX512-BF16")
        );
        let (kind, note) = choose(ComputeDtype::Bf16, false, false, false);
        assert_eq!(kind, ImageEncoderKind::Candle);
        assert!(note.unwrap().contains("CPU only"));
        let explicit = LoadOptions {
            dtype: ComputeDtype::Bf16,
            image_encoder: Some(ImageEncoderKind::Candle),
        };
        let machine = Machine {
            cpu: true,
            bf16_kernel: true,
            amx: false,
        };
        let (kind, note) = choose_encoder(&explicit, machine);
        assert_eq!(kind, ImageEncoderKind::Candle);
        assert!(note.unwrap().contains("candle image tower computes in f32"));
    }
}
