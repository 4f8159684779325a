//! Charts with plotters, each as `charts/<name>.png` and `.svg`: per one-attribute grouping,
//! grouped bars of every category's rate with 95% CI whiskers; per intersection, one heatmap per
//! harmful category. Palettes have monotonic luminance, so the charts survive greyscale printing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, FontTransform, register_font};

use super::view::{self, ChartSpec, Index, Layout};
use super::{ExportError, Exporter, Report, write_file};

/// Writes one PNG and one SVG per chart into `charts/`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChartsExporter;

/// DejaVu Sans, embedded so drawing needs no system font (licence in `assets/`).
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

/// The family every text of the charts uses; SVG viewers substitute their own sans-serif.
const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters once; false when the font does not parse.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok())
}

impl Exporter for ChartsExporter {
    fn write(&self, report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        let dir = dir.join("charts");
        let mut written = Vec::new();
        for spec in view::plan(report) {
            let png_path = dir.join(format!("{}.png", spec.stem));
            let svg_path = dir.join(format!("{}.svg", spec.stem));
            let chart = build(report, &spec, &png_path)?;
            let png = to_png(&chart, &png_path)?;
            write_file(&png_path, &png)?;
            written.push(png_path);
            let svg = to_svg(&chart, &svg_path)?;
            write_file(&svg_path, svg.as_bytes())?;
            written.push(svg_path);
        }
        Ok(written)
    }
}

