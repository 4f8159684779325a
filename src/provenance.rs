//! The provenance record, `run.json`: one versioned type written last into every report folder
//! (by `run` and `aggregate`), documented field by field in `reports/README.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{ComputePlan, ModelOrigin};

/// The version of the `run.json` layout this build writes. It rises whenever a field is removed
/// or changes meaning (adding a field does not); readers refuse a newer version.
pub const SCHEMA_VERSION: u32 = 1;

/// The tool that wrote a report: `{"name": "clip-audit", "version": "…"}` in `run.json`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ToolInfo {
    /// Always `clip-audit`.
    pub name: &'static str,
    /// The crate version.
    pub version: &'static str,
}

impl ToolInfo {
    /// This build of the tool.
    pub fn current() -> ToolInfo {
        ToolInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Which command wrote a report folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// `clip-audit run`: a model applied to a dataset.
    Run,
    /// `clip-audit aggregate`: existing predictions tabulated.
    Aggregate,
    /// `clip-audit retrieval`: text-to-image retrieval bias.
    Retrieval,
    /// `clip-audit compare`: report folders set side by side.
    Compare,
}

/// Everything `run.json` records about how a report was made. Every key is always present;
/// a section that does not apply to the command (`model` for `aggregate`) is `null`.
#[derive(Debug, Serialize)]
pub struct RunRecord {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The command that wrote the report.
    pub kind: ReportKind,
    /// Name and version of the tool.
    pub tool: ToolInfo,
    /// The command line, as the caller passed it in.
    pub command: Vec<String>,
    /// When the command started, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_utc: String,
    /// The probe set.
    pub probe: ProbeRecord,
    /// The model: the one `run` loaded ([`ModelRecord`]), or for `aggregate` over shards the one
    /// the shards' `run.json` name.
    pub model: Option<serde_json::Value>,
    /// The embedding cache and what it did (`run` with a cache only).
    pub embedding_cache: Option<CacheRecord>,
    /// The dataset (`run`; `aggregate` with `--dataset`).
    pub dataset: Option<DatasetRecord>,
    /// The predictions files tabulated (`aggregate` only; empty for `run`).
    pub predictions: Vec<InputFileRecord>,
    /// Where the attribute vocabularies came from (`aggregate` only).
    pub vocabulary_from: Option<String>,
    /// Records read (images for `run`, prediction rows for `aggregate`).
    pub records: u64,
    /// Records classified and counted in the tables.
    pub classified: u64,
    /// Records skipped, each listed in `skipped.csv`.
    pub skipped: u64,
    /// `skipped / records` (0 when there are no records).
    pub skipped_fraction: f64,
    /// Images per forward pass (`run` only).
    pub batch_size: Option<usize>,
    /// Labels kept per image in the predictions (`run` only).
    pub top_k: Option<usize>,
    /// Worker threads (`run` only).
    pub threads: Option<usize>,
    /// The device, e.g. `cpu` or `cuda:0` (`run` only).
    pub device: Option<String>,
    /// Wall seconds per phase (`model_load`, `prompts`, `images`, `total`; empty for `aggregate`).
    pub timings_s: BTreeMap<&'static str, f64>,
    /// Warnings shown to the user.
    pub warnings: Vec<String>,
    /// The report folders set side by side (`compare` only; empty otherwise).
    pub compared: Vec<ComparedReport>,
    /// Whether `--per-template` was on (`run` only).
    pub per_template: Option<bool>,
    /// Which share of the dataset a `run --shard K/N` classified (`null` for an unsharded run).
    pub shard: Option<ShardRecord>,
    /// The shards an `aggregate` combined (`null` unless its predictions came from shards).
    pub shards: Option<ShardSetRecord>,
}

impl RunRecord {
    /// Writes the record as `run.json` in `dir` (pretty JSON, keys in declaration order).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        std::fs::write(dir.join("run.json"), text)
    }
}

