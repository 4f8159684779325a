//! `clip-audit run`: apply a probe set to a dataset with a model and write the report folder.
//!
//! Four phases, each a function: [`prepare`] reads and checks the probe and every dataset row,
//! [`load`] loads the model, the embedding cache and the class embeddings, [`classify`] streams
//! the records through the [`Pipeline`] into the predictions and the counts, and [`write`] writes
//! the report and `run.json` into the staging folder that [`StagedReport::commit`] swaps in.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::classify::ZeroShotClassifier;
use crate::dataset::{Dataset, DatasetError, DatasetOptions, RecordCounts, RecordItem};
use crate::embed::class_embeddings;
use crate::embed_cache::{EmbeddingCache, ModelKey};
use crate::export::{Report, ReportContext, SkippedWriter, write_report};
use crate::images::ImageLimits;
use crate::metrics::{
    AuditMetrics, GroupingRequest, MetricsAccumulator, MetricsSetup, PerTemplate,
};
use crate::model::{Family, LoadedModel, ModelError, ModelRequest, Scoring};
use crate::pipeline::{Classified, Outcome, Pipeline};
use crate::predictions::{PredictionRow, PredictionsWriter};
use crate::probe::ProbeSet;
use crate::provenance::{
    CacheRecord, DatasetRecord, ModelRecord, ProbeRecord, ReportKind, RunRecord, SCHEMA_VERSION,
    ToolInfo, utc_now,
};
use crate::report_folder::StagedReport;
use crate::schema::SkippedRecord;
use crate::shard::Shard;

use super::tabulation::{metrics_setup, report_context};

/// Everything `run` needs, validated by the caller (the command line parses it once).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The probe set file.
    pub probe: PathBuf,
    /// The dataset spec or FairFace-style label CSV.
    pub dataset: PathBuf,
    /// The checkpoint, device and number format (its offline flag and Hub cache also apply to a
    /// dataset from the Hub).
    pub model: ModelRequest,
    /// The report folder to write.
    pub out: PathBuf,
    /// What to tabulate.
    pub grouping: GroupingRequest,
    /// A note shown at the top of the report.
    pub note: Option<String>,
    /// Images encoded per forward pass (at least 1).
    pub batch_size: usize,
    /// Labels kept per image in the predictions.
    pub top_k: usize,
    /// Fail on the first unusable image instead of skipping it.
    pub strict: bool,
    /// Fail when more than this fraction of the records is skipped.
    pub max_skipped: Option<f64>,
    /// Also write `predictions.csv`.
    pub predictions_csv: bool,
    /// Also classify under each template alone (`templates.csv`, the spread table and chart).
    pub per_template: bool,
    /// Where embeddings are cached.
    pub cache: CacheChoice,
    /// Bounds on each image.
    pub image_limits: ImageLimits,
    /// Classify only this share of the dataset's records (`--shard K/N`).
    pub shard: Option<Shard>,
    /// The command line, recorded in `run.json` and the report lock.
    pub command: Vec<String>,
}

/// Where the embedding cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheChoice {
    /// No cache: every image is encoded.
    Off,
    /// `$CLIP_AUDIT_CACHE`, else `$XDG_CACHE_HOME/clip-audit`, else `~/.cache/clip-audit`.
    Default,
    /// This folder.
    Dir(PathBuf),
}

/// Progress events of a run, for a progress bar or log lines.
pub trait RunProgress: Sync {
    /// A phase starts (loading the model, embedding prompts, classifying).
    fn phase(&self, name: &str);
    /// The dataset holds `total` records (known before classifying starts).
    fn total(&self, total: u64);
    /// `done` records of the dataset have been handled (classified or skipped).
    fn records(&self, done: u64);
}

/// What a finished run reports back.
#[derive(Debug)]
pub struct RunSummary {
    /// The report folder.
    pub out: PathBuf,
    /// Images classified.
    pub classified: u64,
    /// Records skipped (missing, undecodable, malformed).
    pub skipped: u64,
    /// Things the user should know that did not stop the run.
    pub warnings: Vec<String>,
}