/// Every chart of `report` as SVG text, in [`plan`] order (for inlining into HTML).
pub(crate) fn render_svgs(report: &Report) -> Result<Vec<(ChartSpec, String)>, ExportError> {
    view::plan(report)
        .into_iter()
        .map(|spec| {
            let path = PathBuf::from("charts").join(format!("{}.svg", spec.stem));
            let chart = build(report, &spec, &path)?;
            let svg = to_svg(&chart, &path)?;
            Ok((spec, svg))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Data

/// A chart ready to draw.
enum Chart {
    Bars(Bars),
    Heatmap(Heatmap),
}

/// Grouped bars: per group, one bar per category.
struct Bars {
    title: String,
    subtitle: String,
    /// (group label, images in the group)
    groups: Vec<(String, u64)>,
    /// Legend entries, in bar order.
    categories: Vec<String>,
    /// `values[group][category]` = (rate, ci_low, ci_high) in percent.
    values: Vec<Vec<(f64, f64, f64)>>,
}

/// A matrix of one category's rates.
struct Heatmap {
    title: String,
    subtitle: String,
    row_attribute: String,
    col_attribute: String,
    rows: Vec<String>,
    cols: Vec<String>,
    /// `cells[row][col]` = (rate in percent, images), `None` for an empty group.
    cells: Vec<Vec<Option<(f64, u64)>>>,
}

fn build(report: &Report, spec: &ChartSpec, path: &Path) -> Result<Chart, ExportError> {
    if !font_ready() {
        return Err(ExportError::Chart {
            path: path.to_path_buf(),
            message: "the embedded font does not parse".into(),
        });
    }
    let missing = || ExportError::Chart {
        path: path.to_path_buf(),
        message: format!("grouping `{}` is not in the report", spec.grouping),
    };
    let layout = Layout::all(report)
        .into_iter()
        .find(|l| l.name() == spec.grouping)
        .ok_or_else(missing)?;
    let index = Index::new(report.metrics);
    let context = report.context;
    let subtitle = format!(
        "{} · probe {} · {} images · whiskers: 95% Wilson CI",
        context.model, context.probe_name, report.metrics.n
    );
    let name = layout.name();
    match spec.category {
        None => {
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
            Ok(Chart::Bars(Bars {
                title: spec.title.clone(),
                subtitle,
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
            }))
        }
        Some(c) => {
            let category = context.categories.get(c).ok_or_else(missing)?;
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
            Ok(Chart::Heatmap(Heatmap {
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
                rows: rows.iter().map(|r| r.replace('*', " × ")).collect(),
                cols,
                cells,
            }))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

impl Chart {
    fn size(&self) -> (u32, u32) {
        match self {
            Chart::Bars(b) => b.size(),
            Chart::Heatmap(h) => h.size(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        match self {
            Chart::Bars(b) => b.draw(root),
            Chart::Heatmap(h) => h.draw(root),
        }
    }
}

/// Largest picture drawn (pixels); more means an intersection too large to chart usefully.
const MAX_PIXELS: u64 = 40_000_000;

/// The chart's size, or an error when it is unreasonably large.
fn checked_size(chart: &Chart, path: &Path) -> Result<(u32, u32), ExportError> {
    let (w, h) = chart.size();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ExportError::Chart {
            path: path.to_path_buf(),
            message: format!("{w}×{h} pixels is too large; chart fewer groups"),
        });
    }
    Ok((w, h))
}

fn to_png(chart: &Chart, path: &Path) -> Result<Vec<u8>, ExportError> {
    let (w, h) = checked_size(chart, path)?;
    let mut buffer = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present())
            .map_err(|e| ExportError::Chart {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &buffer,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|source| ExportError::Png {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(png)
}

fn to_svg(chart: &Chart, path: &Path) -> Result<String, ExportError> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, checked_size(chart, path)?).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present())
            .map_err(|e| ExportError::Chart {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
    }
    Ok(svg)
}

/// Text style in the chart font.
fn text(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

const INK: RGBColor = RGBColor(33, 33, 33);
const MUTED: RGBColor = RGBColor(96, 96, 96);
const GRID: RGBColor = RGBColor(224, 224, 224);

/// Linear interpolation between colour stops at `t` in [0, 1].
fn interpolate(stops: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let last = stops.len().saturating_sub(1);
    if last == 0 {
        let (r, g, b) = stops.first().copied().unwrap_or((0, 0, 0));
        return RGBColor(r, g, b);
    }
    let x = t * last as f64;
    let i = (x.floor() as usize).min(last - 1);
    let f = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Viridis (matplotlib), dark blue-violet to yellow: luminance rises monotonically.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (0x44, 0x01, 0x54),
    (0x48, 0x24, 0x75),
    (0x41, 0x44, 0x87),
    (0x35, 0x5f, 0x8d),
    (0x2a, 0x78, 0x8e),
    (0x21, 0x91, 0x8c),
    (0x22, 0xa8, 0x84),
    (0x44, 0xbf, 0x70),
    (0x7a, 0xd1, 0x51),
    (0xbd, 0xdf, 0x26),
    (0xfd, 0xe7, 0x25),
];

/// ColorBrewer YlOrRd (9 classes), pale yellow to dark red: luminance falls monotonically.
const YLORRD: [(u8, u8, u8); 9] = [
    (0xff, 0xff, 0xcc),
    (0xff, 0xed, 0xa0),
    (0xfe, 0xd9, 0x76),
    (0xfe, 0xb2, 0x4c),
    (0xfd, 0x8d, 0x3c),
    (0xfc, 0x4e, 0x2a),
    (0xe3, 0x1a, 0x1c),
    (0xbd, 0x00, 0x26),
    (0x80, 0x00, 0x26),
];

/// Colour of category `i` of `n`: evenly spaced on viridis, so greyscale keeps them apart.
fn category_color(i: usize, n: usize) -> RGBColor {
    if n <= 1 {
        return interpolate(&VIRIDIS, 0.35);
    }
    interpolate(&VIRIDIS, 0.08 + 0.84 * i as f64 / (n - 1) as f64)
}

/// Relative luminance (sRGB approximation), to pick black or white text over a fill.
fn luminance(c: RGBColor) -> f64 {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) / 255.0
}

/// A round upper bound for an axis whose data reach `max` (percent): 1, 2, 2.5 or 5 × 10^k.
fn nice_ceiling(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 10.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= max)
        .unwrap_or(10.0 * magnitude);
    step.min(100.0)
}

/// Tick intervals for an axis from 0 to a [`nice_ceiling`] value, and the decimals its labels
/// need: 2 and 20 split in 4 (steps of 0.5, 5), the others in 5 (10 → 2, 25 → 5, 50 → 10).
fn ticks(max: f64) -> (u32, usize) {
    let mantissa = max / 10f64.powf(max.log10().floor());
    let ticks = if (mantissa - 2.0).abs() < 1e-9 { 4 } else { 5 };
    let step = max / ticks as f64;
    let decimals = if step >= 1.0 - 1e-9 {
        0
    } else if step >= 0.1 - 1e-12 {
        1
    } else {
        2
    };
    (ticks, decimals)
}

/// Width in pixels of `s` in `style` (0 when it cannot be measured).
fn width(s: &str, style: &TextStyle) -> u32 {
    style.font.box_size(s).map_or(0, |(w, _)| w)
}

/// Greedy word wrap of `s` into lines no wider than `max` (a single long word stays whole).
fn wrap(s: &str, style: &TextStyle, max: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        match lines.last_mut() {
            Some(line) if width(&format!("{line} {word}"), style) <= max => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

const TITLE_SIZE: f64 = 26.0;
const SUBTITLE_SIZE: f64 = 15.0;

/// Height taken by [`draw_titles`] on a chart `w` pixels wide.
fn titles_height(title: &str, subtitle: &str, w: u32) -> i32 {
    let t = wrap(
        title,
        &text(TITLE_SIZE, INK, HPos::Center, VPos::Top),
        w.saturating_sub(40),
    );
    let s = wrap(
        subtitle,
        &text(SUBTITLE_SIZE, MUTED, HPos::Center, VPos::Top),
        w.saturating_sub(40),
    );
    16 + 30 * t.len() as i32 + 4 + 20 * s.len() as i32
}

/// Title and subtitle, centred; returns the y below them.
fn draw_titles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, _) = root.dim_in_pixel();
    let cx = w as i32 / 2;
    let title_style = text(TITLE_SIZE, INK, HPos::Center, VPos::Top);
    let sub_style = text(SUBTITLE_SIZE, MUTED, HPos::Center, VPos::Top);
    let mut y = 16;
    for line in wrap(title, &title_style, w.saturating_sub(40)) {
        root.draw(&Text::new(line, (cx, y), title_style.clone()))?;
        y += 30;
    }
    y += 4;
    for line in wrap(subtitle, &sub_style, w.saturating_sub(40)) {
        root.draw(&Text::new(line, (cx, y), sub_style.clone()))?;
        y += 20;
    }
    Ok(y)
}

/// Diagonal hatching inside `rect` (marks cells without data, also in greyscale).
fn hatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    [(x0, y0), (x1, y1)]: [(i32, i32); 2],
    spacing: i32,
    color: RGBColor,
) -> DrawResult<DB> {
    let mut c = x0 + y0 + spacing;
    while c < x1 + y1 {
        // the line x + y = c, clipped to the rectangle
        let (xa, xb) = ((c - y1).max(x0), (c - y0).min(x1));
        if xa < xb {
            root.draw(&PathElement::new(
                vec![(xa, c - xa), (xb, c - xb)],
                color.stroke_width(1),
            ))?;
        }
        c += spacing;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Grouped bars

const BAR_LEFT: u32 = 96;
const BAR_RIGHT: u32 = 28;
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
    fn legend_style() -> TextStyle<'static> {
        text(16.0, INK, HPos::Left, VPos::Center)
    }

    fn label_style() -> TextStyle<'static> {
        text(LABEL_SIZE, INK, HPos::Center, VPos::Top)
    }

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

    fn size(&self) -> (u32, u32) {
        self.geometry().size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (w, h) = root.dim_in_pixel();
        let BarGeometry {
            legend,
            labels,
            rotate,
            label_h,
            ..
        } = self.geometry();
        let mut y = draw_titles(root, &self.title, &self.subtitle)? + 14;
        let n_cat = self.categories.len();
        let legend_style = Self::legend_style();
        for row in &legend {
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
        let n_groups = self.groups.len().max(1);
        let label_style = Self::label_style();

        let max_hi = self
            .values
            .iter()
            .flatten()
            .map(|v| v.2)
            .fold(0.0, f64::max);
        let y_max = nice_ceiling(max_hi * 1.08);
        let (y_ticks, decimals) = ticks(y_max);
        let body = root
            .clone()
            .shrink((0, y + 6), (w, h.saturating_sub(y as u32 + 6)));
        let mut chart = ChartBuilder::on(&body)
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
                // whisker with a white halo so it shows over dark bars
                let xm = (x0 + x1) / 2.0;
                for style in [WHITE.stroke_width(4), INK.stroke_width(2)] {
                    chart.draw_series([
                        PathElement::new(vec![(xm, lo), (xm, hi)], style),
                        PathElement::new(vec![(xm - cap, lo), (xm + cap, lo)], style),
                        PathElement::new(vec![(xm - cap, hi), (xm + cap, hi)], style),
                    ])?;
                }
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

        // group labels under the axis
        let n_style = text(14.0, MUTED, HPos::Center, VPos::Top);
        let rotated =
            text(LABEL_SIZE, INK, HPos::Right, VPos::Center).transform(FontTransform::Rotate270);
        for (g, ((_, n), lines)) in self.groups.iter().zip(&labels).enumerate() {
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

/// `s`, cut with `…` to fit `max` pixels.
fn shorten(s: &str, style: &TextStyle, max: u32) -> String {
    if width(s, style) <= max {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut keep = chars.len();
    while keep > 1 {
        keep -= 1;
        let candidate: String = chars[..keep].iter().collect::<String>() + "…";
        if width(&candidate, style) <= max {
            return candidate;
        }
    }
    "…".to_string()
}

// ---------------------------------------------------------------------------------------------
// Heatmap

const CELL_H: i32 = 64;
const HEADER_H: i32 = 58;
const COLORBAR_GAP: i32 = 36;

/// Pixel geometry of a heatmap, shared by [`Heatmap::size`] and [`Heatmap::draw`].
struct HeatGeometry {
    size: (u32, u32),
    top: i32,
    grid_x: i32,
    cell_w: i32,
}

impl Heatmap {
    fn row_style() -> TextStyle<'static> {
        text(16.0, INK, HPos::Right, VPos::Center)
    }

    fn col_style() -> TextStyle<'static> {
        text(16.0, INK, HPos::Center, VPos::Bottom)
    }

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

    fn size(&self) -> (u32, u32) {
        self.geometry().size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        draw_titles(root, &self.title, &self.subtitle)?;
        let HeatGeometry {
            top,
            grid_x,
            cell_w,
            ..
        } = self.geometry();
        let row_style = Self::row_style();
        let col_style = Self::col_style();
        let n_rows = self.rows.len().max(1) as i32;
        let n_cols = self.cols.len().max(1) as i32;
        let grid_y = top + HEADER_H;
        let grid_w = cell_w * n_cols;
        let grid_h = CELL_H * n_rows;

        // attribute names: the column attribute centred over the columns, the row attribute
        // over the row labels
        let axis_style = text(15.0, MUTED, HPos::Center, VPos::Top);
        root.draw(&Text::new(
            self.col_attribute.clone(),
            (grid_x + grid_w / 2, top),
            axis_style,
        ))?;
        root.draw(&Text::new(
            self.row_attribute.clone(),
            (grid_x - 12, grid_y - 6),
            text(15.0, MUTED, HPos::Right, VPos::Bottom),
        ))?;
        for (j, col) in self.cols.iter().enumerate() {
            let cx = grid_x + cell_w * j as i32 + cell_w / 2;
            let lines = wrap(col, &col_style, (cell_w - 8).max(10) as u32);
            let mut ly = grid_y - 6 - 18 * (lines.len() as i32 - 1);
            for line in lines {
                root.draw(&Text::new(line, (cx, ly), col_style.clone()))?;
                ly += 18;
            }
        }

        let max = self
            .cells
            .iter()
            .flatten()
            .flatten()
            .map(|c| c.0)
            .fold(0.0, f64::max);
        let v_max = nice_ceiling(max);
        for (i, row) in self.rows.iter().enumerate() {
            let y0 = grid_y + CELL_H * i as i32;
            root.draw(&Text::new(
                row.clone(),
                (grid_x - 12, y0 + CELL_H / 2),
                row_style.clone(),
            ))?;
            for j in 0..self.cols.len() {
                let x0 = grid_x + cell_w * j as i32;
                let rect = [(x0, y0), (x0 + cell_w, y0 + CELL_H)];
                let (cx, cy) = (x0 + cell_w / 2, y0 + CELL_H / 2);
                match self.cells.get(i).and_then(|r| r.get(j)).copied().flatten() {
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
                root.draw(&Rectangle::new(rect, WHITE.stroke_width(2)))?;
            }
        }
        root.draw(&Rectangle::new(
            [(grid_x, grid_y), (grid_x + grid_w, grid_y + grid_h)],
            RGBColor(190, 190, 190).stroke_width(1),
        ))?;

        // colour bar with ticks
        let bar_x = grid_x + grid_w + COLORBAR_GAP;
        let bar_h = grid_h.max(120);
        let steps = 64;
        for k in 0..steps {
            let ya = grid_y + bar_h - (bar_h as f64 * k as f64 / steps as f64).round() as i32;
            let yb = grid_y + bar_h - (bar_h as f64 * (k + 1) as f64 / steps as f64).round() as i32;
            let color = interpolate(&YLORRD, (k as f64 + 0.5) / steps as f64);
            root.draw(&Rectangle::new(
                [(bar_x, yb), (bar_x + 20, ya)],
                color.filled(),
            ))?;
        }
        root.draw(&Rectangle::new(
            [(bar_x, grid_y), (bar_x + 20, grid_y + bar_h)],
            MUTED.stroke_width(1),
        ))?;
        let tick_style = text(14.0, INK, HPos::Left, VPos::Center);
        let (ticks, decimals) = ticks(v_max);
        for k in 0..=ticks {
            let v = v_max * k as f64 / ticks as f64;
            let ty = grid_y + bar_h - (bar_h as f64 * k as f64 / ticks as f64).round() as i32;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;
    use crate::export::view::{plan, sanitize};

    #[test]
    fn sanitized_names() {
        assert_eq!(sanitize("race*gender"), "race_gender");
        assert_eq!(sanitize("Crime-Related"), "crime-related");
        assert_eq!(sanitize("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitize("<script>"), "script");
        assert_eq!(sanitize("Ωμέγα"), "chart");
        assert!(sanitize(&"x".repeat(500)).len() <= 60);
    }

    #[test]
    fn plan_has_bars_per_attribute_and_heatmaps_per_harmful_category() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let stems: Vec<String> = plan(&report).into_iter().map(|c| c.stem).collect();
        assert_eq!(
            stems,
            [
                "race",
                "gender",
                "race_gender-non-human",
                "race_gender-crime-related"
            ]
        );
    }

    #[test]
    fn colliding_names_get_unique_files() {
        let (mut context, metrics) = testdata::sample();
        context.categories[1].name = "Non Human".into();
        context.categories[2].name = "non_human".into();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let stems: Vec<String> = plan(&report).into_iter().map(|c| c.stem).collect();
        assert_eq!(
            stems[2..],
            ["race_gender-non_human", "race_gender-non_human-2"]
        );
    }

    #[test]
    fn charts_are_written_and_decode() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let files = ChartsExporter.write(&report, dir.path()).unwrap();
        assert_eq!(files.len(), 8);
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            assert!(bytes.len() > 1000, "{} is nearly empty", file.display());
        }
        let png = image::open(dir.path().join("charts/race.png")).unwrap();
        let (context_ref, metrics_ref) = (&context, &metrics);
        let spec = &plan(&Report {
            context: context_ref,
            metrics: metrics_ref,
        })[0];
        let chart = build(&report, spec, Path::new("x")).unwrap();
        assert_eq!((png.width(), png.height()), chart.size());
        let heat = image::open(dir.path().join("charts/race_gender-crime-related.png")).unwrap();
        assert!(heat.width() > 500 && heat.height() > 300);
        let svg = std::fs::read_to_string(dir.path().join("charts/race.svg")).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Share of images per predicted category by race"));
        assert!(svg.contains("Southeast Asian") && svg.contains("crime-related (harmful)"));
        let heat_svg =
            std::fs::read_to_string(dir.path().join("charts/race_gender-crime-related.svg"))
                .unwrap();
        assert!(heat_svg.contains("crime-related: share of images by race × gender"));
        assert!(heat_svg.contains("no images"));
    }

    #[test]
    fn palette_luminance_is_monotonic() {
        for n in 2..9 {
            let l: Vec<f64> = (0..n).map(|i| luminance(category_color(i, n))).collect();
            assert!(l.windows(2).all(|w| w[1] > w[0] + 0.02), "{n}: {l:?}");
        }
        let l: Vec<f64> = (0..=10)
            .map(|k| luminance(interpolate(&YLORRD, k as f64 / 10.0)))
            .collect();
        assert!(l.windows(2).all(|w| w[1] < w[0]), "{l:?}");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 10.0);
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
        assert_eq!(nice_ceiling(41.0), 50.0);
        assert_eq!(nice_ceiling(96.0), 100.0);
        assert_eq!(nice_ceiling(1.2), 2.0);
        assert_eq!(ticks(50.0), (5, 0));
        assert_eq!(ticks(20.0), (4, 0));
        assert_eq!(ticks(25.0), (5, 0));
        assert_eq!(ticks(2.0), (4, 1));
        assert_eq!(ticks(1.0), (5, 1));
    }
}
