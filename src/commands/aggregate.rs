//! `clip-audit aggregate`: the audit report from existing predictions — from any classifier, or
//! from the shards of a split run — without touching a model.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::cli::AggregateArgs;
use crate::dataset::{Dataset, DatasetOptions};
use crate::export::{Report, write_report};
use crate::id_index::IdLog;
use crate::metrics::{Attribute, MetricsAccumulator};
use crate::model::source::sha256_file;
use crate::predictions::{PredictionsError, PredictionsFile};
use crate::probe::ProbeSet;

use super::run::{RunSummary, metrics_setup, report_context};
use crate::provenance::{ToolInfo, command_line};
use crate::report_folder::{StagedReport, require_complete_source};

/// Provenance of an aggregation (`run.json`).
#[derive(Debug, Serialize)]
struct AggregateProvenance {
    tool: ToolInfo,
    command: Vec<String>,
    kind: &'static str,
    probe: serde_json::Value,
    predictions: Vec<serde_json::Value>,
    vocabulary_from: String,
    classified: u64,
    warnings: Vec<String>,
}

/// Reads the predictions, computes the metrics and writes the report folder.
pub fn run(args: &AggregateArgs) -> anyhow::Result<RunSummary> {
    let command = command_line();
    for path in &args.predictions {
        require_complete_source(path)?;
    }
    let probe = ProbeSet::load(&args.probe)?;
    let label_index: HashMap<String, usize> = probe
        .labels()
        .into_iter()
        .enumerate()
        .map(|(i, l)| (l, i))
        .collect();
    let wanted: Option<Vec<String>> = if args.grouping.by.is_empty() {
        None
    } else {
        let mut names: Vec<String> = args.grouping.by.clone();
        for spec in &args.grouping.intersect {
            for part in &spec.attributes {
                if !names.contains(part) {
                    names.push(part.clone());
                }
            }
        }
        for class in &probe.classes {
            for attribute in class.matches.keys() {
                if !names.contains(attribute) {
                    names.push(attribute.clone());
                }
            }
        }
        Some(names)
    };
    // Files are streamed (CSV row by row, Parquet a row group at a time): memory stays flat in
    // the number of predictions.
    let files = args
        .predictions
        .iter()
        .map(|path| PredictionsFile::open(path, &args.label_column, wanted.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let attribute_names = files[0].attributes().to_vec();
    for file in files.iter().skip(1) {
        anyhow::ensure!(
            file.attributes() == attribute_names,
            "{}: attribute columns {:?} differ from {}'s {:?}",
            file.path().display(),
            file.attributes(),
            files[0].path().display(),
            attribute_names
        );
    }

    let (attributes, vocabulary_from) = match &args.dataset {
        Some(spec) => {
            let dataset = Dataset::open(spec, &DatasetOptions::default())?;
            let attributes = attribute_names
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
            (attributes, spec.display().to_string())
        }
        None => (
            observed_vocabularies(&attribute_names, &files)?,
            "values found in the predictions".to_string(),
        ),
    };
    probe.check_attributes(&attribute_names)?;
    let mut warnings = Vec::new();
    let setup = metrics_setup(&probe, &attributes, &args.grouping, &mut warnings)?;
    let mut accumulator = MetricsAccumulator::new(setup.clone());
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
    let metrics = accumulator.finish();
    let stage = StagedReport::begin(&args.out, &command.join(" "))?;
    let out_dir = stage.dir();
    let context = report_context(
        format!("{} (aggregated predictions)", probe.name),
        &probe,
        &setup,
        "predictions file".into(),
        args.predictions
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.grouping.note.clone(),
    );
    write_report(
        &Report {
            context: &context,
            metrics: &metrics,
        },
        out_dir,
    )?;
    let provenance = AggregateProvenance {
        tool: ToolInfo::current(),
        command,
        kind: "aggregate",
        probe: serde_json::json!({
            "name": probe.name,
            "file": args.probe.display().to_string(),
            "content_hash": probe.content_hash(),
        }),
        predictions: args
            .predictions
            .iter()
            .map(|p| {
                Ok(serde_json::json!({
                    "file": p.display().to_string(),
                    "sha256": sha256_file(p)?,
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        vocabulary_from,
        classified: metrics.n,
        warnings: warnings.clone(),
    };
    let run_json: PathBuf = out_dir.join("run.json");
    std::fs::write(&run_json, serde_json::to_string_pretty(&provenance)? + "\n")
        .with_context(|| format!("writing {}", run_json.display()))?;
    let out = stage.commit()?;
    Ok(RunSummary {
        out,
        classified: metrics.n,
        skipped: 0,
        warnings,
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
