//! Grouped bars for a one-attribute grouping: per group, one bar per category with its 95% CI
//! whisker, a legend of the categories above and the group labels (with sizes) below.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{
    DrawResult, GRID, INK, MUTED, category_color, draw_titles, nice_ceiling, shorten, text, ticks,
    titles_height, width, wrap,
};
use crate::export::Report;
use crate::export::view::{self, ChartSpec, Index, Layout};

/// Grouped bars: per group, one bar per category.
#[derive(Debug)]
pub(super) struct Bars {
    title: String,
    subtitle: String,
    /// (group label, images in the group)
    groups: Vec<(String, u64)>,
    /// Legend entries, in bar order.
    categories: Vec<String>,
    /// `values[group][category]` = (rate, ci_low, ci_high) in percent.
    values: Vec<Vec<(f64, f64, f64)>>,
}

/// The plotting area's coordinates: groups at 0, 1, ... on x, percent on y.
type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Room left of the plot, for the y axis labels and description.
const BAR_LEFT: u32 = 96;
/// Margin right of the plot.
const BAR_RIGHT: u32 = 28;
/// Font size of the group labels.
const LABEL_SIZE: f64 = 16.0;

/// Pixel layout of a bar chart, shared by [`Bars::size`] and [`Bars::draw`].
struct BarGeometry {
    size: (u32, u32),
    /// Legend rows: (category index, entry width).
    legend: Vec<Vec<(usize, u32)>>,
    /// Group labels: wrapped lines, or one rotated line each.
    labels: Vec<Vec<String>>,
    rotate: bool,
    label_h: u32,
}

/// Height of the plotting area proper.
const PLOT_H: u32 = 470;
/// Longest rotated group label, in pixels, before it is shortened.
const MAX_ROTATED: u32 = 300;

impl Bars {
    /// The bars of `layout`'s non-empty groups, every category's rate with its CI.
    pub(super) fn new(report: &Report, spec: &ChartSpec, layout: &Layout, index: &Index) -> Self {
        let context = report.context;
        let name = layout.name();
        let groups: Vec<String> = layout
            .groups()
            .into_iter()
            .filter(|g| index.size(name, g) > 0)
            .collect();
        let values = groups
            .iter()
            .map(|g| {
                context
                    .categories
                    .iter()
                    .map(|c| {
                        index.rate(name, g, &c.name).map_or((0.0, 0.0, 0.0), |r| {
                            (r.rate * 100.0, r.ci_low * 100.0, r.ci_high * 100.0)
                        })
                    })
                    .collect()
            })
            .collect();
        Bars {
            title: spec.title.clone(),
            subtitle: format!(
                "{} · probe {} · {} images · whiskers: 95% Wilson CI",
                context.model, context.probe_name, report.metrics.n
            ),
            groups: groups
                .iter()
                .map(|g| (g.clone(), index.size(name, g)))
                .collect(),
            categories: context
                .categories
                .iter()
                .map(|c| view::category_label(&c.name, c.harmful))
                .collect(),
            values,
        }
    }

