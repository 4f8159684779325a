//! The command line: clap's low-level arguments, each flag documented where it is defined
//! (`clip-audit help <command>` prints these texts), turned once into the library's typed,
//! validated options (as ripgrep turns its low-level args into high-level ones). A malformed value
//! is a usage error (exit 2) naming the flag; the library never sees the parser.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clip_audit::commands::aggregate::AggregateOptions;
use clip_audit::commands::bench::{BenchOptions, Preset};
use clip_audit::commands::check::CheckOptions;
use clip_audit::commands::classify::ClassifyOptions;
use clip_audit::commands::compare::CompareOptions;
use clip_audit::commands::retrieval::RetrievalOptions;
use clip_audit::commands::run::{CacheChoice, RunOptions};
use clip_audit::images::{DEFAULT_MAX_IMAGE_PIXELS, ImageLimits};
use clip_audit::metrics::retrieval::Target;
use clip_audit::metrics::{Alpha, GroupingRequest, Intersection, ReferenceGroup};
use clip_audit::model::{ComputeDtype, DeviceChoice, ModelName, ModelRequest, SourceOptions};
use clip_audit::shard::Shard;

/// Audit CLIP-style image-text models for social bias.
#[derive(Debug, Parser)]
#[command(name = "clip-audit", version = VERSION, about, max_term_width = 100)]
pub struct Cli {
    /// Worker threads for decoding and matrix kernels (default: all cores).
    #[arg(long, global = true, value_name = "N", value_parser = at_least_one)]
    pub threads: Option<usize>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit a model: apply a probe set to a dataset and write a report folder.
    Run(RunArgs),
    /// Compute the audit report from an existing predictions file (any classifier, or shards).
    Aggregate(AggregateArgs),
    /// Measure text-to-image retrieval bias (MaxSkew, MinSkew, NDKL, Bias@k) per probe class.
    Retrieval(RetrievalArgs),
    /// Gate CI on fairness rules: exit 0 when every rule holds, 1 when one fails, 2 on errors.
    Check(CheckArgs),
    /// Check and inspect probe sets.
    #[command(subcommand)]
    Probes(ProbesCommand),
    /// List and print the dataset specs built into the binary.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Classify images zero-shot against a list of labels.
    Classify(ClassifyArgs),
    /// Measure image-encoder and end-to-end throughput and write a Markdown report.
    Bench(BenchArgs),
    /// Set 2+ report folders side by side: rates, differences to the first with Newcombe
    /// intervals, two-proportion p-values and a grouped chart.
    Compare(CompareArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on standard output.
    Completions {
        /// The shell, e.g. `bash` (then: `clip-audit completions bash >
        /// ~/.local/share/bash-completion/completions/clip-audit`).
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on standard output, or write one page per subcommand.
    Man {
        /// Write `clip-audit.1` and `clip-audit-<subcommand>.1` into this folder instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// `--version`: the crate version and the git commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CLIP_AUDIT_GIT_COMMIT"),
    ")"
);

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
    pub device: DeviceChoice,

    /// Number format of the image encoder: `f32` (matches the reference) or `bf16` (needs a CPU
    /// with AVX512-BF16; elsewhere it falls back to f32 and says so in a warning and in run.json).
    #[arg(long, value_enum, default_value_t = DtypeArg::F32, value_name = "DTYPE")]
    pub dtype: DtypeArg,
}

/// Bounds on each image (shared by `run` and `classify`).
#[derive(Debug, Args)]
pub struct ImageLimitArgs {
    /// Largest image accepted, in pixels (width × height; default: Pillow's decompression-bomb
    /// limit); a larger one is skipped with its reason. It also bounds memory: all buffers of one
    /// decode together may take 6 bytes per pixel of this limit (so a 16-bit or RGBA image near
    /// it is refused), and an image file 256 MiB or that much, whichever is smaller.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_IMAGE_PIXELS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_image_pixels: u64,
}

/// Values of `--dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// 32-bit floats.
    F32,
    /// bfloat16 products, f32 accumulation.
    Bf16,
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
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = at_least_one)]
    pub batch: usize,

    /// Bounds on each image.
    #[command(flatten)]
    pub image_limits: ImageLimitArgs,

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

    /// Random-weight architecture to build: vitb32, vitb16, vitl14, vitl14-336 (CLIP),
    /// siglip-b16 or siglip-so400m14 (SigLIP).
    #[arg(long, default_value = "vitb32", value_name = "NAME")]
    pub preset: Preset,

    /// tokenizer.json for the random-weight preset (default: the CLIP tokenizer built into the
    /// binary).
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub tokenizer: Option<PathBuf>,

    /// Probe set (file or built-in name) whose prompts the end-to-end run embeds (default: the
    /// built-in `clip-paper-race`).
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub probe: Option<PathBuf>,

    /// Folder of images for the end-to-end run (default: synthetic 448×448 JPEGs).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,

    /// Number of images in the end-to-end run.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = at_least_one)]
    pub n: usize,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = at_least_one)]
    pub batch: usize,

    /// Timed repetitions of the encoder-only measurement (the median is reported).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = at_least_one)]
    pub reps: usize,

    /// Measure the image encoder (and the machine's matrix multiply) only: no end-to-end run.
    #[arg(long)]
    pub encoder_only: bool,

    /// Number format of the image encoder (see `run --dtype`).
    #[arg(long, value_enum, default_value_t = DtypeArg::F32, value_name = "DTYPE")]
    pub dtype: DtypeArg,

    /// Report format on standard output.
    #[arg(long, value_enum, default_value_t = BenchFormat::Markdown, value_name = "FORMAT")]
    pub format: BenchFormat,

    /// Write the report here as well as to standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Output format of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    /// A Markdown table.
    Markdown,
    /// One JSON object (`encoder`, `gemm`, `end_to_end`, `cpu`, `amx`).
    Json,
}

