//! The report's tables as a small format-neutral document, shared by `tables.md` and
//! `report.html` so both show the same numbers in the same layout. Strings here are raw; each
//! renderer escapes them for its format.

use std::collections::{BTreeMap, BTreeSet};

use super::Report;
use crate::metrics::RatioBand;
use crate::metrics::{
    ALL, Attribute, AuditMetrics, CategoryInfo, Disparity, DisparityMetric, GroupAccuracy,
    GroupRate, Grouping,
};

/// One piece of the document.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    /// A heading (level 2 or 3; the title is the renderer's).
    Heading(u8, String),
    /// A paragraph of plain text.
    Para(String),
    /// A bulleted list of plain-text items.
    List(Vec<String>),
    /// A table.
    Table(Table),
    /// A chart from [`plan`].
    Chart(ChartSpec),
}

/// A table whose first column holds row names.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Column headers.
    pub header: Vec<String>,
    /// Whether each column holds numbers (right-aligned).
    pub numeric: Vec<bool>,
    /// Rows of cells, as wide as the header.
    pub rows: Vec<Vec<Cell>>,
    /// A line under the table explaining markers; empty when none.
    pub footnote: String,
}

/// One table cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    /// The text.
    pub text: String,
    /// Highlighted: a disparity outside the fairness band.
    pub flagged: bool,
}

impl Cell {
    /// A cell that is not highlighted.
    pub(crate) fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            flagged: false,
        }
    }

    /// A cell highlighted when `flagged`.
    pub(crate) fn flag(text: impl Into<String>, flagged: bool) -> Self {
        Self {
            text: text.into(),
            flagged,
        }
    }
}

/// Marker for cells without images.
pub(crate) const NO_DATA: &str = "—";

/// A rate as a percentage with one decimal (the findings' sentences write them the same way).
pub(crate) use crate::metrics::findings::pct;

/// A 95% interval as percentages, `low–high`.
pub(crate) fn ci(low: f64, high: f64) -> String {
    format!("{:.1}–{:.1}", low * 100.0, high * 100.0)
}

/// A ratio with two decimals (`n/a` when undefined).
fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}"))
}

/// A p-value: three decimals, or scientific notation below 0.001.
fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// A category name with its harm marker.
pub(crate) fn category_label(name: &str, harmful: bool) -> String {
    if harmful {
        format!("{name} (harmful)")
    } else {
        name.to_string()
    }
}

/// Rates and accuracies by grouping, group and category.
pub(crate) struct Index<'a> {
    rates: BTreeMap<&'a str, BTreeMap<&'a str, BTreeMap<&'a str, &'a GroupRate>>>,
    accuracy: BTreeMap<&'a str, BTreeMap<&'a str, &'a GroupAccuracy>>,
}

impl<'a> Index<'a> {
    /// Indexes `metrics`.
    pub fn new(metrics: &'a AuditMetrics) -> Self {
        let mut rates: BTreeMap<_, BTreeMap<_, BTreeMap<_, _>>> = BTreeMap::new();
        for r in &metrics.rates {
            rates
                .entry(r.attribute.as_str())
                .or_default()
                .entry(r.group.as_str())
                .or_default()
                .insert(r.category.as_str(), r);
        }
        let mut accuracy: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
        for a in &metrics.accuracy {
            accuracy
                .entry(a.attribute.as_str())
                .or_default()
                .insert(a.group.as_str(), a);
        }
        Self { rates, accuracy }
    }

    /// The rate of `category` in `group` of `grouping`, if the group has images.
    pub fn rate(&self, grouping: &str, group: &str, category: &str) -> Option<&'a GroupRate> {
        self.rates.get(grouping)?.get(group)?.get(category).copied()
    }

    /// The accuracy of `group` of `grouping`, if some class matches its images.
    pub fn accuracy(&self, grouping: &str, group: &str) -> Option<&'a GroupAccuracy> {
        self.accuracy.get(grouping)?.get(group).copied()
    }

    /// Images in `group` (0 when it has none), from any category's rate.
    pub fn size(&self, grouping: &str, group: &str) -> u64 {
        self.rates
            .get(grouping)
            .and_then(|g| g.get(group))
            .and_then(|c| c.values().next())
            .map_or(0, |r| r.n)
    }
}

