//! Heatmaps for an intersection: one category's rate per group as a matrix of cells (rows: all
//! attributes but the last, columns: the last), empty groups hatched, with a colour bar.

use crate::metrics::findings::group_label;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{
    DrawResult, INK, MUTED, SUBTITLE_SIZE, TITLE_SIZE, YLORRD, draw_titles, hatch, interpolate,
    luminance, nice_ceiling, text, ticks, titles_height, width, wrap,
};
use crate::export::Report;
use crate::export::view::{ChartSpec, Index, Layout};
use crate::metrics::CategoryInfo;

/// A matrix of one category's rates.
#[derive(Debug)]
pub(super) struct Heatmap {
    title: String,
    subtitle: String,
    row_attribute: String,
    col_attribute: String,
    rows: Vec<String>,
    cols: Vec<String>,
    /// `cells[row][col]` = (rate in percent, images), `None` for an empty group.
    cells: Vec<Vec<Option<(f64, u64)>>>,
}

/// Height of a row of cells.
const CELL_H: i32 = 64;
/// Height of the column headers above the grid.
const HEADER_H: i32 = 58;
/// Space between the grid and the colour bar.
const COLORBAR_GAP: i32 = 36;

/// Pixel geometry of a heatmap, shared by [`Heatmap::size`] and [`Heatmap::draw`].
struct HeatGeometry {
    size: (u32, u32),
    top: i32,
    grid_x: i32,
    cell_w: i32,
}

/// Where the grid of cells lies, in pixels.
struct Grid {
    /// Left edge.
    x: i32,
    /// Top edge.
    y: i32,
    /// Width of a cell.
    cell_w: i32,
    /// Width of the grid.
    w: i32,
    /// Height of the grid.
    h: i32,
}

impl Heatmap {
    /// The rates of `category` in every group of the intersection `layout`.
    pub(super) fn new(
        report: &Report,
        spec: &ChartSpec,
        layout: &Layout,
        index: &Index,
        category: &CategoryInfo,
    ) -> Self {
        let context = report.context;
        let name = layout.name();
        let rows = layout.row_keys();
        let cols = layout.col_keys().to_vec();
        let cells = rows
            .iter()
            .map(|r| {
                cols.iter()
                    .map(|col| {
                        index
                            .rate(name, &Layout::group(r, col), &category.name)
                            .map(|x| (x.rate * 100.0, x.n))
                    })
                    .collect()
            })
            .collect();
        let n_attr = layout.attributes.len();
        Heatmap {
            title: spec.title.clone(),
            subtitle: format!(
                "{} · probe {} · {} images · cell: % of the group (n = images)",
                context.model, context.probe_name, report.metrics.n
            ),
            row_attribute: layout.attributes[..n_attr - 1]
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(" × "),
            col_attribute: layout.attributes[n_attr - 1].name.clone(),
            rows: rows.iter().map(|r| group_label(r)).collect(),
            cols,
            cells,
        }
    }

