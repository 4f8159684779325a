//! `clip-audit retrieval`: text-to-image retrieval bias. Each class of the probe is one text query
//! (its template ensemble); every image of the dataset is ranked by cosine similarity to it, and
//! the groups of the top `k` are compared with a target distribution ([`crate::metrics::retrieval`]).
//!
//! Phases as in `run`: the probe and every dataset row are checked first, then the model, cache
//! and queries load (`run`'s loader), the images stream through the one [`Pipeline`] (cached
//! embeddings are reused, so after a `run` nothing is encoded), and the report is written into a
//! staging folder that is swapped in only when complete.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::dataset::{Dataset, DatasetOptions};
use crate::export::SkippedWriter;
use crate::export::retrieval::{RetrievalReport, write_retrieval_report};
use crate::images::ImageLimits;
use crate::metrics::retrieval::{
    RetrievalRow, Target, bias_at, ndkl, ranking, target_distribution,
};
use crate::model::{ModelRequest, Scoring};
use crate::pipeline::{Outcome, Pipeline};
use crate::probe::ProbeSet;
use crate::provenance::{
    DatasetRecord, ProbeRecord, ReportKind, RunRecord, SCHEMA_VERSION, ToolInfo, utc_now,
};
use crate::report_folder::StagedReport;
use crate::schema::{Attribute, SkippedRecord};

use super::run::{
    CacheChoice, RunProgress, StreamTally, cache_record, fraction, judge_skips, load, model_record,
};

/// Everything `retrieval` needs, validated by the caller (the command line parses it once).
#[derive(Debug, Clone)]
pub struct RetrievalOptions {
    /// The probe set: one query per class.
    pub probe: PathBuf,
    /// The dataset spec or FairFace-style label CSV.
    pub dataset: PathBuf,
    /// The checkpoint, device and number format.
    pub model: ModelRequest,
    /// The report folder to write.
    pub out: PathBuf,
    /// Attributes measured; empty means every attribute of the dataset.
    pub by: Vec<String>,
    /// Cut-offs `k` of the top-k measures (each at least 1).
    pub ks: Vec<usize>,
    /// The distribution the top k is compared with.
    pub target: Target,
    /// Images encoded per forward pass (at least 1).
    pub batch_size: usize,
    /// Fail on the first unusable image instead of skipping it.
    pub strict: bool,
    /// Fail when more than this fraction of the records is skipped.
    pub max_skipped: Option<f64>,
    /// Where embeddings are cached.
    pub cache: CacheChoice,
    /// Bounds on each image.
    pub image_limits: ImageLimits,
    /// The command line, recorded in `run.json` and the report lock.
    pub command: Vec<String>,
}

/// What a finished retrieval audit reports back.
#[derive(Debug)]
pub struct RetrievalSummary {
    /// The report folder.
    pub out: PathBuf,
    /// Images ranked.
    pub ranked: u64,
    /// Records skipped (missing, undecodable, malformed).
    pub skipped: u64,
    /// Things the user should know that did not stop the audit.
    pub warnings: Vec<String>,
}

/// Runs the retrieval audit and writes the report folder.
pub fn run(
    options: &RetrievalOptions,
    progress: &dyn RunProgress,
) -> anyhow::Result<RetrievalSummary> {
    let (started, started_utc) = (Instant::now(), utc_now());
    let mut warnings = Vec::new();
    let Prepared {
        probe,
        dataset,
        attributes,
    } = prepare(options, progress)?;
    let stage = StagedReport::begin(&options.out, &options.command.join(" "))?;
    let loaded = load(
        &options.model,
        &options.cache,
        false,
        &probe,
        progress,
        &mut warnings,
    )?;
    let loaded_s = started.elapsed().as_secs_f64();
    progress.phase("ranking the images");
    let scored = score_images(options, &dataset, &loaded, &stage, progress)?;
    let images_s = started.elapsed().as_secs_f64() - loaded_s;
    judge(options, &scored, &stage, &mut warnings)?;
    let rows = measure(&scored, &attributes, &probe, options)?;
    let report = RetrievalReport {
        title: format!("{} on {} (retrieval)", probe.name, dataset.name()),
        model: loaded.model.files.display_name(),
        target: options.target,
        ks: &options.ks,
        attributes: attributes.iter().map(|(a, _)| a.name.clone()).collect(),
        queries: probe.labels(),
        images: scored.images.len() as u64,
        skipped: scored.skipped_total,
        skipped_first: &scored.skipped_first,
        rows: &rows,
    };
    write_retrieval_report(&report, stage.dir())?;
    let times = Times {
        started_utc,
        seconds: BTreeMap::from([
            ("model_load", loaded_s - loaded.prompts_s),
            ("prompts", loaded.prompts_s),
            ("images", images_s),
            ("total", started.elapsed().as_secs_f64()),
        ]),
    };
    let record = run_record(
        options,
        (&probe, &dataset),
        loaded,
        &scored,
        times,
        &warnings,
    )?;
    record
        .write(stage.dir())
        .with_context(|| format!("writing {}", stage.dir().join("run.json").display()))?;
    let out = stage.commit()?;
    Ok(RetrievalSummary {
        out,
        ranked: scored.images.len() as u64,
        skipped: scored.skipped_total,
        warnings,
    })
}

