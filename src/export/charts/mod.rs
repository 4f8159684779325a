//! Charts with plotters, each as `charts/<name>.png` and `.svg`: per one-attribute grouping,
//! grouped bars of every category's rate with 95% CI whiskers; per intersection, one heatmap per
//! harmful category; with `run --per-template`, per one-attribute grouping and shown category, the
//! range of the rates across templates. Palettes have monotonic luminance, so the charts survive
//! greyscale printing.
//!
//! Here: the exporter, the [`ChartCache`] that lays out and draws each chart once per report (the
//! SVG files and `report.html` share it), and PNG/SVG encoding. The look is in `style`, the kinds
//! of chart in `bars`, `heatmap` and `ranges`.

mod bars;
mod heatmap;
mod ranges;
mod skew;
mod style;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use self::bars::Bars;
use self::heatmap::Heatmap;
use self::ranges::Ranges;
pub(crate) use self::skew::SkewChart;
use self::style::{DrawResult, font_ready};
use super::view::{self, ChartSpec, Index, Layout};
use super::{Artefact, ExportError, Exporter, Report};

/// Writes one PNG and one SVG per chart into `charts/`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChartsExporter;

impl Exporter for ChartsExporter {
    fn render(&self, report: &Report, charts: &ChartCache) -> Result<Vec<Artefact>, ExportError> {
        let mut files = Vec::new();
        for drawn in charts.drawn(report)? {
            let (png_path, svg_path) = paths(&drawn.spec);
            let png = to_png(&drawn.chart, &png_path)?;
            files.push(Artefact::new(png_path, png));
            files.push(Artefact::new(svg_path, drawn.svg.clone()));
        }
        Ok(files)
    }
}

/// The report's charts, each laid out and drawn as SVG at most once however many formats show
/// it: `charts/*.svg` and the figures of `report.html` are the same bytes. One cache serves one
/// report.
#[derive(Debug, Default)]
pub struct ChartCache {
    drawn: OnceCell<Vec<DrawnChart>>,
}

/// One chart of the report, laid out and drawn as SVG.
#[derive(Debug)]
pub(crate) struct DrawnChart {
    /// Which chart it is.
    pub spec: ChartSpec,
    /// Its layout, to draw the PNG from.
    chart: Chart,
    /// The SVG file's text.
    pub svg: String,
}

impl ChartCache {
    /// Every chart of `report` in [`view::plan`] order, drawn on the first call. Errors name the
    /// chart's file relative to the report folder.
    pub(crate) fn drawn(&self, report: &Report) -> Result<&[DrawnChart], ExportError> {
        if let Some(drawn) = self.drawn.get() {
            return Ok(drawn);
        }
        let drawn = view::plan(report)
            .into_iter()
            .map(|spec| DrawnChart::new(report, spec))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.drawn.get_or_init(|| drawn))
    }
}

impl DrawnChart {
    /// Lays out and draws the chart `spec`. A layout error, or a picture too large, names the
    /// PNG: the first file of the chart the charts exporter writes.
    fn new(report: &Report, spec: ChartSpec) -> Result<Self, ExportError> {
        let (png_path, svg_path) = paths(&spec);
        let chart = build(report, &spec, &png_path)?;
        checked_size(&chart, &png_path)?;
        let svg = to_svg(&chart, &svg_path)?;
        Ok(Self { spec, chart, svg })
    }
}

/// A grouped bar chart of ready numbers as (PNG bytes, SVG text): per group (label, images of
/// the reference series), one bar per series with its 95% CI whisker; `values[group][series]`
/// is (rate, ci_low, ci_high). Errors name `path` (the PNG file).
pub fn grouped_bars(
    title: String,
    subtitle: String,
    groups: Vec<(String, u64)>,
    series: Vec<String>,
    values: &[Vec<(f64, f64, f64)>],
    path: &Path,
) -> Result<(Vec<u8>, String), ExportError> {
    if !font_ready() {
        return Err(ExportError::Chart {
            path: path.to_path_buf(),
            message: "the embedded font does not parse".into(),
        });
    }
    let chart = Chart::Bars(Bars::from_parts(title, subtitle, groups, series, values));
    checked_size(&chart, path)?;
    Ok((to_png(&chart, path)?, to_svg(&chart, path)?))
}

/// The chart's PNG and SVG files, relative to the report folder.
fn paths(spec: &ChartSpec) -> (PathBuf, PathBuf) {
    let dir = Path::new("charts");
    (
        dir.join(format!("{}.png", spec.stem)),
        dir.join(format!("{}.svg", spec.stem)),
    )
}

/// A chart ready to draw.
#[derive(Debug)]
enum Chart {
    Bars(Bars),
    Heatmap(Heatmap),
    Skew(SkewChart),
    Ranges(Ranges),
}

/// Lays out the chart `spec` describes; errors name `path`.
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
    Ok(match spec.category {
        None => Chart::Bars(Bars::new(report, spec, &layout, &index)),
        Some(c) => {
            let category = report.context.categories.get(c).ok_or_else(missing)?;
            if spec.ranges {
                Chart::Ranges(Ranges::new(report, spec, &layout, &category.name))
            } else {
                Chart::Heatmap(Heatmap::new(report, spec, &layout, &index, category))
            }
        }
    })
}

/// A retrieval skew chart as `charts/<stem>.png` and `.svg` artefacts, and the SVG text for
/// `report.html`.
pub(crate) fn skew_chart(
    chart: SkewChart,
    stem: &str,
) -> Result<(Vec<Artefact>, String), ExportError> {
    let (png_path, svg_path) = (
        Path::new("charts").join(format!("{stem}.png")),
        Path::new("charts").join(format!("{stem}.svg")),
    );
    if !font_ready() {
        return Err(ExportError::Chart {
            path: png_path,
            message: "the embedded font does not parse".into(),
        });
    }
    let chart = Chart::Skew(chart);
    let png = to_png(&chart, &png_path)?;
    let svg = to_svg(&chart, &svg_path)?;
    Ok((
        vec![
            Artefact::new(png_path, png),
            Artefact::new(svg_path, svg.clone()),
        ],
        svg,
    ))
}

// ---------------------------------------------------------------------------------------------
// Rendering

impl Chart {
    /// The picture's size in pixels.
    fn size(&self) -> (u32, u32) {
        match self {
            Chart::Bars(b) => b.size(),
            Chart::Heatmap(h) => h.size(),
            Chart::Skew(s) => s.size(),
            Chart::Ranges(r) => r.size(),
        }
    }

    /// Draws the chart on `root`, which has [`Chart::size`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        match self {
            Chart::Bars(b) => b.draw(root),
            Chart::Heatmap(h) => h.draw(root),
            Chart::Skew(s) => s.draw(root),
            Chart::Ranges(r) => r.draw(root),
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

/// The chart as PNG bytes; errors name `path`.
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

/// The chart as SVG text; errors name `path`.
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
}
