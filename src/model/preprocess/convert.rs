//! Rescaling and normalisation of the 8-bit image into the model's CHW `f32` input.

use image::RgbImage;

use super::config::PreprocessConfig;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::preprocess::config::{OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
    use crate::model::preprocess::preprocess;

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
}
