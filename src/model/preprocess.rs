//! CLIP image preprocessing, bit-compatible with Hugging Face transformers' `CLIPImageProcessor`
//! on its PIL backend (`use_fast=False`, i.e. `CLIPImageProcessorPil`, transformers 5.24 with
//! Pillow 13): resize (shortest edge), center crop (zero padding when the image is smaller than
//! the crop), rescale by 1/255, normalise with mean/std, CHW layout.
//!
//! The resize is a port of Pillow's `libImaging/Resample.c` (two-pass separable convolution
//! with 22-bit fixed-point coefficients and clipping to 0..=255 after each pass; the pass order
//! follows Pillow 13, see `pillow_vertical_first`), so the uint8 image before normalisation
//! equals Pillow's bit for bit. The float steps follow
//! numpy's order and precision (`f64` rescale rounded to `f32`, then `f32` normalisation), so the
//! normalised values are equal too.
//!
//! Size rules copied from transformers: with `{"shortest_edge": s}` the short side becomes `s`
//! and the long side `int(s * long / short)` (truncated, not rounded); with
//! `{"height": h, "width": w}` the image is resized to exactly `h`×`w` (aspect ratio not kept).
//! Crop offsets are `floor((resized - crop) / 2)`; parts of the crop window outside the resized
//! image are zero (black before normalisation).

use std::ops::Range;
use std::path::Path;

use image::RgbImage;
use serde::Serialize;
use serde_json::{Map, Value};

/// Resampling filter, numbered as in PIL (`Image.Resampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resample {
    /// PIL `NEAREST` (0).
    Nearest = 0,
    /// PIL `LANCZOS` (1), a = 3.
    Lanczos = 1,
    /// PIL `BILINEAR` (2), triangle filter.
    Bilinear = 2,
    /// PIL `BICUBIC` (3), cubic convolution with a = -0.5 (CLIP's default).
    Bicubic = 3,
    /// PIL `BOX` (4).
    Box = 4,
    /// PIL `HAMMING` (5).
    Hamming = 5,
}

impl Resample {
    /// The filter for a PIL resampling number; `None` for unknown or unsupported ones
    /// (Pillow 13's MKS2013 = 6 and MKS2021 = 7 are not implemented).
    pub fn from_pil(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Nearest,
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            _ => return None,
        })
    }

    /// The PIL resampling number of this filter.
    pub fn pil_code(self) -> u8 {
        self as u8
    }
}

/// Image preprocessing settings, as in a Hugging Face `preprocessor_config.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreprocessConfig {
    /// Resize before cropping (`do_resize`).
    pub do_resize: bool,
    /// Target length of the shorter side (`size.shortest_edge`); when [`Self::exact_size`] is
    /// set this holds the smaller of its two sides and is not used.
    pub shortest_edge: u32,
    /// Optional cap on the longer side (`size.longest_edge` next to `shortest_edge`).
    pub longest_edge: Option<u32>,
    /// `[height, width]` when the config gives `size` as `{"height", "width"}` (or a list):
    /// resize to exactly that, without keeping the aspect ratio.
    pub exact_size: Option<[u32; 2]>,
    /// Resampling filter used by the resize.
    pub resample: Resample,
    /// Center-crop after resizing (`do_center_crop`).
    pub do_center_crop: bool,
    /// Crop height (`crop_size.height`).
    pub crop_height: u32,
    /// Crop width (`crop_size.width`).
    pub crop_width: u32,
    /// Multiply pixel values by `rescale_factor` (`do_rescale`).
    pub do_rescale: bool,
    /// Rescale factor, normally 1/255; kept in `f64` as transformers multiplies in float64.
    pub rescale_factor: f64,
    /// Subtract `image_mean` and divide by `image_std` (`do_normalize`).
    pub do_normalize: bool,
    /// Per-channel (R, G, B) mean.
    pub image_mean: [f32; 3],
    /// Per-channel (R, G, B) standard deviation.
    pub image_std: [f32; 3],
    /// `do_convert_rgb`; recorded only, since [`preprocess`] always receives RGB
    /// (conversion happens when decoding).
    pub do_convert_rgb: bool,
}

/// OpenAI CLIP's normalisation mean (R, G, B).
pub const OPENAI_CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's normalisation standard deviation (R, G, B).
#[allow(clippy::excessive_precision)] // the published digits, verbatim
pub const OPENAI_CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

impl Default for PreprocessConfig {
    /// OpenAI CLIP (ViT-B/32 etc.): shortest edge 224, bicubic, center crop 224×224, 1/255,
    /// OpenAI mean/std; transformers' `CLIPImageProcessor` class defaults.
    fn default() -> Self {
        Self {
            do_resize: true,
            shortest_edge: 224,
            longest_edge: None,
            exact_size: None,
            resample: Resample::Bicubic,
            do_center_crop: true,
            crop_height: 224,
            crop_width: 224,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: OPENAI_CLIP_MEAN,
            image_std: OPENAI_CLIP_STD,
            do_convert_rgb: true,
        }
    }
}

/// Error reading or interpreting a `preprocessor_config.json`.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read")]
    Io {
        /// File name.
        file: String,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not JSON, or not a JSON object.
    #[error("{file}: not a valid preprocessor config: {reason}")]
    Json {
        /// File name.
        file: String,
        /// Parser message.
        reason: String,
    },
    /// A field has the wrong type or value.
    #[error("{file}: field `{field}`: expected {expected}, got {got}")]
    Field {
        /// File name.
        file: String,
        /// JSON field name (dotted for nested keys).
        field: String,
        /// What was expected.
        expected: String,
        /// What was found.
        got: String,
    },
    /// `resample` names a filter that is not implemented.
    #[error(
        "{file}: field `resample`: unsupported resample {value} \
         (supported: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)"
    )]
    UnsupportedResample {
        /// File name.
        file: String,
        /// The PIL number found.
        value: i64,
    },
}

