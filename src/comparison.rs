//! Report folders set side by side (`clip-audit compare`): each folder's counts read strictly
//! from `groups.csv` (through [`crate::check::ReportTables`]), its categories from
//! `metrics.json` and its provenance from `run.json`; then the groups and categories present in
//! every report, with each report's difference to the first (Newcombe interval, z-test p-value).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::check::{CheckError, Measured, ReportTables};
use crate::metrics::{CategoryInfo, newcombe_interval, two_proportion_p};
use crate::provenance::{ComparedReport, InputFileRecord};

/// Why report folders could not be compared (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A folder is not a complete report, or its `groups.csv` is unreadable or garbled.
    #[error(transparent)]
    Tables(#[from] CheckError),
    /// A JSON file of a report lacks a field or holds a wrong value.
    #[error("{}: field `{field}`: {reason}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// The field, e.g. `categories[2].harmful`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// `--names` does not fit the folders.
    #[error("--names: {0}")]
    Names(String),
    /// Nothing is present in every report.
    #[error("nothing to compare: {0}")]
    NoOverlap(String),
}

/// One report folder, read.
#[derive(Debug)]
pub struct ComparedInput {
    /// What `run.json` says about it (recorded in the comparison's `run.json`).
    pub record: ComparedReport,
    /// Its rates with counts, from `groups.csv`.
    pub tables: ReportTables,
    /// Its probe's categories in order, from `metrics.json`.
    pub categories: Vec<CategoryInfo>,
    /// Its groupings in order (`all` first), from `metrics.json`.
    pub groupings: Vec<String>,
    /// The model's checkpoint hashes from `run.json` (`null` for `aggregate`).
    pub model_sha256: Value,
}

/// Reads the JSON file `name` of report folder `dir`.
fn read_json(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>, Value), CompareError> {
    let path = dir.join(name);
    let bytes = crate::input_file::read_regular_file(&path, 1 << 30, "limit for report files")
        .map_err(|e| CompareError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let value = serde_json::from_slice(&bytes).map_err(|e| CompareError::File {
        path: path.clone(),
        reason: format!("not valid JSON: {e}"),
    })?;
    Ok((path, bytes, value))
}

/// Strict access to a JSON document's fields, naming the file and field on error.
struct Fields<'a> {
    path: &'a Path,
}

impl Fields<'_> {
    fn bad(&self, field: &str, reason: &str) -> CompareError {
        CompareError::Field {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The string at `pointer` (a JSON pointer; `field` names it in errors).
    fn string(&self, value: &Value, pointer: &str, field: &str) -> Result<String, CompareError> {
        match value.pointer(pointer) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.bad(field, "expected a string")),
            None => Err(self.bad(field, "missing")),
        }
    }

    /// The array at `key`.
    fn array<'v>(&self, value: &'v Value, key: &str) -> Result<&'v Vec<Value>, CompareError> {
        match value.get(key) {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.bad(key, "expected an array")),
            None => Err(self.bad(key, "missing")),
        }
    }
}