/// How images are grouped in the report (shared by `run` and `aggregate`).
#[derive(Debug, Args)]
pub struct GroupingArgs {
    /// Attributes to tabulate one by one, comma-separated (default: every attribute).
    #[arg(long, value_delimiter = ',', value_name = "ATTR,...")]
    pub by: Vec<String>,

    /// An intersection to tabulate, e.g. `race*gender`; repeat for several.
    #[arg(long, value_name = "A*B")]
    pub intersect: Vec<Intersection>,

    /// Reference group for `ratio_to_reference`, e.g. `race=White`; repeat per attribute
    /// (default: the largest group).
    #[arg(long, value_name = "ATTR=GROUP")]
    pub reference: Vec<ReferenceGroup>,

    /// Family-wise significance level of the findings: a disparity is one when its Holm-adjusted
    /// p-value (over every test of the report) is at most this.
    #[arg(long, default_value = "0.05", value_name = "ALPHA")]
    pub alpha: Alpha,

    /// A note shown at the top of the report (e.g. that a model is a test fixture).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// Options of `clip-audit run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Probe set: a TOML file, or the name of a built-in probe (`probes list`); a file of that
    /// name wins.
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub probe: PathBuf,

    /// Dataset spec (a TOML file, or the name of a built-in spec: `datasets list`; a file of that
    /// name wins) or a FairFace-style label CSV.
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub dataset: PathBuf,

    /// The checkpoint.
    #[command(flatten)]
    pub model: ModelArgs,

    /// Report folder to write (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Grouping and report options.
    #[command(flatten)]
    pub grouping: GroupingArgs,

    /// Images encoded per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = at_least_one)]
    pub batch: usize,

    /// How many of the most probable labels to keep per image in the predictions.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top_k: usize,

    /// Fail on the first missing or undecodable image instead of skipping and listing it.
    #[arg(long)]
    pub strict: bool,

    /// Fail (exit 2, no report) when more than this fraction of the records, 0 to 1, is skipped
    /// (missing, unreadable or malformed images), e.g. `0.01`. Without it any number of skips is
    /// allowed; each run with skips warns and lists them in skipped.csv.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub max_skipped: Option<f64>,