/// A grouping with its attributes resolved, laid out for display.
pub(crate) struct Layout<'a> {
    /// The grouping.
    pub grouping: &'a Grouping,
    /// Its attributes, in order.
    pub attributes: Vec<&'a Attribute>,
}

impl<'a> Layout<'a> {
    /// Resolves `grouping`'s attributes; `None` when an index is out of range.
    pub fn new(grouping: &'a Grouping, attributes: &'a [Attribute]) -> Option<Self> {
        let attributes = grouping
            .attributes
            .iter()
            .map(|&i| attributes.get(i))
            .collect::<Option<Vec<_>>>()?;
        (!attributes.is_empty()).then_some(Self {
            grouping,
            attributes,
        })
    }

    /// Every grouping of the report that resolves, in order.
    pub fn all(report: &Report<'a>) -> Vec<Self> {
        report
            .context
            .groupings
            .iter()
            .filter_map(|g| Self::new(g, &report.context.attributes))
            .collect()
    }

    /// The grouping's name as stored in the metrics (`race*gender`).
    pub fn name(&self) -> &'a str {
        &self.grouping.name
    }

    /// The name for people: attribute names joined with ` × `.
    pub fn display_name(&self) -> String {
        self.attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(" × ")
    }

    /// Whether the grouping crosses two or more attributes.
    pub fn is_intersection(&self) -> bool {
        self.attributes.len() > 1
    }

    /// Row keys of the matrix layout: the product of all attributes but the last (for a single
    /// attribute: one empty key).
    pub fn row_keys(&self) -> Vec<String> {
        let mut keys = vec![String::new()];
        for attribute in &self.attributes[..self.attributes.len() - 1] {
            keys = keys
                .iter()
                .flat_map(|prefix| {
                    attribute.values.iter().map(move |v| {
                        if prefix.is_empty() {
                            v.clone()
                        } else {
                            format!("{prefix}*{v}")
                        }
                    })
                })
                .collect();
        }
        keys
    }

    /// Column keys of the matrix layout: the last attribute's values.
    pub fn col_keys(&self) -> &'a [String] {
        match self.attributes.last() {
            Some(a) => &a.values,
            None => &[],
        }
    }

    /// The group at (row key, column key).
    pub fn group(row: &str, col: &str) -> String {
        if row.is_empty() {
            col.to_string()
        } else {
            format!("{row}*{col}")
        }
    }

    /// Every group in display order.
    pub fn groups(&self) -> Vec<String> {
        let cols = self.col_keys();
        self.row_keys()
            .iter()
            .flat_map(|r| cols.iter().map(move |c| Self::group(r, c)))
            .collect()
    }

    /// The corner header of matrix tables: `race ↓ gender →`.
    fn corner(&self) -> String {
        let rows: Vec<&str> = self.attributes[..self.attributes.len() - 1]
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        let col = self.attributes.last().map_or("", |a| a.name.as_str());
        format!("{} ↓ {} →", rows.join(" × "), col)
    }

    /// Row labels for people (`Black × Male` for 3-attribute keys).
    pub(crate) fn row_label(key: &str) -> String {
        crate::metrics::findings::group_label(key)
    }
}