/// Reads report folder `dir` (refused unless complete and of a schema this build reads),
/// shown as `name`.
pub fn read_input(dir: &Path, name: &str) -> Result<ComparedInput, CompareError> {
    let tables = ReportTables::read(dir)?;
    let (run_path, run_bytes, run) = read_json(dir, "run.json")?;
    let f = Fields { path: &run_path };
    let dataset = |key: &str| match run.get("dataset") {
        None | Some(Value::Null) => Ok(None),
        Some(_) => f
            .string(&run, &format!("/dataset/{key}"), &format!("dataset.{key}"))
            .map(Some),
    };
    let record = ComparedReport {
        name: name.to_string(),
        folder: dir.display().to_string(),
        run_json: InputFileRecord {
            file: run_path.display().to_string(),
            sha256: crate::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&run_bytes)),
        },
        kind: f.string(&run, "/kind", "kind")?,
        tool_version: f.string(&run, "/tool/version", "tool.version")?,
        probe_name: f.string(&run, "/probe/name", "probe.name")?,
        probe_hash: f.string(&run, "/probe/content_hash", "probe.content_hash")?,
        probe_classes: run
            .pointer("/probe/classes")
            .and_then(Value::as_u64)
            .ok_or_else(|| f.bad("probe.classes", "expected a non-negative integer"))?,
        dataset_name: dataset("name")?,
        dataset_sha256: dataset("spec_sha256")?,
    };
    let model_sha256 = run.pointer("/model/sha256").cloned().unwrap_or(Value::Null);
    let (categories, groupings) = read_metrics(dir)?;
    for (grouping, category) in tables.rates.keys() {
        if !categories.iter().any(|c| &c.name == category) || !groupings.contains(grouping) {
            return Err(CompareError::File {
                path: dir.join("groups.csv"),
                reason: format!(
                    "attribute `{grouping}`, category `{category}` is not among metrics.json's \
                     groupings and categories (the files do not belong together)"
                ),
            });
        }
    }
    Ok(ComparedInput {
        record,
        tables,
        categories,
        groupings,
        model_sha256,
    })
}

/// `metrics.json`'s categories (with their harmful flags) and grouping names (`all` first).
fn read_metrics(dir: &Path) -> Result<(Vec<CategoryInfo>, Vec<String>), CompareError> {
    let (path, _, metrics) = read_json(dir, "metrics.json")?;
    let f = Fields { path: &path };
    let mut categories = Vec::new();
    for (i, item) in f.array(&metrics, "categories")?.iter().enumerate() {
        let name = f.string(item, "/name", &format!("categories[{i}].name"))?;
        let harmful = item
            .get("harmful")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                f.bad(
                    &format!("categories[{i}].harmful"),
                    "expected true or false",
                )
            })?;
        categories.push(CategoryInfo { name, harmful });
    }
    let mut groupings = vec![crate::metrics::ALL.to_string()];
    for (i, item) in f.array(&metrics, "groupings")?.iter().enumerate() {
        groupings.push(f.string(item, "/name", &format!("groupings[{i}].name"))?);
    }
    Ok((categories, groupings))
}

/// One report's numbers for a group and category.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRate {
    /// The report's display name.
    pub report: String,
    /// Images in the group.
    pub n: u64,
    /// Of those, images predicted into the category.
    pub count: u64,
    /// `count / n`.
    pub rate: f64,
    /// Lower end of the 95% Wilson interval (from the report).
    pub ci_low: f64,
    /// Upper end of the 95% Wilson interval.
    pub ci_high: f64,
    /// `rate − rate of the first report` (`null` for the first report itself).
    pub difference: Option<f64>,
    /// Lower end of the 95% Newcombe hybrid score interval of the difference.
    pub newcombe_low: Option<f64>,
    /// Upper end of that interval.
    pub newcombe_high: Option<f64>,
    /// Two-sided pooled two-proportion z-test p-value (`null` when both rates are 0 or both 1).
    pub p_value: Option<f64>,
}

/// One group and category in every report.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedRate {
    /// Grouping name (`race`, `race*gender`, `all`).
    pub attribute: String,
    /// Group.
    pub group: String,
    /// Category.
    pub category: String,
    /// Per report, in the order given.
    pub reports: Vec<ReportRate>,
}

/// The reports set side by side over what they share.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// Display names, in the order given; differences are to the first.
    pub names: Vec<String>,
    /// Categories in every report (the first report's order and harmful flags).
    pub categories: Vec<CategoryInfo>,
    /// Groupings in every report with their groups present in every report.
    pub attributes: Vec<(String, Vec<String>)>,
    /// Every compared rate.
    pub rows: Vec<ComparedRate>,
    /// What was left out because not every report has it, and other differences (datasets).
    pub left_out: Vec<String>,
    /// The probes, when the reports share dataset and model and differ only in the probe
    /// (the CLIP paper's Table 7 layout applies).
    pub probe_only: Option<Vec<String>>,
}

