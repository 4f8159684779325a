//! CSV tables: `groups.csv` (every rate), `accuracy.csv` (when some class has a `match` rule),
//! `disparities.csv`, `skipped.csv` and, with `run --per-template`, `templates.csv`. Numbers at
//! full precision (`rate` is exactly `count / n`).
//! Text cells that a spreadsheet would run as a formula are neutralised ([`crate::csv_cell`]).

use std::path::Path;

use super::{Artefact, ChartCache, ExportError, Exporter, Report, SkippedRecord};
use crate::metrics::{AuditMetrics, GroupRate, PerTemplate};

/// Writes `groups.csv`, `accuracy.csv`, `disparities.csv` and `skipped.csv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvExporter;

/// Header of `groups.csv`.
pub const GROUPS_HEADER: [&str; 8] = [
    "attribute",
    "group",
    "category",
    "n",
    "count",
    "rate",
    "ci_low",
    "ci_high",
];
/// Header of `accuracy.csv`.
pub const ACCURACY_HEADER: [&str; 7] = [
    "attribute",
    "group",
    "n",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
];
/// Header of `disparities.csv`.
pub const DISPARITIES_HEADER: [&str; 8] = [
    "attribute",
    "category",
    "metric",
    "value",
    "group",
    "reference_group",
    "p_value",
    "p_adjusted",
];
/// Header of `templates.csv` (`run --per-template`).
pub const TEMPLATES_HEADER: [&str; 7] = [
    "template",
    "attribute",
    "group",
    "category",
    "n",
    "count",
    "rate",
];
/// Header of `skipped.csv`.
pub const SKIPPED_HEADER: [&str; 3] = ["id", "image", "reason"];

impl Exporter for CsvExporter {
    fn render(&self, report: &Report, _: &ChartCache) -> Result<Vec<Artefact>, ExportError> {
        let metrics = report.metrics;
        let mut files = vec![groups_csv(metrics)?];
        if !metrics.accuracy.is_empty() {
            files.push(accuracy_csv(metrics)?);
        }
        files.push(disparities_csv(metrics)?);
        if let Some(per_template) = &report.context.per_template {
            files.push(templates_csv(per_template)?);
        }
        // a streamed `skipped.csv` is already in the folder
        if !report.context.skipped_streamed {
            files.push(skipped_csv(&report.context.skipped)?);
        }
        Ok(files)
    }
}

/// `groups.csv`: every rate.
fn groups_csv(metrics: &AuditMetrics) -> Result<Artefact, ExportError> {
    let rows = metrics.rates.iter().map(|r| {
        let mut cells = rate_cells(r);
        cells.extend([r.ci_low.to_string(), r.ci_high.to_string()]);
        cells
    });
    render_csv("groups.csv", &GROUPS_HEADER, rows)
}

/// `attribute,group,category,n,count,rate` of one rate, as `groups.csv` and `templates.csv`
/// write them.
fn rate_cells(r: &GroupRate) -> Vec<String> {
    vec![
        r.attribute.clone(),
        r.group.clone(),
        r.category.clone(),
        r.n.to_string(),
        r.count.to_string(),
        r.rate.to_string(),
    ]
}

/// `accuracy.csv`: every group's zero-shot accuracy.
fn accuracy_csv(metrics: &AuditMetrics) -> Result<Artefact, ExportError> {
    let rows = metrics.accuracy.iter().map(|a| {
        vec![
            a.attribute.clone(),
            a.group.clone(),
            a.n.to_string(),
            a.correct.to_string(),
            a.accuracy.to_string(),
            a.ci_low.to_string(),
            a.ci_high.to_string(),
        ]
    });
    render_csv("accuracy.csv", &ACCURACY_HEADER, rows)
}

/// `disparities.csv`: every disparity with its test's raw and Holm-adjusted p-values (an
/// undefined value, or a row without a test, as an empty cell).
fn disparities_csv(metrics: &AuditMetrics) -> Result<Artefact, ExportError> {
    let number = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    let rows = metrics.disparities.iter().map(|d| {
        vec![
            d.attribute.clone(),
            d.category.clone(),
            d.metric.as_str().to_string(),
            number(d.value),
            d.group.clone(),
            d.reference_group.clone(),
            number(d.p_value),
            number(d.p_adjusted),
        ]
    });
    render_csv("disparities.csv", &DISPARITIES_HEADER, rows)
}