/// The tables of `report`, grouping by grouping, with chart placeholders.
pub(crate) fn document(report: &Report) -> Vec<Block> {
    let index = Index::new(report.metrics);
    let plan = plan(report);
    let mut blocks = overall(report, &index);
    for layout in Layout::all(report) {
        blocks.push(Block::Heading(2, format!("By {}", layout.display_name())));
        if layout.is_intersection() {
            blocks.extend(intersection(report, &index, &layout));
        } else {
            blocks.extend(single(report, &index, &layout));
        }
        blocks.extend(
            plan.iter()
                .filter(|c| c.grouping == layout.name() && !c.ranges)
                .map(|c| Block::Chart(c.clone())),
        );
        if !report.metrics.accuracy.is_empty() {
            blocks.extend(accuracy(&index, &layout));
        }
        blocks.extend(disparities(report, &index, &layout));
        if let Some(empty) = report.metrics.empty_groups.get(layout.name()) {
            let names: Vec<String> = empty.iter().map(|g| Layout::row_label(g)).collect();
            blocks.push(Block::Para(format!(
                "Groups without images (not in the rates): {}.",
                names.join(", ")
            )));
        }
    }
    blocks
}

fn overall(report: &Report, index: &Index) -> Vec<Block> {
    let rows = report
        .context
        .categories
        .iter()
        .map(|c| {
            let r = index.rate(ALL, ALL, &c.name);
            vec![
                Cell::plain(c.name.clone()),
                Cell::plain(if c.harmful { "yes" } else { "no" }),
                Cell::plain(r.map_or(NO_DATA.into(), |r| r.count.to_string())),
                Cell::plain(r.map_or(NO_DATA.into(), |r| pct(r.rate))),
                Cell::plain(r.map_or(NO_DATA.into(), |r| ci(r.ci_low, r.ci_high))),
            ]
        })
        .collect();
    let mut blocks = vec![
        Block::Heading(2, "Overall".into()),
        Block::Table(Table {
            header: ["Category", "Harmful", "Images", "Rate (%)", "95% CI (%)"]
                .map(String::from)
                .to_vec(),
            numeric: vec![false, false, true, true, true],
            rows,
            footnote: format!("{} images classified.", report.metrics.n),
        }),
    ];
    if let Some(all) = index.accuracy(ALL, ALL) {
        blocks.push(Block::Para(format!(
            "Zero-shot accuracy over the {} images some class matches: {}% (95% CI {}%).",
            all.n,
            pct(all.accuracy),
            ci(all.ci_low, all.ci_high)
        )));
    }
    blocks
}

/// Rates table and CI table of a one-attribute grouping: rows = categories, columns = groups.
fn single(report: &Report, index: &Index, layout: &Layout) -> Vec<Block> {
    let groups = layout.groups();
    let name = layout.name();
    let mut header = vec!["Category".to_string()];
    header.extend(groups.iter().cloned());
    let numeric: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    let table = |cell: &dyn Fn(&GroupRate) -> String, with_n: bool, footnote: &str| {
        let mut rows: Vec<Vec<Cell>> = report
            .context
            .categories
            .iter()
            .map(|c| {
                let mut row = vec![Cell::plain(category_label(&c.name, c.harmful))];
                row.extend(groups.iter().map(|g| {
                    Cell::plain(index.rate(name, g, &c.name).map_or(NO_DATA.into(), cell))
                }));
                row
            })
            .collect();
        if with_n {
            let mut row = vec![Cell::plain("Images (n)")];
            row.extend(
                groups
                    .iter()
                    .map(|g| Cell::plain(index.size(name, g).to_string())),
            );
            rows.push(row);
        }
        Table {
            header: header.clone(),
            numeric: numeric.clone(),
            rows,
            footnote: footnote.into(),
        }
    };
    let display = layout.display_name();
    vec![
        Block::Heading(
            3,
            format!("Share of images per predicted category (%), by {display}"),
        ),
        Block::Table(table(&|r| pct(r.rate), true, "")),
        Block::Heading(
            3,
            format!("95% confidence intervals (Wilson, %), by {display}"),
        ),
        Block::Table(table(&|r| ci(r.ci_low, r.ci_high), false, "")),
    ]
}