    /// Style of the row labels.
    fn row_style() -> TextStyle<'static> {
        text(16.0, INK, HPos::Right, VPos::Center)
    }

    /// Style of the column labels.
    fn col_style() -> TextStyle<'static> {
        text(16.0, INK, HPos::Center, VPos::Bottom)
    }

    /// Where everything goes, measured with the chart font.
    fn geometry(&self) -> HeatGeometry {
        let row_label_w = self
            .rows
            .iter()
            .chain(std::iter::once(&self.row_attribute))
            .map(|r| width(r, &Self::row_style()))
            .max()
            .unwrap_or(0)
            .clamp(60, 280) as i32;
        let widest_col = self
            .cols
            .iter()
            .map(|c| width(c, &Self::col_style()))
            .max()
            .unwrap_or(0);
        let cell_w = (widest_col as i32 + 24).clamp(130, 200);
        let grid_x = 30 + row_label_w + 14;
        let n_cols = self.cols.len().max(1) as i32;
        let tick_w = width("100%", &text(14.0, INK, HPos::Left, VPos::Center)) as i32;
        let content_w = grid_x + cell_w * n_cols + COLORBAR_GAP + 29 + tick_w + 30;
        let title_w = width(&self.title, &text(TITLE_SIZE, INK, HPos::Center, VPos::Top)) as i32;
        let sub_w = width(
            &self.subtitle,
            &text(SUBTITLE_SIZE, MUTED, HPos::Center, VPos::Top),
        ) as i32;
        let w = content_w.max(title_w.max(sub_w) + 40).clamp(480, 2400) as u32;
        // centre the grid when the titles make the picture wider than its content
        let grid_x = grid_x + (w as i32 - content_w).max(0) / 2;
        let top = titles_height(&self.title, &self.subtitle, w) + 14;
        let n_rows = self.rows.len().max(1) as i32;
        let h = top + HEADER_H + (CELL_H * n_rows).max(120) + 30;
        HeatGeometry {
            size: (w, h.max(0) as u32),
            top,
            grid_x,
            cell_w,
        }
    }

    /// The picture's size in pixels.
    pub(super) fn size(&self) -> (u32, u32) {
        self.geometry().size
    }

    /// Draws the chart: titles, headers, cells with their row labels, frame, colour bar.
    pub(super) fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        draw_titles(root, &self.title, &self.subtitle)?;
        let HeatGeometry {
            top,
            grid_x,
            cell_w,
            ..
        } = self.geometry();
        let n_rows = self.rows.len().max(1) as i32;
        let n_cols = self.cols.len().max(1) as i32;
        let grid = Grid {
            x: grid_x,
            y: top + HEADER_H,
            cell_w,
            w: cell_w * n_cols,
            h: CELL_H * n_rows,
        };
        self.draw_headers(root, &grid, top)?;
        let max = self
            .cells
            .iter()
            .flatten()
            .flatten()
            .map(|c| c.0)
            .fold(0.0, f64::max);
        let v_max = nice_ceiling(max);
        self.draw_cells(root, &grid, v_max)?;
        root.draw(&Rectangle::new(
            [(grid.x, grid.y), (grid.x + grid.w, grid.y + grid.h)],
            RGBColor(190, 190, 190).stroke_width(1),
        ))?;
        draw_colour_bar(root, &grid, v_max)
    }

    /// The attribute names (the column attribute centred over the columns, the row attribute
    /// over the row labels) and the wrapped column labels.
    fn draw_headers<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        grid: &Grid,
        top: i32,
    ) -> DrawResult<DB> {
        let col_style = Self::col_style();
        let axis_style = text(15.0, MUTED, HPos::Center, VPos::Top);
        root.draw(&Text::new(
            self.col_attribute.clone(),
            (grid.x + grid.w / 2, top),
            axis_style,
        ))?;
        root.draw(&Text::new(
            self.row_attribute.clone(),
            (grid.x - 12, grid.y - 6),
            text(15.0, MUTED, HPos::Right, VPos::Bottom),
        ))?;
        for (j, col) in self.cols.iter().enumerate() {
            let cx = grid.x + grid.cell_w * j as i32 + grid.cell_w / 2;
            let lines = wrap(col, &col_style, (grid.cell_w - 8).max(10) as u32);
            let mut ly = grid.y - 6 - 18 * (lines.len() as i32 - 1);
            for line in lines {
                root.draw(&Text::new(line, (cx, ly), col_style.clone()))?;
                ly += 18;
            }
        }
        Ok(())
    }

    /// Every row: its label, then its cells coloured on a scale up to `v_max` percent.
    fn draw_cells<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        grid: &Grid,
        v_max: f64,
    ) -> DrawResult<DB> {
        let row_style = Self::row_style();
        for (i, row) in self.rows.iter().enumerate() {
            let y0 = grid.y + CELL_H * i as i32;
            root.draw(&Text::new(
                row.clone(),
                (grid.x - 12, y0 + CELL_H / 2),
                row_style.clone(),
            ))?;
            for j in 0..self.cols.len() {
                let x0 = grid.x + grid.cell_w * j as i32;
                let rect = [(x0, y0), (x0 + grid.cell_w, y0 + CELL_H)];
                let cell = self.cells.get(i).and_then(|r| r.get(j)).copied().flatten();
                draw_cell(root, rect, cell, v_max)?;
                root.draw(&Rectangle::new(rect, WHITE.stroke_width(2)))?;
            }
        }
        Ok(())
    }
}

