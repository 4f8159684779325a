//! `clip-audit aggregate`: the audit report from existing predictions — from any classifier, or
//! from the shards of a split run — without touching a model.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::dataset::{Dataset, DatasetOptions};
use crate::digest::sha256_file;
use crate::export::{Report, ReportContext, SkippedWriter, write_report};
use crate::id_index::IdLog;
use crate::metrics::{Attribute, AuditMetrics, GroupingRequest, MetricsAccumulator, MetricsSetup};
use crate::model::Scoring;
use crate::predictions::{PredictionsError, PredictionsFile};
use crate::probe::ProbeSet;
use crate::provenance::{
    DatasetRecord, InputFileRecord, ProbeRecord, ReportKind, RunRecord, SCHEMA_VERSION, ToolInfo,
    utc_now,
};
use crate::report_folder::{StagedReport, require_complete_source};
use crate::schema::SkippedRecord;
use crate::shard::ShardSet;

use super::run::RunSummary;
use super::tabulation::{metrics_setup, report_context};

/// Everything `aggregate` needs, validated by the caller.
#[derive(Debug, Clone)]
pub struct AggregateOptions {
    /// Predictions files (CSV or Parquet; several shards are combined).
    pub predictions: Vec<PathBuf>,
    /// The probe set whose labels the predictions use.
    pub probe: PathBuf,
    /// The report folder to write.
    pub out: PathBuf,
    /// The column holding the predicted label.
    pub label_column: String,
    /// A dataset spec or label CSV giving the attribute vocabularies (default: the values found).
    pub dataset: Option<PathBuf>,
    /// What to tabulate.
    pub grouping: GroupingRequest,
    /// A note shown at the top of the report.
    pub note: Option<String>,
    /// The command line, recorded in `run.json` and the report lock.
    pub command: Vec<String>,
}

