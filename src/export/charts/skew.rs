//! Retrieval skew for one attribute at one `k`: per query a horizontal bar from MinSkew@k to
//! MaxSkew@k around the zero line (a ranking that matches the target sits at 0).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{DrawResult, GRID, INK, MUTED, category_color, draw_titles, shorten, text};
use super::style::{titles_height, width};

/// Range bars of MinSkew@k..MaxSkew@k per query.
#[derive(Debug)]
pub(crate) struct SkewChart {
    /// Chart title.
    pub title: String,
    /// Line under the title.
    pub subtitle: String,
    /// (query, MinSkew@k, MaxSkew@k), in probe order.
    pub queries: Vec<(String, f64, f64)>,
}

/// Width of the picture.
const WIDTH: u32 = 900;
/// Height of one query's row.
const ROW_H: u32 = 26;
/// Room for the query labels.
const LABEL_W: u32 = 260;

impl SkewChart {
    /// The picture's size in pixels.
    pub(super) fn size(&self) -> (u32, u32) {
        let top = titles_height(&self.title, &self.subtitle, WIDTH) as u32 + 30;
        (WIDTH, top + ROW_H * self.queries.len().max(1) as u32 + 60)
    }

    /// The symmetric x range: a round bound above the largest |skew|.
    fn bound(&self) -> f64 {
        let max = self
            .queries
            .iter()
            .flat_map(|&(_, lo, hi)| [lo.abs(), hi.abs()])
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        ((max * 1.1) * 4.0).ceil().max(1.0) / 4.0
    }

    /// Draws titles, the zero line, one range bar per query and the x axis.
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let y0 = draw_titles(root, &self.title, &self.subtitle)? + 30;
        let bound = self.bound();
        let plot_w = (WIDTH - LABEL_W - 40) as f64;
        let x_of = |v: f64| LABEL_W as i32 + ((v + bound) / (2.0 * bound) * plot_w) as i32;
        let bottom = y0 + (ROW_H * self.queries.len().max(1) as u32) as i32;
        for tick in [-bound, -bound / 2.0, 0.0, bound / 2.0, bound] {
            let x = x_of(tick);
            let color = if tick == 0.0 { MUTED } else { GRID };
            root.draw(&PathElement::new(
                [(x, y0 - 6), (x, bottom)],
                color.stroke_width(1),
            ))?;
            root.draw(&Text::new(
                format!("{tick:+.2}"),
                (x, bottom + 6),
                text(13.0, INK, HPos::Center, VPos::Top),
            ))?;
        }
        root.draw(&Text::new(
            "ln(share in top k / target share): MinSkew@k to MaxSkew@k",
            (x_of(0.0), bottom + 28),
            text(14.0, INK, HPos::Center, VPos::Top),
        ))?;
        let label = text(14.0, INK, HPos::Right, VPos::Center);
        let fill = category_color(0, 1);
        for (i, (query, lo, hi)) in self.queries.iter().enumerate() {
            let y = y0 + (i as u32 * ROW_H) as i32 + ROW_H as i32 / 2;
            let name = shorten(query, &label, LABEL_W - 16);
            debug_assert!(width(&name, &label) <= LABEL_W);
            root.draw(&Text::new(name, (LABEL_W as i32 - 10, y), label.clone()))?;
            let (a, b) = (x_of(lo.clamp(-bound, bound)), x_of(hi.clamp(-bound, bound)));
            let bar = [(a, y - 7), (b.max(a + 2), y + 7)];
            root.draw(&Rectangle::new(bar, fill.filled()))?;
            root.draw(&Rectangle::new(bar, INK.stroke_width(1)))?;
        }
        Ok(())
    }
}