    /// Also write predictions.csv (top labels and probabilities joined with `|`).
    #[arg(long)]
    pub predictions_csv: bool,

    /// Prompt sensitivity: also classify every image under each template of the probe on its own
    /// (same image embeddings) and write templates.csv, a spread table and chart per category.
    #[arg(long)]
    pub per_template: bool,

    /// Classify only shard K of N (0-based, e.g. `0/4`): the records at positions
    /// ⌊K·T/N⌋..⌊(K+1)·T/N⌋ of the dataset's T, the same whatever the threads or batch size. Run
    /// all N (on as many machines), then `aggregate --predictions` over their folders reproduces
    /// the unsharded tables. Not with `--per-template` (aggregate does not merge its tables).
    #[arg(long, value_name = "K/N", conflicts_with = "per_template")]
    pub shard: Option<Shard>,

    /// The embedding cache.
    #[command(flatten)]
    pub cache: CacheArgs,

    /// Bounds on each image.
    #[command(flatten)]
    pub image_limits: ImageLimitArgs,
}

/// Options of `clip-audit retrieval`.
#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// Probe set (TOML file or built-in name): each class is one text query, embedded with its
    /// templates.
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub probe: PathBuf,

    /// Dataset spec (TOML file or built-in name) or a FairFace-style label CSV: the images ranked.
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub dataset: PathBuf,

    /// The checkpoint.
    #[command(flatten)]
    pub model: ModelArgs,

    /// Report folder to write (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Attributes to measure, comma-separated (default: every attribute of the dataset).
    #[arg(long, value_name = "ATTRS", value_delimiter = ',')]
    pub by: Vec<String>,

    /// Cut-offs of the top-k measures, comma-separated; each at least 1 and at most the number
    /// of images ranked.
    #[arg(long = "k", value_name = "K,...", value_delimiter = ',', default_value = "10,100,1000",
          value_parser = at_least_one)]
    pub ks: Vec<usize>,

    /// Target distribution: `uniform` (every group present equally likely) or `dataset` (each
    /// group's share of the ranked images).
    #[arg(long, value_enum, default_value_t = TargetArg::Uniform)]
    pub target: TargetArg,

    /// Images encoded per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = at_least_one)]
    pub batch: usize,

    /// Fail on the first missing or undecodable image instead of skipping and listing it.
    #[arg(long)]
    pub strict: bool,

    /// Fail (exit 2, no report) when more than this fraction of the records, 0 to 1, is skipped.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    pub max_skipped: Option<f64>,

    /// The embedding cache (shared with `run`: after a `run` on the same images and model,
    /// nothing is encoded again).
    #[command(flatten)]
    pub cache: CacheArgs,

    /// Bounds on each image.
    #[command(flatten)]
    pub image_limits: ImageLimitArgs,
}

/// Where embeddings are cached (`run`, `retrieval`).
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Folder of the embedding cache, which lets a re-run on the same images and model skip
    /// decoding and encoding (default: $CLIP_AUDIT_CACHE, else $XDG_CACHE_HOME/clip-audit, else
    /// ~/.cache/clip-audit).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,

    /// Neither read nor write the embedding cache: encode every image.
    #[arg(long)]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache the flags choose.
    fn choice(self) -> CacheChoice {
        match (self.no_cache, self.cache_dir) {
            (true, _) => CacheChoice::Off,
            (false, Some(dir)) => CacheChoice::Dir(dir),
            (false, None) => CacheChoice::Default,
        }
    }
}

/// `--target` of `retrieval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// Every group present in the ranked images equally likely.
    Uniform,
    /// Each group's share of the ranked images.
    Dataset,
}

