//! The preprocessing settings ([`PreprocessConfig`]) and the resize geometry they imply,
//! following transformers' size rules.

use serde::Serialize;

use super::resample::Resample;

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
    /// `do_convert_rgb`; recorded only, since [`preprocess`](super::preprocess) always receives RGB
    /// (conversion happens when decoding).
    pub do_convert_rgb: bool,
    /// How the center crop's offset is rounded (transformers' floor unless a checkpoint of
    /// another family says otherwise); serialized only when it is not the default.
    #[serde(skip_serializing_if = "CropRounding::is_floor")]
    pub crop_rounding: CropRounding,
}

/// How a center crop places an odd remainder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CropRounding {
    /// transformers: `top = (height - crop) // 2`.
    #[default]
    Floor,
    /// torchvision's `center_crop` (OpenCLIP): `top = round((height - crop) / 2)`, Python's
    /// round-half-to-even.
    HalfEven,
}

impl CropRounding {
    /// Whether this is transformers' floor.
    pub fn is_floor(&self) -> bool {
        *self == CropRounding::Floor
    }

    /// The offset of a crop `excess` pixels smaller than the image side (negative: larger).
    pub fn offset(self, excess: i64) -> i64 {
        let floor = excess.div_euclid(2);
        match self {
            CropRounding::Floor => floor,
            // torchvision pads a too-small image by `(crop - side) // 2` before: ceil(excess / 2).
            CropRounding::HalfEven if excess < 0 => -((-excess).div_euclid(2)),
            CropRounding::HalfEven if excess % 2 == 1 && floor % 2 == 1 => floor + 1,
            CropRounding::HalfEven => floor,
        }
    }
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
            crop_rounding: CropRounding::Floor,
        }
    }
}

impl PreprocessConfig {
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

    /// `(width, height)` of the model input produced by [`preprocess`](super::preprocess) for an
    /// input of `width`×`height`: the crop size when center-cropping, else the resized size.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
