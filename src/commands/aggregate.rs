//! `clip-audit aggregate`: the audit report from existing predictions — from any classifier, or
//! from the shards of a split run — without touching a model.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::cli::AggregateArgs;
use crate::dataset::{Dataset, DatasetOptions};
use crate::export::{Report, write_report};
use crate::metrics::{Attribute, MetricsAccumulator};
use crate::model::source::sha256_file;
use crate::predictions::read_predictions;
use crate::probe::ProbeSet;

use super::run::{RunSummary, metrics_setup, relocate, report_context};
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
            for part in spec.split('*') {
                if !names.iter().any(|n| n == part.trim()) {
                    names.push(part.trim().to_string());
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
    let mut tables = Vec::new();
    for path in &args.predictions {
        tables.push(read_predictions(
            path,
            &args.label_column,
            wanted.as_deref(),
        )?);
    }
    let attribute_names = tables[0].attributes.clone();
    for (table, path) in tables.iter().zip(&args.predictions).skip(1) {
        anyhow::ensure!(
            table.attributes == attribute_names,
            "{}: attribute columns {:?} differ from {}'s {:?}",
            path.display(),
            table.attributes,
            args.predictions[0].display(),
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
            observed_vocabularies(&attribute_names, &tables),
            "values found in the predictions".to_string(),
        ),
    };
    probe.check_attributes(&attribute_names)?;
    let mut warnings = Vec::new();
    let setup = metrics_setup(&probe, &attributes, &args.grouping, &mut warnings)?;
    let mut accumulator = MetricsAccumulator::new(setup.clone());
    let mut seen_ids = BTreeSet::new();
    for (table, path) in tables.iter().zip(&args.predictions) {
        for (row, label) in table.labels.iter().enumerate() {
            let class = label_index.get(label).with_context(|| {
                format!(
                    "{}: data row {} (id {}): label {label:?} is not a class of probe {}",
                    path.display(),
                    row + 1,
                    table.ids[row],
                    probe.name
                )
            })?;
            anyhow::ensure!(
                seen_ids.insert(table.ids[row].clone()),
                "{}: data row {}: id {} appears twice (overlapping shards?)",
                path.display(),
                row + 1,
                table.ids[row]
            );
            accumulator
                .add(&table.values[row], *class)
                .with_context(|| {
                    format!(
                        "{}: data row {} (id {})",
                        path.display(),
                        row + 1,
                        table.ids[row]
                    )
                })?;
        }
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
    let mut files = write_report(
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
    files.push(run_json);
    let files = relocate(&files, out_dir, stage.out());
    let out = stage.commit()?;
    Ok(RunSummary {
        out,
        classified: metrics.n,
        skipped: 0,
        files,
        warnings,
    })
}

/// Vocabularies from the values present: a known order (FairFace's) when it covers them all,
/// otherwise sorted.
fn observed_vocabularies(
    names: &[String],
    tables: &[crate::predictions::PredictionsTable],
) -> Vec<Attribute> {
    names
        .iter()
        .enumerate()
        .map(|(a, name)| {
            let found: BTreeSet<&str> = tables
                .iter()
                .flat_map(|t| t.values.iter().map(move |row| row[a].as_str()))
                .collect();
            let values = match crate::dataset::known_vocabulary(name) {
                Some(known) if found.iter().all(|v| known.contains(v)) => {
                    known.iter().map(|v| v.to_string()).collect()
                }
                _ => found.iter().map(|v| v.to_string()).collect(),
            };
            Attribute {
                name: name.clone(),
                values,
            }
        })
        .collect()
}