/// A matrix table: rows = row keys, columns = column keys.
fn matrix(layout: &Layout, cell: &dyn Fn(&str) -> Option<String>, footnote: &str) -> Table {
    let cols = layout.col_keys();
    let mut header = vec![layout.corner()];
    header.extend(cols.iter().cloned());
    let numeric: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    let rows = layout
        .row_keys()
        .iter()
        .map(|r| {
            let mut row = vec![Cell::plain(Layout::row_label(r))];
            row.extend(
                cols.iter()
                    .map(|c| Cell::plain(cell(&Layout::group(r, c)).unwrap_or(NO_DATA.into()))),
            );
            row
        })
        .collect();
    Table {
        header,
        numeric,
        rows,
        footnote: footnote.into(),
    }
}

/// The categories an intersection shows: the harmful ones, or all when none is harmful.
pub(crate) fn shown_categories(report: &Report) -> Vec<usize> {
    let categories = &report.context.categories;
    let harmful: Vec<usize> = (0..categories.len())
        .filter(|&c| categories[c].harmful)
        .collect();
    if harmful.is_empty() {
        (0..categories.len()).collect()
    } else {
        harmful
    }
}

/// Intersection tables: counts, then per shown category its rates and CIs.
fn intersection(report: &Report, index: &Index, layout: &Layout) -> Vec<Block> {
    let name = layout.name();
    let display = layout.display_name();
    let mut blocks = vec![
        Block::Heading(3, format!("Images per group (n), by {display}")),
        Block::Table(matrix(
            layout,
            &|g| Some(index.size(name, g).to_string()),
            "",
        )),
    ];
    for c in shown_categories(report) {
        let category = &report.context.categories[c];
        let label = category_label(&category.name, category.harmful);
        blocks.push(Block::Heading(
            3,
            format!("{label}: share of images (%), by {display}"),
        ));
        blocks.push(Block::Table(matrix(
            layout,
            &|g| index.rate(name, g, &category.name).map(|r| pct(r.rate)),
            "",
        )));
        blocks.push(Block::Heading(
            3,
            format!("{label}: 95% confidence intervals (%), by {display}"),
        ));
        blocks.push(Block::Table(matrix(
            layout,
            &|g| {
                index
                    .rate(name, g, &category.name)
                    .map(|r| ci(r.ci_low, r.ci_high))
            },
            "",
        )));
    }
    blocks
}

/// Accuracy table of a grouping (only groups some class matches have one).
fn accuracy(index: &Index, layout: &Layout) -> Vec<Block> {
    let name = layout.name();
    let heading = Block::Heading(
        3,
        format!("Zero-shot accuracy (%), by {}", layout.display_name()),
    );
    if layout.is_intersection() {
        return vec![
            heading,
            Block::Table(matrix(
                layout,
                &|g| {
                    index
                        .accuracy(name, g)
                        .map(|a| format!("{} (n={})", pct(a.accuracy), a.n))
                },
                "Accuracy over the images of each group that some class matches.",
            )),
        ];
    }
    let groups = layout.groups();
    let mut header = vec![String::new()];
    header.extend(groups.iter().cloned());
    let numeric: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    let row = |label: &str, cell: &dyn Fn(&GroupAccuracy) -> String| {
        let mut row = vec![Cell::plain(label)];
        row.extend(
            groups
                .iter()
                .map(|g| Cell::plain(index.accuracy(name, g).map_or(NO_DATA.into(), cell))),
        );
        row
    };
    let rows = vec![
        row("Accuracy (%)", &|a| pct(a.accuracy)),
        row("95% CI (%)", &|a| ci(a.ci_low, a.ci_high)),
        row("Correct / n", &|a| format!("{} / {}", a.correct, a.n)),
    ];
    vec![
        heading,
        Block::Table(Table {
            header,
            numeric,
            rows,
            footnote: "Accuracy over the images of each group that some class matches.".into(),
        }),
    ]
}

