//! `report.html`: one self-contained page (inline CSS, charts as inline SVG, nothing fetched)
//! with the run summary, the tables of `tables.md`, the charts, the probe and the skipped images.
//! Every user-provided string is HTML-escaped.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::charts::{ChartCache, DrawnChart};
use super::view::{self, Block, Table};
use super::{Artefact, ExportError, Exporter, Report};

/// Writes `report.html`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlExporter;

/// Skipped images listed on the page; the rest are counted (all are in `skipped.csv`).
pub const SKIPPED_SHOWN: usize = 100;

impl Exporter for HtmlExporter {
    fn render(&self, report: &Report, charts: &ChartCache) -> Result<Vec<Artefact>, ExportError> {
        let path = PathBuf::from("report.html");
        let drawn = charts.drawn(report).map_err(|e| match e {
            // name the page being written, and the chart that failed
            ExportError::Chart {
                path: chart,
                message,
            } => ExportError::Chart {
                path: path.clone(),
                message: format!("{}: {message}", chart.display()),
            },
            other => other,
        })?;
        Ok(vec![Artefact::new(path, render(report, drawn))])
    }
}

const STYLE: &str = "\
body{margin:0;background:#f6f6f4;color:#212121;font:15px/1.45 system-ui,-apple-system,'Segoe UI',\
Roboto,'DejaVu Sans',sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .6em}
h2{font-size:1.35em;margin:1.8em 0 .6em;padding-bottom:.2em;border-bottom:2px solid #ddd}
h3{font-size:1.08em;margin:1.4em 0 .5em}
.note{border-left:6px solid #b35806;background:#fff4e0;padding:12px 16px;margin:0 0 1.2em;\
font-size:1.08em}
table{border-collapse:collapse;margin:.4em 0 .3em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d4d4d4;padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:#eeeeec}
td.num,th.num{text-align:right}
tbody th{font-weight:normal;background:#fafafa}
td.flag{background:#fde0dd;font-weight:bold}
td.flag::after{content:' \\25B2';color:#b2182b;font-size:.8em}
table.kv th{background:#fafafa;font-weight:600}
p.foot{color:#555;font-size:.9em;margin:.2em 0 1em}
code{font:.92em ui-monospace,'DejaVu Sans Mono',monospace;overflow-wrap:anywhere}
figure{margin:1em 0 1.6em}
figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#555;font-size:.9em}
.scroll{overflow-x:auto}
footer{color:#777;font-size:.85em;margin-top:3em}
";

/// The whole page; `charts` are those [`ChartCache::drawn`] gives.
pub(crate) fn render(report: &Report, charts: &[DrawnChart]) -> String {
    let context = report.context;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&context.title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&context.title));
    if let Some(note) = &context.note {
        let _ = writeln!(
            out,
            "<div class=\"note\"><strong>Note:</strong> {}</div>",
            escape(note)
        );
    }

    out.push_str("<h2>Run</h2>\n<table class=\"kv\">\n");
    let kv = |out: &mut String, key: &str, value: String| {
        let _ = writeln!(out, "<tr><th>{key}</th><td>{value}</td></tr>");
    };
    kv(&mut out, "Model", escape(&context.model));
    kv(&mut out, "Dataset", escape(&context.dataset));
    kv(&mut out, "Probe", escape(&context.probe_name));
    if !context.probe_description.is_empty() {
        kv(
            &mut out,
            "Probe description",
            escape(&context.probe_description),
        );
    }
    kv(
        &mut out,
        "Probe hash",
        format!("<code>{}</code>", escape(&context.probe_hash)),
    );
    kv(&mut out, "Images classified", report.metrics.n.to_string());
    kv(
        &mut out,
        "Images skipped",
        context.skipped_count().to_string(),
    );
    out.push_str("</table>\n");

    for block in view::document(report) {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(&text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(&text));
            }
            Block::Table(table) => table_html(&mut out, &table),
            Block::Chart(chart) => {
                if let Some(DrawnChart { svg, .. }) =
                    charts.iter().find(|c| c.spec.stem == chart.stem)
                {
                    // plotters escapes the text and attributes it writes into the SVG
                    let _ = writeln!(
                        out,
                        "<figure>\n{}\n<figcaption>{} (charts/{}.png, .svg)</figcaption>\n</figure>",
                        svg.trim_end(),
                        escape(&chart.title),
                        chart.stem
                    );
                }
            }
        }
    }

    probe_section(&mut out, report);
    skipped_section(&mut out, report);
    out.push_str(
        "<footer>Generated by clip-audit. Numbers at full precision are in metrics.json and \
         the CSV tables next to this page.</footer>\n</main>\n</body>\n</html>\n",
    );
    out
}

fn table_html(out: &mut String, table: &Table) {
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for (i, h) in table.header.iter().enumerate() {
        let class = if table.numeric.get(i).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let numeric = table.numeric.get(i).copied().unwrap_or(false);
            let text = escape(&cell.text);
            if i == 0 {
                let _ = write!(out, "<th scope=\"row\">{text}</th>");
                continue;
            }
            let class = match (numeric, cell.flagged) {
                (true, true) => " class=\"num flag\"",
                (true, false) => " class=\"num\"",
                (false, true) => " class=\"flag\"",
                (false, false) => "",
            };
            let title = if cell.flagged {
                " title=\"outside the fairness band\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}{title}>{text}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
    if !table.footnote.is_empty() {
        let _ = writeln!(out, "<p class=\"foot\">{}</p>", escape(&table.footnote));
    }
}

fn probe_section(out: &mut String, report: &Report) {
    let context = report.context;
    let _ = writeln!(out, "<h2>Probe: {}</h2>", escape(&context.probe_name));
    if !context.probe_description.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(&context.probe_description));
    }
    out.push_str(
        "<h3>Categories</h3>\n<table>\n<thead><tr><th>Category</th><th>Harmful</th>\
                  <th class=\"num\">Labels</th></tr></thead>\n<tbody>\n",
    );
    for c in &context.categories {
        let labels = context
            .labels
            .iter()
            .filter(|(_, cat)| *cat == c.name)
            .count();
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{labels}</td></tr>",
            escape(&c.name),
            if c.harmful { "yes" } else { "no" }
        );
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(
        out,
        "<h3>Labels ({})</h3>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"num\">#</th>\
         <th>Label</th><th>Category</th></tr></thead>\n<tbody>",
        context.labels.len()
    );
    for (i, (label, category)) in context.labels.iter().enumerate() {
        let harmful = context
            .categories
            .iter()
            .any(|c| c.name == *category && c.harmful);
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            escape(label),
            escape(&view::category_label(category, harmful))
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
}

fn skipped_section(out: &mut String, report: &Report) {
    let skipped = &report.context.skipped;
    let count = report.context.skipped_count();
    out.push_str("<h2>Skipped images</h2>\n");
    if count == 0 {
        out.push_str("<p>No image was skipped.</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p>{count} image{} skipped (all listed in skipped.csv).</p>",
        if count == 1 { " was" } else { "s were" }
    );
    out.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Id</th><th>Image</th><th>Reason</th>\
         </tr></thead>\n<tbody>\n",
    );
    for s in skipped.iter().take(SKIPPED_SHOWN) {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&s.id),
            escape(&s.image),
            escape(&s.reason)
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
    let shown = skipped.len().min(SKIPPED_SHOWN) as u64;
    if count > shown {
        let _ = writeln!(
            out,
            "<p class=\"foot\">… and {} more (the first {shown} are listed here; all are in \
             skipped.csv).</p>",
            count - shown
        );
    }
}

/// Escapes text for HTML element content and quoted attribute values: `&`, `<`, `>` and `"` by
/// html-escape, then `'` as `&#39;` (html-escape writes `&#x27;`; the page has always had `&#39;`).
pub(crate) fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::SkippedRecord;
    use crate::export::testdata::{self, EVIL, Names};

    fn page(names: &Names) -> String {
        let (context, metrics) = testdata::build(names);
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let files = HtmlExporter.write(&report, dir.path()).unwrap();
        std::fs::read_to_string(&files[0]).unwrap()
    }

    #[test]
    fn every_user_string_is_escaped() {
        let html = page(&Names::hostile());
        for evil in EVIL {
            assert!(!html.contains(evil), "raw {evil:?} in report.html");
        }
        assert!(!html.to_lowercase().contains("<script"));
        // the strings are there, escaped: in HTML text and in the inline SVG charts
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;quoted&quot; &amp; &#39;single&#39;"));
        assert!(html.contains("&quot;quoted&quot; &amp; &apos;single&apos;"));
        // title, note, model, dataset, probe fields, labels and skipped reasons carry the payload
        assert!(
            html.matches("&lt;script&gt;alert(1)&lt;/script&gt;")
                .count()
                > 20
        );
    }

    #[test]
    fn self_contained_with_summary_tables_charts_and_probe() {
        let html = page(&Names::fairface());
        assert!(html.starts_with("<!DOCTYPE html>"));
        // the only URLs are the SVG namespace declarations
        assert_eq!(
            html.matches("http").count(),
            html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
        // nothing is fetched: no external references besides the SVG namespace
        for needle in [
            "<link",
            "<script",
            "src=\"http",
            "href=\"http",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(needle), "{needle}");
        }
        assert!(html.contains("<div class=\"note\"><strong>Note:</strong> Format example"));
        assert!(html.contains("<code>sha256:0123456789abcdef</code>"));
        assert!(html.contains("<h2>By race</h2>"));
        assert!(html.contains("<h2>By race × gender</h2>"));
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains("class=\"num flag\"") || html.contains("class=\"flag\""));
        assert!(html.contains("<td>suspicious person</td><td>crime-related (harmful)</td>"));
        assert!(html.contains("<h2>Skipped images</h2>"));
        assert!(html.contains("<code>val/42, copy.jpg</code>"));
        // columns in vocabulary order
        let header = html.find("<th class=\"num\">Black</th><th class=\"num\">White</th>");
        assert!(header.is_some());
    }

    #[test]
    fn long_skipped_lists_are_cut() {
        let (mut context, metrics) = testdata::sample();
        context.skipped = (0..250)
            .map(|i| SkippedRecord {
                id: format!("img{i}"),
                image: format!("img{i}.jpg"),
                reason: "missing".into(),
            })
            .collect();
        let html = render(
            &Report {
                context: &context,
                metrics: &metrics,
            },
            &[],
        );
        assert!(html.contains("<td>img99</td>"));
        assert!(!html.contains("<td>img100</td>"));
        assert!(html.contains("… and 150 more"));
    }

    #[test]
    fn a_streamed_skip_list_shows_the_total_and_the_first() {
        let (mut context, metrics) = testdata::sample();
        context.skipped_total = 500;
        context.skipped_streamed = true;
        let html = render(
            &Report {
                context: &context,
                metrics: &metrics,
            },
            &[],
        );
        assert!(html.contains("500 images were skipped"), "{html}");
        assert!(html.contains("… and 498 more (the first 2 are listed here"));
    }

    #[test]
    fn escape_writes_the_entities_it_always_wrote() {
        // the hand-written escaper html-escape replaced, kept as the specification
        fn by_hand(text: &str) -> String {
            let mut out = String::new();
            for c in text.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    c => out.push(c),
                }
            }
            out
        }
        let ascii: String = (0u8..128).map(char::from).collect();
        for text in [
            ascii.as_str(),
            EVIL[0],
            EVIL[1],
            "&amp; &#39; '' \"\" <<>>",
            "Ωμέγα × — “quotes” ‘single’ 😀",
            "",
        ] {
            assert_eq!(escape(text), by_hand(text), "{text:?}");
        }
    }

    #[test]
    fn deterministic() {
        assert_eq!(page(&Names::fairface()), page(&Names::fairface()));
    }
}