/// One cell: filled by its rate with the rate and size written on it, or hatched and marked
/// "no images" when the group is empty.
fn draw_cell<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rect: [(i32, i32); 2],
    cell: Option<(f64, u64)>,
    v_max: f64,
) -> DrawResult<DB> {
    let [(x0, y0), (x1, y1)] = rect;
    let (cx, cy) = (x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2);
    match cell {
        Some((rate, n)) => {
            let fill = interpolate(&YLORRD, rate / v_max);
            let ink = if luminance(fill) < 0.5 { WHITE } else { INK };
            root.draw(&Rectangle::new(rect, fill.filled()))?;
            root.draw(&Text::new(
                format!("{rate:.1}%"),
                (cx, cy - 8),
                text(18.0, ink, HPos::Center, VPos::Center),
            ))?;
            root.draw(&Text::new(
                format!("n = {n}"),
                (cx, cy + 14),
                text(13.0, ink, HPos::Center, VPos::Center),
            ))?;
        }
        None => {
            root.draw(&Rectangle::new(rect, WHITE.filled()))?;
            hatch(root, rect, 9, RGBColor(200, 200, 200))?;
            let label = text(14.0, INK, HPos::Center, VPos::Center);
            let lw = width("no images", &label) as i32;
            root.draw(&Rectangle::new(
                [(cx - lw / 2 - 6, cy - 11), (cx + lw / 2 + 6, cy + 11)],
                WHITE.filled(),
            ))?;
            root.draw(&Text::new("no images", (cx, cy), label))?;
        }
    }
    Ok(())
}

/// The colour bar right of the grid, from 0 to `v_max` percent, with ticks.
fn draw_colour_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    grid: &Grid,
    v_max: f64,
) -> DrawResult<DB> {
    let bar_x = grid.x + grid.w + COLORBAR_GAP;
    let bar_h = grid.h.max(120);
    let steps = 64;
    for k in 0..steps {
        let ya = grid.y + bar_h - (bar_h as f64 * k as f64 / steps as f64).round() as i32;
        let yb = grid.y + bar_h - (bar_h as f64 * (k + 1) as f64 / steps as f64).round() as i32;
        let color = interpolate(&YLORRD, (k as f64 + 0.5) / steps as f64);
        root.draw(&Rectangle::new(
            [(bar_x, yb), (bar_x + 20, ya)],
            color.filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(bar_x, grid.y), (bar_x + 20, grid.y + bar_h)],
        MUTED.stroke_width(1),
    ))?;
    let tick_style = text(14.0, INK, HPos::Left, VPos::Center);
    let (ticks, decimals) = ticks(v_max);
    for k in 0..=ticks {
        let v = v_max * k as f64 / ticks as f64;
        let ty = grid.y + bar_h - (bar_h as f64 * k as f64 / ticks as f64).round() as i32;
        root.draw(&PathElement::new(
            vec![(bar_x + 20, ty), (bar_x + 25, ty)],
            MUTED.stroke_width(1),
        ))?;
        root.draw(&Text::new(
            format!("{v:.decimals$}%"),
            (bar_x + 29, ty),
            tick_style.clone(),
        ))?;
    }
    Ok(())
}