/// Disparity summary of a grouping: per category the extremes, difference, ratio and the groups
/// whose ratio to the reference leaves the fairness band; then the chi-square p-value.
fn disparities(report: &Report, index: &Index, layout: &Layout) -> Vec<Block> {
    let of_grouping = GroupingDisparities::new(report, index, layout.name());
    if of_grouping.rows.is_empty() {
        return Vec::new();
    }
    let rows = report
        .context
        .categories
        .iter()
        .filter_map(|c| of_grouping.table_row(c))
        .collect();
    let reference = report.metrics.reference_groups.get(layout.name());
    let mut blocks = vec![
        Block::Heading(3, format!("Disparities, by {}", layout.display_name())),
        Block::Table(disparity_table(
            rows,
            reference,
            report.metrics.findings.band,
        )),
    ];
    if let Some(chi) = of_grouping.find("", DisparityMetric::Chi2P) {
        blocks.push(chi_square(chi, &layout.display_name()));
    }
    blocks
}

/// The disparity rows of one grouping, and the rates their cells quote.
struct GroupingDisparities<'a> {
    /// The grouping's name.
    name: &'a str,
    /// Its rows of the metrics' disparities.
    rows: Vec<&'a Disparity>,
    index: &'a Index<'a>,
}

impl<'a> GroupingDisparities<'a> {
    /// The disparities of grouping `name`.
    fn new(report: &Report<'a>, index: &'a Index<'a>, name: &'a str) -> Self {
        let rows = report
            .metrics
            .disparities
            .iter()
            .filter(|d| d.attribute == name)
            .collect();
        Self { name, rows, index }
    }

    /// The row of `metric` for `category` (`""` for the chi-square test).
    fn find(&self, category: &str, metric: DisparityMetric) -> Option<&'a Disparity> {
        self.rows
            .iter()
            .copied()
            .find(|d| d.category == category && d.metric == metric)
    }

    /// A group's label with its rate of `category` in parentheses (when it has images).
    fn with_rate(&self, group: &str, category: &str) -> String {
        let label = Layout::row_label(group);
        match self.index.rate(self.name, group, category) {
            Some(r) => format!("{label} ({})", pct(r.rate)),
            None => label,
        }
    }

    /// The groups whose ratio to the reference for `category` is outside the band or
    /// undefined, each with that ratio.
    fn outside_band(&self, category: &str) -> Vec<String> {
        self.rows
            .iter()
            .filter(|d| {
                d.category == category
                    && d.metric == DisparityMetric::RatioToReference
                    && (d.flagged || d.value.is_none())
            })
            .map(|d| format!("{} {}", Layout::row_label(&d.group), ratio(d.value)))
            .collect()
    }

    /// The table row of `category`; `None` when it has no difference and ratio rows.
    fn table_row(&self, category: &CategoryInfo) -> Option<Vec<Cell>> {
        let c = category.name.as_str();
        let diff = self.find(c, DisparityMetric::Difference)?;
        let ratio_row = self.find(c, DisparityMetric::Ratio)?;
        let outside = self.outside_band(c);
        Some(vec![
            Cell::plain(category_label(c, category.harmful)),
            Cell::plain(self.with_rate(&diff.group, c)),
            Cell::plain(self.with_rate(&diff.reference_group, c)),
            Cell::plain(
                diff.value
                    .map_or("n/a".into(), |v| format!("{:.1}", v * 100.0)),
            ),
            Cell::flag(ratio(ratio_row.value), ratio_row.flagged),
            Cell::flag(
                if outside.is_empty() {
                    "none".to_string()
                } else {
                    outside.join(", ")
                },
                !outside.is_empty(),
            ),
        ])
    }
}