/// Runs the audit and writes the report folder.
pub fn run(options: &RunOptions, progress: &dyn RunProgress) -> anyhow::Result<RunSummary> {
    let mut clock = Clock::start();
    let mut warnings = Vec::new();
    let prepared = prepare(options, progress, &mut warnings)?;
    let stage = StagedReport::begin(&options.out, &options.command.join(" "))?;
    let loaded = load(
        &options.model,
        &options.cache,
        options.per_template,
        &prepared.probe,
        progress,
        &mut warnings,
    )?;
    clock.loaded = clock.elapsed();
    progress.total(prepared.records.end - prepared.records.start);
    progress.phase("classifying");
    let outcome = classify(options, &prepared, &loaded, stage.dir(), progress)?;
    clock.classified = clock.elapsed();
    let tally = StreamTally {
        dataset: &options.dataset,
        verb: "classified",
        records: outcome.records,
        used: outcome.metrics.n,
        skipped: outcome.skipped_total,
        skipped_first: &outcome.skipped_first,
        cache_write_error: outcome.cache_write_error.as_deref(),
    };
    judge_skips(&tally, options.max_skipped, &stage, &mut warnings)?;
    write(
        options, &prepared, loaded, &outcome, &stage, &clock, &warnings,
    )?;
    let out = stage.commit()?;
    Ok(RunSummary {
        out,
        classified: outcome.metrics.n,
        skipped: outcome.skipped_total,
        warnings,
    })
}

/// When the run started and when its phases ended, in seconds since the start.
struct Clock {
    started: Instant,
    started_utc: String,
    /// The model, the cache and the class embeddings are ready.
    loaded: f64,
    /// Every record is classified.
    classified: f64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            started: Instant::now(),
            started_utc: utc_now(),
            loaded: 0.0,
            classified: 0.0,
        }
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// The probe, the dataset and the tabulation, checked before anything is loaded or written.
struct Prepared {
    probe: ProbeSet,
    dataset: Dataset,
    setup: MetricsSetup,
    counts: RecordCounts,
    /// The positions in the record stream to classify: all, or the shard's.
    records: Range<u64>,
}

