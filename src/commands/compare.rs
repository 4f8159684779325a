//! `clip-audit compare`: report folders set side by side in one report folder — `compare.csv`,
//! `compare.json`, `compare.md`, grouped bar charts and `run.json` — written through a staged
//! folder so that a failed comparison never leaves a complete-looking one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::comparison::{ComparedInput, Comparison, compare, display_names, read_input};
use crate::export::{file_stem, grouped_bars, markdown_escape as escape};
use crate::provenance::{ProbeRecord, ReportKind, RunRecord, SCHEMA_VERSION, ToolInfo, utc_now};
use crate::report_folder::StagedReport;

/// Everything `compare` needs.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Report folders (two or more); differences are to the first.
    pub reports: Vec<PathBuf>,
    /// The comparison folder to write.
    pub out: PathBuf,
    /// Display names, one per folder (default: the folders' names).
    pub names: Option<Vec<String>>,
    /// The command line, recorded in `run.json` and the lock.
    pub command: Vec<String>,
}

/// What `compare` did.
#[derive(Debug)]
pub struct CompareSummary {
    /// The comparison folder.
    pub out: PathBuf,
    /// Report folders compared.
    pub reports: usize,
    /// What was left out, and other differences the user should know about.
    pub notes: Vec<String>,
}

/// Header of `compare.csv`: one row per attribute, group, category and report.
pub const COMPARE_HEADER: [&str; 13] = [
    "attribute",
    "group",
    "category",
    "report",
    "n",
    "count",
    "rate",
    "ci_low",
    "ci_high",
    "difference",
    "newcombe_low",
    "newcombe_high",
    "p_value",
];

/// Reads the folders, compares them and writes the comparison folder.
pub fn run(options: &CompareOptions) -> anyhow::Result<CompareSummary> {
    let started_utc = utc_now();
    anyhow::ensure!(
        options.reports.len() >= 2,
        "compare needs at least two report folders (got {})",
        options.reports.len()
    );
    let names = display_names(&options.reports, options.names.as_deref())?;
    let inputs = options
        .reports
        .iter()
        .zip(&names)
        .map(|(dir, name)| read_input(dir, name))
        .collect::<Result<Vec<_>, _>>()?;
    let comparison = compare(&inputs)?;
    let stage = StagedReport::begin(&options.out, &options.command.join(" "))?;
    let dir = stage.dir();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write("compare.csv", &compare_csv(&comparison)?)?;
    write("compare.json", &compare_json(&comparison)?)?;
    write("compare.md", compare_md(&comparison, &inputs).as_bytes())?;
    for (path, bytes) in charts(&comparison)? {
        write(&path, &bytes)?;
    }
    run_record(options, &inputs, &comparison, started_utc)
        .write(dir)
        .with_context(|| format!("writing {}", dir.join("run.json").display()))?;
    Ok(CompareSummary {
        out: stage.commit()?,
        reports: inputs.len(),
        notes: comparison.left_out,
    })
}

/// A number at full precision, or an empty cell.
fn cell(value: Option<f64>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

/// `compare.csv`: the long layout, numbers at full precision.
fn compare_csv(comparison: &Comparison) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    crate::csv_cell::write_record(&mut writer, COMPARE_HEADER)?;
    for row in &comparison.rows {
        for r in &row.reports {
            crate::csv_cell::write_record(
                &mut writer,
                [
                    row.attribute.clone(),
                    row.group.clone(),
                    row.category.clone(),
                    r.report.clone(),
                    r.n.to_string(),
                    r.count.to_string(),
                    r.rate.to_string(),
                    r.ci_low.to_string(),
                    r.ci_high.to_string(),
                    cell(r.difference),
                    cell(r.newcombe_low),
                    cell(r.newcombe_high),
                    cell(r.p_value),
                ],
            )?;
        }
    }
    writer.into_inner().context("rendering compare.csv")
}

/// `compare.json`: the whole comparison, machine-readable.
fn compare_json(comparison: &Comparison) -> anyhow::Result<Vec<u8>> {
    let mut text = serde_json::to_string_pretty(comparison)?;
    text.push('\n');
    Ok(text.into_bytes())
}

