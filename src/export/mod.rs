//! The report folder's files: one [`Exporter`] per output format — CSV tables,
//! `metrics.json`, `tables.md`, charts (PNG + SVG) and a self-contained `report.html` — all
//! rendering the same [`AuditMetrics`] with the run's [`ReportContext`].
//!
//! Exporters only render, into in-memory [`Artefact`]s; [`write_report`] writes them, so all of
//! the folder's file I/O is here (`skipped.csv` is the exception: [`SkippedWriter`] streams it
//! during the run). Every format is deterministic: the same inputs give byte-identical files.

mod charts;
mod csv;
mod html;
mod json;
mod markdown;
pub mod retrieval;
mod sensitivity;
mod skipped;
mod summary;
mod view;

use std::path::{Path, PathBuf};

use crate::metrics::{Attribute, AuditMetrics, CategoryInfo, Grouping, PerTemplate};
pub use crate::schema::SkippedRecord;

pub use self::charts::{ChartCache, ChartsExporter, grouped_bars};
pub use self::csv::{ACCURACY_HEADER, CsvExporter, GROUPS_HEADER};
pub use self::html::HtmlExporter;
pub use self::html::SKIPPED_SHOWN;
pub use self::json::JsonExporter;
pub use self::markdown::MarkdownExporter;
pub(crate) use self::markdown::escape as markdown_escape;
pub use self::skipped::SkippedWriter;
pub(crate) use self::view::sanitize as file_stem;

/// What the report says about the run besides the metrics.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// Report title (first heading of `tables.md` and `report.html`).
    pub title: String,
    /// Probe set name.
    pub probe_name: String,
    /// Probe set description.
    pub probe_description: String,
    /// Content hash of the probe set.
    pub probe_hash: String,
    /// Model id (and revision) as the user named it.
    pub model: String,
    /// Dataset name or spec path.
    pub dataset: String,
    /// How the model turned similarities into probabilities, when known (`run`; `aggregate`
    /// reads predictions of any classifier and leaves it `None`).
    pub scores: Option<String>,
    /// The probe's prompt templates (with `{label}`), for the report's caveats.
    pub templates: Vec<String>,
    /// The probe's categories, in order.
    pub categories: Vec<CategoryInfo>,
    /// The dataset's attributes with their vocabularies in display order.
    pub attributes: Vec<Attribute>,
    /// The groupings the metrics were computed for.
    pub groupings: Vec<Grouping>,
    /// (class label, category name) in probe order, for the report's probe section.
    pub labels: Vec<(String, String)>,
    /// Images that were not classified: all of them, or the first [`SKIPPED_SHOWN`] when
    /// `skipped_total` says there were more.
    pub skipped: Vec<SkippedRecord>,
    /// How many images were skipped (when larger than `skipped.len()`).
    pub skipped_total: u64,
    /// `skipped.csv` was streamed during the run ([`SkippedWriter`]); the CSV exporter leaves it.
    pub skipped_streamed: bool,
    /// A note shown prominently, e.g. "Format example: tiny random-weight model, the numbers
    /// mean nothing."
    pub note: Option<String>,
    /// The rates under each template alone and their spread (`run --per-template`).
    pub per_template: Option<PerTemplate>,
}

impl ReportContext {
    /// How many images were skipped.
    pub fn skipped_count(&self) -> u64 {
        self.skipped_total.max(self.skipped.len() as u64)
    }
}

/// The metrics of one run with the context needed to present them.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// Run description.
    pub context: &'a ReportContext,
    /// Every number of the audit.
    pub metrics: &'a AuditMetrics,
}

/// One file of the report folder, rendered in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    /// Where the file goes, relative to the report folder (`charts/race.svg`).
    pub path: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl Artefact {
    /// The file `path` (relative to the report folder) holding `bytes`.
    pub fn new(path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            bytes: bytes.into(),
        }
    }
}

/// One output format: renders its files in memory; writing them is [`write_report`]'s job.
pub trait Exporter {
    /// This format's files; `charts` draws each chart once for all the formats of `report` that
    /// show it. Errors name files relative to the report folder.
    fn render(&self, report: &Report, charts: &ChartCache) -> Result<Vec<Artefact>, ExportError>;

    /// Renders this format alone and writes it into `dir` (created if needed); returns the files
    /// written.
    fn write(&self, report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        let files = self
            .render(report, &ChartCache::default())
            .map_err(|e| e.under(dir))?;
        write_artefacts(dir, &files)
    }
}