impl PreprocessConfig {
    /// Parses a `preprocessor_config.json` text (modern or legacy `CLIPFeatureExtractor` keys);
    /// errors name the file as `preprocessor_config.json`.
    pub fn from_json_str(text: &str) -> Result<Self, PreprocessConfigError> {
        Self::from_json_str_named(text, "preprocessor_config.json")
    }

    /// Like [`Self::from_json_str`], naming `source` in error messages.
    pub fn from_json_str_named(text: &str, source: &str) -> Result<Self, PreprocessConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PreprocessConfigError::Json {
            file: source.to_string(),
            reason: e.to_string(),
        })?;
        Parser { file: source }.parse(&value)
    }

    /// Reads and parses a `preprocessor_config.json` file (or a transformers 5
    /// `processor_config.json`, whose `image_processor` section is used).
    pub fn from_file(path: &Path) -> Result<Self, PreprocessConfigError> {
        let file = path.display().to_string();
        let text = crate::input_file::read_regular_text(path).map_err(|source| {
            PreprocessConfigError::Io {
                file: file.clone(),
                source,
            }
        })?;
        Self::from_json_str_named(&text, &file)
    }

    /// `(width, height)` after the resize step for an input of `width`×`height`, computed as
    /// transformers does (before cropping; the input size when `do_resize` is off).
    pub fn resized_size(&self, width: u32, height: u32) -> (u32, u32) {
        if !self.do_resize {
            return (width, height);
        }
        let (h, w) = match (self.exact_size, self.longest_edge) {
            (Some([h, w]), _) => (h, w),
            (None, Some(longest)) => {
                size_with_aspect_ratio(height, width, self.shortest_edge, longest)
            }
            (None, None) => shortest_edge_size(height, width, self.shortest_edge),
        };
        (w.max(1), h.max(1))
    }

    /// `(width, height)` of the model input produced by [`preprocess`] for an input of
    /// `width`×`height`: the crop size when center-cropping, else the resized size.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        if self.do_center_crop {
            (self.crop_width, self.crop_height)
        } else {
            self.resized_size(width, height)
        }
    }
}

/// transformers `get_resize_output_image_size(default_to_square=False)`:
/// short side = `size`, long side = `int(size * long / short)`. Returns `(height, width)`.
fn shortest_edge_size(height: u32, width: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    if short == 0 {
        return (height, width);
    }
    // Python: int(size * long / short); the product is exact, the true division is correctly
    // rounded, as is this f64 division of exactly representable integers.
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (new_long, size)
    } else {
        (size, new_long)
    }
}

/// transformers `get_size_with_aspect_ratio((h, w), size, max_size)`, used when both
/// `shortest_edge` and `longest_edge` are given. Returns `(height, width)`.
fn size_with_aspect_ratio(height: u32, width: u32, size: u32, max_size: u32) -> (u32, u32) {
    if height == 0 || width == 0 {
        return (height, width);
    }
    let (h, w) = (f64::from(height), f64::from(width));
    let mut size = size;
    let mut raw_size = None;
    let (min_o, max_o) = (h.min(w), h.max(w));
    if max_o / min_o * f64::from(size) > f64::from(max_size) {
        let raw = f64::from(max_size) * min_o / max_o;
        raw_size = Some(raw);
        size = raw.round_ties_even() as u32; // Python round(): half to even
    }
    if (height <= width && height == size) || (width <= height && width == size) {
        (height, width)
    } else if width < height {
        let oh = match raw_size {
            Some(raw) => (raw * h / w) as u32,
            None => (f64::from(size) * h / w) as u32,
        };
        (oh, size)
    } else {
        let ow = match raw_size {
            Some(raw) => (raw * w / h) as u32,
            None => (f64::from(size) * w / h) as u32,
        };
        (size, ow)
    }
}

/// Resizes, center-crops, rescales and normalises `image` as transformers'
/// `CLIPImageProcessor` (PIL backend) does; returns CHW `f32` data of length
/// `3 * h * w` with `(w, h) = cfg.output_size(image.width(), image.height())`.
pub fn preprocess(image: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    to_chw_f32(&preprocess_u8(image, cfg), cfg)
}

/// The resized and cropped 8-bit image, before rescaling and normalisation (equal to the
/// uint8 array transformers holds at that point).
pub fn preprocess_u8(image: &RgbImage, cfg: &PreprocessConfig) -> RgbImage {
    let (in_w, in_h) = image.dimensions();
    let (rw, rh) = cfg.resized_size(in_w, in_h);
    let (out_w, out_h, off_x, off_y) = if cfg.do_center_crop {
        let (cw, ch) = (cfg.crop_width, cfg.crop_height);
        // transformers: top = (orig_height - crop_height) // 2 (floor, may be negative).
        let off_y = (i64::from(rh) - i64::from(ch)).div_euclid(2);
        let off_x = (i64::from(rw) - i64::from(cw)).div_euclid(2);
        (cw, ch, off_x, off_y)
    } else {
        (rw, rh, 0, 0)
    };
    // The part of the resized image that lands in the output window.
    let clip = |off: i64, out: u32, size: u32| -> Range<u32> {
        let lo = off.clamp(0, i64::from(size));
        let hi = (off + i64::from(out)).clamp(lo, i64::from(size));
        (lo as u32)..(hi as u32)
    };
    let rows = clip(off_y, out_h, rh);
    let cols = clip(off_x, out_w, rw);
    let mut out = RgbImage::new(out_w, out_h);
    if rows.is_empty() || cols.is_empty() || in_w == 0 || in_h == 0 {
        return out;
    }
    // Only the pixels that survive the crop are computed; each output pixel of Pillow's
    // resize depends on its own row/column coefficients only, so this changes nothing.
    let region = if (rw, rh) == (in_w, in_h) {
        copy_region(image, rows.clone(), cols.clone())
    } else {
        resize_region(image, rw, rh, cfg.resample, rows.clone(), cols.clone())
    };
    let region_w = cols.len();
    let dst_x = (i64::from(cols.start) - off_x) as usize;
    let dst_y = (i64::from(rows.start) - off_y) as usize;
    let out_stride = out_w as usize * 3;
    let buf: &mut [u8] = &mut out;
    for (i, src_row) in region.chunks_exact(region_w * 3).enumerate() {
        let start = (dst_y + i) * out_stride + dst_x * 3;
        buf[start..start + region_w * 3].copy_from_slice(src_row);
    }
    out
}

