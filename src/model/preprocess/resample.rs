//! Pillow's resampling filters and the fixed-point convolution coefficients it computes from
//! them (a port of `libImaging/Resample.c`, 8 bits per channel).

use std::ops::Range;

use serde::Serialize;

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

/// Fixed-point precision of the convolution coefficients: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Rounding term the accumulators start from.
pub(super) const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// An accumulator back to 8 bits: drop the fraction, clamp to 0..=255 (Pillow's `clip8`).
#[inline]
pub(super) fn clip8(acc: i32) -> u8 {
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
pub(super) struct Kernel {
    /// Coefficient slots per output position (Pillow's `ksize`).
    ksize: usize,
    /// First input index used by each output position.
    pub(super) start: Vec<usize>,
    /// Number of input indices used by each output position.
    len: Vec<usize>,
    /// `ksize` coefficients per output position, 22-bit fixed point.
    coeffs: Vec<i32>,
}

impl Kernel {
    /// Input positions read by any of the output positions.
    pub(super) fn span(&self) -> Range<usize> {
        let first = self.start.iter().copied().min().unwrap_or(0);
        let last = (0..self.start.len())
            .map(|i| self.start[i] + self.len[i])
            .max()
            .unwrap_or(first);
        first..last.max(first)
    }

    #[inline]
    pub(super) fn taps(&self, i: usize) -> (usize, &[i32]) {
        let k = &self.coeffs[i * self.ksize..i * self.ksize + self.len[i]];
        (self.start[i], k)
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for output positions `range`
/// (box = the whole input, as `Image.resize` uses by default).
pub(super) fn precompute_coeffs(
    in_size: u32,
    out_size: u32,
    filter: Resample,
    range: Range<u32>,
) -> Kernel {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_coefficients_match_pillow_fixed_point() {
        // Upscaling 2 -> 4: centers at 0.25, 0.75 ...; Pillow coefficients for output 0
        // are bicubic((x - 0.25 + 0.5)) over taps 0..2, normalised.
        let k = precompute_coeffs(2, 4, Resample::Bicubic, 0..4);
        assert_eq!(k.ksize, 5);
        let total: i32 = k.coeffs[..k.len[0]].iter().sum();
        assert!((total - (1 << PRECISION_BITS)).abs() <= 2, "sum {total}");
    }
}