/// Reads the probe and the dataset, builds the tabulation, and reads every dataset row once
/// without decoding images: a bad row or a repeated id fails the run before the model loads.
fn prepare(
    options: &RunOptions,
    progress: &dyn RunProgress,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Prepared> {
    let probe = ProbeSet::open(&options.probe)?;
    let dataset = Dataset::open(
        &options.dataset,
        &DatasetOptions {
            offline: options.model.source.offline,
            hub_cache: options.model.source.cache_dir.clone(),
        },
    )?;
    let attributes = dataset.attributes().to_vec();
    let attribute_names: Vec<String> = attributes.iter().map(|a| a.name.clone()).collect();
    probe.check_attributes(&attribute_names).with_context(|| {
        format!(
            "probe {} on dataset {}",
            options.probe.display(),
            options.dataset.display()
        )
    })?;
    let setup = metrics_setup(&probe, &attributes, &options.grouping, warnings)?;
    progress.phase("checking the dataset");
    let counts = dataset
        .check_records()
        .with_context(|| format!("checking the dataset {}", options.dataset.display()))?;
    let records = match options.shard {
        None => 0..counts.items,
        Some(shard) if (shard.count as u64) > counts.items => bail!(
            "--shard {shard}: {} has {} records, fewer than the {} shards asked for",
            options.dataset.display(),
            counts.items,
            shard.count
        ),
        Some(shard) => shard.range(counts.items),
    };
    Ok(Prepared {
        probe,
        dataset,
        setup,
        counts,
        records,
    })
}

/// The model, its embedding cache, the class embeddings and the model files' hashes.
pub(super) struct Loaded {
    pub(super) model: LoadedModel,
    pub(super) cache: Option<EmbeddingCache>,
    pub(super) classifier: ZeroShotClassifier,
    /// With `--per-template`: one classifier per template, in the probe's order.
    pub(super) variants: Vec<ZeroShotClassifier>,
    pub(super) hashes: ModelHashes,
    /// Seconds spent embedding the probe's prompts.
    pub(super) prompts_s: f64,
}

/// Loads the model and the cache, and embeds the probe's prompts (shared with `retrieval`); with
/// `per_template`, also each template's on its own.
pub(super) fn load(
    request: &ModelRequest,
    cache: &CacheChoice,
    per_template: bool,
    probe: &ProbeSet,
    progress: &dyn RunProgress,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Loaded> {
    progress.phase("loading the model");
    let model = request.load()?;
    if let Some(note) = &model.compute.note {
        warnings.push(note.clone());
    }
    let (hashes, cache) = match cache_root(cache, warnings) {
        // The model files' hashes key the cache, so with a cache they are needed now (memoised
        // under the cache folder).
        Some(root) => {
            let hashes: BTreeMap<String, String> = model
                .files
                .sha256_hashes_memo(Some(&root.join("file-hashes")))?
                .into_iter()
                .collect();
            let cache = open_cache(&root, &model, &hashes)?;
            (ModelHashes::Ready(hashes), Some(cache))
        }
        // Without one they only go into run.json: hash in the background, and load the image
        // tower now (every image will be encoded), not inside the first batch.
        None => {
            let files = model.files.clone();
            let hashing = std::thread::spawn(move || files.sha256_hashes());
            model.towers.load_image_tower()?;
            (ModelHashes::Pending(hashing), None)
        }
    };
    progress.phase("embedding the probe's prompts");
    let started = Instant::now();
    let classes = class_embeddings(&model, &probe.prompts())?;
    let classifier = ZeroShotClassifier::new(probe.labels(), classes, model.towers.scoring());
    let variants = if per_template {
        template_classifiers(&model, probe)?
    } else {
        Vec::new()
    };
    Ok(Loaded {
        model,
        cache,
        classifier,
        variants,
        hashes,
        prompts_s: started.elapsed().as_secs_f64(),
    })
}

/// One classifier per template of the probe, its class embeddings computed exactly as a probe
/// holding only that template computes them (the same prompts through [`class_embeddings`]), so
/// its predictions equal such a run's.
fn template_classifiers(
    model: &LoadedModel,
    probe: &ProbeSet,
) -> anyhow::Result<Vec<ZeroShotClassifier>> {
    (0..probe.templates.len())
        .map(|t| {
            let prompts: Vec<Vec<String>> = probe
                .classes
                .iter()
                .map(|c| c.prompts.get(t).cloned().into_iter().collect())
                .collect();
            let classes = class_embeddings(model, &prompts)
                .with_context(|| format!("embedding template {:?}", probe.templates[t]))?;
            Ok(ZeroShotClassifier::new(
                probe.labels(),
                classes,
                model.towers.scoring(),
            ))
        })
        .collect()
}

/// SHA-256 of the model files, computed up front or still being computed in the background.
pub(super) enum ModelHashes {
    Ready(BTreeMap<String, String>),
    Pending(std::thread::JoinHandle<Result<Vec<(String, String)>, ModelError>>),
}

impl ModelHashes {
    /// The hashes, waiting for the background computation if needed.
    pub(super) fn finish(self) -> anyhow::Result<BTreeMap<String, String>> {
        match self {
            ModelHashes::Ready(hashes) => Ok(hashes),
            ModelHashes::Pending(handle) => Ok(handle
                .join()
                .map_err(|_| anyhow::anyhow!("the model-hashing thread panicked"))??
                .into_iter()
                .collect()),
        }
    }
}

/// What classifying the dataset produced.
struct RunOutcome {
    metrics: AuditMetrics,
    records: u64,
    skipped_total: u64,
    /// The first skipped records (all of them when few), for the report.
    skipped_first: Vec<SkippedRecord>,
    cache_write_error: Option<String>,
    /// The rates under each template alone (`--per-template`).
    per_template: Option<PerTemplate>,
}

/// Streams every record through the pipeline, writing predictions and skips into `out_dir` and
/// counting predictions per group.
fn classify(
    options: &RunOptions,
    prepared: &Prepared,
    loaded: &Loaded,
    out_dir: &Path,
    progress: &dyn RunProgress,
) -> anyhow::Result<RunOutcome> {
    let attribute_names: Vec<String> = prepared
        .setup
        .attributes
        .iter()
        .map(|a| a.name.clone())
        .collect();
    let mut sink = RunSink {
        predictions: PredictionsWriter::create(out_dir, &attribute_names, options.predictions_csv)?,
        accumulator: MetricsAccumulator::new(prepared.setup.clone()),
        templates: loaded
            .variants
            .iter()
            .map(|_| MetricsAccumulator::new(prepared.setup.clone()))
            .collect(),
        skipped: SkippedWriter::create(out_dir)?,
        probe: &prepared.probe,
        labels: loaded.classifier.labels(),
        strict: options.strict,
    };
    let pipeline = Pipeline {
        model: &loaded.model,
        classifier: &loaded.classifier,
        variants: &loaded.variants,
        cache: loaded.cache.as_ref(),
        batch_size: options.batch_size,
        top_k: options.top_k,
        limits: options.image_limits,
    };
    let stats = pipeline.run(
        shard_records(prepared)?,
        |outcomes| sink.take(outcomes),
        &|done| progress.records(done),
    )?;
    sink.predictions.finish()?;
    let (skipped_total, skipped_first) = sink.skipped.finish()?;
    let metrics = sink.accumulator.finish();
    let per_template = options.per_template.then(|| {
        let templates = prepared.probe.templates.iter().cloned();
        let finished = sink.templates.into_iter().map(MetricsAccumulator::finish);
        PerTemplate::new(&metrics, templates.zip(finished).collect())
    });
    Ok(RunOutcome {
        per_template,
        metrics,
        records: stats.records,
        skipped_total,
        skipped_first,
        cache_write_error: stats.cache_write_error,
    })
}

/// The dataset's record stream cut to the positions `prepared.records` (an error item is always
/// passed on, so a file that changed since the checking pass still fails the run).
fn shard_records(
    prepared: &Prepared,
) -> anyhow::Result<impl Iterator<Item = Result<RecordItem, DatasetError>> + '_> {
    let Range { start, end } = prepared.records.clone();
    let stream = prepared.dataset.records()?;
    Ok(stream
        .take(usize::try_from(end).unwrap_or(usize::MAX))
        .enumerate()
        .filter_map(move |(at, item)| (item.is_err() || at as u64 >= start).then_some(item)))
}

/// Where a run's outcomes go: predictions files, counts and `skipped.csv`.
struct RunSink<'a> {
    predictions: PredictionsWriter,
    accumulator: MetricsAccumulator,
    /// One per template (`--per-template`), in the probe's order.
    templates: Vec<MetricsAccumulator>,
    skipped: SkippedWriter,
    probe: &'a ProbeSet,
    labels: &'a [String],
    strict: bool,
}