    /// Bars from ready numbers: per group (label, images), one bar per series with
    /// `values[group][series]` = (rate, ci_low, ci_high) as proportions.
    pub(super) fn from_parts(
        title: String,
        subtitle: String,
        groups: Vec<(String, u64)>,
        series: Vec<String>,
        values: &[Vec<(f64, f64, f64)>],
    ) -> Self {
        let values = values
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(r, lo, hi)| (r * 100.0, lo * 100.0, hi * 100.0))
                    .collect()
            })
            .collect();
        Bars {
            title,
            subtitle,
            groups,
            categories: series,
            values,
        }
    }

    /// Style of the legend entries.
    fn legend_style() -> TextStyle<'static> {
        text(16.0, INK, HPos::Left, VPos::Center)
    }

    /// Style of the (unrotated) group labels.
    fn label_style() -> TextStyle<'static> {
        text(LABEL_SIZE, INK, HPos::Center, VPos::Top)
    }

    /// Where everything goes, measured with the chart font.
    fn geometry(&self) -> BarGeometry {
        let n_groups = self.groups.len().max(1) as u32;
        let bars = n_groups * self.categories.len().max(1) as u32;
        let w = (BAR_LEFT + BAR_RIGHT + bars * 36 + n_groups * 36).clamp(900, 2400);

        // legend: swatch + label, wrapped over rows when wide
        let mut legend: Vec<Vec<(usize, u32)>> = vec![Vec::new()];
        let mut row_w = 0;
        for (i, c) in self.categories.iter().enumerate() {
            let ew = 24 + width(c, &Self::legend_style()) + 28;
            if row_w + ew > w - 40 && row_w > 0 {
                legend.push(Vec::new());
                row_w = 0;
            }
            row_w += ew;
            if let Some(r) = legend.last_mut() {
                r.push((i, ew));
            }
        }

        // group labels wrapped to their slot; rotated when a single word is wider than the slot
        let slot = (w - BAR_LEFT - BAR_RIGHT) / n_groups;
        let style = Self::label_style();
        let wrapped: Vec<Vec<String>> = self
            .groups
            .iter()
            .map(|(g, _)| wrap(g, &style, slot.saturating_sub(10)))
            .collect();
        let rotate = wrapped
            .iter()
            .flatten()
            .any(|l| width(l, &style) > slot.saturating_sub(6));
        let (labels, label_h) = if rotate {
            let labels: Vec<Vec<String>> = self
                .groups
                .iter()
                .map(|(g, n)| vec![shorten(&format!("{g} (n={n})"), &style, MAX_ROTATED)])
                .collect();
            let longest = labels
                .iter()
                .flatten()
                .map(|l| width(l, &style))
                .max()
                .unwrap_or(0);
            (labels, longest + 24)
        } else {
            let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1) as u32;
            (wrapped, lines * 20 + 40)
        };
        let top =
            titles_height(&self.title, &self.subtitle, w) as u32 + 14 + 26 * legend.len() as u32;
        let h = top + 16 + PLOT_H + label_h;
        BarGeometry {
            size: (w, h),
            legend,
            labels,
            rotate,
            label_h,
        }
    }

    /// The picture's size in pixels.
    pub(super) fn size(&self) -> (u32, u32) {
        self.geometry().size
    }

    /// Draws the chart: titles, legend, axes, bars with whiskers, group labels.
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (w, h) = root.dim_in_pixel();
        let BarGeometry {
            legend,
            labels,
            rotate,
            label_h,
            ..
        } = self.geometry();
        let y = draw_titles(root, &self.title, &self.subtitle)? + 14;
        let y = self.draw_legend(root, &legend, y)?;
        let body = root
            .clone()
            .shrink((0, y + 6), (w, h.saturating_sub(y as u32 + 6)));
        let mut chart = self.draw_axes(&body, label_h)?;
        self.draw_bars(root, &mut chart)?;
        self.draw_group_labels(root, &chart, &labels, rotate)
    }

    /// The legend rows, centred, from `y` down; returns the y below them.
    fn draw_legend<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        legend: &[Vec<(usize, u32)>],
        mut y: i32,
    ) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
        let (w, _) = root.dim_in_pixel();
        let n_cat = self.categories.len();
        let legend_style = Self::legend_style();
        for row in legend {
            let total: u32 = row.iter().map(|(_, ew)| ew).sum::<u32>().saturating_sub(28);
            let mut x = (w.saturating_sub(total) / 2) as i32;
            for &(i, ew) in row {
                let color = category_color(i, n_cat);
                let swatch = [(x, y - 8), (x + 18, y + 8)];
                root.draw(&Rectangle::new(swatch, color.filled()))?;
                root.draw(&Rectangle::new(swatch, INK.stroke_width(1)))?;
                root.draw(&Text::new(
                    self.categories[i].clone(),
                    (x + 24, y),
                    legend_style.clone(),
                ))?;
                x += ew as i32;
            }
            y += 26;
        }
        Ok(y)
    }

    /// The plotting area on `body`: y axis in percent up to a round ceiling above the highest
    /// whisker, its grid lines and description; no x labels (the groups are drawn apart).
    fn draw_axes<'a, DB: DrawingBackend>(
        &self,
        body: &'a DrawingArea<DB, Shift>,
        label_h: u32,
    ) -> Result<Plot<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
        let n_groups = self.groups.len().max(1);
        let max_hi = self
            .values
            .iter()
            .flatten()
            .map(|v| v.2)
            .fold(0.0, f64::max);
        let y_max = nice_ceiling(max_hi * 1.08);
        let (y_ticks, decimals) = ticks(y_max);
        let mut chart = ChartBuilder::on(body)
            .margin_left(12)
            .margin_right(BAR_RIGHT)
            .margin_top(10)
            .x_label_area_size(label_h)
            .y_label_area_size(BAR_LEFT - 12)
            .build_cartesian_2d(-0.5f64..(n_groups as f64 - 0.5), 0f64..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(y_ticks as usize + 1)
            .bold_line_style(GRID.stroke_width(1))
            .light_line_style(TRANSPARENT)
            .axis_style(MUTED.stroke_width(1))
            .y_label_formatter(&|v| format!("{v:.decimals$}%"))
            .y_label_style(text(15.0, INK, HPos::Right, VPos::Center))
            .y_desc("Images predicted into the category")
            .axis_desc_style(text(16.0, INK, HPos::Center, VPos::Center))
            .draw()?;
        Ok(chart)
    }

    /// Every bar with its CI whisker, and the rates above them when every bar has room for one.
    fn draw_bars<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &mut Plot<'_, DB>,
    ) -> DrawResult<DB> {
        let n_cat = self.categories.len();
        // at most 64 px per bar, so few groups do not give slabs
        let unit_px = {
            let (a, _) = chart.backend_coord(&(0.0, 0.0));
            let (b, _) = chart.backend_coord(&(1.0, 0.0));
            (b - a).max(1) as f64
        };
        let span = (64.0 * n_cat.max(1) as f64 / unit_px).min(0.82);
        let bar_w = span / n_cat.max(1) as f64;
        let bar_px = (bar_w * 0.88 * unit_px) as u32;
        let cap = (bar_w * 0.25).min(8.0 / unit_px);
        let value_style = text(12.0, INK, HPos::Center, VPos::Bottom);
        // value labels on every bar or on none
        let show_values = width("100.0", &value_style) + 2 <= bar_px;
        for (g, values) in self.values.iter().enumerate() {
            for (c, &(rate, lo, hi)) in values.iter().enumerate() {
                let x0 = g as f64 - span / 2.0 + c as f64 * bar_w + bar_w * 0.06;
                let x1 = x0 + bar_w * 0.88;
                let color = category_color(c, n_cat);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, rate)],
                    color.filled(),
                )))?;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, rate)],
                    INK.stroke_width(1),
                )))?;
                let xm = (x0 + x1) / 2.0;
                draw_whisker(chart, xm, (lo, hi), cap)?;
                if show_values {
                    let (px, py) = chart.backend_coord(&(xm, hi));
                    root.draw(&Text::new(
                        format!("{rate:.1}"),
                        (px, py - 3),
                        value_style.clone(),
                    ))?;
                }
            }
        }
        Ok(())
    }

    /// Group labels under the axis: wrapped with the group's size below, or rotated.
    fn draw_group_labels<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &Plot<'_, DB>,
        labels: &[Vec<String>],
        rotate: bool,
    ) -> DrawResult<DB> {
        let label_style = Self::label_style();
        let n_style = text(14.0, MUTED, HPos::Center, VPos::Top);
        let rotated =
            text(LABEL_SIZE, INK, HPos::Right, VPos::Center).transform(FontTransform::Rotate270);
        for (g, ((_, n), lines)) in self.groups.iter().zip(labels).enumerate() {
            let (px, py) = chart.backend_coord(&(g as f64, 0.0));
            let mut ly = py + 10;
            if rotate {
                for line in lines {
                    root.draw(&Text::new(line.clone(), (px, ly), rotated.clone()))?;
                }
            } else {
                for line in lines {
                    root.draw(&Text::new(line.clone(), (px, ly), label_style.clone()))?;
                    ly += 20;
                }
                root.draw(&Text::new(
                    format!("n = {n}"),
                    (px, ly + 2),
                    n_style.clone(),
                ))?;
            }
        }
        Ok(())
    }
}

/// A CI whisker from `lo` to `hi` at `xm` with caps `cap` wide each side, with a white halo so
/// it shows over dark bars.
fn draw_whisker<DB: DrawingBackend>(
    chart: &mut Plot<'_, DB>,
    xm: f64,
    (lo, hi): (f64, f64),
    cap: f64,
) -> DrawResult<DB> {
    for style in [WHITE.stroke_width(4), INK.stroke_width(2)] {
        chart.draw_series([
            PathElement::new(vec![(xm, lo), (xm, hi)], style),
            PathElement::new(vec![(xm - cap, lo), (xm + cap, lo)], style),
            PathElement::new(vec![(xm - cap, hi), (xm + cap, hi)], style),
        ])?;
    }
    Ok(())
}
