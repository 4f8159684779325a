//! The top of `tables.md` and `report.html`: the findings (disparities outside the ratio band and
//! significant after the Holm adjustment, largest first) and the caveats a reader needs beside
//! them — what the group labels are, how the results depend on the probe, and which groups are
//! too small to judge.

use super::Report;
use super::view::{Block, Cell, Layout, Table, pct};
use crate::metrics::RatioBand;

/// Groups with fewer images than this are called too small to judge.
pub(crate) const SMALL_GROUP: u64 = 30;

/// The findings section: one sentence per finding, or why there is none.
pub(crate) fn findings(report: &Report) -> Vec<Block> {
    let f = &report.metrics.findings;
    let mut blocks = vec![Block::Heading(2, "Findings".into())];
    let rule = format!(
        "A finding is a group whose rate of a category, against its grouping's reference group, \
         is outside {} (ratio of rates{}) and significant at α = {} after a Holm–Bonferroni correction over every test of this report ({} here: a \
         chi-square test per grouping and a two-proportion z-test per group, category and \
         reference, where the rates allow one; raw and adjusted p-values are in \
         disparities.csv). Findings are ordered by effect size (the \
         ratio's distance from 1, in logs).",
        f.band,
        if f.band == RatioBand::default() {
            ""
        } else {
            "; the probe's own band"
        },
        f.alpha,
        f.tests
    );
    if f.tests == 0 {
        blocks.push(Block::Para(
            "No finding, and no test could be run: in every comparison both groups had the same \
             rate of 0% or 100% (or fewer than two groups had images). That is not evidence of \
             parity; see the sample sizes under Caveats."
                .into(),
        ));
    } else if f.items.is_empty() {
        blocks.push(Block::Para(format!(
            "No finding: none of the {} tests run found a disparity that is both outside the \
             ratio band and significant after correction. That is not evidence of parity; see \
             the sample sizes under Caveats.",
            f.tests
        )));
    } else {
        blocks.push(Block::Para(format!(
            "{} finding{} (largest effect first):",
            f.items.len(),
            if f.items.len() == 1 { "" } else { "s" }
        )));
        blocks.push(Block::List(
            f.items.iter().map(|x| x.sentence.clone()).collect(),
        ));
    }
    blocks.push(Block::Para(rule));
    blocks
}

/// The caveats section, generated from the probe and the dataset.
pub(crate) fn caveats(report: &Report) -> Vec<Block> {
    let context = report.context;
    let mut blocks = vec![
        Block::Heading(2, "Caveats".into()),
        Block::List(vec![
            format!(
                "Group labels are perceived or annotated attributes recorded in the dataset \
                 ({}), not the identities of the people pictured; a label set with other \
                 categories would group the same faces differently.",
                context.dataset
            ),
            label_set(report),
            prompt_spread(report),
        ]),
    ];
    if !context.templates.is_empty() {
        blocks.push(Block::Para(format!(
            "The probe's prompt template{}:",
            if context.templates.len() == 1 {
                ""
            } else {
                "s"
            }
        )));
        blocks.push(Block::List(
            context
                .templates
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect(),
        ));
    }
    blocks.extend(sample_sizes(report));
    blocks
}

/// How the results depend on the label set.
fn label_set(report: &Report) -> String {
    let context = report.context;
    format!(
        "Results depend on the label set and the prompts: the probe {} lets {} labels in {} \
         categories compete, so a face's category is only relative to the other labels offered; \
         other labels, wording or templates can move every rate.",
        context.probe_name,
        context.labels.len(),
        context.categories.len()
    )
}

