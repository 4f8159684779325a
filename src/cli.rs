//! Command-line definitions, parsed once into typed options. Each flag is documented where it is
//! defined; `clip-audit help <command>` prints these texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Audit CLIP-style image-text models for social bias.
#[derive(Debug, Parser)]
#[command(name = "clip-audit", version, about, max_term_width = 100)]
pub struct Cli {
    /// Worker threads for decoding and matrix kernels (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify images zero-shot against a list of labels.
    Classify(ClassifyArgs),
    /// Measure image-encoder and end-to-end throughput and write a Markdown report.
    Bench(BenchArgs),
}

/// Where the model comes from (shared by every command that loads one).
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A local checkpoint folder (config.json, model.safetensors, tokenizer.json) or a Hugging Face
    /// Hub id such as `openai/clip-vit-base-patch32`.
    #[arg(long, value_name = "DIR_OR_ID")]
    pub model: String,

    /// Hub revision (branch, tag or commit) to pin; the resolved commit is recorded.
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,

    /// Never touch the network: Hub files must already be in the Hugging Face cache.
    #[arg(long)]
    pub offline: bool,

    /// Hugging Face cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else
    /// ~/.cache/huggingface/hub).
    #[arg(long, value_name = "DIR")]
    pub hub_cache: Option<PathBuf>,

    /// Device to run on: `cpu`, or `cuda[:N]` in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
}

/// Output format of `classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object: `labels`, and per image `path`, `logits`, `probs`, `top`.
    Json,
}

/// Options of `clip-audit classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// The checkpoint.
    #[command(flatten)]
    pub model: ModelArgs,

    /// A class label; repeat the flag for each label (one value per flag, so an image path can
    /// never be mistaken for a label).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,

    /// A file with one label per line (blank lines and lines starting with `#` are ignored).
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,

    /// A prompt template with a `{label}` placeholder; repeat the flag for several, whose
    /// embeddings are averaged (prompt ensembling).
    #[arg(
        long = "template",
        value_name = "TEMPLATE",
        default_value = "a photo of a {label}."
    )]
    pub templates: Vec<String>,

    /// How many of the most probable labels to show per image.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top_k: usize,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Images encoded per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch: usize,

    /// Image files (JPEG, PNG, WebP).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
}

/// Options of `clip-audit bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Benchmark this checkpoint (folder or Hub id) instead of a random-weight preset.
    #[arg(long, value_name = "DIR_OR_ID", conflicts_with = "preset")]
    pub model: Option<String>,

    /// Random-weight architecture to build: vitb32, vitb16, vitl14 or vitl14-336.
    #[arg(long, default_value = "vitb32", value_name = "NAME")]
    pub preset: String,

    /// tokenizer.json for the random-weight preset.
    #[arg(
        long,
        default_value = "tests/fixtures/tiny-clip/tokenizer.json",
        value_name = "FILE"
    )]
    pub tokenizer: PathBuf,

    /// Folder of images for the end-to-end run (default: synthetic 448×448 JPEGs).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,

    /// Number of images in the end-to-end run.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub n: usize,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch: usize,

    /// Timed repetitions of the encoder-only measurement (the median is reported).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub reps: usize,

    /// Write the Markdown report here as well as to standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
