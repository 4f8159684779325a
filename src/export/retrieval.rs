//! The retrieval report's files: `retrieval.csv` (one row per query, attribute and `k`),
//! `metrics.json`, `tables.md`, one skew chart per attribute (PNG + SVG) and `report.html`.
//! Like the audit report, everything is rendered in memory and written by [`write_artefacts`];
//! every file is deterministic.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::charts::{SkewChart, skew_chart};
use super::csv::render_csv;
use super::view::sanitize;
use super::{Artefact, ExportError, SkippedRecord, write_artefacts};
use crate::metrics::retrieval::{RetrievalRow, RetrievalSummaryRow, Spread, Target, summarise};

/// Header of `retrieval.csv`.
pub const RETRIEVAL_HEADER: [&str; 8] = [
    "query",
    "attribute",
    "k",
    "target",
    "max_skew",
    "min_skew",
    "ndkl",
    "bias_at_k",
];

/// What a retrieval report shows.
#[derive(Debug)]
pub struct RetrievalReport<'a> {
    /// Report title.
    pub title: String,
    /// The model's display name.
    pub model: String,
    /// The target distribution.
    pub target: Target,
    /// The cut-offs, in the order asked.
    pub ks: &'a [usize],
    /// The attributes measured.
    pub attributes: Vec<String>,
    /// The queries, in probe order.
    pub queries: Vec<String>,
    /// Images ranked.
    pub images: u64,
    /// Records skipped.
    pub skipped: u64,
    /// The first skipped records.
    pub skipped_first: &'a [SkippedRecord],
    /// Every query, attribute and `k`.
    pub rows: &'a [RetrievalRow],
}

/// Renders every file of the report and writes them into `dir`.
pub fn write_retrieval_report(report: &RetrievalReport, dir: &Path) -> Result<(), ExportError> {
    let summary = summarise(report.rows);
    let mut files = vec![
        csv(report)?,
        Artefact::new("metrics.json", json(report, &summary)?),
        Artefact::new("tables.md", markdown(report, &summary)),
    ];
    let mut figures = Vec::new();
    for attribute in &report.attributes {
        let (artefacts, svg) = chart(report, attribute).map_err(|e| e.under(dir))?;
        files.extend(artefacts);
        figures.push(svg);
    }
    files.push(Artefact::new(
        "report.html",
        html(report, &summary, &figures),
    ));
    write_artefacts(dir, &files).map(|_| ())
}

/// A measure with six decimals; empty when undefined.
fn number(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// `retrieval.csv`.
fn csv(report: &RetrievalReport) -> Result<Artefact, ExportError> {
    let rows = report.rows.iter().map(|row| {
        vec![
            row.query.clone(),
            row.attribute.clone(),
            row.k.to_string(),
            report.target.name().to_string(),
            number(Some(row.bias.max_skew)),
            number(Some(row.bias.min_skew)),
            number(Some(row.ndkl)),
            number(row.bias.bias_at_k),
        ]
    });
    render_csv("retrieval.csv", &RETRIEVAL_HEADER, rows)
}

/// `metrics.json`.
fn json(report: &RetrievalReport, summary: &[RetrievalSummaryRow]) -> Result<String, ExportError> {
    #[derive(Serialize)]
    struct Document<'a> {
        kind: &'static str,
        target: Target,
        ks: &'a [usize],
        attributes: &'a [String],
        queries: &'a [String],
        images: u64,
        skipped: u64,
        summary: &'a [RetrievalSummaryRow],
        rows: &'a [RetrievalRow],
    }
    let document = Document {
        kind: "retrieval",
        target: report.target,
        ks: report.ks,
        attributes: &report.attributes,
        queries: &report.queries,
        images: report.images,
        skipped: report.skipped,
        summary,
        rows: report.rows,
    };
    serde_json::to_string_pretty(&document)
        .map(|text| text + "\n")
        .map_err(|source| ExportError::Json {
            path: "metrics.json".into(),
            source,
        })
}

/// `mean (min – max)` of a spread, or `—`.
fn spread(s: Option<Spread>) -> String {
    s.map(|s| format!("{:.3} ({:.3} – {:.3})", s.mean, s.min, s.max))
        .unwrap_or_else(|| "—".into())
}

