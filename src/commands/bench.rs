//! `clip-audit bench`: image-encoder and end-to-end throughput, written as a Markdown report.
//!
//! The default run builds a random-weight checkpoint of a real architecture (ViT-B/32), writes it
//! in Hugging Face layout to a temporary folder, synthesises 448×448 JPEGs, and then times the
//! same path a user's run takes: load from disk, embed the probe's prompts (the CLIP paper's 21 by default), decode,
//! preprocess and encode every image, classify.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use serde::Serialize;

use crate::builtin::{self, Kind};
use crate::classify::ZeroShotClassifier;
use crate::dataset::ImageSource;
use crate::embed::{class_embeddings, image_embeddings};
use crate::images::ImageLimits;
use crate::model::ClipConfig;
use crate::model::{ComputeDtype, LoadedModel, ModelRequest, Towers};
use crate::pipeline::{Outcome, Pipeline, file_records, image_pixels};
use crate::probe::ProbeSet;

/// The CLIP tokenizer (OpenAI's vocabulary) used with a random-weight preset by default.
use crate::model::tokenizer::BUILTIN_CLIP_TOKENIZER as BUILTIN_TOKENIZER;

/// The probe whose prompts the end-to-end run embeds by default: the CLIP paper's race probe.
const DEFAULT_PROBE: &str = "clip-paper-race";

/// Everything `bench` needs, validated by the caller.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// A checkpoint to measure, or `None` for a random-weight preset.
    pub model: Option<ModelRequest>,
    /// The random-weight architecture built when no checkpoint is given.
    pub preset: Preset,
    /// tokenizer.json for the preset (default: the built-in CLIP tokenizer).
    pub tokenizer: Option<PathBuf>,
    /// Number format of the image encoder.
    pub dtype: ComputeDtype,
    /// Probe set (file or built-in name) whose prompts the end-to-end run embeds (default: the
    /// built-in `clip-paper-race`).
    pub probe: Option<PathBuf>,
    /// Folder of images for the end-to-end run (default: synthetic 448×448 JPEGs).
    pub images: Option<PathBuf>,
    /// Number of images in the end-to-end run (at least 1).
    pub n: usize,
    /// Images per forward pass (at least 1).
    pub batch_size: usize,
    /// Timed repetitions of the encoder-only measurement (at least 1).
    pub reps: usize,
    /// Measure the image encoder and the matrix multiply only.
    pub encoder_only: bool,
}

/// A random-weight architecture `bench` can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// ViT-B/32 at 224 px.
    VitB32,
    /// ViT-B/16 at 224 px.
    VitB16,
    /// ViT-L/14 at 224 px.
    VitL14,
    /// ViT-L/14 at 336 px.
    VitL14At336,
    /// SigLIP B/16 at 224 px (`google/siglip-base-patch16-224`'s shapes).
    SiglipB16,
    /// SigLIP So400m/14 at 384 px (`google/siglip-so400m-patch14-384`'s shapes).
    SiglipSo400m14,
}