/// A proportion as a percentage with one decimal.
fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A p-value for people.
fn p_text(p: Option<f64>) -> String {
    match p {
        None => "—".into(),
        Some(p) if p < 1e-4 => format!("{p:.1e}"),
        Some(p) => format!("{p:.4}"),
    }
}

/// `compare.md`: the reports, what was left out, the Table 7 layout when it applies, and one
/// table per attribute and category.
fn compare_md(comparison: &Comparison, inputs: &[ComparedInput]) -> String {
    let names: Vec<String> = comparison.names.iter().map(|n| escape(n)).collect();
    let mut out = format!("# Comparison: {}\n\n", names.join(" vs "));
    let _ = writeln!(
        out,
        "Differences are to the first report ({}): its rate subtracted, in percentage points, \
         with a 95% Newcombe hybrid score interval (Newcombe 1998, method 10). p: two-sided \
         pooled two-proportion z-test (— when both rates are 0 or both 1). Rates carry \
         count / n.\n",
        names[0]
    );
    out.push_str("## Reports\n\n| name | folder | written by | probe | dataset | clip-audit |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for input in inputs {
        let r = &input.record;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&r.name),
            escape(&r.folder),
            escape(&r.kind),
            escape(&r.probe_name),
            escape(r.dataset_name.as_deref().unwrap_or("—")),
            escape(&r.tool_version)
        );
    }
    out.push_str("\n## Left out\n\n");
    if comparison.left_out.is_empty() {
        out.push_str("Nothing: every attribute, group and category is in every report.\n");
    }
    for note in &comparison.left_out {
        let _ = writeln!(out, "- {}", escape(note));
    }
    if let Some(probes) = &comparison.probe_only {
        table7_md(&mut out, comparison, probes);
    }
    for (attribute, groups) in &comparison.attributes {
        for category in &comparison.categories {
            attribute_md(&mut out, comparison, attribute, groups, &category.name);
        }
    }
    out
}

/// The CLIP paper's Table 7 layout: rows = groups, columns = each report's harmful rates.
fn table7_md(out: &mut String, comparison: &Comparison, probes: &[String]) {
    let harmful: Vec<&str> = comparison
        .categories
        .iter()
        .filter(|c| c.harmful)
        .map(|c| c.name.as_str())
        .collect();
    if harmful.is_empty() {
        return;
    }
    let probes: Vec<String> = probes.iter().map(|p| escape(p)).collect();
    let _ = writeln!(
        out,
        "\n## Table 7 layout\n\nThe reports share dataset and model and differ only in the probe \
         ({}): harmful categories' rates per group, as in the CLIP paper's Table 7.",
        probes.join(" vs ")
    );
    for (attribute, groups) in comparison.attributes.iter().filter(|(a, _)| a != "all") {
        let _ = write!(
            out,
            "\n### {}\n\n| {} |",
            escape(attribute),
            escape(attribute)
        );
        for name in &comparison.names {
            for c in &harmful {
                let _ = write!(out, " {} {} |", escape(c), escape(name));
            }
        }
        let columns = comparison.names.len() * harmful.len();
        let _ = writeln!(out, "\n|---|{}", "---:|".repeat(columns));
        for group in groups {
            let _ = write!(out, "| {} |", escape(group));
            for k in 0..comparison.names.len() {
                for c in &harmful {
                    let rate = find(comparison, attribute, group, c).map(|r| r.reports[k].rate);
                    let _ = write!(out, " {} |", rate.map_or("—".into(), percent));
                }
            }
            out.push('\n');
        }
    }
}

/// The compared row of a grouping, group and category.
fn find<'a>(
    comparison: &'a Comparison,
    attribute: &str,
    group: &str,
    category: &str,
) -> Option<&'a crate::comparison::ComparedRate> {
    comparison
        .rows
        .iter()
        .find(|r| r.attribute == attribute && r.group == group && r.category == category)
}

