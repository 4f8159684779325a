//! Resize and center crop: the 8-bit image transformers holds before rescaling.

use std::ops::Range;

use image::RgbImage;

use super::config::PreprocessConfig;
use super::resize::{copy_region, resize_region};

/// The resized and cropped 8-bit image, before rescaling and normalisation (equal to the
/// uint8 array transformers holds at that point).
pub fn preprocess_u8(image: &RgbImage, cfg: &PreprocessConfig) -> RgbImage {
    let (in_w, in_h) = image.dimensions();
    let (rw, rh) = cfg.resized_size(in_w, in_h);
    let (out_w, out_h, off_x, off_y) = if cfg.do_center_crop {
        let (cw, ch) = (cfg.crop_width, cfg.crop_height);
        // transformers: top = (orig_height - crop_height) // 2 (floor, may be negative).
        let off_y = cfg.crop_rounding.offset(i64::from(rh) - i64::from(ch));
        let off_x = cfg.crop_rounding.offset(i64::from(rw) - i64::from(cw));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::preprocess::tests::noise;
    use crate::model::preprocess::{Resample, resize_rgb};

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
}