/// `templates.csv`: every rate under each template alone, template by template (probe order),
/// each in `groups.csv`'s row order.
fn templates_csv(per_template: &PerTemplate) -> Result<Artefact, ExportError> {
    let rows = per_template.templates.iter().flat_map(|t| {
        t.rates.iter().map(move |r| {
            let mut cells = vec![t.template.clone()];
            cells.extend(rate_cells(r));
            cells
        })
    });
    render_csv("templates.csv", &TEMPLATES_HEADER, rows)
}

/// `skipped.csv` from the records kept in memory.
fn skipped_csv(skipped: &[SkippedRecord]) -> Result<Artefact, ExportError> {
    let rows = skipped
        .iter()
        .map(|s| vec![s.id.clone(), s.image.clone(), s.reason.clone()]);
    render_csv("skipped.csv", &SKIPPED_HEADER, rows)
}

/// One CSV file (header, then rows) named `name`.
pub(super) fn render_csv(
    name: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<Artefact, ExportError> {
    let error = |source| ExportError::Csv {
        path: Path::new(name).to_path_buf(),
        source,
    };
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    crate::csv_cell::write_record(&mut writer, header).map_err(error)?;
    for row in rows {
        crate::csv_cell::write_record(&mut writer, &row).map_err(error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| error(e.into_error().into()))?;
    Ok(Artefact::new(name, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata::{self, Names};

    fn read(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = ::csv::Reader::from_path(path).unwrap();
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn headers_rows_and_full_precision() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let files = CsvExporter.write(&report, dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "groups.csv",
                "accuracy.csv",
                "disparities.csv",
                "skipped.csv"
            ]
        );

        let text = std::fs::read_to_string(dir.path().join("groups.csv")).unwrap();
        assert!(text.starts_with("attribute,group,category,n,count,rate,ci_low,ci_high\n"));
        let (header, rows) = read(&dir.path().join("groups.csv"));
        assert_eq!(header, GROUPS_HEADER);
        assert_eq!(rows.len(), metrics.rates.len());
        assert_eq!(rows[0][..3], ["all", "all", "human"]);
        for (row, rate) in rows.iter().zip(&metrics.rates) {
            let (n, count): (u64, u64) = (row[3].parse().unwrap(), row[4].parse().unwrap());
            let parsed: f64 = row[5].parse().unwrap();
            assert_eq!(parsed, count as f64 / n as f64);
            assert_eq!(parsed, rate.rate);
            assert_eq!(row[6].parse::<f64>().unwrap(), rate.ci_low);
        }

        let (header, rows) = read(&dir.path().join("accuracy.csv"));
        assert_eq!(header, ACCURACY_HEADER);
        assert_eq!(rows.len(), metrics.accuracy.len());

        let (header, rows) = read(&dir.path().join("disparities.csv"));
        assert_eq!(header, DISPARITIES_HEADER);
        assert_eq!(rows.len(), metrics.disparities.len());
        assert!(rows.iter().any(|r| r[2] == "ratio_to_reference"));
        // a chi-square row has an empty category
        assert!(rows.iter().any(|r| r[2] == "chi2_p" && r[1].is_empty()));

        let (header, rows) = read(&dir.path().join("skipped.csv"));
        assert_eq!(header, SKIPPED_HEADER);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][1], "val/42, copy.jpg");
    }

    #[test]
    fn user_strings_are_quoted() {
        let (context, metrics) = testdata::build(&Names::hostile());
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        CsvExporter.write(&report, dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("groups.csv")).unwrap();
        // the category `crime, "related"` is quoted, with its quotes doubled
        assert!(text.contains(r#","crime, ""related""","#), "{text}");
        let (_, rows) = read(&dir.path().join("groups.csv"));
        assert!(rows.iter().all(|r| r.len() == 8));
        assert!(rows.iter().any(|r| r[2] == "crime, \"related\""));
        assert!(rows.iter().any(|r| r[1] == "\"quoted\" & 'single'"));
    }

    #[test]
    fn no_accuracy_file_without_match_rules_and_header_only_skipped() {
        let (mut context, mut metrics) = testdata::sample();
        metrics.accuracy.clear();
        context.skipped.clear();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let files = CsvExporter.write(&report, dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        assert!(!dir.path().join("accuracy.csv").exists());
        let skipped = std::fs::read_to_string(dir.path().join("skipped.csv")).unwrap();
        assert_eq!(skipped, "id,image,reason\n");
    }
}