/// One attribute and category: per group, each report's rate and each difference to the first.
fn attribute_md(
    out: &mut String,
    comparison: &Comparison,
    attribute: &str,
    groups: &[String],
    category: &str,
) {
    let names = &comparison.names;
    let _ = write!(
        out,
        "\n## {}: {}\n\n| group |",
        escape(attribute),
        escape(category)
    );
    for name in names {
        let _ = write!(out, " {} |", escape(name));
    }
    for name in &names[1..] {
        let _ = write!(
            out,
            " {} − {} [95% CI] | p |",
            escape(name),
            escape(&names[0])
        );
    }
    let _ = writeln!(
        out,
        "\n|---|{}{}",
        "---:|".repeat(names.len()),
        "---:|---:|".repeat(names.len() - 1)
    );
    for group in groups {
        let Some(row) = find(comparison, attribute, group, category) else {
            continue;
        };
        let _ = write!(out, "| {} |", escape(group));
        for r in &row.reports {
            let _ = write!(out, " {} ({}/{}) |", percent(r.rate), r.count, r.n);
        }
        for r in &row.reports[1..] {
            let difference = match (r.difference, r.newcombe_low, r.newcombe_high) {
                (Some(d), Some(lo), Some(hi)) => format!(
                    "{:+.1} pp [{:+.1}, {:+.1}]",
                    d * 100.0,
                    lo * 100.0,
                    hi * 100.0
                ),
                _ => "—".into(),
            };
            let _ = write!(out, " {difference} | {} |", p_text(r.p_value));
        }
        out.push('\n');
    }
}

/// Grouped bars per one-attribute grouping and harmful category (every category when none is
/// harmful): groups on x, one bar per report. Returns (path, bytes), PNG and SVG per chart.
fn charts(comparison: &Comparison) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let harmful = comparison.categories.iter().any(|c| c.harmful);
    let mut files = Vec::new();
    let mut stems = BTreeSet::new();
    for (attribute, groups) in &comparison.attributes {
        if attribute == "all" || attribute.contains('*') || groups.is_empty() {
            continue;
        }
        for category in comparison
            .categories
            .iter()
            .filter(|c| c.harmful || !harmful)
        {
            let rows: Vec<_> = groups
                .iter()
                .filter_map(|g| find(comparison, attribute, g, &category.name))
                .collect();
            let base = format!("{}-{}", file_stem(attribute), file_stem(&category.name));
            let mut stem = base.clone();
            for k in 2.. {
                if stems.insert(stem.clone()) {
                    break;
                }
                stem = format!("{base}-{k}");
            }
            let png_path = format!("charts/{stem}.png");
            let values: Vec<Vec<(f64, f64, f64)>> = rows
                .iter()
                .map(|r| {
                    r.reports
                        .iter()
                        .map(|m| (m.rate, m.ci_low, m.ci_high))
                        .collect()
                })
                .collect();
            let (png, svg) = grouped_bars(
                format!(
                    "{}: share of images by {attribute}, per report",
                    category.name
                ),
                format!(
                    "{} · whiskers: 95% Wilson CI · n of {} below each group",
                    comparison.names.join(" vs "),
                    comparison.names[0]
                ),
                rows.iter()
                    .map(|r| (r.group.clone(), r.reports[0].n))
                    .collect(),
                comparison.names.clone(),
                &values,
                Path::new(&png_path),
            )?;
            files.push((png_path, png));
            files.push((format!("charts/{stem}.svg"), svg.into_bytes()));
        }
    }
    Ok(files)
}

/// `run.json` of a comparison: the inputs in `compared`; `probe` is the first report's.
fn run_record(
    options: &CompareOptions,
    inputs: &[ComparedInput],
    comparison: &Comparison,
    started_utc: String,
) -> RunRecord {
    let first = &inputs[0].record;
    RunRecord {
        schema_version: SCHEMA_VERSION,
        kind: ReportKind::Compare,
        tool: ToolInfo::current(),
        command: options.command.clone(),
        started_utc,
        probe: ProbeRecord {
            name: first.probe_name.clone(),
            file: first.run_json.file.clone(),
            content_hash: first.probe_hash.clone(),
            classes: first.probe_classes as usize,
        },
        model: None,
        embedding_cache: None,
        dataset: None,
        predictions: Vec::new(),
        vocabulary_from: None,
        records: inputs.len() as u64,
        classified: comparison.rows.len() as u64,
        skipped: 0,
        skipped_fraction: 0.0,
        batch_size: None,
        top_k: None,
        threads: None,
        device: None,
        timings_s: BTreeMap::new(),
        warnings: comparison.left_out.clone(),
        compared: inputs.iter().map(|i| i.record.clone()).collect(),
        per_template: None,
        shard: None,
        shards: None,
    }
}