/// The disparity table around `rows`, its last column naming the `reference` group if any.
fn disparity_table(rows: Vec<Vec<Cell>>, reference: Option<&String>, band: RatioBand) -> Table {
    let reference_header = match reference {
        Some(r) => format!(
            "Ratio to reference ({}) outside the band",
            Layout::row_label(r)
        ),
        None => "Ratio to reference outside the band".to_string(),
    };
    Table {
        header: vec![
            "Category".into(),
            "Highest (%)".into(),
            "Lowest (%)".into(),
            "Difference (pp)".into(),
            "Ratio (lowest / highest)".into(),
            reference_header,
        ],
        numeric: vec![false, false, false, true, true, false],
        rows,
        footnote: format!(
            "Highlighted: a ratio outside {band} ({}); n/a: undefined, the denominator's rate \
             is 0.",
            if band == RatioBand::default() {
                "Aequitas' four-fifths band"
            } else {
                "the probe's own band"
            }
        ),
    }
}

/// The chi-square test's p-value for grouping `display`, or why there is none.
fn chi_square(chi: &Disparity, display: &str) -> Block {
    Block::Para(match chi.value {
        Some(p) => format!(
            "Chi-square test of independence between {display} and predicted category: p = {}.",
            p_value(p)
        ),
        None => format!(
            "Chi-square test of independence between {display} and predicted category: not \
             computable (fewer than two non-empty groups or categories)."
        ),
    })
}

/// One chart of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChartSpec {
    /// The grouping's name (`race`, `race*gender`).
    pub grouping: String,
    /// For heatmaps, the index of the category shown; `None` for bar charts.
    pub category: Option<usize>,
    /// File name without extension, restricted to `[a-z0-9_-]` and unique in the report.
    pub stem: String,
    /// The chart's title.
    pub title: String,
    /// A prompt-sensitivity range chart of `category` (`run --per-template`).
    pub ranges: bool,
}

/// A chart for readers who cannot see it: alt text and its numbers, one line per group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChartText {
    /// What the chart shows, in one or two sentences.
    pub alt: String,
    /// The chart's numbers, one line per group.
    pub lines: Vec<String>,
}

/// The alt text and text fallback of `chart`.
pub(crate) fn chart_text(report: &Report, chart: &ChartSpec) -> ChartText {
    let categories = &report.context.categories;
    let (kind, lines): (&str, Vec<String>) = match (chart.category, chart.ranges) {
        (Some(c), true) => (
            "Range chart: for each group, the rate under the template ensemble and its range \
             across the templates used one at a time.",
            spread_lines(report, &chart.grouping, &categories[c].name),
        ),
        (Some(c), false) => (
            "Heatmap: one cell per group, darker for a higher share of images.",
            group_lines(report, &chart.grouping, &categories[c..=c]),
        ),
        (None, _) => (
            "Grouped bar chart: for each group, the share of its images predicted into each \
             category, with 95% interval whiskers.",
            group_lines(report, &chart.grouping, categories),
        ),
    };
    ChartText {
        alt: format!("{}. {kind} The numbers follow as text.", chart.title),
        lines,
    }
}

/// One line per group of `grouping` (display order): its size and its rate of each of
/// `categories` with the 95% interval.
fn group_lines(report: &Report, grouping: &str, categories: &[CategoryInfo]) -> Vec<String> {
    let index = Index::new(report.metrics);
    let Some(layout) = report
        .context
        .groupings
        .iter()
        .find(|g| g.name == grouping)
        .and_then(|g| Layout::new(g, &report.context.attributes))
    else {
        return Vec::new();
    };
    layout
        .groups()
        .iter()
        .map(|g| {
            let parts: Vec<String> = categories
                .iter()
                .map(|c| {
                    let rate = index.rate(grouping, g, &c.name).map_or_else(
                        || "no images".to_string(),
                        |r| format!("{}% (95% CI {}%)", pct(r.rate), ci(r.ci_low, r.ci_high)),
                    );
                    if categories.len() == 1 {
                        rate
                    } else {
                        format!("{} {rate}", c.name)
                    }
                })
                .collect();
            format!(
                "{} (n = {}): {}",
                Layout::row_label(g),
                index.size(grouping, g),
                parts.join("; ")
            )
        })
        .collect()
}