/// Rescales and normalises an 8-bit RGB image into CHW `f32`, with numpy's arithmetic:
/// `f32(f64(v) * rescale_factor)`, then `(x - mean) / std` in `f32`.
pub fn to_chw_f32(image: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = image.width() as usize * image.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    for (c, dst) in out.chunks_exact_mut(plane.max(1)).enumerate().take(3) {
        let (mean, std) = (cfg.image_mean[c], cfg.image_std[c]);
        // 256-entry lookup: every uint8 value maps to one float.
        let lut: Vec<f32> = (0..=255u8)
            .map(|v| {
                let x = if cfg.do_rescale {
                    (f64::from(v) * cfg.rescale_factor) as f32
                } else {
                    f32::from(v)
                };
                if cfg.do_normalize {
                    (x - mean) / std
                } else {
                    x
                }
            })
            .collect();
        for (d, px) in dst.iter_mut().zip(image.pixels()) {
            *d = lut[usize::from(px[c])];
        }
    }
    out
}

/// Resizes to exactly `width`×`height` as Pillow's `Image.resize` does for an RGB image
/// (bit-exact for every [`Resample`] filter).
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32, resample: Resample) -> RgbImage {
    let (w, h) = (width.max(1), height.max(1));
    if image.width() == 0 || image.height() == 0 {
        return RgbImage::new(w, h);
    }
    let data = if image.dimensions() == (w, h) {
        image.as_raw().clone()
    } else {
        resize_region(image, w, h, resample, 0..h, 0..w)
    };
    RgbImage::from_raw(w, h, data).unwrap_or_else(|| RgbImage::new(w, h))
}

