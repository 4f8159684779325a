//! Image decoding to 8-bit RGB, matching what Hugging Face transformers' CLIP image processor
//! (PIL backend) sees after `Image.open(path)` and its `convert_to_rgb` step.
//!
//! Formats: JPEG, PNG and WebP, recognised from the content (never from the file extension).
//!
//! JPEGs are decoded by libjpeg-turbo's decoder (the copy in `mozjpeg-sys`, compiled from source
//! with the C compiler, no assembler), which is what Pillow uses, with Pillow's settings
//! (accurate integer IDCT, fancy upsampling): the pixels are bit-exact with Pillow's for valid
//! files, whatever the subsampling (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, ...), progressive or
//! arithmetic coding, restart markers, grayscale, CMYK/YCCK. Pillow's wheels run libjpeg-turbo's
//! SIMD code and this build the plain C code; both give the same pixels for valid data, but
//! where the entropy-coded data is damaged (decoded with a warning by both) the garbage blocks
//! can differ. A JPEG whose data ends before the image is complete, even if only the
//! end-of-image marker is missing, is refused as Pillow refuses it ("image file is truncated").
//! PNG and WebP are decoded by the `image` crate.
//!
//! Conversions to 8-bit RGB follow Pillow 13 + transformers 5.24:
//!
//! * grayscale is replicated to three channels;
//! * images with an alpha channel (RGBA, gray+alpha, PNG `tRNS` transparency) are composited onto
//!   an opaque white background, which is what transformers' `convert_to_rgb` does
//!   (`Image.alpha_composite(white, im.convert("RGBA")).convert("RGB")`); [`AlphaMode::Drop`]
//!   gives plain `Image.convert("RGB")` instead, which discards alpha;
//! * 16-bit RGB(A) PNGs keep the high byte of each sample (`v >> 8`), as Pillow's PNG reader does;
//! * 16-bit grayscale PNGs also keep the high byte. This departs from Pillow on purpose: Pillow
//!   opens them as `I;16` and its conversion to RGB clamps each sample to 255, so a normal
//!   16-bit photograph comes out nearly white and an audit of it would measure nothing;
//! * 4-component JPEGs are read as Adobe-inverted CMYK, as Pillow always does, and become RGB
//!   as `R = round((255-C)(255-K)/255)`, Pillow's formula.
//!
//! Unlike transformers, the EXIF orientation tag is applied (for JPEGs, failing an EXIF tag, an
//! XMP `tiff:Orientation`, which Pillow's `getexif()` also reports): see [`load_rgb`].

use std::cell::Cell;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::metadata::Orientation;
use image::{
    DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, Luma,
    LumaA, Rgb, RgbImage, Rgba,
};
use mozjpeg::ColorSpaceExt;

/// Largest accepted image width or height, in pixels (decompression-bomb guard).
pub const MAX_IMAGE_SIDE: u32 = 20_000;

/// The default largest image, in pixels: Pillow's decompression-bomb *error* threshold,
/// `2 × Image.MAX_IMAGE_PIXELS` (Pillow refuses larger images too).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 2 * 89_478_485;

/// Decoding memory allowed per pixel of the pixel limit, in bytes: an 8-bit RGB image at the
/// limit plus one rotated copy of it. With the default limit this is just under 1 GiB.
pub const DECODE_BYTES_PER_LIMIT_PIXEL: u64 = 6;

/// Largest image file read, in bytes (or the decoding budget, if that is smaller).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// Bounds on one image, from which every other bound follows: its pixels, the bytes of every
/// buffer its decoding makes, the size of its file, and so the memory one image in flight takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_IMAGE_PIXELS)
    }
}

impl ImageLimits {
    /// Limits for images of at most `max_pixels` pixels (width × height; at least 1).
    pub fn new(max_pixels: u64) -> Self {
        Self {
            max_pixels: max_pixels.max(1),
        }
    }

    /// Largest accepted width × height.
    pub fn max_pixels(&self) -> u64 {
        self.max_pixels
    }

    /// Bytes that every buffer of one decode may take together: the decoded image (all its
    /// channels and bytes per sample), its 8-bit RGB copy, an orientation copy, and a
    /// progressive JPEG's coefficients. [`DECODE_BYTES_PER_LIMIT_PIXEL`] × the pixel limit.
    pub fn decode_budget(&self) -> u64 {
        self.max_pixels.saturating_mul(DECODE_BYTES_PER_LIMIT_PIXEL)
    }

    /// Largest image file read: [`MAX_IMAGE_FILE_BYTES`] or the decode budget, if smaller.
    pub fn max_file_bytes(&self) -> u64 {
        MAX_IMAGE_FILE_BYTES.min(self.decode_budget())
    }

    /// What one image being decoded can hold at most: its file's bytes plus the decode budget
    /// (preprocessing's small resized copies aside).
    pub fn per_image_bound(&self) -> u64 {
        self.max_file_bytes().saturating_add(self.decode_budget())
    }