impl Preset {
    /// The presets with their names, in the order the help lists them.
    pub const ALL: [(&'static str, Preset); 6] = [
        ("vitb32", Preset::VitB32),
        ("vitb16", Preset::VitB16),
        ("vitl14", Preset::VitL14),
        ("vitl14-336", Preset::VitL14At336),
        ("siglip-b16", Preset::SiglipB16),
        ("siglip-so400m14", Preset::SiglipSo400m14),
    ];

    /// The preset's short name, e.g. `vitb32`.
    pub fn name(self) -> &'static str {
        Preset::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(name, _)| name)
    }

    /// Writes a random-weight checkpoint of the preset into `dir`, with `tokenizer` as its
    /// tokenizer.json.
    pub fn write_checkpoint(self, tokenizer: &Path, dir: &Path) -> anyhow::Result<()> {
        let clip = match self {
            Preset::VitB32 => ClipConfig::vit_base_patch32(),
            Preset::VitB16 => ClipConfig::vit_base_patch16(),
            Preset::VitL14 => ClipConfig::vit_large_patch14(),
            Preset::VitL14At336 => ClipConfig::vit_large_patch14_336(),
            // (width, MLP width, layers, heads, image size, patch size)
            Preset::SiglipB16 => {
                return write_random_siglip((768, 3072, 12, 12, 224, 16), tokenizer, dir);
            }
            Preset::SiglipSo400m14 => {
                return write_random_siglip((1152, 4304, 27, 16, 384, 14), tokenizer, dir);
            }
        };
        write_random_checkpoint(&clip, tokenizer, dir, 0)
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .iter()
            .find(|(name, _)| *name == text)
            .map(|&(_, preset)| preset)
            .ok_or_else(|| {
                format!(
                    "{text:?}: expected one of vitb32, vitb16, vitl14, vitl14-336, siglip-b16, \
                     siglip-so400m14"
                )
            })
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs the benchmark; `progress` receives one line per phase.
pub fn run(options: &BenchOptions, mut progress: impl FnMut(&str)) -> anyhow::Result<BenchResults> {
    let scratch = std::env::temp_dir().join(format!("clip-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let result = run_in(options, &scratch, &mut progress);
    // the scratch folder holds a large random checkpoint: always remove it
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Everything one benchmark measured (rendered as Markdown or JSON).
#[derive(Debug, Serialize)]
pub struct BenchResults {
    /// The model measured.
    pub model: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Whether the CPU has AMX-BF16.
    pub amx: bool,
    /// Worker threads.
    pub threads: usize,
    /// The image encoder alone.
    pub encoder: EncoderResult,
    /// The machine's f32 matrix multiply through the same `gemm` kernels.
    pub gemm: GemmResult,
    /// The bf16 matrix multiply of `--dtype bf16` (when it runs).
    pub gemm_bf16: Option<GemmResult>,
    /// The end-to-end run (absent with `--encoder-only`).
    pub end_to_end: Option<EndToEndResult>,
}

/// Image-encoder throughput.
#[derive(Debug, Serialize)]
pub struct EncoderResult {
    /// Median images/s over the timed repetitions.
    pub images_per_s: f64,
    /// Best images/s.
    pub best_images_per_s: f64,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// GFLOP per image.
    pub gflop_per_image: f64,
    /// Images per forward pass.
    pub batch: usize,
    /// Timed repetitions.
    pub reps: usize,
    /// Number format used (`f32`, `bf16`).
    pub dtype: &'static str,
    /// Number format asked for.
    pub requested_dtype: &'static str,
    /// Implementation and instruction set, e.g. `fused/avx512`.
    pub kernel: String,
    /// Why the format used differs from the one asked for.
    pub note: Option<String>,
}

/// Raw matrix-multiply throughput.
#[derive(Debug, Serialize)]
pub struct GemmResult {
    /// Median GFLOP/s.
    pub gflops: f64,
    /// `MxKxN` of the product (a ViT-B MLP matmul at batch 32).
    pub shape: String,
}

/// End-to-end throughput and its phases.
#[derive(Debug, Serialize)]
pub struct EndToEndResult {
    /// Images classified.
    pub images: usize,
    /// Where they came from.
    pub source: String,
    /// Images per second over the whole run.
    pub images_per_s: f64,
    /// Wall seconds, model load included.
    pub wall_s: f64,
    /// Seconds to load the model.
    pub model_load_s: f64,
    /// Prompt count and seconds to embed them.
    pub prompts: usize,
    /// Probe name.
    pub probe: String,
    /// Seconds to embed the prompts.
    pub prompts_s: f64,
    /// Seconds for decode, preprocess, encode and classify.
    pub images_s: f64,
    /// Decode + preprocess alone, images/s.
    pub preprocess_images_per_s: f64,
}

fn run_in(
    options: &BenchOptions,
    scratch: &Path,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<BenchResults> {
    let (model_name, request) = model_to_measure(options, scratch, progress)?;
    // the end-to-end run loads the model as part of what it times; the encoder reuses it
    let (end_to_end, model) = if options.encoder_only {
        (None, request.load()?)
    } else {
        let (result, model) = time_end_to_end(options, &request, scratch, progress)?;
        (Some(result), model)
    };
    progress("image encoder only");
    let timing = time_encoder(&model, options.batch_size, options.reps)?;
    let gflop = towers_gflop(&model.towers);
    progress("matrix multiply only");
    let gemm = time_gemm(options.reps.max(5), false);
    let gemm_bf16 =
        (model.compute.used == ComputeDtype::Bf16).then(|| time_gemm(options.reps.max(5), true));
    Ok(BenchResults {
        model: model_name,
        cpu: cpu_name(),
        amx: crate::model::kernels::cpu_has_amx_bf16(),
        threads: rayon::current_num_threads(),
        encoder: EncoderResult {
            images_per_s: timing.median,
            best_images_per_s: timing.best,
            gflops: gflop * timing.median,
            gflop_per_image: gflop,
            batch: options.batch_size,
            reps: options.reps,
            dtype: model.compute.used.name(),
            requested_dtype: model.compute.requested.name(),
            kernel: format!(
                "{}/{}",
                model.compute.encoder.tower_name(),
                model.compute.kernel
            ),
            note: model.compute.note.clone(),
        },
        gemm,
        gemm_bf16,
        end_to_end,
    })
}

/// The checkpoint to measure and its display name: the one given, or a random-weight preset
/// written to `scratch`.
fn model_to_measure(
    options: &BenchOptions,
    scratch: &Path,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<(String, ModelRequest)> {
    if let Some(request) = &options.model {
        let name = request.model.name.clone();
        let request = ModelRequest {
            dtype: options.dtype,
            ..request.clone()
        };
        return Ok((name, request));
    }
    let preset = options.preset;
    progress(&format!("writing a random-weight {preset} checkpoint"));
    let tokenizer = match &options.tokenizer {
        Some(path) => path.clone(),
        None => write_scratch_file(scratch, "tokenizer.json", BUILTIN_TOKENIZER)?,
    };
    let dir = scratch.join("model");
    preset.write_checkpoint(&tokenizer, &dir)?;
    let request = ModelRequest {
        dtype: options.dtype,
        ..ModelRequest::local(&dir)
    };
    Ok((format!("{preset} (random weights)"), request))
}

/// Writes `bytes` to `scratch/name` and returns the path.
fn write_scratch_file(scratch: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let path = scratch.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Times the path a user's run takes — model load, prompt embeddings, then the streaming
/// pipeline of `run` over every image — and returns the loaded model too.
fn time_end_to_end(
    options: &BenchOptions,
    request: &ModelRequest,
    scratch: &Path,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<(EndToEndResult, LoadedModel)> {
    let images = match &options.images {
        Some(dir) => list_images(dir, options.n)?,
        None => {
            progress(&format!("synthesising {} 448×448 JPEGs", options.n));
            synthesize_images(&scratch.join("images"), options.n, 448)?
        }
    };
    let probe = match &options.probe {
        Some(arg) => ProbeSet::open(arg)?,
        None => {
            let file = builtin::find(Kind::Probe, DEFAULT_PROBE)
                .context("the default probe is missing from the built-in catalogue")?;
            ProbeSet::builtin(&file)?
        }
    };
    progress("end-to-end run");
    let start = Instant::now();
    let model = request.load()?;
    let loaded = start.elapsed().as_secs_f64();
    let classes = class_embeddings(&model, &probe.prompts())?;
    let classifier = ZeroShotClassifier::new(probe.labels(), classes, model.towers.scoring());
    let prompts_done = start.elapsed().as_secs_f64();
    let classified = classify_files(&model, &classifier, &images, options.batch_size)?;
    let total = start.elapsed().as_secs_f64();
    progress("preprocessing only");
    let preprocess_images_per_s = preprocess_rate(&model, &images);
    let result = EndToEndResult {
        images: images.len(),
        source: match &options.images {
            Some(d) => d.display().to_string(),
            None => "synthetic 448×448 JPEG".into(),
        },
        images_per_s: classified as f64 / total,
        wall_s: total,
        model_load_s: loaded,
        prompts: probe.prompts().iter().map(Vec::len).sum(),
        probe: probe.name.clone(),
        prompts_s: prompts_done - loaded,
        images_s: total - prompts_done,
        preprocess_images_per_s,
    };
    Ok((result, model))
}

/// Classifies image files through [`Pipeline`] (no cache, as a first run); every one must be
/// readable. Returns how many were classified.
fn classify_files(
    model: &LoadedModel,
    classifier: &ZeroShotClassifier,
    images: &[PathBuf],
    batch_size: usize,
) -> anyhow::Result<usize> {
    let pipeline = Pipeline {
        model,
        classifier,
        variants: &[],
        cache: None,
        batch_size,
        top_k: 5,
        limits: ImageLimits::default(),
    };
    let records = file_records(images);
    let (mut classified, mut skipped) = (0, Vec::new());
    pipeline.run(
        records,
        |outcomes| {
            for outcome in outcomes {
                match outcome {
                    Outcome::Classified(_) => classified += 1,
                    Outcome::Skipped(s) => skipped.push(s),
                }
            }
            Ok(())
        },
        &|_| {},
    )?;
    anyhow::ensure!(
        skipped.is_empty(),
        "{} benchmark images could not be read",
        skipped.len()
    );
    Ok(classified)
}

/// Images/s of reading, decoding and preprocessing alone (the pipeline's per-image step, on all
/// worker threads).
fn preprocess_rate(model: &LoadedModel, images: &[PathBuf]) -> f64 {
    let limits = ImageLimits::default();
    let t = Instant::now();
    let decoded = images
        .par_iter()
        .filter(|p| image_pixels(&ImageSource::File(p.to_path_buf()), model, &limits).is_ok())
        .count();
    decoded as f64 / t.elapsed().as_secs_f64()
}

/// Renders the results as the Markdown report.
pub fn markdown(r: &BenchResults) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    write_header(&mut out, r)?;
    writeln!(out, "| measurement | value |")?;
    writeln!(out, "|---|---|")?;
    if let Some(e) = &r.end_to_end {
        write_end_to_end_rows(&mut out, e)?;
    }
    write_encoder_rows(&mut out, r)?;
    Ok(out)
}

/// The report's title, the list of what was measured on what, and the encoder's note.
fn write_header(out: &mut String, r: &BenchResults) -> std::fmt::Result {
    writeln!(out, "# clip-audit benchmark\n")?;
    writeln!(out, "- model: {}", r.model)?;
    writeln!(
        out,
        "- machine: {}, {} worker threads{}",
        r.cpu,
        r.threads,
        if r.amx { ", AMX-BF16" } else { "" }
    )?;
    writeln!(out, "- batch size: {}", r.encoder.batch)?;
    writeln!(
        out,
        "- image encoder: {} ({}, {} requested)",
        r.encoder.kernel, r.encoder.dtype, r.encoder.requested_dtype
    )?;
    if let Some(e) = &r.end_to_end {
        writeln!(out, "- images: {} ({})", e.images, e.source)?;
    }
    writeln!(out, "- clip-audit {}\n", env!("CARGO_PKG_VERSION"))?;
    if let Some(note) = &r.encoder.note {
        writeln!(out, "Note: {note}\n")?;
    }
    Ok(())
}

/// The end-to-end table rows: throughput, wall time and its parts, preprocessing alone.
fn write_end_to_end_rows(out: &mut String, e: &EndToEndResult) -> std::fmt::Result {
    writeln!(out, "| end to end, images/s | {:.1} |", e.images_per_s)?;
    writeln!(out, "| end to end, wall seconds | {:.2} |", e.wall_s)?;
    writeln!(out, "| — model load, s | {:.2} |", e.model_load_s)?;
    writeln!(
        out,
        "| — {} prompts ({}), s | {:.2} |",
        e.prompts, e.probe, e.prompts_s
    )?;
    writeln!(
        out,
        "| — images (decode, preprocess, encode, classify), s | {:.2} |",
        e.images_s
    )?;
    writeln!(
        out,
        "| decode + preprocess only, images/s | {:.0} |",
        e.preprocess_images_per_s
    )
}

/// The image-encoder table rows, with the matrix-multiply rates they are measured against.
fn write_encoder_rows(out: &mut String, r: &BenchResults) -> std::fmt::Result {
    let enc = &r.encoder;
    writeln!(
        out,
        "| image encoder, images/s (median of {}) | {:.1} |",
        enc.reps, enc.images_per_s
    )?;
    writeln!(
        out,
        "| image encoder, best images/s | {:.1} |",
        enc.best_images_per_s
    )?;
    writeln!(
        out,
        "| image encoder, GFLOP per image | {:.2} |",
        enc.gflop_per_image
    )?;
    writeln!(
        out,
        "| image encoder, achieved GFLOP/s (median) | {:.0} |",
        enc.gflops
    )?;
    writeln!(
        out,
        "| f32 matrix multiply {}, GFLOP/s | {:.0} |",
        r.gemm.shape, r.gemm.gflops
    )?;
    writeln!(
        out,
        "| image encoder, share of that matrix-multiply rate | {:.0}% |",
        100.0 * enc.gflops / r.gemm.gflops
    )?;
    if let Some(g) = &r.gemm_bf16 {
        writeln!(
            out,
            "| bf16 matrix multiply {}, GFLOP/s | {:.0} |",
            g.shape, g.gflops
        )?;
    }
    Ok(())
}

struct EncoderTiming {
    median: f64,
    best: f64,
}

/// Images/s of the image tower alone on random pixels, after one warm-up batch.
fn time_encoder(model: &LoadedModel, batch: usize, reps: usize) -> anyhow::Result<EncoderTiming> {
    let side = model.towers.image_size();
    let pixels = Tensor::randn(0f32, 1f32, (batch, 3, side, side), &model.device)?;
    image_embeddings(model, &pixels)?;
    let mut rates: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            image_embeddings(model, &pixels).map(|_| batch as f64 / t.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(EncoderTiming {
        median: rates[rates.len() / 2],
        best: rates[rates.len() - 1],
    })
}

/// Median GFLOP/s of a `1600×768 · 768×3072` product (a ViT-B MLP layer at batch 32) on all
/// worker threads, through the kernels the fused encoder uses (f32, or bf16 with `bf16`).
fn time_gemm(reps: usize, bf16: bool) -> GemmResult {
    use crate::model::bf16::{PackedBf16, matmul as matmul_bf16};
    use crate::model::kernels::{MatRef, matmul};
    let (m, k, n) = (1600, 768, 3072);
    let mut rng = SplitMix(1);
    let a = rng.normals(m * k, 1.0);
    let b = rng.normals(k * n, 1.0);
    let packed = bf16.then(|| PackedBf16::pack(&b, k, n));
    let mut c = vec![0.0f32; m * n];
    let threads = rayon::current_num_threads();
    let mut product = || {
        let t = Instant::now();
        match &packed {
            Some(w) => matmul_bf16(&mut c, &a, m, w, false),
            None => matmul(
                &mut c,
                n,
                MatRef::new(&a, m, k),
                MatRef::new(&b, k, n),
                1.0,
                false,
                threads,
            ),
        }
        2.0 * (m * k * n) as f64 / t.elapsed().as_secs_f64() / 1e9
    };
    product();
    let mut rates: Vec<f64> = (0..reps).map(|_| product()).collect();
    rates.sort_by(f64::total_cmp);
    GemmResult {
        gflops: rates[rates.len() / 2],
        shape: format!("{m}x{k}x{n}"),
    }
}

/// Multiply-add FLOPs (×2) of one image through the image tower of either family, in GFLOP.
pub fn towers_gflop(towers: &Towers) -> f64 {
    match towers {
        Towers::Clip(clip) => encoder_gflop(clip.config()),
        Towers::Siglip(siglip) => siglip_encoder_gflop(&siglip.config().towers.vision_config),
    }
}

/// SigLIP's image tower: patches without a class token, then the attention-pooling head (one
/// query over every patch, and its MLP).
fn siglip_encoder_gflop(v: &candle_transformers::models::siglip::VisionConfig) -> f64 {
    let t = v.num_patches() as f64;
    let w = v.hidden_size as f64;
    let m = v.intermediate_size as f64;
    let per_layer = 2.0 * t * (4.0 * w * w + 2.0 * w * m) + 4.0 * t * t * w;
    let patch = 2.0 * t * (v.num_channels * v.patch_size * v.patch_size) as f64 * w;
    let head = 2.0 * t * 2.0 * w * w + 2.0 * (4.0 * w * w + 2.0 * w * m) + 4.0 * t * w;
    (per_layer * v.num_hidden_layers as f64 + patch + head) / 1e9
}

/// Multiply-add FLOPs (×2) of one image through CLIP's image tower and projection, in GFLOP.
pub fn encoder_gflop(config: &ClipConfig) -> f64 {
    let v = &config.vision_config;
    let t = config.vision_positions() as f64;
    let w = v.hidden_size as f64;
    let m = v.intermediate_size as f64;
    let patches = t - 1.0;
    let per_layer = 2.0 * t * (4.0 * w * w + 2.0 * w * m) + 4.0 * t * t * w;
    let patch = 2.0 * patches * (v.num_channels * v.patch_size * v.patch_size) as f64 * w;
    let projection = 2.0 * w * config.projection_dim as f64;
    (per_layer * v.num_hidden_layers as f64 + patch + projection) / 1e9
}

/// Writes a checkpoint folder with random weights (seeded) for `config`: `config.json`,
/// `model.safetensors` and a copy of `tokenizer`.
pub fn write_random_checkpoint(
    config: &ClipConfig,
    tokenizer: &Path,
    dir: &Path,
    seed: u64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let scalars = [("logit_scale", config.logit_scale_init_value as f32)];
    let tensors = random_weights(config.expected_tensors(), &scalars, seed)?;
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(config)?,
    )?;
    std::fs::copy(tokenizer, dir.join("tokenizer.json"))
        .with_context(|| format!("copying tokenizer {}", tokenizer.display()))?;
    Ok(())
}

/// Random weights for `expected` tensors, as a fresh model is initialised: layer-norm weights 1,
/// biases 0, the named `scalars`, everything else N(0, 0.02) from a generator seeded with `seed`.
fn random_weights(
    expected: Vec<(String, Vec<usize>)>,
    scalars: &[(&str, f32)],
    seed: u64,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let device = Device::Cpu;
    let mut rng = SplitMix(seed);
    let mut tensors = HashMap::new();
    for (name, shape) in expected {
        let tensor = if let Some(&(_, value)) = scalars.iter().find(|(n, _)| *n == name) {
            Tensor::full(value, shape, &device)?
        } else if name.contains("norm") && name.ends_with(".weight") {
            Tensor::ones(shape, DType::F32, &device)?
        } else if name.ends_with(".bias") {
            Tensor::zeros(shape, DType::F32, &device)?
        } else {
            let n = shape.iter().product::<usize>();
            Tensor::from_vec(rng.normals(n, 0.02), shape, &device)?
        };
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

/// Writes a random-weight SigLIP checkpoint with both towers of the given shape: `config.json`,
/// `model.safetensors`, a SiglipImageProcessor `preprocessor_config.json` and `tokenizer`. The
/// vocabulary is sized to the tokenizer (the weights are random; only the shapes matter).
fn write_random_siglip(
    (width, mlp, layers, heads, image, patch): (usize, usize, usize, usize, usize, usize),
    tokenizer: &Path,
    dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tower = serde_json::json!({
        "hidden_size": width, "intermediate_size": mlp, "num_hidden_layers": layers,
        "num_attention_heads": heads,
    });
    let mut text = tower.clone();
    text["vocab_size"] = 49408.into();
    text["max_position_embeddings"] = 64.into();
    let mut vision = tower;
    vision["image_size"] = image.into();
    vision["patch_size"] = patch.into();
    let config = serde_json::json!({
        "model_type": "siglip", "text_config": text, "vision_config": vision,
    });
    let text = serde_json::to_string_pretty(&config)?;
    let parsed = crate::model::siglip::SiglipConfig::from_json_str(&text, "preset")?;
    let scalars = [("logit_scale", 10f32.ln()), ("logit_bias", -10.0)];
    let tensors = random_weights(parsed.expected_tensors(), &scalars, 0)?;
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    std::fs::write(dir.join("config.json"), text)?;
    let processor = serde_json::json!({
        "image_processor_type": "SiglipImageProcessor",
        "size": {"height": image, "width": image},
    });
    std::fs::write(
        dir.join("preprocessor_config.json"),
        serde_json::to_string_pretty(&processor)?,
    )?;
    std::fs::copy(tokenizer, dir.join("tokenizer.json"))
        .with_context(|| format!("copying tokenizer {}", tokenizer.display()))?;
    Ok(())
}

/// The first `n` image files of a folder, by name.
fn list_images(dir: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["jpg", "jpeg", "png", "webp"].contains(&e.to_ascii_lowercase().as_str())
            })
        })
        .collect();
    files.sort();
    anyhow::ensure!(
        files.len() >= n,
        "{} holds {} images, fewer than --n {n}",
        dir.display(),
        files.len()
    );
    files.truncate(n);
    Ok(files)
}

/// Writes `n` deterministic `side`×`side` JPEGs (rectangles on a gradient, with noise).
pub fn synthesize_images(dir: &Path, n: usize, side: u32) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = SplitMix(i as u64 + 1);
            let (r0, g0, b0) = (rng.byte(), rng.byte(), rng.byte());
            let rect = [
                rng.below(side),
                rng.below(side),
                rng.below(side),
                rng.below(side),
            ];
            let colour = [rng.byte(), rng.byte(), rng.byte()];
            let img = RgbImage::from_fn(side, side, |x, y| {
                let inside = x >= rect[0].min(rect[2])
                    && x <= rect[0].max(rect[2])
                    && y >= rect[1].min(rect[3])
                    && y <= rect[1].max(rect[3]);
                let base = if inside {
                    colour
                } else {
                    [
                        r0.wrapping_add((x / 2) as u8),
                        g0.wrapping_add((y / 2) as u8),
                        b0,
                    ]
                };
                let noise = (rng.byte() % 25) as i16 - 12;
                Rgb(base.map(|c| (c as i16 + noise).clamp(0, 255) as u8))
            });
            let path = dir.join(format!("img_{i:05}.jpg"));
            img.save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// A tiny deterministic generator (SplitMix64) for synthetic images.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
    /// `n` normal deviates with standard deviation `std` (Box–Muller).
    fn normals(&mut self, n: usize, std: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            let r = (-2.0 * u1.ln()).sqrt() * std as f64;
            let theta = std::f64::consts::TAU * u2;
            out.push((r * theta.cos()) as f32);
            out.push((r * theta.sin()) as f32);
        }
        out.truncate(n);
        out
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n.max(1) as u64) as u32
    }
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
