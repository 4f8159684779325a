//! Prompt-sensitivity ranges (`run --per-template`) for one grouping and category: per group, a
//! bar from the lowest to the highest rate any single template gives, a tick at the median and a
//! dot at the ensemble's rate.

use crate::metrics::findings::group_label;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{
    DrawResult, GRID, INK, MUTED, category_color, draw_titles, nice_ceiling, shorten, text, ticks,
    titles_height,
};
use crate::export::Report;
use crate::export::view::{ChartSpec, Layout};

/// One row per group: (label, min, median, max, ensemble), rates in percent.
#[derive(Debug)]
pub(super) struct Ranges {
    title: String,
    subtitle: String,
    rows: Vec<(String, f64, f64, f64, f64)>,
}

/// Width of the picture.
const W: u32 = 960;
/// Room left of the plot for the group labels.
const LEFT: u32 = 260;
/// Margin right of the plot.
const RIGHT: u32 = 36;
/// Height of one group's row.
const ROW_H: u32 = 30;
/// Room below the rows for the axis labels.
const AXIS_H: u32 = 56;

impl Ranges {
    /// The ranges of `layout`'s groups in the category of `spec`, from the report's spread.
    pub(super) fn new(report: &Report, spec: &ChartSpec, layout: &Layout, category: &str) -> Self {
        let context = report.context;
        let spread = context
            .per_template
            .as_ref()
            .map_or(&[][..], |p| p.spread.as_slice());
        let rows = spread
            .iter()
            .filter(|s| s.attribute == layout.name() && s.category == category)
            .map(|s| {
                (
                    format!("{} (n={})", group_label(&s.group), s.n),
                    s.min * 100.0,
                    s.median * 100.0,
                    s.max * 100.0,
                    s.ensemble * 100.0,
                )
            })
            .collect();
        let templates = context
            .per_template
            .as_ref()
            .map_or(0, |p| p.templates.len());
        Ranges {
            title: spec.title.clone(),
            subtitle: format!(
                "{} · probe {} · bar: lowest–highest rate over {templates} templates alone · \
                 tick: median · dot: ensemble",
                context.model, context.probe_name
            ),
            rows,
        }
    }

    /// The picture's size in pixels.
    pub(super) fn size(&self) -> (u32, u32) {
        let top = titles_height(&self.title, &self.subtitle, W).max(0) as u32 + 16;
        (W, top + ROW_H * self.rows.len().max(1) as u32 + AXIS_H)
    }

    /// Draws the chart on `root`, which has [`Ranges::size`].
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let top = draw_titles(root, &self.title, &self.subtitle)? + 16;
        let bottom = top + (ROW_H * self.rows.len().max(1) as u32) as i32;
        let ceiling = nice_ceiling(self.rows.iter().map(|r| r.3.max(r.4)).fold(0.0, f64::max));
        let (left, right) = (LEFT as i32, (W - RIGHT) as i32);
        let x =
            |v: f64| left + ((right - left) as f64 * (v / ceiling).clamp(0.0, 1.0)).round() as i32;
        let (n_ticks, decimals) = ticks(ceiling);
        let tick_style = text(14.0, MUTED, HPos::Center, VPos::Top);
        for t in 0..=n_ticks {
            let v = ceiling * t as f64 / n_ticks as f64;
            root.draw(&PathElement::new(vec![(x(v), top), (x(v), bottom)], GRID))?;
            let label = format!("{v:.decimals$}%");
            root.draw(&Text::new(label, (x(v), bottom + 6), tick_style.clone()))?;
        }
        let axis = text(14.0, MUTED, HPos::Center, VPos::Top);
        root.draw(&Text::new(
            "share of the group's images",
            ((left + right) / 2, bottom + 28),
            axis,
        ))?;
        let label_style = text(15.0, INK, HPos::Right, VPos::Center);
        let range_colour = category_color(0, 2);
        for (i, (label, min, median, max, ensemble)) in self.rows.iter().enumerate() {
            let cy = top + (ROW_H as i32) * i as i32 + ROW_H as i32 / 2;
            let label = shorten(label, &label_style, LEFT - 20);
            root.draw(&Text::new(label, (left - 10, cy), label_style.clone()))?;
            let (x0, x1) = (x(*min), x(*max).max(x(*min) + 2));
            root.draw(&Rectangle::new(
                [(x0, cy - 6), (x1, cy + 6)],
                range_colour.filled(),
            ))?;
            let xm = x(*median);
            root.draw(&PathElement::new(
                vec![(xm, cy - 10), (xm, cy + 10)],
                INK.stroke_width(2),
            ))?;
            root.draw(&Circle::new((x(*ensemble), cy), 5, INK.filled()))?;
        }
        Ok(())
    }
}
