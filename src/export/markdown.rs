//! `tables.md`: the paper-style tables (rows = categories, columns = groups in vocabulary order),
//! confidence intervals, accuracy, disparities and intersections as Markdown.

use std::fmt::Write as _;

use super::view::{self, Block, Table};
use super::{Artefact, ChartCache, ExportError, Exporter, Report};

/// Writes `tables.md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn render(&self, report: &Report, _: &ChartCache) -> Result<Vec<Artefact>, ExportError> {
        Ok(vec![Artefact::new("tables.md", render(report))])
    }
}

/// The whole of `tables.md`.
pub(crate) fn render(report: &Report) -> String {
    let context = report.context;
    let mut out = String::new();
    // `write!` into a String cannot fail
    let _ = writeln!(out, "# {}\n", escape(&context.title));
    if let Some(note) = &context.note {
        let _ = writeln!(out, "> **Note:** {}\n", escape(note));
    }
    let top = super::summary::findings(report)
        .into_iter()
        .chain(super::summary::caveats(report));
    for block in top {
        block_md(&mut out, block);
    }
    let _ = writeln!(out, "## Run\n");
    let _ = writeln!(out, "- Model: {}", escape(&context.model));
    if let Some(scores) = &context.scores {
        let _ = writeln!(out, "- Scores: {}", escape(scores));
    }
    let _ = writeln!(out, "- Dataset: {}", escape(&context.dataset));
    let _ = writeln!(
        out,
        "- Probe: {} (hash {})",
        escape(&context.probe_name),
        escape(&context.probe_hash)
    );
    let _ = writeln!(out, "- Images classified: {}", report.metrics.n);
    let _ = writeln!(out, "- Images skipped: {}\n", context.skipped_count());
    let sensitivity = super::sensitivity::blocks(report);
    for block in view::document(report).into_iter().chain(sensitivity) {
        block_md(&mut out, block);
    }
    let _ = writeln!(out, "## Skipped images\n");
    let _ = match context.skipped_count() {
        0 => writeln!(out, "No image was skipped."),
        1 => writeln!(out, "1 image was skipped (listed in `skipped.csv`)."),
        k => writeln!(out, "{k} images were skipped (listed in `skipped.csv`)."),
    };
    out
}

/// One block of the document as Markdown.
fn block_md(out: &mut String, block: Block) {
    match block {
        Block::Heading(level, text) => {
            let _ = writeln!(out, "{} {}\n", "#".repeat(level.into()), escape(&text));
        }
        Block::Para(text) => {
            let _ = writeln!(out, "{}\n", escape(&text));
        }
        Block::List(items) => {
            for item in items {
                let _ = writeln!(out, "- {}", escape(&item));
            }
            out.push('\n');
        }
        Block::Table(table) => table_md(out, &table),
        Block::Chart(chart) => {
            let _ = writeln!(
                out,
                "![{}](charts/{}.png)\n",
                escape(&chart.title),
                chart.stem
            );
        }
    }
}

fn table_md(out: &mut String, table: &Table) {
    let header: Vec<String> = table.header.iter().map(|h| escape(h)).collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = table
        .numeric
        .iter()
        .map(|&n| if n { "---:" } else { ":---" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in &table.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                let text = escape(&c.text);
                if c.flagged {
                    format!("**{text}**")
                } else {
                    text
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
    if !table.footnote.is_empty() {
        // footnotes are the tool's own text, never user strings
        let _ = writeln!(out, "{}\n", table.footnote);
    }
}

/// Escapes a user string for Markdown text and table cells: backslash-escapes the punctuation
/// that could start markup, an HTML tag, an entity or end a cell, and folds line breaks into
/// spaces. An `_` between letters or digits stays as it is (it cannot emphasise there).
pub(crate) fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '_' => {
                let inner = i > 0
                    && chars[i - 1].is_alphanumeric()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if !inner {
                    out.push('\\');
                }
                out.push(c);
            }
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '#' | '&' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata::{self, EVIL, Names};

    fn sample_md() -> String {
        let (context, metrics) = testdata::sample();
        render(&Report {
            context: &context,
            metrics: &metrics,
        })
    }

    #[test]
    fn paper_layout_columns_in_vocabulary_order() {
        let md = sample_md();
        let heading = "### Share of images per predicted category (%), by race\n\n";
        let start = md.find(heading).unwrap() + heading.len();
        let lines: Vec<&str> = md[start..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(
            lines[0],
            "| Category | Black | White | Indian | Latino_Hispanic | Middle Eastern | \
             Southeast Asian | East Asian |"
        );
        assert_eq!(lines[1], "|:---|---:|---:|---:|---:|---:|---:|---:|");
        // 3 categories + the n row
        assert_eq!(lines.len(), 2 + 3 + 1);
        assert!(lines[2].starts_with("| human | "));
        assert!(lines[3].starts_with("| non-human (harmful) | "));
        assert!(lines[5].starts_with("| Images (n) | "));
        // cells are percentages with one decimal
        let cells: Vec<&str> = lines[2].trim_matches('|').split(" | ").skip(1).collect();
        assert_eq!(cells.len(), 7);
        assert!(cells.iter().all(|c| {
            let c = c.trim();
            c.split_once('.').is_some_and(|(_, d)| d.len() == 1) && c.parse::<f64>().is_ok()
        }));
    }

    #[test]
    fn intersections_rows_first_attribute_columns_second() {
        let md = sample_md();
        assert!(md.contains("## By race × gender"));
        let heading = "### non-human (harmful): share of images (%), by race × gender\n\n";
        let start = md.find(heading).unwrap() + heading.len();
        let lines: Vec<&str> = md[start..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(lines[0], "| race ↓ gender → | Male | Female |");
        assert_eq!(lines.len(), 2 + 7);
        assert!(lines[2].starts_with("| Black | "));
        // East Asian women have no images
        assert!(lines[8].starts_with("| East Asian | ") && lines[8].ends_with("| — |"));
        // one table per harmful category, none for `human`
        assert!(md.contains("### crime-related (harmful): share of images (%), by race × gender"));
        assert!(!md.contains("### human: share of images"));
    }

    #[test]
    fn ci_accuracy_disparities_and_skipped() {
        let md = sample_md();
        assert!(md.contains("### 95% confidence intervals (Wilson, %), by race"));
        assert!(md.contains("### Zero-shot accuracy (%), by gender"));
        assert!(md.contains("### Disparities, by race"));
        assert!(
            md.contains(
                "Chi-square test of independence between race and predicted category: p = "
            )
        );
        assert!(md.contains("2 images were skipped"));
        assert!(md.contains("> **Note:** Format example"));
        assert!(md.contains("![Share of images per predicted category by race](charts/race.png)"));
    }

    #[test]
    fn user_strings_cannot_inject_markup() {
        let (context, metrics) = testdata::build(&Names::hostile());
        let md = render(&Report {
            context: &context,
            metrics: &metrics,
        });
        for evil in EVIL {
            if evil.contains('<') {
                assert!(!md.contains(evil), "raw {evil} in markdown");
            }
        }
        assert!(md.contains("\\<script\\>alert(1)\\</script\\>"));
        assert_eq!(escape("a|b\nc"), "a\\|b c");
        assert_eq!(
            escape("Latino_Hispanic _x_ [l](u)"),
            "Latino_Hispanic \\_x\\_ \\[l\\](u)"
        );
    }

    #[test]
    fn deterministic() {
        assert_eq!(sample_md(), sample_md());
    }
}