/// Options of `clip-audit aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Predictions file(s), CSV or Parquet: an id column, attribute columns and a label column;
    /// several files are combined (one flag with several values, or the flag repeated). A report
    /// folder stands for its predictions; the N folders of a `run --shard K/N` are checked to be
    /// every shard of one run (same dataset, probe and model, none missing or repeated).
    #[arg(
        long = "predictions",
        value_name = "FILE|DIR",
        required = true,
        num_args = 1..
    )]
    pub predictions: Vec<PathBuf>,

    /// Probe set whose labels the predictions use (TOML file or built-in name).
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub probe: PathBuf,

    /// Report folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Column holding the predicted label.
    #[arg(long, default_value = "predicted_label", value_name = "NAME")]
    pub label_column: String,

    /// Dataset spec (file or built-in name) or label CSV giving the attribute vocabularies
    /// (default: the values found, with FairFace's known orders).
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub dataset: Option<PathBuf>,

    /// Grouping and report options.
    #[command(flatten)]
    pub grouping: GroupingArgs,
}

/// `clip-audit probes ...`.
#[derive(Debug, Subcommand)]
pub enum ProbesCommand {
    /// Check probe files; prints one line per file, exits 2 on the first invalid one.
    Validate {
        /// Probe files.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a probe's categories, classes, expanded prompts and content hash (or, with
    /// `--toml`, its file's text, to copy and edit).
    Show {
        /// Probe file, or the name of a built-in probe (see `probes list`).
        #[arg(value_name = "NAME_OR_FILE")]
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "toml")]
        json: bool,
        /// Print the TOML text itself, byte for byte (a probe that `extend`s another needs that
        /// one next to it too).
        #[arg(long)]
        toml: bool,
    },
    /// List the probes built into the binary: name, classes, content hash, description.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `clip-audit datasets ...`.
#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// List the dataset specs built into the binary: name, format, spec SHA-256, where the data
    /// comes from.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a dataset spec's TOML text, byte for byte (to copy and edit).
    Show {
        /// Spec file, or the name of a built-in dataset spec (see `datasets list`).
        #[arg(value_name = "NAME_OR_FILE")]
        spec: PathBuf,
    },
}

/// Options of `clip-audit check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Report folder written by `run` or `aggregate`.
    #[arg(value_name = "REPORT_DIR")]
    pub report: PathBuf,

    /// Rules file (TOML, `[[rule]]` tables; see examples/).
    #[arg(long, value_name = "FILE")]
    pub rules: PathBuf,

    /// Baseline report folder for `max_increase` rules (e.g. the last release's audit).
    #[arg(long, value_name = "BASELINE_DIR")]
    pub against: Option<PathBuf>,

    /// Also write JUnit XML here (one test case per rule).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

impl ModelArgs {
    /// The model request: `--model` read as a folder or a Hub id, with `--revision` applied.
    pub fn request(self, dtype: DtypeArg) -> ModelRequest {
        ModelRequest {
            model: ModelName {
                name: self.model,
                revision: self.revision,
            },
            source: SourceOptions {
                offline: self.offline,
                cache_dir: self.hub_cache,
            },
            device: self.device,
            dtype: dtype.into(),
        }
    }
}

impl From<DtypeArg> for ComputeDtype {
    fn from(dtype: DtypeArg) -> ComputeDtype {
        match dtype {
            DtypeArg::F32 => ComputeDtype::F32,
            DtypeArg::Bf16 => ComputeDtype::Bf16,
        }
    }
}

impl From<OutputFormat> for clip_audit::commands::OutputFormat {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => Self::Table,
            OutputFormat::Json => Self::Json,
        }
    }
}

impl GroupingArgs {
    /// The grouping request and the report note.
    fn request(self) -> (GroupingRequest, Option<String>) {
        let request = GroupingRequest {
            by: self.by,
            intersections: self.intersect,
            references: self.reference,
            alpha: self.alpha,
        };
        (request, self.note)
    }
}

impl RunArgs {
    /// The options of `run`; `command` is the command line recorded in `run.json`.
    pub fn options(self, command: Vec<String>) -> RunOptions {
        let dtype = self.model.dtype;
        let (grouping, note) = self.grouping.request();
        RunOptions {
            probe: self.probe,
            dataset: self.dataset,
            model: self.model.request(dtype),
            out: self.out,
            grouping,
            note,
            batch_size: self.batch,
            top_k: self.top_k,
            strict: self.strict,
            max_skipped: self.max_skipped,
            predictions_csv: self.predictions_csv,
            per_template: self.per_template,
            cache: self.cache.choice(),
            image_limits: ImageLimits::new(self.image_limits.max_image_pixels),
            shard: self.shard,
            command,
        }
    }
}