/// Display names: `--names` (one per folder, distinct, non-empty) or the folders' names.
pub fn display_names(
    dirs: &[PathBuf],
    names: Option<&[String]>,
) -> Result<Vec<String>, CompareError> {
    let names: Vec<String> = match names {
        Some(names) if names.len() != dirs.len() => {
            return Err(CompareError::Names(format!(
                "{} names for {} report folders; give one name per folder",
                names.len(),
                dirs.len()
            )));
        }
        Some(names) => names.iter().map(|n| n.trim().to_string()).collect(),
        None => dirs
            .iter()
            .map(|d| {
                std::path::absolute(d)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| d.display().to_string())
            })
            .collect(),
    };
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(CompareError::Names(format!("name {} is empty", i + 1)));
        }
        if names[..i].contains(name) {
            return Err(CompareError::Names(format!(
                "`{name}` names two reports; give distinct names with --names"
            )));
        }
    }
    Ok(names)
}

/// Notes what some but not all reports have: `what` items listed per report.
fn note_missing(
    names: &[String],
    what: &str,
    per_report: &[Vec<String>],
    kept: &[String],
    notes: &mut Vec<String>,
) {
    let mut seen: Vec<&String> = Vec::new();
    for items in per_report {
        for item in items {
            if kept.contains(item) || seen.contains(&item) {
                continue;
            }
            seen.push(item);
            let having = |has: bool| {
                names
                    .iter()
                    .zip(per_report)
                    .filter(|(_, items)| items.contains(item) == has)
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            notes.push(format!(
                "{what} `{item}` left out: in {} but not in {}",
                having(true),
                having(false)
            ));
        }
    }
}

/// The items of `first` present in every list of `all`.
fn in_every(first: &[String], all: &[Vec<String>]) -> Vec<String> {
    first
        .iter()
        .filter(|x| all.iter().all(|items| items.contains(x)))
        .cloned()
        .collect()
}

/// Sets `inputs` (at least two) side by side over the groupings, groups and categories they all
/// have; everything else is listed in [`Comparison::left_out`].
pub fn compare(inputs: &[ComparedInput]) -> Result<Comparison, CompareError> {
    let names: Vec<String> = inputs.iter().map(|i| i.record.name.clone()).collect();
    let mut left_out = dataset_notes(inputs);
    let per_report: Vec<Vec<String>> = inputs
        .iter()
        .map(|i| i.categories.iter().map(|c| c.name.clone()).collect())
        .collect();
    let kept = in_every(&per_report[0], &per_report);
    note_missing(&names, "category", &per_report, &kept, &mut left_out);
    let categories: Vec<CategoryInfo> = inputs[0]
        .categories
        .iter()
        .filter(|c| kept.contains(&c.name))
        .cloned()
        .collect();
    let per_report: Vec<Vec<String>> = inputs.iter().map(|i| i.groupings.clone()).collect();
    let groupings = in_every(&per_report[0], &per_report);
    note_missing(&names, "attribute", &per_report, &groupings, &mut left_out);
    if categories.is_empty() || groupings.is_empty() {
        return Err(CompareError::NoOverlap(left_out.join("; ")));
    }
    let mut attributes = Vec::new();
    for grouping in &groupings {
        let per_report: Vec<Vec<String>> = inputs
            .iter()
            .map(|i| groups_in_all_categories(i, grouping, &categories))
            .collect();
        let groups = in_every(&per_report[0], &per_report);
        note_missing(
            &names,
            &format!("{grouping} group"),
            &per_report,
            &groups,
            &mut left_out,
        );
        attributes.push((grouping.clone(), groups));
    }
    let rows = compared_rows(inputs, &attributes, &categories);
    Ok(Comparison {
        names,
        categories,
        attributes,
        rows,
        left_out,
        probe_only: probe_only(inputs),
    })
}

/// A report's groups of `grouping` that have a row for every one of `categories`.
fn groups_in_all_categories(
    input: &ComparedInput,
    grouping: &str,
    categories: &[CategoryInfo],
) -> Vec<String> {
    let rows = |c: &CategoryInfo| {
        input
            .tables
            .rates
            .get(&(grouping.to_string(), c.name.clone()))
    };
    let Some(first) = rows(&categories[0]) else {
        return Vec::new();
    };
    first
        .iter()
        .map(|(g, _)| g.clone())
        .filter(|g| {
            categories
                .iter()
                .all(|c| rows(c).is_some_and(|r| r.iter().any(|(h, _)| h == g)))
        })
        .collect()
}

/// One row per grouping, group and category, each with every report's numbers.
fn compared_rows(
    inputs: &[ComparedInput],
    attributes: &[(String, Vec<String>)],
    categories: &[CategoryInfo],
) -> Vec<ComparedRate> {
    let mut rows = Vec::new();
    for (grouping, groups) in attributes {
        for category in categories {
            for group in groups {
                let measured: Vec<&Measured> = inputs
                    .iter()
                    .filter_map(|i| {
                        let key = (grouping.clone(), category.name.clone());
                        let rows = i.tables.rates.get(&key)?;
                        rows.iter().find(|(g, _)| g == group).map(|(_, m)| m)
                    })
                    .collect();
                let first = measured[0];
                let reports = inputs
                    .iter()
                    .zip(&measured)
                    .enumerate()
                    .map(|(k, (input, m))| report_rate(&input.record.name, m, first, k == 0))
                    .collect();
                rows.push(ComparedRate {
                    attribute: grouping.clone(),
                    group: group.clone(),
                    category: category.name.clone(),
                    reports,
                });
            }
        }
    }
    rows
}

/// One report's numbers and, unless it is the first, its difference to the first.
fn report_rate(name: &str, m: &Measured, first: &Measured, is_first: bool) -> ReportRate {
    let interval = (!is_first)
        .then(|| newcombe_interval(m.count, m.n, first.count, first.n))
        .flatten();
    ReportRate {
        report: name.to_string(),
        n: m.n,
        count: m.count,
        rate: m.value,
        ci_low: m.ci_low,
        ci_high: m.ci_high,
        difference: (!is_first && m.n > 0 && first.n > 0).then_some(m.value - first.value),
        newcombe_low: interval.map(|i| i.0),
        newcombe_high: interval.map(|i| i.1),
        p_value: (!is_first)
            .then(|| two_proportion_p(m.count, m.n, first.count, first.n))
            .flatten(),
    }
}

/// A note when the reports' datasets differ (or some record none).
fn dataset_notes(inputs: &[ComparedInput]) -> Vec<String> {
    let first = &inputs[0].record;
    let differ = inputs.iter().any(|i| {
        i.record.dataset_sha256 != first.dataset_sha256 || i.record.dataset_sha256.is_none()
    });
    if !differ {
        return Vec::new();
    }
    let list: Vec<String> = inputs
        .iter()
        .map(|i| {
            format!(
                "{}: {}",
                i.record.name,
                i.record
                    .dataset_name
                    .as_deref()
                    .unwrap_or("no dataset recorded")
            )
        })
        .collect();
    vec![format!(
        "the reports do not record one and the same dataset ({}); only the attributes, groups \
         and categories present in every report are compared",
        list.join("; ")
    )]
}

/// The probe names when every report has the same dataset and model and the probes differ.
fn probe_only(inputs: &[ComparedInput]) -> Option<Vec<String>> {
    let first = &inputs[0];
    let same = inputs.iter().all(|i| {
        i.record.dataset_sha256.is_some()
            && i.record.dataset_sha256 == first.record.dataset_sha256
            && i.model_sha256 == first.model_sha256
    });
    let probes_differ = inputs
        .iter()
        .any(|i| i.record.probe_hash != first.record.probe_hash);
    (same && probes_differ).then(|| inputs.iter().map(|i| i.record.probe_name.clone()).collect())
}