    /// Refuses an image over the pixel limit, or whose buffers (`bytes` together) exceed the
    /// decode budget.
    fn check(&self, w: u64, h: u64, bytes: u64) -> Result<(), String> {
        let pixels = w * h;
        if pixels > self.max_pixels {
            return Err(format!(
                "image too large: {w}x{h} is {pixels} pixels, over the limit of {} \
                 (--max-image-pixels)",
                self.max_pixels
            ));
        }
        if bytes > self.decode_budget() {
            let mib = |b: u64| b as f64 / f64::from(1 << 20);
            return Err(format!(
                "image too large: {w}x{h} needs {:.1} MiB to decode, over the limit of {:.1} MiB \
                 ({DECODE_BYTES_PER_LIMIT_PIXEL} bytes per pixel of --max-image-pixels)",
                mib(bytes),
                mib(self.decode_budget())
            ));
        }
        Ok(())
    }
}

/// Largest accepted number of scans in a JPEG (decompression-bomb guard; progressive JPEGs
/// written by encoders have at most a few dozen).
pub const MAX_JPEG_SCANS: usize = 1000;

/// Why an image could not be loaded; every variant names the file (or the embedded image).
#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    /// The file does not exist.
    #[error("{path}: file not found")]
    Missing {
        /// The path as given.
        path: String,
    },
    /// The file exists but could not be read.
    #[error("{path}: cannot read file")]
    Io {
        /// The path as given.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a decodable JPEG/PNG/WebP image (unknown format, corrupt, truncated,
    /// or over the size limits).
    #[error("{path}: cannot decode image: {reason}")]
    Decode {
        /// The path (or name of the embedded image).
        path: String,
        /// What went wrong, one line.
        reason: String,
    },
}

impl ImageLoadError {
    /// The file path (or embedded-image name) this error is about.
    pub fn path(&self) -> &str {
        match self {
            Self::Missing { path } | Self::Io { path, .. } | Self::Decode { path, .. } => path,
        }
    }

    /// A short one-line reason without the path, for a "skipped images" report.
    pub fn reason(&self) -> String {
        let text = match self {
            Self::Missing { .. } => "file not found".to_string(),
            // refused before reading (not a regular file, over the size limit): say just that
            Self::Io { source, .. } if crate::input_file::InputFileError::of(source).is_some() => {
                source.to_string()
            }
            Self::Io { source, .. } => format!("read error: {source}"),
            Self::Decode { reason, .. } => reason.clone(),
        };
        one_line(&text)
    }
}

/// What to do with an alpha channel when flattening to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlphaMode {
    /// Composite onto opaque white, as transformers' `convert_to_rgb` does (the default).
    #[default]
    CompositeOnWhite,
    /// Discard alpha, as PIL's `Image.convert("RGB")` does.
    Drop,
}

/// Loads an image file as 8-bit RGB, with EXIF orientation applied and alpha composited on white,
/// within the default [`ImageLimits`].
///
/// Deliberate difference from transformers: `CLIPImageProcessor` does not apply the EXIF
/// orientation tag, so a phone photo stored sideways is fed to the model sideways; here it is
/// rotated upright first, since an upright photo is what a human annotator saw and labelled.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    load_rgb_with(path, AlphaMode::default(), &ImageLimits::default())
}

/// Like [`load_rgb`], with an explicit [`AlphaMode`] and [`ImageLimits`].
pub fn load_rgb_with(
    path: &Path,
    alpha: AlphaMode,
    limits: &ImageLimits,
) -> Result<RgbImage, ImageLoadError> {
    let bytes = read_image_file(path, limits)?;
    decode_rgb_with(&bytes, &path.display().to_string(), alpha, limits)
}

/// Reads an image file's bytes (not decoded), with the error kinds of [`load_rgb`]. Only a
/// regular file (after following links) is read, and only up to the limits' file size: a FIFO,
/// a device or a folder is an error at once, never a wait or an endless read.
pub fn read_image_file(path: &Path, limits: &ImageLimits) -> Result<Vec<u8>, ImageLoadError> {
    crate::input_file::read_regular_file(path, limits.max_file_bytes(), "per-image limit").map_err(
        |source| {
            let path = path.display().to_string();
            if source.kind() == std::io::ErrorKind::NotFound {
                ImageLoadError::Missing { path }
            } else {
                ImageLoadError::Io { path, source }
            }
        },
    )
}

/// Decodes an in-memory image (e.g. embedded in a parquet file) the same way as [`load_rgb`];
/// `name` is used in error messages.
pub fn decode_rgb(bytes: &[u8], name: &str) -> Result<RgbImage, ImageLoadError> {
    decode_rgb_with(bytes, name, AlphaMode::default(), &ImageLimits::default())
}

/// Like [`decode_rgb`], with an explicit [`AlphaMode`] and [`ImageLimits`].
pub fn decode_rgb_with(
    bytes: &[u8],
    name: &str,
    alpha: AlphaMode,
    limits: &ImageLimits,
) -> Result<RgbImage, ImageLoadError> {
    let fail = |reason: String| ImageLoadError::Decode {
        path: name.to_string(),
        reason: one_line(&reason),
    };
    if bytes.is_empty() {
        return Err(fail("empty file".to_string()));
    }
    if bytes.len() as u64 > limits.max_file_bytes() {
        return Err(fail(format!(
            "file is {} bytes, over the per-image limit of {} bytes",
            bytes.len(),
            limits.max_file_bytes()
        )));
    }
    // The decoders are not expected to panic, but they run on untrusted bytes: turn a panic
    // into an ordinary decode error rather than taking the whole run down.
    let decoded = catch_unwind(AssertUnwindSafe(|| decode_dynamic(bytes, limits)))
        .map_err(|_| fail("decoder panicked (corrupt image)".to_string()))?;
    let image = decoded.map_err(fail)?;
    Ok(to_rgb8(image, alpha))
}

