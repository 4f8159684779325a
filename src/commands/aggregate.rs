//! `clip-audit aggregate`: the audit report from existing predictions — from any classifier, or
//! from the shards of a split run — without touching a model.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Context;

use crate::dataset::{Dataset, DatasetOptions};
use crate::digest::sha256_file;
use crate::export::{Report, write_report};
use crate::id_index::IdLog;
use crate::metrics::{Attribute, AuditMetrics, GroupingRequest, MetricsAccumulator, MetricsSetup};
use crate::predictions::{PredictionsError, PredictionsFile};
use crate::probe::ProbeSet;
use crate::provenance::{
    DatasetRecord, InputFileRecord, ProbeRecord, ReportKind, RunRecord, SCHEMA_VERSION, ToolInfo,
    utc_now,
};
use crate::report_folder::{StagedReport, require_complete_source};

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
    for path in &options.predictions {
        require_complete_source(path)?;
    }
    let probe = ProbeSet::open(&options.probe)?;
    let files = open_files(options, &probe)?;
    let (attributes, dataset) = vocabularies(options, &files)?;
    probe.check_attributes(files[0].attributes())?;
    let mut warnings = Vec::new();
    let setup = metrics_setup(&probe, &attributes, &options.grouping, &mut warnings)?;
    let metrics = tabulate(&files, &probe, setup.clone())?;
    let stage = StagedReport::begin(&options.out, &options.command.join(" "))?;
    let context = report_context(
        format!("{} (aggregated predictions)", probe.name),
        &probe,
        &setup,
        "predictions file".into(),
        options
            .predictions
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        options.note.clone(),
    );
    let report = Report {
        context: &context,
        metrics: &metrics,
    };
    write_report(&report, stage.dir())?;
    let record = run_record(options, &probe, dataset, &metrics, started_utc, &warnings)?;
    record
        .write(stage.dir())
        .with_context(|| format!("writing {}", stage.dir().join("run.json").display()))?;
    Ok(RunSummary {
        out: stage.commit()?,
        classified: metrics.n,
        skipped: 0,
        warnings,
    })
}

/// Opens every predictions file (streamed: CSV row by row, Parquet a row group at a time) with
/// the attribute columns the tabulation needs, and checks that they agree.
fn open_files(
    options: &AggregateOptions,
    probe: &ProbeSet,
) -> anyhow::Result<Vec<PredictionsFile>> {
    let wanted = wanted_columns(&options.grouping, probe);
    let files = options
        .predictions
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

/// The attributes' vocabularies: from `--dataset` (with its record), or the values found.
fn vocabularies(
    options: &AggregateOptions,
    files: &[PredictionsFile],
) -> anyhow::Result<(Vec<Attribute>, Option<Dataset>)> {
    let names = files[0].attributes();
    let Some(spec) = &options.dataset else {
        return Ok((observed_vocabularies(names, files)?, None));
    };
    let dataset = Dataset::open(spec, &DatasetOptions::default())?;
    let attributes = names
        .iter()
        .map(|name| {
            dataset
                .attributes()
                .iter()
                .find(|a| &a.name == name)
                .cloned()
                .with_context(|| {
                    format!(
                        "predictions column `{name}` is not an attribute of {}",
                        spec.display()
                    )
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((attributes, Some(dataset)))
}

/// Counts every prediction row, refusing unknown labels and ids seen twice (overlapping shards).
fn tabulate(
    files: &[PredictionsFile],
    probe: &ProbeSet,
    setup: MetricsSetup,
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
    let mut ids = IdLog::new();
    for (index, file) in files.iter().enumerate() {
        for row in file.rows()? {
            let row = row?;
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
            ids.push(&row.id, (index as u64) << 48 | row.row);
            accumulator.add(&row.values, *class).with_context(at)?;
        }
    }
    refuse_duplicate_ids(ids, files)?;
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

/// The provenance record of an aggregation.
fn run_record(
    options: &AggregateOptions,
    probe: &ProbeSet,
    dataset: Option<Dataset>,
    metrics: &AuditMetrics,
    started_utc: String,
    warnings: &[String],
) -> anyhow::Result<RunRecord> {
    let predictions = options
        .predictions
        .iter()
        .map(|p| {
            let (sha256, _) = sha256_file(p).with_context(|| format!("hashing {}", p.display()))?;
            Ok(InputFileRecord {
                file: p.display().to_string(),
                sha256,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vocabulary_from = match &options.dataset {
        Some(spec) => spec.display().to_string(),
        None => "values found in the predictions".to_string(),
    };
    Ok(RunRecord {
        schema_version: SCHEMA_VERSION,
        kind: ReportKind::Aggregate,
        tool: ToolInfo::current(),
        command: options.command.clone(),
        started_utc,
        probe: ProbeRecord {
            name: probe.name.clone(),
            file: probe.source.display().to_string(),
            content_hash: probe.content_hash(),
            classes: probe.classes.len(),
        },
        model: None,
        embedding_cache: None,
        dataset: dataset.map(|dataset| DatasetRecord {
            name: dataset.name().to_string(),
            argument: vocabulary_from.clone(),
            spec_sha256: dataset.spec_hash().to_string(),
            source: dataset.provenance(),
        }),
        predictions,
        vocabulary_from: Some(vocabulary_from),
        records: metrics.n,
        classified: metrics.n,
        skipped: 0,
        skipped_fraction: 0.0,
        batch_size: None,
        top_k: None,
        threads: None,
        device: None,
        timings_s: BTreeMap::new(),
        warnings: warnings.to_vec(),
        compared: Vec::new(),
        per_template: None,
    })
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