/// The summary and per-query tables as Markdown rows (header first).
fn tables(report: &RetrievalReport, summary: &[RetrievalSummaryRow]) -> [Vec<Vec<String>>; 2] {
    let mut over = vec![
        [
            "attribute",
            "k",
            "queries",
            "MaxSkew@k",
            "MinSkew@k",
            "NDKL",
            "Bias@k",
        ]
        .map(String::from)
        .to_vec(),
    ];
    over.extend(summary.iter().map(|s| {
        vec![
            s.attribute.clone(),
            s.k.to_string(),
            s.queries.to_string(),
            spread(s.max_skew),
            spread(s.min_skew),
            spread(s.ndkl),
            spread(s.bias_at_k),
        ]
    }));
    let mut each = vec![
        [
            "query",
            "attribute",
            "k",
            "MaxSkew@k",
            "MinSkew@k",
            "NDKL",
            "Bias@k",
        ]
        .map(String::from)
        .to_vec(),
    ];
    each.extend(report.rows.iter().map(|r| {
        vec![
            r.query.clone(),
            r.attribute.clone(),
            r.k.to_string(),
            format!("{:.3}", r.bias.max_skew),
            format!("{:.3}", r.bias.min_skew),
            format!("{:.3}", r.ndkl),
            r.bias
                .bias_at_k
                .map_or_else(|| "—".into(), |b| format!("{b:.3}")),
        ]
    }));
    [over, each]
}

/// The settings line shared by `tables.md` and `report.html`.
fn settings(report: &RetrievalReport) -> String {
    let ks: Vec<String> = report.ks.iter().map(usize::to_string).collect();
    format!(
        "Model {}; {} images ranked ({} skipped) for {} queries; k = {}; target `{}`. \
         Skew@k = ln(share in the top k / target share), natural log; a group absent from the top \
         k counts as one image; NDKL over the whole ranking.",
        report.model,
        report.images,
        report.skipped,
        report.queries.len(),
        ks.join(", "),
        report.target.name()
    )
}

/// `tables.md`.
fn markdown(report: &RetrievalReport, summary: &[RetrievalSummaryRow]) -> String {
    let mut out = format!("# {}\n\n{}\n", report.title, settings(report));
    let [over, each] = tables(report, summary);
    for (heading, rows) in [
        ("Over the queries: mean (min – max)", over),
        ("Per query", each),
    ] {
        let _ = write!(out, "\n## {heading}\n\n");
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if i == 0 {
                let _ = writeln!(out, "|{}", "---|".repeat(row.len()));
            }
        }
    }
    out
}

/// The skew chart of `attribute` at the smallest `k`.
fn chart(
    report: &RetrievalReport,
    attribute: &str,
) -> Result<(Vec<Artefact>, String), ExportError> {
    let k = report.ks.iter().copied().min().unwrap_or(1);
    let queries = report
        .rows
        .iter()
        .filter(|r| r.attribute == attribute && r.k == k)
        .map(|r| (r.query.clone(), r.bias.min_skew, r.bias.max_skew))
        .collect();
    let chart = SkewChart {
        title: format!("Retrieval skew by {attribute} at k = {k}"),
        subtitle: format!(
            "{}; target {}; bar = MinSkew@k to MaxSkew@k per query",
            report.title,
            report.target.name()
        ),
        queries,
    };
    skew_chart(chart, &format!("retrieval-{}-k{k}", sanitize(attribute)))
}

/// `report.html`: the settings, both tables and the charts inline, self-contained.
fn html(report: &RetrievalReport, summary: &[RetrievalSummaryRow], figures: &[String]) -> String {
    let e = |s: &str| html_escape::encode_text(s).into_owned();
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}</style>\
         </head><body>\n<h1>{}</h1>\n<p>{}</p>\n",
        e(&report.title),
        e(&report.title),
        e(&settings(report))
    );
    let [over, each] = tables(report, summary);
    for (heading, rows) in [
        ("Over the queries: mean (min – max)", over),
        ("Per query", each),
    ] {
        let _ = write!(out, "<h2>{}</h2>\n<table>\n", e(heading));
        for (i, row) in rows.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            let cells: String = row
                .iter()
                .map(|c| format!("<{tag}>{}</{tag}>", e(c)))
                .collect();
            let _ = writeln!(out, "<tr>{cells}</tr>");
        }
        out.push_str("</table>\n");
    }
    for svg in figures {
        let _ = writeln!(out, "<figure>{svg}</figure>");
    }
    if !report.skipped_first.is_empty() {
        out.push_str("<h2>Skipped records</h2>\n<p>Every one is listed in skipped.csv; the first:</p>\n<ul>\n");
        for s in report.skipped_first.iter().take(20) {
            let _ = writeln!(out, "<li>{}: {}</li>", e(&s.image), e(&s.reason));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}