/// Decodes with format sniffing, size limits and EXIF orientation.
fn decode_dynamic(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("read error: {e}"))?;
    match reader.format() {
        None => {
            return Err(
                "unknown or unsupported image format (expected JPEG, PNG or WebP)".to_string(),
            );
        }
        Some(ImageFormat::Jpeg) => return decode_jpeg(bytes, limits).map(DynamicImage::ImageRgb8),
        Some(_) => {}
    }
    let mut reader = reader;
    reader.limits(decode_limits(limits));
    let mut decoder = reader.into_decoder().map_err(|e| describe(e, limits))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("image has zero size ({w}x{h})"));
    }
    // A malformed EXIF block must not make an otherwise fine image unreadable.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    // Every buffer, before any is allocated: the decoded image, its rotated copy (if the
    // orientation needs one), and the 8-bit RGB copy (unless it already is 8-bit RGB).
    let pixels = u64::from(w) * u64::from(h);
    let decoded = decoder.total_bytes();
    let rotated = if orientation_copies(orientation) {
        decoded
    } else {
        0
    };
    let rgb = if decoder.color_type() == image::ColorType::Rgb8 {
        0
    } else {
        pixels * 3
    };
    limits.check(u64::from(w), u64::from(h), decoded + rotated + rgb)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| describe(e, limits))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Whether applying `orientation` allocates a new image (the rotations by 90°/270°), rather than
/// working in place.
fn orientation_copies(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Decodes a JPEG with libjpeg-turbo's decoder (as built by `mozjpeg-sys`: the library Pillow
/// uses) and Pillow's settings (accurate integer IDCT, fancy upsampling), so the pixels are the
/// ones transformers sees. EXIF orientation is applied.
fn decode_jpeg(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, String> {
    let hit_end = Cell::new(false);
    // libjpeg reports fatal errors through `error_exit`, which the mozjpeg crate turns into an
    // unwind (with `resume_unwind`: no panic hook runs and nothing is printed); its warnings
    // (e.g. corrupt entropy data) are silenced and decoding goes on, as in Pillow.
    match catch_unwind(AssertUnwindSafe(|| {
        decode_jpeg_unwinding(bytes, &hit_end, limits)
    })) {
        Ok(result) => result,
        Err(_) if hit_end.get() => Err(TRUNCATED_JPEG.to_string()),
        Err(payload) => Err(format!("JPEG error: {}", unwind_message(&*payload))),
    }
}

/// Pillow (and so transformers) refuses a JPEG whose decoder needs bytes past the end of the
/// file before the last pixel row is out ("image file is truncated"); libjpeg would instead
/// pad with grey and warn. A missing end-of-image marker after complete image data counts as
/// truncated too, as in Pillow.
const TRUNCATED_JPEG: &str = "truncated JPEG (image data ends before the end of the image)";

/// The text of a libjpeg error raised through the mozjpeg crate's error handler.
fn unwind_message(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("decoder failed");
    one_line(msg.trim_start_matches("libjpeg fatal error: "))
}

/// The in-memory JPEG as libjpeg's input, noting when the decoder asks for data past its end
/// (the mozjpeg crate then feeds libjpeg a fake end-of-image marker).
struct EndProbe<'a> {
    rest: &'a [u8],
    hit_end: &'a Cell<bool>,
}

impl std::io::Read for EndProbe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.len().min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

impl std::io::BufRead for EndProbe<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.hit_end.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, amt: usize) {
        self.rest = &self.rest[amt.min(self.rest.len())..];
    }
}

/// The part of the JPEG decoder that may unwind on a libjpeg error. It and the steps it calls
/// ([`jpeg_bounds`], [`read_jpeg_rgb`], [`read_all`]) run only inside [`decode_jpeg`]'s
/// `catch_unwind`.
fn decode_jpeg_unwinding(
    bytes: &[u8],
    hit_end: &Cell<bool>,
    limits: &ImageLimits,
) -> Result<RgbImage, String> {
    use mozjpeg::{Decompress, Marker};
    let probe = EndProbe {
        rest: bytes,
        hit_end,
    };
    let dec = Decompress::builder()
        .with_markers(&[Marker::APP(1)])
        .from_reader(probe)
        .map_err(|e| corrupt_jpeg(hit_end, e))?;
    let orientation = jpeg_bounds(&dec, bytes, limits)?;
    let (w, h) = dec.size();
    let rgb = read_jpeg_rgb(dec, hit_end)?;
    let image = RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| "corrupt JPEG: decoder returned too few rows".to_string())?;
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// The message for a libjpeg error reported as an I/O error: truncation when the decoder has
/// asked for data past the end.
fn corrupt_jpeg(hit_end: &Cell<bool>, e: std::io::Error) -> String {
    if hit_end.get() {
        TRUNCATED_JPEG.to_string()
    } else {
        format!("JPEG error: {e}")
    }
}