/// The probe set of a report.
#[derive(Debug, Serialize)]
pub struct ProbeRecord {
    /// Its `name`.
    pub name: String,
    /// The file as given on the command line, or `builtin:NAME` for a probe built into the binary.
    pub file: String,
    /// Content hash of the resolved probe (see `clip-audit probes show`).
    pub content_hash: String,
    /// Number of classes (labels).
    pub classes: usize,
}

/// The model of a run.
#[derive(Debug, Serialize)]
pub struct ModelRecord {
    /// Display name (folder name or Hub id).
    pub name: String,
    /// Local folder, or Hub repository, revision and resolved commit.
    pub origin: ModelOrigin,
    /// SHA-256 of each checkpoint file, by file name.
    pub sha256: BTreeMap<String, String>,
    /// The family read from `config.json` (`clip`, `siglip`).
    pub family: crate::model::Family,
    /// How similarities become probabilities: `softmax` over the labels (CLIP) or an independent
    /// `sigmoid` per label (SigLIP).
    pub scores: &'static str,
    /// The checkpoint's `exp(logit_scale)` applied to cosine similarities.
    pub logit_scale: f32,
    /// The checkpoint's `logit_bias` added to the scaled similarities (SigLIP; `null` for CLIP).
    pub logit_bias: Option<f32>,
    /// Number format and image tower that ran, and why they differ from what was asked.
    pub compute: ComputePlan,
}

/// The embedding cache of a run.
#[derive(Debug, Serialize)]
pub struct CacheRecord {
    /// The model's folder inside the cache.
    pub dir: String,
    /// Images whose embedding came from the cache.
    pub hits: u64,
    /// Images encoded because the cache had no (valid) entry.
    pub misses: u64,
    /// Entries stored by this run.
    pub written: u64,
    /// Entries found invalid or unreadable (and encoded again).
    pub corrupt: u64,
}

/// The dataset of a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// Its name (the spec's `name`, or the label file's).
    pub name: String,
    /// The `--dataset` argument as given.
    pub argument: String,
    /// SHA-256 of the spec or label file.
    pub spec_sha256: String,
    /// Where its records came from (format, files and their hashes, Hub commit).
    pub source: serde_json::Value,
}

/// The `shard` section of a sharded run's `run.json`: shard `index` of `count` (0-based) took the
/// records at positions `first_record..end_record` of the dataset's `dataset_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// K of `--shard K/N`.
    pub index: usize,
    /// N of `--shard K/N`.
    pub count: usize,
    /// Position of the shard's first record in the dataset's record stream.
    pub first_record: u64,
    /// Position one past its last record.
    pub end_record: u64,
    /// Records of the whole dataset (every shard's run counts them all).
    pub dataset_records: u64,
}

/// The `shards` section of an `aggregate` over a sharded run.
#[derive(Debug, Clone, Serialize)]
pub struct ShardSetRecord {
    /// N: how many shards the run was split into (all of them were combined).
    pub count: usize,
    /// Records of the whole dataset.
    pub dataset_records: u64,
    /// Each shard's `run.json` with its SHA-256, in shard order.
    pub run_json: Vec<InputFileRecord>,
}

/// An input file with its hash.
#[derive(Debug, Clone, Serialize)]
pub struct InputFileRecord {
    /// The file as given.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
}

/// One report folder read by `compare`: what its `run.json` says it is.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedReport {
    /// The display name (`--names`, or the folder's name).
    pub name: String,
    /// The folder as given.
    pub folder: String,
    /// Its `run.json` with that file's SHA-256.
    pub run_json: InputFileRecord,
    /// The command that wrote it (`run`, `aggregate`), as its `run.json` says.
    pub kind: String,
    /// The clip-audit version that wrote it.
    pub tool_version: String,
    /// Its probe's name.
    pub probe_name: String,
    /// Its probe's content hash.
    pub probe_hash: String,
    /// Its probe's number of classes.
    pub probe_classes: u64,
    /// Its dataset's name (`null` when it records none).
    pub dataset_name: Option<String>,
    /// Its dataset spec's SHA-256 (`null` when it records none).
    pub dataset_sha256: Option<String>,
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no time-zone crate needed).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