impl RunSink<'_> {
    /// Records one batch's outcomes, in record order.
    fn take(&mut self, outcomes: Vec<Outcome>) -> anyhow::Result<()> {
        for outcome in outcomes {
            match outcome {
                Outcome::Skipped(s) if self.strict => {
                    bail!("--strict: record {} ({}): {}", s.id, s.image, s.reason)
                }
                Outcome::Skipped(s) => self.skipped.push(s)?,
                Outcome::Classified(c) => self.classified(c)?,
            }
        }
        Ok(())
    }

    fn classified(&mut self, c: Classified) -> anyhow::Result<()> {
        let best = c.prediction.best();
        self.accumulator
            .add(&c.values, best)
            .with_context(|| format!("record {} ({})", c.id, c.image))?;
        for (accumulator, &best) in self.templates.iter_mut().zip(&c.variant_best) {
            accumulator
                .add(&c.values, best)
                .with_context(|| format!("record {} ({})", c.id, c.image))?;
        }
        let labels = self.labels;
        self.predictions.push(PredictionRow {
            id: c.id,
            image: c.image,
            values: c.values,
            predicted_label: labels[best].clone(),
            predicted_category: self.probe.category_of(best).name.clone(),
            top_labels: c
                .prediction
                .top
                .iter()
                .map(|&(class, _)| labels[class].clone())
                .collect(),
            top_probs: c.prediction.top.iter().map(|&(_, p)| p).collect(),
        })?;
        Ok(())
    }
}

/// What streaming a dataset counted, for judging its skips (`run` and `retrieval`).
pub(super) struct StreamTally<'a> {
    /// The dataset as given.
    pub(super) dataset: &'a Path,
    /// What happened to the images that were read: `classified`, `ranked`.
    pub(super) verb: &'static str,
    /// Records read.
    pub(super) records: u64,
    /// Records used (classified or ranked).
    pub(super) used: u64,
    /// Records skipped.
    pub(super) skipped: u64,
    /// The first skipped records.
    pub(super) skipped_first: &'a [SkippedRecord],
    /// The first failure to write the embedding cache.
    pub(super) cache_write_error: Option<&'a str>,
}