/// When the audit started, and the wall seconds of its phases.
struct Times {
    started_utc: String,
    seconds: BTreeMap<&'static str, f64>,
}

/// The provenance record.
fn run_record(
    options: &RetrievalOptions,
    (probe, dataset): (&ProbeSet, &Dataset),
    loaded: super::run::Loaded,
    scored: &Scored,
    times: Times,
    warnings: &[String],
) -> anyhow::Result<RunRecord> {
    Ok(RunRecord {
        schema_version: SCHEMA_VERSION,
        kind: ReportKind::Retrieval,
        tool: ToolInfo::current(),
        command: options.command.clone(),
        started_utc: times.started_utc,
        probe: ProbeRecord {
            name: probe.name.clone(),
            file: probe.source.display().to_string(),
            content_hash: probe.content_hash(),
            classes: probe.classes.len(),
        },
        embedding_cache: loaded.cache.as_ref().map(cache_record),
        model: Some(serde_json::to_value(model_record(
            &loaded.model,
            loaded.hashes.finish()?,
        ))?),
        dataset: Some(DatasetRecord {
            name: dataset.name().to_string(),
            argument: options.dataset.display().to_string(),
            spec_sha256: dataset.spec_hash().to_string(),
            source: dataset.provenance(),
        }),
        predictions: Vec::new(),
        compared: Vec::new(),
        per_template: None,
        shard: None,
        shards: None,
        vocabulary_from: None,
        records: scored.records,
        classified: scored.images.len() as u64,
        skipped: scored.skipped_total,
        skipped_fraction: fraction(scored.skipped_total, scored.records),
        batch_size: Some(options.batch_size),
        top_k: None,
        threads: Some(rayon::current_num_threads()),
        device: Some(options.model.device.to_string()),
        timings_s: times.seconds,
        warnings: warnings.to_vec(),
    })
}

/// The probe, the dataset and the attributes measured (each with its column index), checked.
struct Prepared {
    probe: ProbeSet,
    dataset: Dataset,
    attributes: Vec<(Attribute, usize)>,
}

/// Reads the probe and the dataset, picks the attributes and checks every dataset row and every
/// `k` before anything is loaded or written. Each attribute comes with its column index.
fn prepare(options: &RetrievalOptions, progress: &dyn RunProgress) -> anyhow::Result<Prepared> {
    let probe = ProbeSet::open(&options.probe)?;
    let dataset = Dataset::open(
        &options.dataset,
        &DatasetOptions {
            offline: options.model.source.offline,
            hub_cache: options.model.source.cache_dir.clone(),
        },
    )?;
    let attributes = chosen_attributes(dataset.attributes(), &options.by)
        .with_context(|| format!("--by, on the dataset {}", options.dataset.display()))?;
    progress.phase("checking the dataset");
    let counts = dataset
        .check_records()
        .with_context(|| format!("checking the dataset {}", options.dataset.display()))?;
    if let Some(&k) = options.ks.iter().find(|&&k| k as u64 > counts.items) {
        bail!(
            "--k {k}: larger than the dataset {}, which has {} records",
            options.dataset.display(),
            counts.items
        );
    }
    Ok(Prepared {
        probe,
        dataset,
        attributes,
    })
}