impl RetrievalArgs {
    /// The options of `retrieval`; `command` is the command line recorded in `run.json`.
    pub fn options(self, command: Vec<String>) -> RetrievalOptions {
        let dtype = self.model.dtype;
        RetrievalOptions {
            probe: self.probe,
            dataset: self.dataset,
            model: self.model.request(dtype),
            out: self.out,
            by: self.by,
            ks: self.ks,
            target: match self.target {
                TargetArg::Uniform => Target::Uniform,
                TargetArg::Dataset => Target::Dataset,
            },
            batch_size: self.batch,
            strict: self.strict,
            max_skipped: self.max_skipped,
            cache: self.cache.choice(),
            image_limits: ImageLimits::new(self.image_limits.max_image_pixels),
            command,
        }
    }
}

impl AggregateArgs {
    /// The options of `aggregate`; `command` is the command line recorded in `run.json`.
    pub fn options(self, command: Vec<String>) -> AggregateOptions {
        let (grouping, note) = self.grouping.request();
        AggregateOptions {
            predictions: self.predictions,
            probe: self.probe,
            out: self.out,
            label_column: self.label_column,
            dataset: self.dataset,
            grouping,
            note,
            command,
        }
    }
}

impl ClassifyArgs {
    /// The options of `classify`.
    pub fn options(self) -> ClassifyOptions {
        let dtype = self.model.dtype;
        ClassifyOptions {
            model: self.model.request(dtype),
            labels: self.labels,
            labels_file: self.labels_file,
            templates: self.templates,
            top_k: self.top_k,
            batch_size: self.batch,
            image_limits: ImageLimits::new(self.image_limits.max_image_pixels),
            images: self.images,
        }
    }
}

impl BenchArgs {
    /// The options of `bench`.
    pub fn options(self) -> BenchOptions {
        let model = self.model.map(|name| ModelRequest {
            model: ModelName {
                name,
                revision: None,
            },
            ..ModelRequest::local(std::path::Path::new(""))
        });
        BenchOptions {
            model,
            preset: self.preset,
            tokenizer: self.tokenizer,
            dtype: self.dtype.into(),
            probe: self.probe,
            images: self.images,
            n: self.n,
            batch_size: self.batch,
            reps: self.reps,
            encoder_only: self.encoder_only,
        }
    }
}

impl CheckArgs {
    /// The options of `check`.
    pub fn options(self) -> CheckOptions {
        CheckOptions {
            report: self.report,
            rules: self.rules,
            against: self.against,
            junit: self.junit,
            format: self.format.into(),
        }
    }
}

/// A count of at least 1 (`--batch`, `--threads`, `--n`, `--reps`).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got {text:?}"
        )),
    }
}

/// A fraction between 0 and 1 inclusive (`--max-skipped`).
fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a fraction between 0 and 1, e.g. 0.01; got {text:?}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "expected a fraction between 0 and 1 (0.01 is 1%), got {text}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fraction;

    #[test]
    fn fractions_between_zero_and_one() {
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert_eq!(parse_fraction("0"), Ok(0.0));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        for bad in ["1.5", "-0.1", "NaN", "5%", "", "inf"] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }
}

/// Options of `clip-audit compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Report folders written by `run` or `aggregate` (two or more); differences are to the first.
    #[arg(value_name = "REPORT_DIR", num_args = 2.., required = true)]
    pub reports: Vec<PathBuf>,

    /// Comparison report folder to write.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Display names, one per report folder, comma-separated (default: the folders' names).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub names: Option<Vec<String>>,
}

impl CompareArgs {
    /// The options of `compare`; `command` is the command line recorded in `run.json`.
    pub fn options(self, command: Vec<String>) -> CompareOptions {
        CompareOptions {
            reports: self.reports,
            out: self.out,
            names: self.names,
            command,
        }
    }
}