/// Fails a stream that used no image or skipped more than `max_skipped` allows; warns about
/// any other skips and about a cache that could not be written.
pub(super) fn judge_skips(
    tally: &StreamTally,
    max_skipped: Option<f64>,
    stage: &StagedReport,
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let (skipped, records) = (tally.skipped, tally.records);
    let first_skipped = || {
        let first: Vec<String> = tally
            .skipped_first
            .iter()
            .take(3)
            .map(|s| format!("{}: {}", s.image, s.reason))
            .collect();
        if first.is_empty() {
            String::new()
        } else {
            format!(" (first: {})", first.join("; "))
        }
    };
    if tally.used == 0 {
        bail!(
            "no image was {}: {} has {records} records, {skipped} of them skipped{}",
            tally.verb,
            tally.dataset.display(),
            first_skipped()
        );
    }
    if let Some(max) = max_skipped
        && fraction(skipped, records) > max
    {
        bail!(
            "{skipped} of {records} records ({}) were skipped, more than --max-skipped {max} \
             allows{}",
            percent(skipped, records),
            first_skipped()
        );
    }
    if let Some(error) = tally.cache_write_error {
        warnings.push(format!(
            "the embedding cache could not be written ({error}); later runs will encode again"
        ));
    }
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} of {records} records ({}) were skipped (missing, unreadable or malformed); \
             every one is listed with its reason in {}",
            percent(skipped, records),
            stage.out().join("skipped.csv").display()
        ));
    }
    Ok(())
}

/// `part / whole` (0 when `whole` is 0).
pub(super) fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Writes the report files and, last, `run.json` into the staging folder.
fn write(
    options: &RunOptions,
    prepared: &Prepared,
    loaded: Loaded,
    outcome: &RunOutcome,
    stage: &StagedReport,
    clock: &Clock,
    warnings: &[String],
) -> anyhow::Result<()> {
    let (probe, dataset) = (&prepared.probe, &prepared.dataset);
    let context = ReportContext {
        skipped: outcome.skipped_first.clone(),
        skipped_total: outcome.skipped_total,
        skipped_streamed: true,
        scores: Some(loaded.classifier.scoring().describe().to_string()),
        per_template: outcome.per_template.clone(),
        ..report_context(
            match options.shard {
                Some(shard) => format!("{} on {} (shard {shard})", probe.name, dataset.name()),
                None => format!("{} on {}", probe.name, dataset.name()),
            },
            probe,
            &prepared.setup,
            loaded.model.files.display_name(),
            dataset.name().to_string(),
            options.note.clone(),
        )
    };
    let report = Report {
        context: &context,
        metrics: &outcome.metrics,
    };
    write_report(&report, stage.dir())?;
    let record = run_record(options, prepared, loaded, outcome, clock, warnings)?;
    record
        .write(stage.dir())
        .with_context(|| format!("writing {}", stage.dir().join("run.json").display()))
}

/// The provenance record of a finished run.
fn run_record(
    options: &RunOptions,
    prepared: &Prepared,
    loaded: Loaded,
    outcome: &RunOutcome,
    clock: &Clock,
    warnings: &[String],
) -> anyhow::Result<RunRecord> {
    let (probe, dataset, model) = (&prepared.probe, &prepared.dataset, &loaded.model);
    let timings_s = BTreeMap::from([
        ("model_load", clock.loaded - loaded.prompts_s),
        ("prompts", loaded.prompts_s),
        ("images", clock.classified - clock.loaded),
        ("total", clock.elapsed()),
    ]);
    Ok(RunRecord {
        schema_version: SCHEMA_VERSION,
        kind: ReportKind::Run,
        tool: ToolInfo::current(),
        command: options.command.clone(),
        started_utc: clock.started_utc.clone(),
        probe: ProbeRecord {
            name: probe.name.clone(),
            file: probe.source.display().to_string(),
            content_hash: probe.content_hash(),
            classes: probe.classes.len(),
        },
        model: Some(serde_json::to_value(model_record(
            model,
            loaded.hashes.finish()?,
        ))?),
        embedding_cache: loaded.cache.as_ref().map(cache_record),
        dataset: Some(DatasetRecord {
            name: dataset.name().to_string(),
            argument: options.dataset.display().to_string(),
            spec_sha256: dataset.spec_hash().to_string(),
            source: dataset.provenance(),
        }),
        predictions: Vec::new(),
        vocabulary_from: None,
        records: outcome.records,
        classified: outcome.metrics.n,
        skipped: outcome.skipped_total,
        skipped_fraction: fraction(outcome.skipped_total, outcome.records),
        batch_size: Some(options.batch_size),
        top_k: Some(options.top_k),
        threads: Some(rayon::current_num_threads()),
        device: Some(options.model.device.to_string()),
        timings_s,
        warnings: warnings.to_vec(),
        compared: Vec::new(),
        per_template: Some(options.per_template),
        shard: options
            .shard
            .map(|shard| shard.record(prepared.counts.items)),
        shards: None,
    })
}