/// Writing a report file failed; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Creating a folder or writing a file failed.
    #[error("{}: cannot write", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV writer failed.
    #[error("{}: cannot write CSV", path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// Underlying CSV error.
        #[source]
        source: ::csv::Error,
    },
    /// Serialising JSON failed.
    #[error("{}: cannot write JSON", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// Underlying serde_json error.
        #[source]
        source: serde_json::Error,
    },
    /// Drawing a chart failed.
    #[error("{}: cannot draw chart: {message}", path.display())]
    Chart {
        /// The chart file.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
    /// Encoding a PNG failed.
    #[error("{}: cannot encode PNG", path.display())]
    Png {
        /// The PNG file.
        path: PathBuf,
        /// Underlying image error.
        #[source]
        source: image::ImageError,
    },
    /// A file written earlier (a shard's `skipped.csv`) cannot be read back.
    #[error("{}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ExportError {
    /// The error with the file it names taken as relative to `dir` (renderers name files
    /// relative to the report folder; an absolute path stays as it is).
    fn under(mut self, dir: &Path) -> Self {
        let (Self::Io { path, .. }
        | Self::Csv { path, .. }
        | Self::Json { path, .. }
        | Self::Chart { path, .. }
        | Self::Png { path, .. }
        | Self::Read { path, .. }) = &mut self;
        *path = dir.join(&*path);
        self
    }
}

/// Every format, in the order [`write_report`] runs them: csv, json, markdown, charts, html.
pub fn all_exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(CsvExporter),
        Box::new(JsonExporter),
        Box::new(MarkdownExporter),
        Box::new(ChartsExporter),
        Box::new(HtmlExporter),
    ]
}

/// Renders every format, then writes the whole report folder into `dir` (nothing is written
/// when a format fails to render); returns every file written, in order.
pub fn write_report(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let charts = ChartCache::default();
    let mut files = Vec::new();
    for exporter in all_exporters() {
        files.extend(exporter.render(report, &charts).map_err(|e| e.under(dir))?);
    }
    write_artefacts(dir, &files)
}

/// Writes `files` into `dir`, creating folders as needed; returns their paths.
fn write_artefacts(dir: &Path, files: &[Artefact]) -> Result<Vec<PathBuf>, ExportError> {
    files
        .iter()
        .map(|file| {
            let path = dir.join(&file.path);
            write_file(&path, &file.bytes)?;
            Ok(path)
        })
        .collect()
}

/// Creates `dir` and its parents.
fn create_dir(dir: &Path) -> Result<(), ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path`, creating the parent folder.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    std::fs::write(path, bytes).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_report_writes_every_format_and_is_deterministic() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let files_a = write_report(&report, &a).unwrap();
        let files_b = write_report(&report, &b).unwrap();
        assert_eq!(files_a.len(), files_b.len());
        let names: Vec<String> = files_a
            .iter()
            .map(|p| p.strip_prefix(&a).unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "groups.csv",
            "accuracy.csv",
            "disparities.csv",
            "skipped.csv",
            "metrics.json",
            "tables.md",
            "charts/race.png",
            "charts/race.svg",
            "charts/race_gender-non-human.png",
            "report.html",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }
        // byte-identical, PNG included (plotters' bitmap drawing is deterministic)
        for (fa, fb) in files_a.iter().zip(&files_b) {
            let (x, y) = (std::fs::read(fa).unwrap(), std::fs::read(fb).unwrap());
            assert!(!x.is_empty(), "{} is empty", fa.display());
            assert!(x == y, "{} differs between runs", fa.display());
        }
    }

    #[test]
    fn report_html_embeds_the_chart_files_bytes() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let tmp = tempfile::tempdir().unwrap();
        let files = write_report(&report, tmp.path()).unwrap();
        let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
        let svgs: Vec<_> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "svg"))
            .collect();
        assert_eq!(svgs.len(), 4);
        for svg in svgs {
            let text = std::fs::read_to_string(svg).unwrap();
            assert!(
                html.contains(text.trim_end()),
                "{} not in the page",
                svg.display()
            );
        }
    }

    #[test]
    fn charts_are_drawn_once_per_report() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let charts = ChartCache::default();
        let first = charts.drawn(&report).unwrap();
        let again = charts.drawn(&report).unwrap();
        assert_eq!(first.len(), 4);
        assert!(std::ptr::eq(first, again));
    }

    #[test]
    fn errors_name_the_file() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let tmp = tempfile::tempdir().unwrap();
        // a plain file where the report folder should be
        let blocker = tmp.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_report(&report, &blocker).unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}

#[cfg(test)]
mod sample_output {
    /// Writes the fixture's report to `$EXPORT_SAMPLE_DIR` for eyeballing (skipped when unset).
    #[test]
    fn write_sample_report() {
        let Some(dir) = std::env::var_os("EXPORT_SAMPLE_DIR") else {
            return;
        };
        let (context, metrics) = super::testdata::sample();
        let report = super::Report {
            context: &context,
            metrics: &metrics,
        };
        super::write_report(&report, std::path::Path::new(&dir)).unwrap();
        let (context, metrics) = super::testdata::build(&super::testdata::Names::long_names());
        let report = super::Report {
            context: &context,
            metrics: &metrics,
        };
        super::write_report(&report, &std::path::Path::new(&dir).join("long-names")).unwrap();
        let mut names = super::testdata::Names::fairface();
        names.races = (0..24).map(|i| format!("Extraordinarily_{i}")).collect();
        let (context, metrics) = super::testdata::build(&names);
        let report = super::Report {
            context: &context,
            metrics: &metrics,
        };
        super::write_report(&report, &std::path::Path::new(&dir).join("many")).unwrap();
    }
}