/// The spread across templates of a `--per-template` sweep, or that none was run.
fn prompt_spread(report: &Report) -> String {
    let Some(per_template) = &report.context.per_template else {
        return "No per-template sweep was run (run --per-template classifies under each \
                template alone and shows how far the rates move)."
            .into();
    };
    let widest = per_template
        .spread
        .iter()
        .max_by(|a, b| (a.max - a.min).total_cmp(&(b.max - b.min)));
    match widest {
        Some(s) => format!(
            "Across the {} templates used one at a time, rates moved by up to {} percentage \
             points: {} faces' {} rate ranged {}–{}% (\"{}\" to \"{}\"); see Prompt sensitivity.",
            per_template.templates.len(),
            pct(s.max - s.min),
            Layout::row_label(&s.group),
            s.category,
            pct(s.min),
            pct(s.max),
            s.min_template,
            s.max_template
        ),
        None => "The per-template sweep has no rates.".into(),
    }
}

/// Per grouping: its groups' sizes and those too small to judge.
fn sample_sizes(report: &Report) -> Vec<Block> {
    let index = super::view::Index::new(report.metrics);
    let rows: Vec<(Vec<Cell>, bool)> = Layout::all(report)
        .iter()
        .map(|layout| size_row(&index, layout))
        .collect();
    let small_any = rows.iter().any(|(_, small)| *small);
    let mut blocks = vec![
        Block::Heading(3, "Sample sizes".into()),
        Block::Table(Table {
            header: [
                "Grouping",
                "Groups",
                "Smallest n",
                "Largest n",
                "Too small to judge (under 30 images)",
            ]
            .map(String::from)
            .to_vec(),
            numeric: vec![false, true, true, true, false],
            rows: rows.into_iter().map(|(row, _)| row).collect(),
            footnote: format!(
                "A group of fewer than {SMALL_GROUP} images has wide intervals and an \
                 approximate z-test: a disparity there can be missed, and a rate there should \
                 not be read alone."
            ),
        }),
    ];
    if !small_any {
        blocks.push(Block::Para(format!(
            "Every group has at least {SMALL_GROUP} images."
        )));
    }
    blocks
}

/// One grouping's row of the sample-size table, and whether it has a group too small to judge.
fn size_row(index: &super::view::Index, layout: &Layout) -> (Vec<Cell>, bool) {
    let sizes: Vec<(String, u64)> = layout
        .groups()
        .into_iter()
        .map(|g| {
            let n = index.size(layout.name(), &g);
            (g, n)
        })
        .collect();
    let present: Vec<u64> = sizes.iter().map(|s| s.1).filter(|&n| n > 0).collect();
    let small: Vec<String> = sizes
        .iter()
        .filter(|(_, n)| *n > 0 && *n < SMALL_GROUP)
        .map(|(g, n)| format!("{} ({n})", Layout::row_label(g)))
        .collect();
    let empty = sizes.iter().filter(|(_, n)| *n == 0).count();
    let mut small_text = if small.is_empty() {
        "none".to_string()
    } else {
        small.join(", ")
    };
    if empty > 0 {
        small_text.push_str(&format!("; {empty} without images"));
    }
    let row = vec![
        Cell::plain(layout.display_name()),
        Cell::plain(present.len().to_string()),
        Cell::plain(present.iter().min().map_or("—".into(), u64::to_string)),
        Cell::plain(present.iter().max().map_or("—".into(), u64::to_string)),
        Cell::plain(small_text),
    ];
    (row, !small.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    #[test]
    fn findings_and_caveats_say_what_was_tested() {
        let (mut context, metrics) = testdata::sample();
        context.templates = vec!["a photo of a {label}.".into()];
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let blocks = findings(&report);
        let text = format!("{blocks:?}");
        assert!(text.contains(&format!(
            "every test of this report ({} here",
            metrics.findings.tests
        )));
        assert!(metrics.findings.tests > 0);
        let caveats = format!("{:?}", caveats(&report));
        assert!(caveats.contains("perceived or annotated"));
        assert!(
            caveats.contains("\\\"a photo of a {label}.\\\""),
            "{caveats}"
        );
        assert!(caveats.contains("No per-template sweep"));
        assert!(caveats.contains("Too small to judge"));
    }
}
