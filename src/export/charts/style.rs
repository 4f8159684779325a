//! The charts' look, shared by bars and heatmaps: the embedded font, text styles and measuring,
//! word wrap, titles, colour palettes with monotonic luminance, axis ceilings and ticks, hatching.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

/// DejaVu Sans, embedded so drawing needs no system font (licence in `assets/`).
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

/// The family every text of the charts uses; SVG viewers substitute their own sans-serif.
const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters once; false when the font does not parse.
pub(super) fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok())
}

/// What drawing on a plotters area returns.
pub(super) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Text style in the chart font.
pub(super) fn text(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: (FAMILY, size).into_font(),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

/// Text, outlines and whiskers.
pub(super) const INK: RGBColor = RGBColor(33, 33, 33);
/// Secondary text and axes.
pub(super) const MUTED: RGBColor = RGBColor(96, 96, 96);
/// Grid lines.
pub(super) const GRID: RGBColor = RGBColor(224, 224, 224);

/// Linear interpolation between colour stops at `t` in [0, 1].
pub(super) fn interpolate(stops: &[(u8, u8, u8)], t: f64) -> RGBColor {
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
pub(super) const YLORRD: [(u8, u8, u8); 9] = [
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
pub(super) fn category_color(i: usize, n: usize) -> RGBColor {
    if n <= 1 {
        return interpolate(&VIRIDIS, 0.35);
    }
    interpolate(&VIRIDIS, 0.08 + 0.84 * i as f64 / (n - 1) as f64)
}

/// Relative luminance (sRGB approximation), to pick black or white text over a fill.
pub(super) fn luminance(c: RGBColor) -> f64 {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) / 255.0
}

/// A round upper bound for an axis whose data reach `max` (percent): 1, 2, 2.5 or 5 × 10^k.
pub(super) fn nice_ceiling(max: f64) -> f64 {
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
pub(super) fn ticks(max: f64) -> (u32, usize) {
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
pub(super) fn width(s: &str, style: &TextStyle) -> u32 {
    style.font.box_size(s).map_or(0, |(w, _)| w)
}

/// Greedy word wrap of `s` into lines no wider than `max` (a single long word stays whole).
pub(super) fn wrap(s: &str, style: &TextStyle, max: u32) -> Vec<String> {
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

/// Font size of chart titles.
pub(super) const TITLE_SIZE: f64 = 26.0;
/// Font size of chart subtitles.
pub(super) const SUBTITLE_SIZE: f64 = 15.0;

/// Height taken by [`draw_titles`] on a chart `w` pixels wide.
pub(super) fn titles_height(title: &str, subtitle: &str, w: u32) -> i32 {
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
pub(super) fn draw_titles<DB: DrawingBackend>(
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
pub(super) fn hatch<DB: DrawingBackend>(
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

/// `s`, cut with `…` to fit `max` pixels.
pub(super) fn shorten(s: &str, style: &TextStyle, max: u32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