/// Checks the header's size, scan count and decoding memory against the limits, before any
/// pixel buffer is allocated; returns the orientation to apply.
fn jpeg_bounds<R>(
    dec: &mozjpeg::Decompress<R>,
    bytes: &[u8],
    limits: &ImageLimits,
) -> Result<Orientation, String> {
    let (w, h) = dec.size();
    if w == 0 || h == 0 {
        return Err(format!("image has zero size ({w}x{h})"));
    }
    let side = MAX_IMAGE_SIDE as usize;
    if w > side || h > side {
        return Err(format!(
            "image too large: {w}x{h} (limit {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels)"
        ));
    }
    // Each scan of a progressive JPEG is a pass over the whole image: a small file with very
    // many scans would keep the decoder busy for a long time.
    let scans = jpeg_scan_count(bytes);
    if scans > MAX_JPEG_SCANS {
        return Err(format!("JPEG has {scans} scans (limit {MAX_JPEG_SCANS})"));
    }
    let orientation = jpeg_orientation(dec);
    // Every buffer, before any is allocated: the decoded samples, the RGB copy of a gray or
    // CMYK image, the rotated copy, and a multi-scan JPEG's DCT coefficients (2 bytes each).
    let (w64, h64) = (w as u64, h as u64);
    let components = dec.color_space().num_components() as u64;
    let rgb = if components == 3 { 0 } else { w64 * h64 * 3 };
    let rotated = if orientation_copies(orientation) {
        w64 * h64 * 3
    } else {
        0
    };
    let coefficient_bytes: u64 = if scans > 1 {
        dec.components()
            .iter()
            .map(|c| u64::from(c.width_in_blocks) * u64::from(c.height_in_blocks) * 128)
            .sum()
    } else {
        0
    };
    limits.check(
        w64,
        h64,
        w64 * h64 * components + rgb + rotated + coefficient_bytes,
    )?;
    Ok(orientation)
}

/// Decodes every pixel as 8-bit RGB, converting gray and CMYK as Pillow does.
fn read_jpeg_rgb<R: std::io::BufRead>(
    dec: mozjpeg::Decompress<R>,
    hit_end: &Cell<bool>,
) -> Result<Vec<u8>, String> {
    use mozjpeg::ColorSpace;
    let corrupt = |e| corrupt_jpeg(hit_end, e);
    // Pillow opens 1-component JPEGs as L, 3-component ones as RGB and 4-component ones as
    // CMYK with Adobe's inverted samples (YCCK is turned into CMYK by libjpeg).
    Ok(match dec.color_space() {
        ColorSpace::JCS_GRAYSCALE => {
            let gray = read_all(dec.grayscale().map_err(corrupt)?, hit_end)?;
            gray.iter().flat_map(|&g| [g; 3]).collect()
        }
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            let started = dec.to_colorspace(ColorSpace::JCS_CMYK).map_err(corrupt)?;
            let cmyk = read_all(started, hit_end)?;
            cmyk.chunks_exact(4)
                .flat_map(|p| {
                    let k = p[3];
                    [
                        inverted_cmyk(p[0], k),
                        inverted_cmyk(p[1], k),
                        inverted_cmyk(p[2], k),
                    ]
                })
                .collect()
        }
        _ => read_all(dec.rgb().map_err(corrupt)?, hit_end)?,
    })
}

/// Reads every pixel row, then lets libjpeg read on to the end-of-image marker as Pillow does.
fn read_all<R: std::io::BufRead>(
    mut started: mozjpeg::decompress::DecompressStarted<R>,
    hit_end: &Cell<bool>,
) -> Result<Vec<u8>, String> {
    let pixels: Vec<u8> = started
        .read_scanlines()
        .map_err(|e| format!("JPEG error: {e}"))?;
    if hit_end.get() {
        return Err(TRUNCATED_JPEG.to_string());
    }
    // Pillow keeps the image when the data ends here (the decoder suspends), but fails on a
    // libjpeg error (e.g. a bad marker after the last scan).
    match catch_unwind(AssertUnwindSafe(move || started.finish())) {
        Ok(_) => Ok(pixels),
        Err(_) if hit_end.get() => Ok(pixels),
        Err(payload) => Err(format!("JPEG error: {}", unwind_message(&*payload))),
    }
}

/// Pillow's `CMYK;I` unpacking followed by `convert("RGB")`: with the stored (Adobe-inverted)
/// samples `s = 255 - C` and `t = 255 - K`, `R = round((255-C)(255-K)/255) = round(s*t/255)`.
#[inline]
fn inverted_cmyk(s: u8, t: u8) -> u8 {
    ((u32::from(s) * u32::from(t) + 127) / 255) as u8
}

/// The orientation Pillow's `getexif()` reports: the EXIF (first APP1 `Exif` segment)
/// orientation tag, or failing that a `tiff:Orientation` in the (last) XMP packet. Malformed
/// metadata counts as upright.
fn jpeg_orientation<R>(dec: &mozjpeg::Decompress<R>) -> Orientation {
    let app1: Vec<&[u8]> = dec.markers().map(|m| m.data).collect();
    let from_exif = app1
        .iter()
        .find_map(|d| d.strip_prefix(b"Exif\0\0"))
        .and_then(Orientation::from_exif_chunk);
    from_exif
        .or_else(|| {
            app1.iter()
                .rev()
                .find_map(|d| d.strip_prefix(b"http://ns.adobe.com/xap/1.0/\0"))
                .and_then(xmp_orientation)
        })
        .unwrap_or(Orientation::NoTransforms)
}

