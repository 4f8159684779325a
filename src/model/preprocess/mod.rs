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

mod config;
mod convert;
mod crop;
mod parse;
mod resample;
mod resize;

use image::RgbImage;

pub use config::{CropRounding, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PreprocessConfig};
pub use convert::to_chw_f32;
pub use crop::preprocess_u8;
pub use parse::PreprocessConfigError;
pub use resample::Resample;
pub use resize::resize_rgb;

/// Resizes, center-crops, rescales and normalises `image` as transformers'
/// `CLIPImageProcessor` (PIL backend) does; returns CHW `f32` data of length
/// `3 * h * w` with `(w, h) = cfg.output_size(image.width(), image.height())`.
pub fn preprocess(image: &RgbImage, cfg: &PreprocessConfig) -> Vec<f32> {
    to_chw_f32(&preprocess_u8(image, cfg), cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible image of pseudo-random pixels.
    pub(super) fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
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
    fn degenerate_inputs_do_not_panic() {
        let cfg = PreprocessConfig::default();
        let empty = RgbImage::new(0, 0);
        assert_eq!(preprocess(&empty, &cfg).len(), 3 * 224 * 224);
        let line = noise(1, 300, 5);
        assert_eq!(preprocess_u8(&line, &cfg).dimensions(), (224, 224));
    }
}