fn copy_region(image: &RgbImage, rows: Range<u32>, cols: Range<u32>) -> Vec<u8> {
    let stride = image.width() as usize * 3;
    let raw = image.as_raw();
    let mut out = Vec::with_capacity(rows.len() * cols.len() * 3);
    for y in rows {
        let start = y as usize * stride + cols.start as usize * 3;
        out.extend_from_slice(&raw[start..start + cols.len() * 3]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Port of Pillow's libImaging/Resample.c (8 bits per channel path).

/// Fixed-point precision of the convolution coefficients: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Rounding term the accumulators start from.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

fn filter_support(f: Resample) -> f64 {
    match f {
        Resample::Box => 0.5,
        Resample::Bilinear | Resample::Hamming => 1.0,
        Resample::Bicubic => 2.0,
        Resample::Lanczos => 3.0,
        Resample::Nearest => 0.0, // not a convolution filter; handled separately
    }
}

/// Pillow's filter functions, same expressions and order of operations (f64).
fn filter_eval(f: Resample, x: f64) -> f64 {
    match f {
        Resample::Box => {
            if x > -0.5 && x <= 0.5 {
                1.0
            } else {
                0.0
            }
        }
        Resample::Bilinear => {
            let x = x.abs();
            if x < 1.0 { 1.0 - x } else { 0.0 }
        }
        Resample::Hamming => {
            let x = x.abs();
            if x == 0.0 {
                1.0
            } else if x >= 1.0 {
                0.0
            } else {
                let x = x * std::f64::consts::PI;
                // C: sin(x) / x * (0.54f + 0.46f * cos(x)), with float literals.
                x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
            }
        }
        Resample::Bicubic => {
            const A: f64 = -0.5;
            let x = x.abs();
            if x < 1.0 {
                ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * A
            } else {
                0.0
            }
        }
        Resample::Lanczos => {
            if (-3.0..3.0).contains(&x) {
                sinc(x) * sinc(x / 3.0)
            } else {
                0.0
            }
        }
        Resample::Nearest => 0.0,
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Integer convolution coefficients for a range of output positions along one axis.
struct Kernel {
    /// Coefficient slots per output position (Pillow's `ksize`).
    ksize: usize,
    /// First input index used by each output position.
    start: Vec<usize>,
    /// Number of input indices used by each output position.
    len: Vec<usize>,
    /// `ksize` coefficients per output position, 22-bit fixed point.
    coeffs: Vec<i32>,
}

impl Kernel {
    /// Input positions read by any of the output positions.
    fn span(&self) -> Range<usize> {
        let first = self.start.iter().copied().min().unwrap_or(0);
        let last = (0..self.start.len())
            .map(|i| self.start[i] + self.len[i])
            .max()
            .unwrap_or(first);
        first..last.max(first)
    }

    #[inline]
    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let k = &self.coeffs[i * self.ksize..i * self.ksize + self.len[i]];
        (self.start[i], k)
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for output positions `range`
/// (box = the whole input, as `Image.resize` uses by default).
fn precompute_coeffs(in_size: u32, out_size: u32, filter: Resample, range: Range<u32>) -> Kernel {
    // C: in0/in1 are floats (box), scale is double.
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = filter_support(filter) * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let n = range.len();
    let mut start = Vec::with_capacity(n);
    let mut len = Vec::with_capacity(n);
    let mut coeffs = vec![0i32; n * ksize];
    let mut w = vec![0f64; ksize];
    for (i, xx) in range.enumerate() {
        let center = f64::from(in0) + (f64::from(xx) + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C: (int)(center -/+ support + 0.5), truncation toward zero, then clamped.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size));
        let count = ((xmax - xmin).max(0) as usize).min(ksize);
        let mut ww = 0.0;
        for (x, slot) in w.iter_mut().enumerate().take(count) {
            let v = filter_eval(filter, (x as f64 + xmin as f64 - center + 0.5) * ss);
            *slot = v;
            ww += v;
        }
        let k = &mut coeffs[i * ksize..i * ksize + count];
        for (dst, &v) in k.iter_mut().zip(&w[..count]) {
            let v = if ww != 0.0 { v / ww } else { v };
            let scaled = v * f64::from(1u32 << PRECISION_BITS);
            // C: (int)(±0.5 + k * (1 << PRECISION_BITS)), truncation toward zero.
            *dst = if v < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            };
        }
        start.push(xmin as usize);
        len.push(count);
    }
    Kernel {
        ksize,
        start,
        len,
        coeffs,
    }
}

/// Pillow's nearest-neighbour resize (`ImagingScaleAffine`): source index per output index,
/// for output positions `range`.
fn nearest_indices(in_size: u32, out_size: u32, range: Range<u32>) -> Vec<usize> {
    // C: a = (double)(box[1] - box[0]) / size; xo = box[0] + a * 0.5; xo += a per step.
    let a = f64::from(in_size as f32) / f64::from(out_size);
    let mut xo = a * 0.5;
    let mut out = Vec::with_capacity(range.len());
    for x in 0..range.end {
        if x >= range.start {
            // COORD(v): v < 0 ? -1 : (int)v; always inside the image for a full-image box.
            let xin = if xo < 0.0 { 0 } else { xo as usize };
            out.push(xin.min(in_size.saturating_sub(1) as usize));
        }
        xo += a;
    }
    out
}

/// Pillow's `ImagingResample` of an RGB image to `out_w`×`out_h`, computing only output rows
/// `rows` and columns `cols`; returns those pixels, row-major RGB.
fn resize_region(
    image: &RgbImage,
    out_w: u32,
    out_h: u32,
    filter: Resample,
    rows: Range<u32>,
    cols: Range<u32>,
) -> Vec<u8> {
    let (in_w, in_h) = image.dimensions();
    let src = image.as_raw().as_slice();
    let in_stride = in_w as usize;
    let rows_us = rows.start as usize..rows.end as usize;
    let cols_us = cols.start as usize..cols.end as usize;
    if filter == Resample::Nearest {
        let xs = nearest_indices(in_w, out_w, cols);
        let ys = nearest_indices(in_h, out_h, rows);
        let mut out = Vec::with_capacity(ys.len() * xs.len() * 3);
        for y in ys {
            let row = &src[y * in_stride * 3..(y + 1) * in_stride * 3];
            for &x in &xs {
                out.extend_from_slice(&row[x * 3..x * 3 + 3]);
            }
        }
        return out;
    }

    let need_horizontal = out_w != in_w;
    let need_vertical = out_h != in_h;
    let horiz = need_horizontal.then(|| precompute_coeffs(in_w, out_w, filter, cols.clone()));
    let vert = need_vertical.then(|| precompute_coeffs(in_h, out_h, filter, rows.clone()));
    match (horiz, vert) {
        (None, None) => copy_region(image, rows, cols),
        (Some(h), None) => horizontal_pass(src, in_stride, rows_us, &h, 0),
        (None, Some(v)) => vertical_pass(src, in_stride, 0, cols_us, &v),
        (Some(h), Some(v)) if !pillow_vertical_first(in_w, in_h, out_w, out_h) => {
            // Horizontal pass only over the source rows the vertical pass reads
            // (Pillow's ybox_first..ybox_last).
            let span = v.span();
            let tmp = horizontal_pass(src, in_stride, span.clone(), &h, 0);
            vertical_pass(&tmp, cols_us.len(), span.start, 0..cols_us.len(), &v)
        }
        (Some(h), Some(v)) => {
            // Vertical pass only over the source columns the horizontal pass reads.
            let span = h.span();
            let tmp = vertical_pass(src, in_stride, 0, span.clone(), &v);
            horizontal_pass(&tmp, span.len(), 0..rows_us.len(), &h, span.start)
        }
    }
}

/// Which pass Pillow 13 runs first when both are needed. Pillow 13 no longer always starts
/// with the horizontal pass: it runs the vertical pass first when the image shrinks vertically
/// by more than twice as many pixels as it shrinks (or grows) horizontally. This rule was
/// inferred from Pillow 13.0.0's output (its source was not available here) and agrees with
/// it on every one of ~7,700 resizes where the two orders give different pixels; the order
/// changes results by up to a few uint8 levels, so it must be followed for bit-exactness.
fn pillow_vertical_first(in_w: u32, in_h: u32, out_w: u32, out_h: u32) -> bool {
    let shrink_h = i64::from(in_h) - i64::from(out_h);
    let shrink_w = i64::from(in_w) - i64::from(out_w);
    shrink_h > 0 && shrink_h > 2 * shrink_w
}

/// Horizontal convolution of rows `src_rows` of an RGB buffer `stride` pixels wide whose
/// column 0 is source column `col0`; one output column per kernel position.
fn horizontal_pass(
    src: &[u8],
    stride: usize,
    src_rows: Range<usize>,
    k: &Kernel,
    col0: usize,
) -> Vec<u8> {
    let ncols = k.start.len();
    let mut out = vec![0u8; src_rows.len() * ncols * 3];
    if ncols == 0 {
        return out;
    }
    for (dst_row, y) in out.chunks_exact_mut(ncols * 3).zip(src_rows) {
        let src_row = &src[y * stride * 3..(y + 1) * stride * 3];
        for (i, dst) in dst_row.chunks_exact_mut(3).enumerate() {
            let (xmin, taps) = k.taps(i);
            let x0 = (xmin - col0) * 3;
            let px = &src_row[x0..x0 + taps.len() * 3];
            let (mut r, mut g, mut b) = (HALF, HALF, HALF);
            for (p, &kv) in px.chunks_exact(3).zip(taps) {
                r += i32::from(p[0]) * kv;
                g += i32::from(p[1]) * kv;
                b += i32::from(p[2]) * kv;
            }
            dst[0] = clip8(r);
            dst[1] = clip8(g);
            dst[2] = clip8(b);
        }
    }
    out
}

/// Vertical convolution of columns `cols` of an RGB buffer `stride` pixels wide whose row 0
/// is source row `row0`; one output row per kernel position.
fn vertical_pass(
    src: &[u8],
    stride: usize,
    row0: usize,
    cols: Range<usize>,
    k: &Kernel,
) -> Vec<u8> {
    let width = cols.len() * 3;
    let mut out = vec![0u8; k.start.len() * width];
    if width == 0 {
        return out;
    }
    let mut acc = vec![0i32; width];
    for (i, dst_row) in out.chunks_exact_mut(width).enumerate() {
        let (ymin, taps) = k.taps(i);
        acc.fill(HALF);
        for (t, &kv) in taps.iter().enumerate() {
            let s = ((ymin + t - row0) * stride + cols.start) * 3;
            for (a, &p) in acc.iter_mut().zip(&src[s..s + width]) {
                *a += i32::from(p) * kv;
            }
        }
        for (d, &a) in dst_row.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Config parsing.

struct Parser<'a> {
    file: &'a str,
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(_) => "an object".to_string(),
    }
}

impl Parser<'_> {
    fn err(&self, field: &str, expected: &str, got: impl Into<String>) -> PreprocessConfigError {
        PreprocessConfigError::Field {
            file: self.file.to_string(),
            field: field.to_string(),
            expected: expected.to_string(),
            got: got.into(),
        }
    }

    fn parse(&self, root: &Value) -> Result<PreprocessConfig, PreprocessConfigError> {
        let Value::Object(obj) = root else {
            return Err(PreprocessConfigError::Json {
                file: self.file.to_string(),
                reason: format!("expected a JSON object, got {}", describe(root)),
            });
        };
        // transformers 5 processor_config.json nests the image processor settings.
        let obj = match obj.get("image_processor") {
            Some(Value::Object(inner)) if !obj.contains_key("size") => inner,
            _ => obj,
        };
        // `null` means "use the class default", as in transformers.
        let get = |k: &str| obj.get(k).filter(|v| !v.is_null());
        let mut cfg = PreprocessConfig::default();

        if let Some(v) = get("do_resize") {
            cfg.do_resize = self.bool("do_resize", v)?;
        }
        let default_to_square = match get("default_to_square") {
            Some(v) => self.bool("default_to_square", v)?,
            None => false, // CLIPImageProcessor.default_to_square
        };
        if let Some(v) = get("size") {
            self.size(v, default_to_square, &mut cfg)?;
        }
        if let Some(v) = get("resample") {
            let code = v.as_i64().ok_or_else(|| {
                self.err("resample", "a PIL resampling number (integer)", describe(v))
            })?;
            cfg.resample = Resample::from_pil(code).ok_or_else(|| {
                PreprocessConfigError::UnsupportedResample {
                    file: self.file.to_string(),
                    value: code,
                }
            })?;
        }
        if let Some(v) = get("do_center_crop") {
            cfg.do_center_crop = self.bool("do_center_crop", v)?;
        }
        if let Some(v) = get("crop_size") {
            let [h, w] = self.crop_size(v)?;
            cfg.crop_height = h;
            cfg.crop_width = w;
        }
        if let Some(v) = get("do_rescale") {
            cfg.do_rescale = self.bool("do_rescale", v)?;
        }
        if let Some(v) = get("rescale_factor") {
            cfg.rescale_factor = v
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.err("rescale_factor", "a number", describe(v)))?;
        }
        if let Some(v) = get("do_normalize") {
            cfg.do_normalize = self.bool("do_normalize", v)?;
        }
        if let Some(v) = get("image_mean") {
            cfg.image_mean = self.triple("image_mean", v)?;
        }
        if let Some(v) = get("image_std") {
            let std = self.triple("image_std", v)?;
            if std.contains(&0.0) {
                return Err(self.err("image_std", "3 non-zero numbers", format!("{std:?}")));
            }
            cfg.image_std = std;
        }
        if let Some(v) = get("do_convert_rgb") {
            cfg.do_convert_rgb = self.bool("do_convert_rgb", v)?;
        }
        Ok(cfg)
    }

    fn bool(&self, field: &str, v: &Value) -> Result<bool, PreprocessConfigError> {
        v.as_bool()
            .ok_or_else(|| self.err(field, "true or false", describe(v)))
    }

    fn positive(&self, field: &str, v: &Value) -> Result<u32, PreprocessConfigError> {
        v.as_u64()
            .filter(|&n| n > 0)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.err(field, "a positive integer", describe(v)))
    }

    fn triple(&self, field: &str, v: &Value) -> Result<[f32; 3], PreprocessConfigError> {
        let expected = "3 numbers";
        match v {
            // A single number applies to every channel (transformers broadcasts it).
            Value::Number(n) => n
                .as_f64()
                .map(|x| [x as f32; 3])
                .ok_or_else(|| self.err(field, expected, describe(v))),
            Value::Array(items) if items.len() == 3 => {
                let mut out = [0f32; 3];
                for (o, item) in out.iter_mut().zip(items) {
                    // transformers builds a float32 array from the JSON doubles.
                    *o = item.as_f64().ok_or_else(|| {
                        self.err(field, expected, format!("{} in the list", describe(item)))
                    })? as f32;
                }
                Ok(out)
            }
            Value::Array(items) => Err(self.err(field, expected, items.len().to_string())),
            other => Err(self.err(field, expected, describe(other))),
        }
    }

    /// `size`: int (shortest edge, or square with `default_to_square`), `[h, w]`, or a dict
    /// with keys {shortest_edge}, {shortest_edge, longest_edge} or {height, width}.
    fn size(
        &self,
        v: &Value,
        default_to_square: bool,
        cfg: &mut PreprocessConfig,
    ) -> Result<(), PreprocessConfigError> {
        let expected = "an integer, [height, width], or an object with `shortest_edge` \
                        (optionally `longest_edge`) or `height` and `width`";
        match v {
            Value::Number(_) => {
                let s = self.positive("size", v)?;
                if default_to_square {
                    cfg.exact_size = Some([s, s]);
                }
                cfg.shortest_edge = s;
            }
            Value::Array(_) => {
                let [h, w] = self.pair("size", v)?;
                cfg.exact_size = Some([h, w]);
                cfg.shortest_edge = h.min(w);
            }
            Value::Object(map) => {
                let keys = sorted_keys(map);
                match keys.as_slice() {
                    ["shortest_edge"] => {
                        cfg.shortest_edge =
                            self.positive("size.shortest_edge", &map["shortest_edge"])?;
                    }
                    ["longest_edge", "shortest_edge"] => {
                        cfg.shortest_edge =
                            self.positive("size.shortest_edge", &map["shortest_edge"])?;
                        let longest = self.positive("size.longest_edge", &map["longest_edge"])?;
                        if longest <= cfg.shortest_edge {
                            return Err(self.err(
                                "size.longest_edge",
                                "a value greater than `shortest_edge`",
                                longest.to_string(),
                            ));
                        }
                        cfg.longest_edge = Some(longest);
                    }
                    ["height", "width"] => {
                        let h = self.positive("size.height", &map["height"])?;
                        let w = self.positive("size.width", &map["width"])?;
                        cfg.exact_size = Some([h, w]);
                        cfg.shortest_edge = h.min(w);
                    }
                    _ => return Err(self.err("size", expected, format!("keys {keys:?}"))),
                }
            }
            other => return Err(self.err("size", expected, describe(other))),
        }
        Ok(())
    }

    /// `crop_size`: int (square), `[h, w]`, or `{"height", "width"}`.
    fn crop_size(&self, v: &Value) -> Result<[u32; 2], PreprocessConfigError> {
        match v {
            Value::Number(_) => {
                let s = self.positive("crop_size", v)?;
                Ok([s, s])
            }
            Value::Array(_) => self.pair("crop_size", v),
            Value::Object(map) => {
                let keys = sorted_keys(map);
                if keys != ["height", "width"] {
                    return Err(self.err(
                        "crop_size",
                        "an object with exactly `height` and `width`",
                        format!("keys {keys:?}"),
                    ));
                }
                Ok([
                    self.positive("crop_size.height", &map["height"])?,
                    self.positive("crop_size.width", &map["width"])?,
                ])
            }
            other => Err(self.err(
                "crop_size",
                "an integer, [height, width] or {\"height\", \"width\"}",
                describe(other),
            )),
        }
    }

    fn pair(&self, field: &str, v: &Value) -> Result<[u32; 2], PreprocessConfigError> {
        match v {
            Value::Array(items) if items.len() == 2 => Ok([
                self.positive(field, &items[0])?,
                self.positive(field, &items[1])?,
            ]),
            other => Err(self.err(field, "[height, width]", describe(other))),
        }
    }
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
        RgbImage::from_fn(w, h, |_, _| {
            let mut px = [0u8; 3];
            for c in &mut px {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *c = (s >> 24) as u8;
            }
            image::Rgb(px)
        })
    }

    #[test]
    fn modern_config() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"crop_size": {"height": 224, "width": 224}, "do_center_crop": true,
                "do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_processor_type": "CLIPImageProcessor",
                "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
                "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}}"#,
        )
        .expect("parse");
        assert_eq!(cfg, PreprocessConfig::default());
    }

    #[test]
    fn legacy_config() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"crop_size": 336, "do_center_crop": true, "do_normalize": true,
                "do_resize": true, "feature_extractor_type": "CLIPFeatureExtractor",
                "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                "resample": 2, "size": 336}"#,
        )
        .expect("parse");
        assert_eq!(cfg.shortest_edge, 336);
        assert_eq!(cfg.exact_size, None);
        assert_eq!((cfg.crop_height, cfg.crop_width), (336, 336));
        assert_eq!(cfg.resample, Resample::Bilinear);
        assert_eq!(cfg.image_mean, [0.5; 3]);
        assert!(cfg.do_rescale); // absent -> class default
    }

    #[test]
    fn exact_and_other_size_forms() {
        let cfg = PreprocessConfig::from_json_str(
            r#"{"size": {"height": 100, "width": 50}, "crop_size": [40, 30], "unknown": 1}"#,
        )
        .expect("parse");
        assert_eq!(cfg.exact_size, Some([100, 50]));
        assert_eq!((cfg.crop_height, cfg.crop_width), (40, 30));
        assert_eq!(cfg.resized_size(640, 480), (50, 100));
        let cfg = PreprocessConfig::from_json_str(r#"{"size": 64, "default_to_square": true}"#)
            .expect("parse");
        assert_eq!(cfg.exact_size, Some([64, 64]));
        let cfg = PreprocessConfig::from_json_str(
            r#"{"image_processor": {"size": {"shortest_edge": 64}}}"#,
        )
        .expect("nested");
        assert_eq!(cfg.shortest_edge, 64);
        let cfg = PreprocessConfig::from_json_str(r#"{"image_mean": null, "image_std": 0.5}"#)
            .expect("parse");
        assert_eq!(cfg.image_mean, OPENAI_CLIP_MEAN);
        assert_eq!(cfg.image_std, [0.5; 3]);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#"{"image_mean": [0.5]}"#,
                "preprocessor_config.json: field `image_mean`: expected 3 numbers, got 1",
            ),
            (r#"{"size": "big"}"#, "field `size`"),
            (
                r#"{"size": {"shortest_edge": -1}}"#,
                "field `size.shortest_edge`: expected a positive integer, got -1",
            ),
            (r#"{"size": {"longest_edge": 300}}"#, "field `size`"),
            (r#"{"crop_size": {"height": 224}}"#, "field `crop_size`"),
            (
                r#"{"do_resize": "yes"}"#,
                "field `do_resize`: expected true or false",
            ),
            (r#"{"resample": 7}"#, "unsupported resample 7"),
            (r#"{"resample": "bicubic"}"#, "field `resample`"),
            (r#"{"image_std": [1, 0, 1]}"#, "field `image_std`"),
            (r#"[1, 2]"#, "expected a JSON object"),
            (r#"{"size": "#, "not a valid preprocessor config"),
        ];
        for (text, want) in cases {
            let err = PreprocessConfig::from_json_str(text)
                .expect_err(text)
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn resize_sizes_follow_transformers() {
        let cfg = PreprocessConfig::default();
        assert_eq!(cfg.resized_size(640, 480), (298, 224)); // int(224 * 640 / 480) = 298
        assert_eq!(cfg.resized_size(333, 517), (224, 347)); // int(347.77) = 347
        assert_eq!(cfg.resized_size(1, 300), (224, 67200));
        assert_eq!(cfg.resized_size(100, 60), (373, 224));
        let mut cfg = cfg;
        cfg.longest_edge = Some(300);
        assert_eq!(cfg.resized_size(640, 480), (298, 224)); // 298.67 <= 300: no cap
        cfg.longest_edge = Some(254);
        // get_size_with_aspect_ratio: raw = 254*480/640 = 190.5 -> round() half-to-even 190
        assert_eq!(cfg.resized_size(640, 480), (254, 190));
        assert_eq!(cfg.resized_size(224, 224), (224, 224));
    }

    #[test]
    fn identity_resize_and_constant_image() {
        let img = noise(37, 23, 1);
        for f in [
            Resample::Bicubic,
            Resample::Bilinear,
            Resample::Lanczos,
            Resample::Nearest,
        ] {
            assert_eq!(resize_rgb(&img, 37, 23, f), img);
        }
        let flat = RgbImage::from_pixel(50, 31, image::Rgb([7, 128, 255]));
        for f in [
            Resample::Bicubic,
            Resample::Bilinear,
            Resample::Lanczos,
            Resample::Box,
            Resample::Hamming,
            Resample::Nearest,
        ] {
            for (w, h) in [(17, 9), (120, 77), (50, 5), (3, 31)] {
                let out = resize_rgb(&flat, w, h, f);
                assert!(out.pixels().all(|p| p.0 == [7, 128, 255]), "{f:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn hand_checked_resizes() {
        // 4 -> 2 pixels, bilinear: scale 2, so support 2 and taps at (x - center + 0.5) / 2.
        let row = |v: [u8; 4]| RgbImage::from_fn(4, 1, |x, _| image::Rgb([v[x as usize]; 3]));
        let out = resize_rgb(&row([0, 40, 80, 120]), 2, 1, Resample::Bilinear);
        // center 1.0: taps x=0..2 at distances 0.5,0.5,1.5 over scale 2 -> 0.75,0.75,0.25;
        // normalised 3/7,3/7,1/7 -> (0 + 120 + 80)/7 = 28.57 -> 29.
        // center 3.0: taps x=1..3 -> 1/7,3/7,3/7 -> (40 + 240 + 360)/7 = 91.43 -> 91.
        assert_eq!(out.pixels().map(|p| p[0]).collect::<Vec<_>>(), [29, 91]);
        // Box 4 -> 2 is a plain pair average (rounded half up).
        let out = resize_rgb(&row([0, 41, 80, 120]), 2, 1, Resample::Box);
        assert_eq!(out.pixels().map(|p| p[0]).collect::<Vec<_>>(), [21, 100]);
        // Nearest 4 -> 2 takes pixels 1 and 3 (centers 1.0 and 3.0).
        let out = resize_rgb(&row([0, 41, 80, 120]), 2, 1, Resample::Nearest);
        assert_eq!(out.pixels().map(|p| p[0]).collect::<Vec<_>>(), [41, 120]);
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn matches_pillow_13_golden_resizes() {
        // (w, h, out_w, out_h, PIL filter, input RGB hex, Image.resize output hex), made with
        // Pillow 13.0.0 from random pixels; covers both pass orders, up- and downscaling.
        let cases = [
            (
                8,
                6,
                3,
                4,
                3,
                "8b4ae5f1a94106a0956a26afbccdafe562f90a945f5693c642276ad5ab2da7394551370e99b2d74c3427fa48d732a1df70aca1e926115901dd06f27f8f063cd25e19a621f9bd0ccc21397c1ec795ca7748dc03d17a88934d85527357a2e64647f03e2fb81f223f4192c58efd5185f0711ef7677a1f132a818d882195a100b28d6b236b82481bd9fe630dc3ce3be4ebca",
                "90746f8674947083ae8c5b67705f5cae3da9765e6f8f63b1745076a071316f5caca68f6c",
            ),
            (
                5,
                12,
                4,
                3,
                3,
                "b72f45b35223479f6e794d57037e2cfde9e15a7789781e3721a557d8e5a703296dcb81db3f65cf9c1bdc5d1d8fc83f0b0bb4db71be572209851d3d24f4c0cf83fe4363f82f4759778955f6ced681cbea7179ced2c8f814a13472ff70ce369d8385452a44f318337f08cd1e614f235d3f83bc45fee9ee0403a79be118544441317c9311f85e0429b19f7ec0e156f65a3322e791b880ee995e3f0d307d2fbaf400693a179e0d027ed4e58be7a9ebc28a271d43a788",
                "9f797f738f86575e7861667ec48e9063a17168aa747d525882758b7679875c838e617063",
            ),
            (
                4,
                3,
                7,
                5,
                2,
                "55638144eb6603f7b2725de11fe6ac2f88a68182869793f0aad6ded8116e3ab51681c4a3",
                "5563814f947745e16824f18c0becb54a94d0725de13f97923ea78b3cc08139c6903bc2a56691ce8173e71fe6ac25c4aa2e8fa658859683838e8f8dca9793f072dcca7ea5b1924c897571645aa24c78ab958ab0c2aad6deba90b6d51f768963423fb62068bf7181c4a3",
            ),
            (
                9,
                7,
                4,
                6,
                1,
                "74fec70a68b3e4bdc92b387987416c17ec90963ec766888ab4b80eba7c5cfd81121bea9cee1810dfd5169faf26cd7b5c30c8aba44d972299e8c7b41b9a1d2b0f180600a974d63b6332202c998e82b2522c49c4394c7d73265b6aaf61b288fbd0aecfa766616223611e764c93aa388ffabd0a6a6412b209971e2d827076f7e49ab8fa197271be53a3442b128cdad72bad0f8aeef42a0b9a26d74fc78f2562b8701097a55b5510543d27ed600de3200a6749307fd37899c118819af66743",
                "6ab5b4826d83668f8c8a9074b68e538f731ea88934857d8c528b6a5561656b8175694d449087367b5f839194c59a675e93677e8339919055a06f64a14d715f1aba4d3f7ca672768c",
            ),
            (
                10,
                10,
                7,
                3,
                3,
                "aa5f93f32c810a37ca7bf1013ccdf8ab8ab4a6039954e84cbe3b3f7f1183c3df8375c517b4e786a9aadf7488f892b12191387ad86aca56d8531c927b931fe8f16e795b9b331767e712dbe8f5331dd9917f01e64710dd3c25f4d21690a049453135550ec0193a8bed1783d53ec944658d1d28960c44b0382e93438e60788d51e279a131f8130b3ea4bd2f5d95e57bd791436d840f4e6654608135bbfb885d346959a49b36402a4f3dcc489fb6511fbe09e5d72bf834e04fe028ca4991e02abd77279fedc206d2318ca8b8287a6f4b795209575d7277d456c0f6e81a0e584d730660f56bb8b588475f7066c1cd7109c5079a933ee857db751ff223726ad90697f749f7c61bd80163a8c9a356ba91d79f6d24ee3a14ebd41386d8faef6e9e6c70df41dba9aeb5301e5824b7db0e",
                "a3778b7e855a679da57fa989b05e6f6a9e5d5186705e72986b877d655b886e6c569674868a5c6e70438a9d7567c77691558284bd3cbe926fa9767b6585985c",
            ),
        ];
        for (w, h, ow, oh, f, src, want) in cases {
            let img = RgbImage::from_raw(w, h, unhex(src)).expect("input");
            let filter = Resample::from_pil(f).expect("filter");
            let got = resize_rgb(&img, ow, oh, filter);
            assert_eq!(
                got.as_raw(),
                &unhex(want),
                "{w}x{h} -> {ow}x{oh} {filter:?}"
            );
        }
        assert!(pillow_vertical_first(5, 12, 4, 3));
        assert!(!pillow_vertical_first(8, 6, 3, 4));
        assert!(!pillow_vertical_first(200, 400, 10, 20)); // 380 == 2 * 190: horizontal first
        assert!(pillow_vertical_first(200, 400, 11, 20));
    }

    #[test]
    fn bicubic_coefficients_match_pillow_fixed_point() {
        // Upscaling 2 -> 4: centers at 0.25, 0.75 ...; Pillow coefficients for output 0
        // are bicubic((x - 0.25 + 0.5)) over taps 0..2, normalised.
        let k = precompute_coeffs(2, 4, Resample::Bicubic, 0..4);
        assert_eq!(k.ksize, 5);
        let total: i32 = k.coeffs[..k.len[0]].iter().sum();
        assert!((total - (1 << PRECISION_BITS)).abs() <= 2, "sum {total}");
    }

    #[test]
    fn crop_pads_small_images_with_zeros() {
        let img = RgbImage::from_pixel(10, 6, image::Rgb([200, 200, 200]));
        let cfg = PreprocessConfig {
            do_resize: false,
            crop_height: 9,
            crop_width: 13,
            ..PreprocessConfig::default()
        };
        let out = preprocess_u8(&img, &cfg);
        assert_eq!(out.dimensions(), (13, 9));
        // offsets floor((6-9)/2) = -2 rows, floor((10-13)/2) = -2 cols
        for (x, y, p) in out.enumerate_pixels() {
            let inside = (2..12).contains(&x) && (2..8).contains(&y);
            assert_eq!(p[0], if inside { 200 } else { 0 }, "({x},{y})");
        }
        let chw = preprocess(&img, &cfg);
        assert_eq!(chw.len(), 3 * 13 * 9);
        let pad = (0.0 - OPENAI_CLIP_MEAN[0]) / OPENAI_CLIP_STD[0];
        assert_eq!(chw[0], pad);
    }

    #[test]
    fn cropped_region_equals_full_resize_then_crop() {
        let img = noise(97, 61, 3);
        for f in [
            Resample::Bicubic,
            Resample::Bilinear,
            Resample::Nearest,
            Resample::Lanczos,
        ] {
            let cfg = PreprocessConfig {
                shortest_edge: 40,
                crop_height: 32,
                crop_width: 32,
                resample: f,
                ..PreprocessConfig::default()
            };
            let (rw, rh) = cfg.resized_size(97, 61);
            let full = resize_rgb(&img, rw, rh, f);
            let (ox, oy) = ((rw - 32) / 2, (rh - 32) / 2);
            let want = image::imageops::crop_imm(&full, ox, oy, 32, 32).to_image();
            assert_eq!(preprocess_u8(&img, &cfg), want, "{f:?}");
        }
    }

    #[test]
    fn normalisation_uses_numpy_order() {
        let img = RgbImage::from_pixel(1, 1, image::Rgb([255, 0, 128]));
        let cfg = PreprocessConfig {
            do_resize: false,
            do_center_crop: false,
            ..PreprocessConfig::default()
        };
        let v = preprocess(&img, &cfg);
        let x = (128f64 * (1.0 / 255.0)) as f32;
        assert_eq!(v[2], (x - OPENAI_CLIP_MEAN[2]) / OPENAI_CLIP_STD[2]);
        assert_eq!(v[0], (1.0 - OPENAI_CLIP_MEAN[0]) / OPENAI_CLIP_STD[0]);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let cfg = PreprocessConfig::default();
        let empty = RgbImage::new(0, 0);
        assert_eq!(preprocess(&empty, &cfg).len(), 3 * 224 * 224);
        let line = noise(1, 300, 5);
        assert_eq!(preprocess_u8(&line, &cfg).dimensions(), (224, 224));
    }
}