/// The first `tiff:Orientation="N"` or `tiff:Orientation>N` in an XMP packet (Pillow's regular
/// expression `tiff:Orientation(="|>)([0-9])`).
fn xmp_orientation(xmp: &[u8]) -> Option<Orientation> {
    let key = b"tiff:Orientation";
    let digit = xmp.windows(key.len()).enumerate().find_map(|(i, w)| {
        if w != key {
            return None;
        }
        match &xmp[i + key.len()..] {
            [b'=', b'"', d, ..] | [b'>', d, ..] if d.is_ascii_digit() => Some(*d - b'0'),
            _ => None,
        }
    })?;
    Orientation::from_exif(digit)
}

/// Counts the scans (start-of-scan markers) of a JPEG by walking its marker structure
/// (segments, entropy-coded data), up to the end-of-image marker or the end of the data.
fn jpeg_scan_count(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let mut i = 2; // after SOI
    let mut scans = 0;
    loop {
        // Find the next marker: skip stray bytes (libjpeg does too, with a warning), then fill bytes.
        while i < n && bytes[i] != 0xFF {
            i += 1;
        }
        while i < n && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return scans;
        };
        i += 1;
        match marker {
            0xD9 => return scans,                  // EOI
            0x01 | 0xD0..=0xD8 | 0x00 => continue, // standalone markers (TEM, RSTn, SOI)
            _ => {
                let Some(len) = bytes.get(i..i + 2) else {
                    return scans;
                };
                i += usize::from(u16::from_be_bytes([len[0], len[1]])).max(2);
                if marker == 0xDA {
                    scans += 1;
                    // Entropy-coded data: runs until a marker other than a stuffed 0xFF00 or RSTn.
                    loop {
                        match bytes.get(i..i + 2) {
                            None => return scans,
                            Some([0xFF, b]) if *b != 0x00 && !(0xD0..=0xD7).contains(b) => break,
                            Some(_) => i += 1,
                        }
                    }
                }
            }
        }
    }
}

/// The `image` crate's own limits, as a second line of defence behind [`ImageLimits::check`].
fn decode_limits(limits: &ImageLimits) -> Limits {
    let mut out = Limits::default();
    out.max_image_width = Some(MAX_IMAGE_SIDE);
    out.max_image_height = Some(MAX_IMAGE_SIDE);
    out.max_alloc = Some(limits.decode_budget());
    out
}