/// One line per group of a per-template range chart.
fn spread_lines(report: &Report, grouping: &str, category: &str) -> Vec<String> {
    let Some(per_template) = &report.context.per_template else {
        return Vec::new();
    };
    per_template
        .spread
        .iter()
        .filter(|s| s.attribute == grouping && s.category == category)
        .map(|s| {
            format!(
                "{} (n = {}): ensemble {}%, templates {}–{}% (median {}%)",
                Layout::row_label(&s.group),
                s.n,
                pct(s.ensemble),
                pct(s.min),
                pct(s.max),
                pct(s.median)
            )
        })
        .collect()
}

/// Every chart of `report`, in document order.
pub(crate) fn plan(report: &Report) -> Vec<ChartSpec> {
    let mut taken = BTreeSet::new();
    let mut unique = |stem: String| {
        let mut candidate = stem.clone();
        let mut k = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{stem}-{k}");
            k += 1;
        }
        candidate
    };
    let mut charts = Vec::new();
    for layout in Layout::all(report) {
        let display = layout.display_name();
        if layout.is_intersection() {
            for c in shown_categories(report) {
                let category = &report.context.categories[c];
                charts.push(ChartSpec {
                    grouping: layout.name().to_string(),
                    category: Some(c),
                    stem: unique(format!(
                        "{}-{}",
                        sanitize(layout.name()),
                        sanitize(&category.name)
                    )),
                    title: format!("{}: share of images by {display}", category.name),
                    ranges: false,
                });
            }
        } else {
            charts.push(ChartSpec {
                grouping: layout.name().to_string(),
                category: None,
                stem: unique(sanitize(layout.name())),
                title: format!("Share of images per predicted category by {display}"),
                ranges: false,
            });
        }
    }
    if report.context.per_template.is_some() {
        for layout in Layout::all(report) {
            if layout.is_intersection() {
                continue;
            }
            for c in shown_categories(report) {
                let category = &report.context.categories[c].name;
                charts.push(ChartSpec {
                    grouping: layout.name().to_string(),
                    category: Some(c),
                    stem: unique(format!(
                        "templates-{}-{}",
                        sanitize(layout.name()),
                        sanitize(category)
                    )),
                    title: format!(
                        "{category}: spread across templates by {}",
                        layout.display_name()
                    ),
                    ranges: true,
                });
            }
        }
    }
    charts
}

/// A file-name-safe version of `name`: lowercase `[a-z0-9_-]`, other characters as `_`, at
/// most 60 characters, never empty and never starting with `-`.
pub(crate) fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        // collapse runs of `_`
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_matches(|c| c == '_' || c == '-');
    if out.is_empty() {
        "chart".to_string()
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    #[test]
    fn layout_orders_groups_by_vocabulary() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let layouts = Layout::all(&report);
        assert_eq!(layouts.len(), 3);
        assert_eq!(layouts[0].groups(), context.attributes[0].values);
        assert_eq!(layouts[2].row_keys(), context.attributes[0].values);
        assert_eq!(
            layouts[2].col_keys(),
            context.attributes[1].values.as_slice()
        );
        assert_eq!(layouts[2].groups()[1], "Black*Female");
        let index = Index::new(&metrics);
        assert_eq!(index.size("race*gender", "East Asian*Female"), 0);
        assert!(index.size("race", "Black") > 0);
    }

    #[test]
    fn number_formats() {
        assert_eq!(pct(1.0 / 3.0), "33.3");
        assert_eq!(ci(0.05, 0.125), "5.0–12.5");
        assert_eq!(p_value(0.5), "0.500");
        assert_eq!(p_value(0.000_012), "1.2e-5");
        assert_eq!(ratio(None), "n/a");
    }
}