/// The attributes named by `--by` (every attribute when empty), with their column indices; an
/// unknown name is an error listing the dataset's attributes.
fn chosen_attributes(
    attributes: &[Attribute],
    by: &[String],
) -> anyhow::Result<Vec<(Attribute, usize)>> {
    if by.is_empty() {
        return Ok(attributes.iter().cloned().zip(0..).collect());
    }
    by.iter()
        .map(|name| {
            let index = attributes.iter().position(|a| &a.name == name);
            index.map(|i| (attributes[i].clone(), i)).ok_or_else(|| {
                let known: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
                anyhow::anyhow!(
                    "unknown attribute `{name}` (the dataset has: {})",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// One ranked image: its record id, attribute values and cosine similarity to each query.
struct ScoredImage {
    id: String,
    values: Vec<String>,
    cosines: Vec<f32>,
}

/// Every ranked image, in record order, and what was skipped.
struct Scored {
    images: Vec<ScoredImage>,
    records: u64,
    skipped_total: u64,
    skipped_first: Vec<SkippedRecord>,
    cache_write_error: Option<String>,
}

/// Streams the dataset through the pipeline, keeping each image's cosine similarity to every
/// query (scores of unit scale are the cosines) and listing skipped records in `skipped.csv`.
fn score_images(
    options: &RetrievalOptions,
    dataset: &Dataset,
    loaded: &super::run::Loaded,
    stage: &StagedReport,
    progress: &dyn RunProgress,
) -> anyhow::Result<Scored> {
    let cosines = loaded.classifier.rescored(Scoring::Softmax { scale: 1.0 });
    let pipeline = Pipeline {
        model: &loaded.model,
        classifier: &cosines,
        variants: &[],
        cache: loaded.cache.as_ref(),
        batch_size: options.batch_size,
        top_k: 1,
        limits: options.image_limits,
    };
    let mut skipped = SkippedWriter::create(stage.dir())?;
    let mut images = Vec::new();
    let stats = pipeline.run(
        dataset.records()?,
        |outcomes| {
            for outcome in outcomes {
                match outcome {
                    Outcome::Skipped(s) if options.strict => {
                        bail!("--strict: record {} ({}): {}", s.id, s.image, s.reason)
                    }
                    Outcome::Skipped(s) => skipped.push(s)?,
                    Outcome::Classified(c) => images.push(ScoredImage {
                        id: c.id,
                        values: c.values,
                        cosines: c.prediction.logits,
                    }),
                }
            }
            Ok(())
        },
        &|done| progress.records(done),
    )?;
    let (skipped_total, skipped_first) = skipped.finish()?;
    Ok(Scored {
        images,
        records: stats.records,
        skipped_total,
        skipped_first,
        cache_write_error: stats.cache_write_error,
    })
}

/// Fails an audit that ranked nothing, skipped more than `--max-skipped` allows, or has fewer
/// images than a `k`; warns about any other skips.
fn judge(
    options: &RetrievalOptions,
    scored: &Scored,
    stage: &StagedReport,
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let n = scored.images.len();
    let tally = StreamTally {
        dataset: &options.dataset,
        verb: "ranked",
        records: scored.records,
        used: n as u64,
        skipped: scored.skipped_total,
        skipped_first: &scored.skipped_first,
        cache_write_error: scored.cache_write_error.as_deref(),
    };
    judge_skips(&tally, options.max_skipped, stage, warnings)?;
    if let Some(&k) = options.ks.iter().find(|&&k| k > n) {
        bail!(
            "--k {k}: larger than the {n} images ranked ({} records skipped)",
            scored.skipped_total
        );
    }
    Ok(())
}

/// The measures of every query, attribute and `k`, in that order.
fn measure(
    scored: &Scored,
    attributes: &[(Attribute, usize)],
    probe: &ProbeSet,
    options: &RetrievalOptions,
) -> anyhow::Result<Vec<RetrievalRow>> {
    // each attribute's group per image and target distribution, the same for every query
    let groups = attributes
        .iter()
        .map(|(attribute, column)| {
            let groups = group_indices(&scored.images, attribute, *column)?;
            let target = target_distribution(&groups, attribute.values.len(), options.target);
            Ok((groups, target))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rows = Vec::new();
    for (query_index, query) in probe.labels().iter().enumerate() {
        let scores: Vec<f32> = scored
            .images
            .iter()
            .map(|i| i.cosines[query_index])
            .collect();
        let order = ranking(&scores);
        for ((attribute, _), (groups, target)) in attributes.iter().zip(&groups) {
            let ranked: Vec<usize> = order.iter().map(|&i| groups[i]).collect();
            let ndkl = ndkl(&ranked, target);
            rows.extend(options.ks.iter().map(|&k| RetrievalRow {
                query: query.clone(),
                attribute: attribute.name.clone(),
                k,
                bias: bias_at(&ranked, k, target),
                ndkl,
            }));
        }
    }
    Ok(rows)
}

/// Each image's group of `attribute` (column `column`) as an index into its vocabulary; a value
/// outside it is an error naming the record.
fn group_indices(
    images: &[ScoredImage],
    attribute: &Attribute,
    column: usize,
) -> anyhow::Result<Vec<usize>> {
    images
        .iter()
        .map(|image| {
            let value = &image.values[column];
            attribute
                .values
                .iter()
                .position(|v| v == value)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "record {}: {value:?} is not a value of `{}` ({})",
                        image.id,
                        attribute.name,
                        attribute.values.join(", ")
                    )
                })
        })
        .collect()
}