/// The model section of `run.json`.
pub(super) fn model_record(model: &LoadedModel, sha256: BTreeMap<String, String>) -> ModelRecord {
    let scoring = model.towers.scoring();
    let (logit_scale, logit_bias) = match scoring {
        Scoring::Softmax { scale } => (scale, None),
        Scoring::Sigmoid { scale, bias } => (scale, Some(bias)),
    };
    ModelRecord {
        name: model.files.display_name(),
        origin: model.files.origin.clone(),
        sha256,
        family: model.family,
        scores: scoring.name(),
        logit_scale,
        logit_bias,
        compute: model.compute.clone(),
    }
}

/// What the embedding cache did, for `run.json`.
pub(super) fn cache_record(cache: &EmbeddingCache) -> CacheRecord {
    let stats = cache.stats();
    CacheRecord {
        dir: cache.dir().display().to_string(),
        hits: stats.hits,
        misses: stats.misses,
        written: stats.written,
        corrupt: stats.corrupt,
    }
}

/// The cache folder of `choice`; `None` when off, or (with a warning) when no default folder can
/// be found.
fn cache_root(choice: &CacheChoice, warnings: &mut Vec<String>) -> Option<PathBuf> {
    match choice {
        CacheChoice::Off => None,
        CacheChoice::Dir(dir) => Some(dir.clone()),
        CacheChoice::Default => match EmbeddingCache::default_root() {
            Ok(root) => Some(root),
            Err(e) => {
                warnings.push(format!("embedding cache off: {e}"));
                None
            }
        },
    }
}

/// Opens the embedding cache of this model under `root`.
fn open_cache(
    root: &Path,
    model: &LoadedModel,
    hashes: &BTreeMap<String, String>,
) -> anyhow::Result<EmbeddingCache> {
    // everything that decides an image's embedding besides its bytes
    let mut parts: Vec<(&str, &str)> = hashes
        .iter()
        .filter(|(file, _)| !matches!(file.as_str(), "tokenizer.json" | "spiece.model"))
        .map(|(file, hash)| (file.as_str(), hash.as_str()))
        .collect();
    // the family is implied by config.json's hash already; it is named for families after CLIP
    // only, so that caches written before families existed stay valid
    if model.family != Family::Clip {
        parts.push(("family", model.family.name()));
    }
    parts.push(("dtype", model.compute.used.name()));
    parts.push(("image_encoder", model.compute.encoder.tower_name()));
    let key = ModelKey::new(&parts);
    let cache = EmbeddingCache::open(root, &key, model.towers.embedding_dim())
        .with_context(|| format!("opening the embedding cache in {}", root.display()))?;
    cache.sweep_stale_temp_files();
    Ok(cache)
}

/// `part / whole` as a percentage with two decimals that never rounds to 0% or 100% falsely.
fn percent(part: u64, whole: u64) -> String {
    let value = if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    };
    let text = format!("{value:.2}%");
    match text.as_str() {
        "0.00%" if part > 0 => "<0.01%".into(),
        "100.00%" if part < whole => ">99.99%".into(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_never_round_to_none_or_all() {
        assert_eq!(percent(2, 10), "20.00%");
        assert_eq!(percent(0, 10), "0.00%");
        assert_eq!(percent(10, 10), "100.00%");
        assert_eq!(percent(1, 1_000_000), "<0.01%");
        assert_eq!(percent(999_999, 1_000_000), ">99.99%");
        assert_eq!(percent(0, 0), "0.00%");
    }
}
