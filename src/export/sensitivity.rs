//! The prompt-sensitivity section of `tables.md` and `report.html` (`run --per-template`): per
//! group and shown category, the rate under the ensemble and its spread across templates.

use super::Report;
use super::view::{Block, Cell, Table, pct, plan, shown_categories};
use crate::metrics::PerTemplate;
use crate::metrics::findings::group_label;

/// The section's blocks; none without per-template rates.
pub(crate) fn blocks(report: &Report) -> Vec<Block> {
    let Some(per_template) = &report.context.per_template else {
        return Vec::new();
    };
    let categories = &report.context.categories;
    let shown: Vec<&str> = shown_categories(report)
        .into_iter()
        .map(|c| categories[c].name.as_str())
        .collect();
    let mut blocks = vec![
        Block::Heading(2, "Prompt sensitivity".into()),
        Block::Para(intro(per_template)),
    ];
    let rows: Vec<Vec<Cell>> = per_template
        .spread
        .iter()
        .filter(|s| shown.contains(&s.category.as_str()))
        .map(|s| {
            vec![
                cell(s.attribute.clone()),
                cell(group_label(&s.group)),
                cell(s.category.clone()),
                cell(s.n.to_string()),
                cell(pct(s.ensemble)),
                cell(pct(s.min)),
                cell(pct(s.median)),
                cell(pct(s.max)),
                cell(pct(s.max - s.min)),
                cell(s.min_template.clone()),
                cell(s.max_template.clone()),
            ]
        })
        .collect();
    blocks.push(Block::Table(Table {
        header: [
            "Grouping",
            "Group",
            "Category",
            "n",
            "Ensemble %",
            "Min %",
            "Median %",
            "Max %",
            "Range (pp)",
            "Lowest under",
            "Highest under",
        ]
        .map(String::from)
        .to_vec(),
        numeric: vec![
            false, false, false, true, true, true, true, true, true, false, false,
        ],
        rows,
        footnote: "Min, median and max are taken over the templates used one at a time; \
                   Ensemble is the rate of the averaged class embeddings (the tables above)."
            .into(),
    }));
    blocks.extend(
        plan(report)
            .into_iter()
            .filter(|c| c.ranges)
            .map(Block::Chart),
    );
    blocks
}

/// What the section shows and where the full numbers are.
fn intro(per_template: &PerTemplate) -> String {
    let names: Vec<String> = per_template
        .templates
        .iter()
        .map(|t| format!("\"{}\"", t.template))
        .collect();
    let single = if names.len() == 1 {
        " The probe has one template, so every spread is that template's rate."
    } else {
        ""
    };
    format!(
        "Every image was also classified under each of the probe's {} templates alone ({}), \
         from the same image embeddings. Rates per template are in templates.csv; the harmful \
         categories (or all, when none is harmful) are shown here.{single}",
        names.len(),
        names.join(", ")
    )
}

fn cell(text: String) -> Cell {
    Cell {
        text,
        flagged: false,
    }
}