/// Reads the predictions, computes the metrics and writes the report folder.
pub fn run(options: &AggregateOptions) -> anyhow::Result<RunSummary> {
    let started_utc = utc_now();
    let paths: Vec<PathBuf> = options
        .predictions
        .iter()
        .map(|p| predictions_file(p))
        .collect();
    for path in &paths {
        require_complete_source(path)?;
    }
    let shards = ShardSet::read(&paths)?;
    let probe = ProbeSet::open(&options.probe)?;
    if let Some(set) = &shards {
        require_shards_probe(set, &probe, &options.probe)?;
    }
    let files = open_files(options, &paths, &probe)?;
    let (attributes, dataset) = vocabularies(options, &files, shards.as_ref())?;
    probe.check_attributes(files[0].attributes())?;
    let mut warnings = Vec::new();
    let setup = metrics_setup(&probe, &attributes, &options.grouping, &mut warnings)?;
    let metrics = tabulate(&files, &probe, setup.clone(), shards.as_ref())?;
    let stage = StagedReport::begin(&options.out, &options.command.join(" "))?;
    let context = match &shards {
        Some(set) => shards_context(options, &probe, &setup, set, &stage)?,
        None => report_context(
            format!("{} (aggregated predictions)", probe.name),
            &probe,
            &setup,
            "predictions file".into(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            options.note.clone(),
        ),
    };
    let report = Report {
        context: &context,
        metrics: &metrics,
    };
    write_report(&report, stage.dir())?;
    let inputs = Inputs {
        paths: &paths,
        probe: &probe,
        dataset,
        shards: shards.as_ref(),
    };
    let record = run_record(options, inputs, &metrics, started_utc, &warnings)?;
    record
        .write(stage.dir())
        .with_context(|| format!("writing {}", stage.dir().join("run.json").display()))?;
    Ok(RunSummary {
        out: stage.commit()?,
        classified: metrics.n,
        skipped: context.skipped_count(),
        warnings,
    })
}

/// The predictions file of `path`: a report folder's `predictions.parquet` (else its
/// `predictions.csv`), or the file itself.
fn predictions_file(path: &Path) -> PathBuf {
    if !path.is_dir() {
        return path.to_path_buf();
    }
    let parquet = path.join("predictions.parquet");
    let csv = path.join("predictions.csv");
    if !parquet.exists() && csv.exists() {
        csv
    } else {
        parquet
    }
}

/// Refuses a `--probe` other than the one the shards ran.
fn require_shards_probe(set: &ShardSet, probe: &ProbeSet, file: &Path) -> anyhow::Result<()> {
    let recorded = &set.first().probe;
    let hash = probe.content_hash();
    anyhow::ensure!(
        recorded.content_hash == hash,
        "--probe {} (content hash {hash}) is not the probe the shards ran ({} with hash {}, \
         in {})",
        file.display(),
        recorded.name,
        recorded.content_hash,
        set.shards[0].run_json.file
    );
    Ok(())
}

/// The report context of an aggregation over shards: the model, dataset and scoring the shards
/// recorded, and their skipped records merged (in shard order) into `skipped.csv`.
fn shards_context(
    options: &AggregateOptions,
    probe: &ProbeSet,
    setup: &MetricsSetup,
    set: &ShardSet,
    stage: &StagedReport,
) -> anyhow::Result<ReportContext> {
    let first = set.first();
    let model = first.model.get("name").and_then(|n| n.as_str());
    let scores = (first.model.get("scores").and_then(|s| s.as_str()))
        .and_then(Scoring::describe_named)
        .map(str::to_string);
    let (skipped_total, skipped) = merge_skipped(set, stage.dir())?;
    Ok(ReportContext {
        scores,
        skipped,
        skipped_total,
        skipped_streamed: true,
        ..report_context(
            format!(
                "{} on {} ({} shards aggregated)",
                probe.name,
                first.dataset.name,
                set.count()
            ),
            probe,
            setup,
            model.unwrap_or("unnamed model").to_string(),
            first.dataset.name.clone(),
            options.note.clone(),
        )
    })
}

/// Streams every shard's `skipped.csv` (in shard order, so the rows keep the dataset's order)
/// into `dir/skipped.csv`, checking each against the count its `run.json` records.
fn merge_skipped(set: &ShardSet, dir: &Path) -> anyhow::Result<(u64, Vec<SkippedRecord>)> {
    let mut writer = SkippedWriter::create(dir)?;
    for shard in &set.shards {
        let path = shard.folder.join("skipped.csv");
        let rows = writer.append_file(&path)?;
        anyhow::ensure!(
            rows == shard.run.skipped,
            "{}: {rows} rows, but {} records {} skipped (a truncated or edited file?)",
            path.display(),
            shard.run_json.file,
            shard.run.skipped
        );
    }
    Ok(writer.finish()?)
}

/// Opens every predictions file (streamed: CSV row by row, Parquet a row group at a time) with
/// the attribute columns the tabulation needs, and checks that they agree.
fn open_files(
    options: &AggregateOptions,
    paths: &[PathBuf],
    probe: &ProbeSet,
) -> anyhow::Result<Vec<PredictionsFile>> {
    let wanted = wanted_columns(&options.grouping, probe);
    let files = paths
        .iter()
        .map(|path| PredictionsFile::open(path, &options.label_column, wanted.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &files[0];
    for file in files.iter().skip(1) {
        anyhow::ensure!(
            file.attributes() == first.attributes(),
            "{}: attribute columns {:?} differ from {}'s {:?}",
            file.path().display(),
            file.attributes(),
            first.path().display(),
            first.attributes()
        );
    }
    Ok(files)
}

/// The attribute columns to read: `None` (all) unless `--by` narrows them, in which case the
/// intersections' parts and the probe's `match` attributes are added.
fn wanted_columns(request: &GroupingRequest, probe: &ProbeSet) -> Option<Vec<String>> {
    if request.by.is_empty() {
        return None;
    }
    let mut names: Vec<String> = request.by.clone();
    let parts = request.intersections.iter().flat_map(|i| &i.attributes);
    let matched = probe.classes.iter().flat_map(|c| c.matches.keys());
    for name in parts.chain(matched) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Some(names)
}

/// The attributes' vocabularies: from `--dataset` (with its record; for shards, it must be the
/// dataset they ran), else from the shards' `run.json`, else the values found.
fn vocabularies(
    options: &AggregateOptions,
    files: &[PredictionsFile],
    shards: Option<&ShardSet>,
) -> anyhow::Result<(Vec<Attribute>, Option<Dataset>)> {
    let names = files[0].attributes();
    let Some(spec) = &options.dataset else {
        return match shards {
            Some(set) => Ok((
                pick(names, &set.attributes()?, &set.shards[0].run_json.file)?,
                None,
            )),
            None => Ok((observed_vocabularies(names, files)?, None)),
        };
    };
    let dataset = Dataset::open(spec, &DatasetOptions::default())?;
    if let Some(set) = shards {
        let recorded = &set.first().dataset;
        anyhow::ensure!(
            recorded.spec_sha256 == dataset.spec_hash(),
            "--dataset {} (SHA-256 {}) is not the dataset the shards ran ({} with SHA-256 {}, in \
             {})",
            spec.display(),
            dataset.spec_hash(),
            recorded.name,
            recorded.spec_sha256,
            set.shards[0].run_json.file
        );
    }
    let attributes = pick(names, dataset.attributes(), &spec.display().to_string())?;
    Ok((attributes, Some(dataset)))
}

/// The attributes named `names`, in that order, out of `known` (from `source`, for errors).
fn pick(names: &[String], known: &[Attribute], source: &str) -> anyhow::Result<Vec<Attribute>> {
    names
        .iter()
        .map(|name| {
            known
                .iter()
                .find(|a| &a.name == name)
                .cloned()
                .with_context(|| {
                    format!("predictions column `{name}` is not an attribute of {source}")
                })
        })
        .collect()
}

/// Counts every prediction row, refusing unknown labels and ids seen twice (overlapping shards).
///
/// Shards need no id log: their record ranges partition the dataset and each shard's run checked
/// the whole dataset for repeated ids, so memory stays flat; instead each shard's row count must
/// be the count of images its `run.json` says it classified.
fn tabulate(
    files: &[PredictionsFile],
    probe: &ProbeSet,
    setup: MetricsSetup,
    shards: Option<&ShardSet>,
) -> anyhow::Result<AuditMetrics> {
    let label_index: HashMap<String, usize> = probe
        .labels()
        .into_iter()
        .enumerate()
        .map(|(i, l)| (l, i))
        .collect();
    let mut accumulator = MetricsAccumulator::new(setup);
    // every id as a 64-bit hash and its (file, data row) packed in 64 bits: 16 bytes a row
    anyhow::ensure!(
        files.len() < 1 << 16,
        "at most 65535 predictions files can be aggregated at once"
    );
    let mut ids = shards.is_none().then(IdLog::new);
    for (index, file) in files.iter().enumerate() {
        let mut rows = 0u64;
        for row in file.rows()? {
            let row = row?;
            rows += 1;
            let at = || {
                format!(
                    "{}: data row {} (id {})",
                    file.path().display(),
                    row.row,
                    row.id
                )
            };
            let class = label_index.get(&row.label).with_context(|| {
                format!(
                    "{}: label {:?} is not a class of probe {}",
                    at(),
                    row.label,
                    probe.name
                )
            })?;
            anyhow::ensure!(row.row < 1 << 48, "{}: too many rows", at());
            if let Some(ids) = &mut ids {
                ids.push(&row.id, (index as u64) << 48 | row.row);
            }
            accumulator.add(&row.values, *class).with_context(at)?;
        }
        if let Some(shard) = shards.and_then(|set| set.shard_of(file.path())) {
            anyhow::ensure!(
                rows == shard.run.classified,
                "{}: {rows} prediction rows, but {} records {} images classified (a truncated \
                 or edited predictions file?)",
                file.path().display(),
                shard.run_json.file,
                shard.run.classified
            );
        }
    }
    if let Some(ids) = ids {
        refuse_duplicate_ids(ids, files)?;
    }
    Ok(accumulator.finish())
}

/// Fails, naming both rows, when an id appears twice across the files.
fn refuse_duplicate_ids(ids: IdLog, files: &[PredictionsFile]) -> anyhow::Result<()> {
    let unpack = |location: u64| ((location >> 48) as usize, location & ((1 << 48) - 1));
    if let Some(duplicate) = ids.first_duplicate(|location| {
        let (file, row) = unpack(location);
        id_at(&files[file], row)
    })? {
        let ((first_file, first_row), (file, row)) =
            (unpack(duplicate.first), unpack(duplicate.second));
        anyhow::bail!(
            "{}: data row {row} (id {}): the id appears twice, first at {}: data row {first_row} \
             (overlapping shards?)",
            files[file].path().display(),
            duplicate.id,
            files[first_file].path().display()
        );
    }
    Ok(())
}

/// What an aggregation read, for its provenance record.
struct Inputs<'a> {
    /// The predictions files (a folder given resolved to its predictions file).
    paths: &'a [PathBuf],
    probe: &'a ProbeSet,
    /// `--dataset`, opened.
    dataset: Option<Dataset>,
    shards: Option<&'a ShardSet>,
}

/// The provenance record of an aggregation; over shards it carries their model and dataset,
/// and counts the whole dataset's records and skips.
fn run_record(
    options: &AggregateOptions,
    inputs: Inputs,
    metrics: &AuditMetrics,
    started_utc: String,
    warnings: &[String],
) -> anyhow::Result<RunRecord> {
    let predictions = hashed(inputs.paths)?;
    let vocabulary_from = match (&options.dataset, inputs.shards) {
        (Some(spec), _) => spec.display().to_string(),
        (None, Some(set)) => format!("the shards' run.json ({})", set.shards[0].run_json.file),
        (None, None) => "values found in the predictions".to_string(),
    };
    let opened = inputs.dataset.map(|dataset| DatasetRecord {
        name: dataset.name().to_string(),
        argument: vocabulary_from.clone(),
        spec_sha256: dataset.spec_hash().to_string(),
        source: dataset.provenance(),
    });
    let shards = inputs.shards;
    let (records, skipped) = match shards {
        Some(set) => (set.total(|r| r.records), set.total(|r| r.skipped)),
        None => (metrics.n, 0),
    };
    Ok(RunRecord {
        schema_version: SCHEMA_VERSION,
        kind: ReportKind::Aggregate,
        tool: ToolInfo::current(),
        command: options.command.clone(),
        started_utc,
        probe: ProbeRecord {
            name: inputs.probe.name.clone(),
            file: inputs.probe.source.display().to_string(),
            content_hash: inputs.probe.content_hash(),
            classes: inputs.probe.classes.len(),
        },
        model: shards.map(|set| set.first().model.clone()),
        embedding_cache: None,
        dataset: opened.or_else(|| shards.map(|set| set.first().dataset.clone())),
        predictions,
        vocabulary_from: Some(vocabulary_from),
        records,
        classified: metrics.n,
        skipped,
        skipped_fraction: super::run::fraction(skipped, records),
        batch_size: None,
        top_k: None,
        threads: None,
        device: None,
        timings_s: BTreeMap::new(),
        warnings: warnings.to_vec(),
        compared: Vec::new(),
        per_template: None,
        shard: None,
        shards: shards.map(ShardSet::record),
    })
}

/// Each file with its SHA-256, for `run.json`'s `predictions`.
fn hashed(paths: &[PathBuf]) -> anyhow::Result<Vec<InputFileRecord>> {
    paths
        .iter()
        .map(|p| {
            let (sha256, _) = sha256_file(p).with_context(|| format!("hashing {}", p.display()))?;
            Ok(InputFileRecord {
                file: p.display().to_string(),
                sha256,
            })
        })
        .collect()
}

/// The id at data row `row` of `file` (read again).
fn id_at(file: &PredictionsFile, row: u64) -> Result<String, PredictionsError> {
    for item in file.rows()? {
        let item = item?;
        if item.row == row {
            return Ok(item.id);
        }
    }
    Ok(String::new())
}

/// Vocabularies from the values present (one streaming pass): a known order (FairFace's) when
/// it covers them all, otherwise sorted.
fn observed_vocabularies(
    names: &[String],
    files: &[PredictionsFile],
) -> Result<Vec<Attribute>, PredictionsError> {
    let mut found: Vec<BTreeSet<String>> = vec![BTreeSet::new(); names.len()];
    for file in files {
        for row in file.rows()? {
            for (set, value) in found.iter_mut().zip(row?.values) {
                set.insert(value);
            }
        }
    }
    Ok(names
        .iter()
        .zip(found)
        .map(|(name, found)| {
            let values = match crate::dataset::known_vocabulary(name) {
                Some(known) if found.iter().all(|v| known.contains(&v.as_str())) => {
                    known.iter().map(|v| v.to_string()).collect()
                }
                _ => found.into_iter().collect(),
            };
            Attribute {
                name: name.clone(),
                values,
            }
        })
        .collect())
}
