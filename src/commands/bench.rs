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

use crate::classify::ZeroShotClassifier;
use crate::cli::{BenchArgs, DtypeArg, ModelArgs};
use crate::embed::{class_embeddings, embed_image_files, image_embeddings};
use crate::images::load_rgb;
use crate::model::ClipConfig;
use crate::model::preprocess::preprocess;
use crate::model::{ComputeDtype, LoadedModel};
use crate::probe::ProbeSet;

/// Runs the benchmark; `progress` receives one line per phase.
pub fn run(args: &BenchArgs, mut progress: impl FnMut(&str)) -> anyhow::Result<BenchResults> {
    let scratch = std::env::temp_dir().join(format!("clip-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let result = run_in(args, &scratch, &mut progress);
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
    args: &BenchArgs,
    scratch: &Path,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<BenchResults> {
    anyhow::ensure!(
        args.n > 0 && args.batch > 0 && args.reps > 0,
        "--n, --batch and --reps must be positive"
    );
    let (model_name, mut model_args) = match &args.model {
        Some(m) => (m.clone(), model_args(m)),
        None => {
            let config = ClipConfig::by_preset_name(&args.preset).with_context(|| {
                format!(
                    "unknown preset {:?} (vitb32, vitb16, vitl14, vitl14-336)",
                    args.preset
                )
            })?;
            progress(&format!(
                "writing a random-weight {} checkpoint",
                args.preset
            ));
            let dir = scratch.join("model");
            write_random_checkpoint(&config, &args.tokenizer, &dir, 0)?;
            (
                format!("{} (random weights)", args.preset),
                model_args(&dir.display().to_string()),
            )
        }
    };
    model_args.dtype = args.dtype;

    // the end-to-end run loads the model as part of what it times; the encoder reuses it
    let (end_to_end, model) = if args.encoder_only {
        (None, super::load_model(&model_args)?)
    } else {
        let (result, model) = time_end_to_end(args, &model_args, scratch, progress)?;
        (Some(result), model)
    };

    progress("image encoder only");
    let timing = time_encoder(&model, args.batch, args.reps)?;
    let gflop = encoder_gflop(model.clip.config());
    progress("matrix multiply only");
    let gemm = time_gemm(args.reps.max(5), false);
    let gemm_bf16 =
        (model.compute.used == ComputeDtype::Bf16).then(|| time_gemm(args.reps.max(5), true));
    Ok(BenchResults {
        model: model_name,
        cpu: cpu_name(),
        amx: crate::model::kernels::cpu_has_amx_bf16(),
        threads: super::thread_count(),
        encoder: EncoderResult {
            images_per_s: timing.median,
            best_images_per_s: timing.best,
            gflops: gflop * timing.median,
            gflop_per_image: gflop,
            batch: args.batch,
            reps: args.reps,
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

/// Times the path a user's run takes, from the model load to the predictions; returns the
/// loaded model too.
fn time_end_to_end(
    args: &BenchArgs,
    model_args: &ModelArgs,
    scratch: &Path,
    progress: &mut impl FnMut(&str),
) -> anyhow::Result<(EndToEndResult, LoadedModel)> {
    let images = match &args.images {
        Some(dir) => list_images(dir, args.n)?,
        None => {
            progress(&format!("synthesising {} 448×448 JPEGs", args.n));
            synthesize_images(&scratch.join("images"), args.n, 448)?
        }
    };
    let probe = ProbeSet::load(&args.probe)?;
    progress("end-to-end run");
    let start = Instant::now();
    let model = super::load_model(model_args)?;
    let loaded = start.elapsed().as_secs_f64();
    let classes = class_embeddings(&model, &probe.prompts())?;
    let classifier = ZeroShotClassifier::new(probe.labels(), classes, model.clip.logit_scale());
    let prompts_done = start.elapsed().as_secs_f64();
    let limits = crate::images::ImageLimits::default();
    let embedded = embed_image_files(&model, &images, args.batch, &limits, |_| {})?;
    let predictions = classifier.classify(&embedded.embeddings, 5)?;
    let total = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        embedded.failures.is_empty(),
        "{} benchmark images could not be read",
        embedded.failures.len()
    );

    progress("preprocessing only");
    let t = Instant::now();
    let decoded: usize = images
        .par_iter()
        .map(|p| load_rgb(p).map(|img| preprocess(&img, &model.preprocess).len()))
        .filter(Result::is_ok)
        .count();
    let result = EndToEndResult {
        images: images.len(),
        source: match &args.images {
            Some(d) => d.display().to_string(),
            None => "synthetic 448×448 JPEG".into(),
        },
        images_per_s: predictions.len() as f64 / total,
        wall_s: total,
        model_load_s: loaded,
        prompts: probe.prompts().iter().map(Vec::len).sum(),
        probe: probe.name.clone(),
        prompts_s: prompts_done - loaded,
        images_s: total - prompts_done,
        preprocess_images_per_s: decoded as f64 / t.elapsed().as_secs_f64(),
    };
    Ok((result, model))
}

/// Renders the results as the Markdown report.
pub fn markdown(r: &BenchResults) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
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
    writeln!(out, "| measurement | value |")?;
    writeln!(out, "|---|---|")?;
    if let Some(e) = &r.end_to_end {
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
        )?;
    }
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
    Ok(out)
}

fn model_args(model: &str) -> ModelArgs {
    ModelArgs {
        model: model.to_string(),
        revision: None,
        offline: false,
        hub_cache: None,
        device: crate::model::DeviceChoice::Cpu,
        dtype: DtypeArg::F32,
    }
}

struct EncoderTiming {
    median: f64,
    best: f64,
}

/// Images/s of the image tower alone on random pixels, after one warm-up batch.
fn time_encoder(model: &LoadedModel, batch: usize, reps: usize) -> anyhow::Result<EncoderTiming> {
    let side = model.clip.config().vision_config.image_size;
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
    let threads = super::thread_count();
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

/// Multiply-add FLOPs (×2) of one image through the image tower and projection, in GFLOP.
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
    let device = Device::Cpu;
    let mut rng = SplitMix(seed);
    let mut tensors = HashMap::new();
    for (name, shape) in config.expected_tensors() {
        let tensor = if name == "logit_scale" {
            Tensor::new(config.logit_scale_init_value as f32, &device)?
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
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(config)?,
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