fn describe(e: ImageError, limits: &ImageLimits) -> String {
    match e {
        ImageError::Limits(l) => format!(
            "image too large (limit {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels, {} MiB): {l}",
            limits.decode_budget() >> 20
        ),
        ImageError::Unsupported(u) => format!("unsupported image: {u}"),
        ImageError::Decoding(d) => format!("corrupt image: {d}"),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated image (unexpected end of data)".to_string()
        }
        ImageError::IoError(io) => format!("corrupt or truncated image: {io}"),
        other => other.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `round(a*c + (255-a)*255) / 255)`: Pillow's `alpha_composite` of a pixel over opaque white,
/// exact for all 8-bit inputs (ties cannot occur since 255 is odd).
#[inline]
fn over_white(c: u8, a: u8) -> u8 {
    let (c, a) = (u32::from(c), u32::from(a));
    ((a * c + (255 - a) * 255 + 127) / 255) as u8
}

/// Flattens any decoded image to 8-bit RGB the way Pillow + transformers do.
fn to_rgb8(image: DynamicImage, alpha: AlphaMode) -> RgbImage {
    let flatten = |c: u8, a: u8| match alpha {
        AlphaMode::CompositeOnWhite => over_white(c, a),
        AlphaMode::Drop => c,
    };
    let hi = |v: u16| (v >> 8) as u8;
    match image {
        DynamicImage::ImageRgb8(img) => img,
        DynamicImage::ImageLuma8(img) => map_pixels(&img, |p: &Luma<u8>| [p[0]; 3]),
        DynamicImage::ImageLumaA8(img) => {
            map_pixels(&img, |p: &LumaA<u8>| [flatten(p[0], p[1]); 3])
        }
        DynamicImage::ImageRgba8(img) => map_pixels(&img, |p: &Rgba<u8>| {
            [
                flatten(p[0], p[3]),
                flatten(p[1], p[3]),
                flatten(p[2], p[3]),
            ]
        }),
        // Pillow clamps I;16 to 255 (nearly white images); we keep the high byte like for RGB.
        DynamicImage::ImageLuma16(img) => map_pixels(&img, |p: &Luma<u16>| [hi(p[0]); 3]),
        // Pillow reads 16-bit LA / RGB / RGBA PNGs through 8-bit raw modes: high byte only.
        DynamicImage::ImageLumaA16(img) => {
            map_pixels(&img, |p: &LumaA<u16>| [flatten(hi(p[0]), hi(p[1])); 3])
        }
        DynamicImage::ImageRgb16(img) => {
            map_pixels(&img, |p: &Rgb<u16>| [hi(p[0]), hi(p[1]), hi(p[2])])
        }
        DynamicImage::ImageRgba16(img) => map_pixels(&img, |p: &Rgba<u16>| {
            let a = hi(p[3]);
            [
                flatten(hi(p[0]), a),
                flatten(hi(p[1]), a),
                flatten(hi(p[2]), a),
            ]
        }),
        // Not produced by the JPEG/PNG/WebP decoders; keep the image crate's conversion.
        other => other.to_rgb8(),
    }
}

fn map_pixels<P, F>(img: &ImageBuffer<P, Vec<P::Subpixel>>, f: F) -> RgbImage
where
    P: image::Pixel,
    F: Fn(&P) -> [u8; 3],
{
    let mut out = Vec::with_capacity(img.width() as usize * img.height() as usize * 3);
    for p in img.pixels() {
        out.extend_from_slice(&f(p));
    }
    // The buffer has exactly width*height*3 bytes, so from_raw cannot fail.
    RgbImage::from_raw(img.width(), img.height(), out)
        .unwrap_or_else(|| RgbImage::new(img.width(), img.height()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;

    fn png_bytes(buf: &[u8], w: u32, h: u32, ct: image::ExtendedColorType) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(buf, w, h, ct)
            .expect("encode png");
        out
    }

    fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 128]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .expect("encode jpeg");
        out
    }

    #[test]
    fn garbage_empty_and_truncated_inputs_are_errors_not_panics() {
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for (name, bytes) in [("garbage", garbage.as_slice()), ("empty", &[][..])] {
            let err = decode_rgb(bytes, name).expect_err(name);
            assert!(matches!(err, ImageLoadError::Decode { .. }), "{err}");
            assert_eq!(err.path(), name);
            assert!(!err.reason().contains('\n'));
        }
        let jpeg = jpeg_bytes(64, 48);
        assert!(decode_rgb(&jpeg, "full").is_ok());
        for cut in [2, 20, 100, jpeg.len() / 2, jpeg.len() - 10, jpeg.len() - 2] {
            let e = decode_rgb(&jpeg[..cut], "cut.jpg").expect_err("truncated jpeg");
            assert!(matches!(e, ImageLoadError::Decode { .. }), "{e}");
        }
        // Bytes after the end-of-image marker are ignored, as by libjpeg.
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"trailer \xFF\xDA junk");
        assert!(decode_rgb(&trailing, "trailing.jpg").is_ok());
        let png = png_bytes(&[10u8; 16 * 16 * 3], 16, 16, image::ExtendedColorType::Rgb8);
        for cut in [8, 30, png.len() / 2, png.len() - 13] {
            let e = decode_rgb(&png[..cut], "cut.png").expect_err("truncated png");
            assert!(matches!(e, ImageLoadError::Decode { .. }), "{e}");
        }
        // Valid magic followed by garbage.
        let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
        fake.extend_from_slice(&garbage[..200]);
        assert!(decode_rgb(&fake, "fake.png").is_err());
        let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE0];
        fake.extend_from_slice(&garbage[..500]);
        let _ = decode_rgb(&fake, "fake.jpg");
    }

    #[test]
    fn missing_file_and_reason() {
        let err = load_rgb(Path::new("/nonexistent/dir/x.jpg")).expect_err("missing");
        assert!(matches!(err, ImageLoadError::Missing { .. }));
        assert_eq!(err.reason(), "file not found");
        assert_eq!(err.path(), "/nonexistent/dir/x.jpg");
        assert!(err.to_string().contains("/nonexistent/dir/x.jpg"));
    }

    #[test]
    fn format_is_sniffed_not_taken_from_extension() {
        let dir = std::env::temp_dir().join(format!("images-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("actually_png.jpg");
        std::fs::write(
            &p,
            png_bytes(&[1, 2, 3, 4, 5, 6], 2, 1, image::ExtendedColorType::Rgb8),
        )
        .expect("write");
        let img = load_rgb(&p).expect("png with .jpg name");
        assert_eq!(img.as_raw(), &[1, 2, 3, 4, 5, 6]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn alpha_is_composited_on_white_or_dropped() {
        let rgba = [200u8, 100, 0, 0, 200, 100, 0, 255, 200, 100, 0, 128];
        let png = png_bytes(&rgba, 3, 1, image::ExtendedColorType::Rgba8);
        let img = decode_rgb(&png, "a.png").expect("decode");
        // alpha 0 -> white, 255 -> colour, 128 -> round((128*c + 127*255)/255)
        assert_eq!(img.as_raw(), &[255, 255, 255, 200, 100, 0, 227, 177, 127]);
        let img = decode_rgb_with(&png, "a.png", AlphaMode::Drop, &ImageLimits::default())
            .expect("decode");
        assert_eq!(img.as_raw(), &[200, 100, 0, 200, 100, 0, 200, 100, 0]);
        for c in 0..=255u8 {
            for a in 0..=255u8 {
                let exact = (f64::from(a) * f64::from(c) + (255.0 - f64::from(a)) * 255.0) / 255.0;
                assert_eq!(f64::from(over_white(c, a)), exact.round(), "c={c} a={a}");
            }
        }
    }

    #[test]
    fn gray_and_16_bit_conversions() {
        let png = png_bytes(&[0, 77, 255], 3, 1, image::ExtendedColorType::L8);
        let img = decode_rgb(&png, "g.png").expect("decode");
        assert_eq!(img.as_raw(), &[0, 0, 0, 77, 77, 77, 255, 255, 255]);
        // 16-bit gray: high byte (Pillow would clamp to 255; see the module docs).
        let vals: [u16; 4] = [0, 200, 256, 65535];
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let png = png_bytes(&bytes, 4, 1, image::ExtendedColorType::L16);
        let img = decode_rgb(&png, "g16.png").expect("decode");
        let r: Vec<u8> = img.pixels().map(|p| p[0]).collect();
        assert_eq!(r, [0, 0, 1, 255]);
        // 16-bit RGB: high byte.
        let vals: [u16; 3] = [255, 33023, 65535];
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let png = png_bytes(&bytes, 1, 1, image::ExtendedColorType::Rgb16);
        let img = decode_rgb(&png, "rgb16.png").expect("decode");
        assert_eq!(img.as_raw(), &[0, 128, 255]);
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn oversized_dimensions_are_rejected() {
        // A PNG header claiming 30000x30000 pixels.
        let mut png = png_bytes(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8);
        png[16..20].copy_from_slice(&30000u32.to_be_bytes());
        png[20..24].copy_from_slice(&30000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode_rgb(&png, "bomb.png").expect_err("bomb");
        assert!(matches!(err, ImageLoadError::Decode { .. }), "{err}");
        assert!(err.reason().contains("too large"), "{err}");
    }

    #[test]
    fn limits_count_every_buffer_of_the_decode() {
        let fixture = |name: &str| {
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/images")
                    .join(name),
            )
            .expect("fixture")
        };
        let decode = |bytes: &[u8], max_pixels: u64| {
            decode_rgb_with(
                bytes,
                "x",
                AlphaMode::default(),
                &ImageLimits::new(max_pixels),
            )
        };
        // CMYK JPEG, 200x150: 4 bytes/pixel decoded + 3 for the RGB copy = 210 000 bytes,
        // within 6 bytes per pixel of a 35 000-pixel limit, not of a 30 000-pixel one.
        let cmyk = fixture("cmyk_200x150.jpg");
        assert!(decode(&cmyk, 35_000).is_ok());
        let err = decode(&cmyk, 30_000).expect_err("over the budget");
        assert!(err.reason().contains("needs 0.2 MiB to decode"), "{err}");
        // EXIF-rotated RGB JPEG, 240x160: 3 decoded + 3 rotated = exactly 6 bytes per pixel.
        let rotated = fixture("exif_rot6_240x160.jpg");
        assert!(decode(&rotated, 240 * 160).is_ok());
        assert!(decode(&rotated, 240 * 160 - 1).is_err());
        // 16-bit gray PNG, 120x90: 2 + 3 bytes per pixel; the pixel limit itself.
        let gray16 = fixture("gray16_120x90.png");
        assert!(decode(&gray16, 120 * 90).is_ok());
        let err = decode(&gray16, 120 * 90 - 1).expect_err("over the pixel limit");
        assert!(
            err.reason()
                .contains("10800 pixels, over the limit of 10799"),
            "{err}"
        );
        // the defaults: Pillow's limit, and just under 1 GiB of decoding
        let limits = ImageLimits::default();
        assert_eq!(limits.max_pixels(), 178_956_970);
        assert_eq!(limits.decode_budget(), 1_073_741_820);
        assert_eq!(limits.max_file_bytes(), 256 << 20);
        assert_eq!(ImageLimits::new(1000).max_file_bytes(), 6000);
    }

    /// Offset of the first `FF <marker>` segment in a JPEG.
    fn segment(jpeg: &[u8], marker: u8) -> usize {
        jpeg.windows(2)
            .position(|w| w == [0xFF, marker])
            .expect("marker present")
    }

    #[test]
    fn corrupt_jpegs_are_errors_not_panics() {
        let jpeg = jpeg_bytes(64, 48);
        let is_decode_error = |bytes: &[u8], what: &str| -> String {
            match decode_rgb(bytes, "bad.jpg") {
                Err(e @ ImageLoadError::Decode { .. }) => {
                    assert_eq!(e.path(), "bad.jpg");
                    assert!(!e.reason().contains('\n'));
                    e.reason()
                }
                other => panic!("{what}: expected a decode error, got {other:?}"),
            }
        };
        // Invalid Huffman table (code counts overflow the tree): a fatal libjpeg error.
        let mut bad = jpeg.clone();
        let dht = segment(&bad, 0xC4);
        bad[dht + 5..dht + 21].fill(0xFF);
        let r = is_decode_error(&bad, "bad huffman table");
        assert!(r.starts_with("JPEG error: "), "{r}");
        // 12-bit samples (Pillow refuses them too).
        let mut bad = jpeg.clone();
        let sof = segment(&bad, 0xC0);
        bad[sof + 4] = 12;
        let r = is_decode_error(&bad, "12-bit");
        assert!(r.contains("precision"), "{r}");
        // Zero height.
        let mut bad = jpeg.clone();
        bad[sof + 5..sof + 7].copy_from_slice(&0u16.to_be_bytes());
        is_decode_error(&bad, "zero height");
        // A header claiming 30000x30000 pixels is refused before anything is decoded.
        let mut bomb = jpeg.clone();
        bomb[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
        let r = is_decode_error(&bomb, "bomb");
        assert!(r.contains("too large"), "{r}");
        // A progressive-style scan bomb: thousands of scans in a few kilobytes.
        let mut bomb = jpeg[..jpeg.len() - 2].to_vec();
        for _ in 0..=MAX_JPEG_SCANS {
            bomb.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
        }
        bomb.extend_from_slice(&[0xFF, 0xD9]);
        let r = is_decode_error(&bomb, "scan bomb");
        assert!(r.contains("scans"), "{r}");
        // Scan data before any frame header.
        let mut bad = jpeg[..2].to_vec();
        bad.extend_from_slice(&jpeg[segment(&jpeg, 0xDA)..]);
        is_decode_error(&bad, "no SOF");
        // Cut anywhere, including just before the end-of-image marker (Pillow: "image file is
        // truncated"); a marker segment whose length runs past the end of the data.
        for cut in (3..jpeg.len() - 1)
            .step_by(37)
            .chain([jpeg.len() - 2, jpeg.len() - 1])
        {
            let r = is_decode_error(&jpeg[..cut], "truncated");
            assert!(
                r.contains("truncated") || r.starts_with("JPEG error"),
                "{cut}: {r}"
            );
        }
        let mut bad = jpeg[..segment(&jpeg, 0xDB)].to_vec();
        bad.extend_from_slice(&[0xFF, 0xE5, 0xFF, 0xF0, 1, 2, 3]);
        assert!(is_decode_error(&bad, "long segment").contains("truncated"));
        // Damaged entropy-coded data is decoded anyway (libjpeg warns, Pillow goes on too);
        // whatever the bytes, the outcome is a value, never a panic.
        let sos = segment(&jpeg, 0xDA);
        for k in 0..64usize {
            let mut bad = jpeg.clone();
            let i = sos + 14 + (k * 7919) % (jpeg.len() - sos - 16);
            bad[i] = bad[i].wrapping_add(1 + k as u8);
            if let Ok(img) = decode_rgb(&bad, "flipped.jpg") {
                assert_eq!(img.dimensions(), (64, 48));
            }
        }
    }

    #[test]
    fn jpeg_gray_and_cmyk_become_rgb_as_in_pillow() {
        let gray = image::GrayImage::from_fn(16, 8, |x, y| Luma([(x * 16 + y) as u8]));
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 95)
            .write_image(gray.as_raw(), 16, 8, image::ExtendedColorType::L8)
            .expect("encode");
        let img = decode_rgb(&jpeg, "gray.jpg").expect("decode");
        assert_eq!(img.dimensions(), (16, 8));
        assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        // Pillow: CMYK;I unpacking, then R = 255-K - round(C*(255-K)/255) (MULDIV255).
        for s in 0..=255u32 {
            for t in 0..=255u32 {
                let (c, nk) = (255 - s, t);
                let tmp = c * nk + 128;
                let pillow = nk - (((tmp >> 8) + tmp) >> 8);
                assert_eq!(
                    u32::from(inverted_cmyk(s as u8, t as u8)),
                    pillow,
                    "{s} {t}"
                );
            }
        }
    }

    #[test]
    fn jpeg_exif_and_xmp_orientation_is_applied() {
        let plain = jpeg_bytes(24, 16);
        let upright = decode_rgb(&plain, "plain.jpg").expect("decode");
        let with_app1 = |payload: &[u8]| {
            let mut out = plain[..2].to_vec();
            out.extend_from_slice(&[0xFF, 0xE1]);
            out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
            out.extend_from_slice(payload);
            out.extend_from_slice(&plain[2..]);
            out
        };
        // EXIF, little-endian TIFF: IFD0 with one entry, Orientation (0x0112) = 6.
        let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
        exif.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        let rotated = decode_rgb(&with_app1(&exif), "exif6.jpg").expect("decode");
        assert_eq!(rotated, image::imageops::rotate90(&upright));
        let xmp =
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description tiff:Orientation=\"3\"/>";
        let rotated = decode_rgb(&with_app1(xmp), "xmp3.jpg").expect("decode");
        assert_eq!(rotated, image::imageops::rotate180(&upright));
        // Malformed EXIF counts as upright.
        let rotated = decode_rgb(&with_app1(b"Exif\0\0MM\0*\xFF\xFF"), "bad.jpg").expect("decode");
        assert_eq!(rotated, upright);
        assert_eq!(
            xmp_orientation(b"<tiff:Orientation>8</tiff:Orientation>"),
            Some(Orientation::Rotate270)
        );
        assert_eq!(xmp_orientation(b"tiff:Orientation=\"x\""), None);
        assert_eq!(
            xmp_orientation(b"tiff:OrientationX tiff:Orientation=\"6\""),
            Some(Orientation::Rotate90)
        );
    }
}
