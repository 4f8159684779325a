//! Property tests of the readers of untrusted input: mutated image bytes always decode to an
//! image or a decode error, and mutated probe and dataset-spec TOML always load or give a typed
//! error; nothing panics. Bounded to a few hundred cases so the suite stays quick.

mod common;

use std::path::Path;

use clip_audit::dataset::{Dataset, DatasetOptions};
use clip_audit::images::{AlphaMode, ImageLimits, ImageLoadError, decode_rgb_with};
use clip_audit::probe::ProbeSet;
use common::fixture;
use proptest::prelude::*;

/// Up to eight edits: (position, new byte), plus an optional cut.
fn mutations() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        prop::option::of(any::<usize>()),
    )
}

fn mutate(bytes: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, value) in edits {
        let i = at % out.len();
        out[i] = value;
    }
    if let Some(cut) = cut {
        out.truncate(cut % (out.len() + 1));
    }
    out
}

/// Mutated text, kept valid UTF-8 (TOML readers take strings).
fn mutate_text(text: &str, edits: &[(usize, u8)], cut: Option<usize>) -> String {
    const CHARS: &[u8] = b" =[]{}\"',.#\n\\0123456789abcxyz-_";
    let printable: Vec<(usize, u8)> = edits
        .iter()
        .map(|&(at, b)| (at, CHARS[usize::from(b) % CHARS.len()]))
        .collect();
    String::from_utf8_lossy(&mutate(text.as_bytes(), &printable, cut)).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn mutated_images_decode_or_fail_cleanly(
        which in 0usize..5,
        (edits, cut) in mutations(),
    ) {
        let name = [
            "images/tiny_7x5.png",
            "images/exif_rot6_240x160.jpg",
            "images/small_100x60.webp",
            "images/gray16_120x90.png",
            "images/cmyk_200x150.jpg",
        ][which];
        let bytes = std::fs::read(fixture(name)).unwrap();
        let mutated = mutate(&bytes, &edits, cut);
        // a small limit, so that headers mutated into huge sizes are refused quickly
        let limits = ImageLimits::new(1 << 20);
        match decode_rgb_with(&mutated, name, AlphaMode::default(), &limits) {
            Ok(image) => prop_assert!(u64::from(image.width()) * u64::from(image.height()) <= 1 << 20),
            Err(e) => {
                prop_assert!(matches!(e, ImageLoadError::Decode { .. }), "{e}");
                prop_assert!(!e.reason().contains('\n'));
            }
        }
    }

    #[test]
    fn mutated_probes_load_or_fail_with_a_probe_error((edits, cut) in mutations()) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("probes/clip-paper-race.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.toml");
        std::fs::write(&path, mutate_text(&text, &edits, cut)).unwrap();
        if let Err(e) = ProbeSet::load(&path) {
            prop_assert!(e.to_string().contains("probe.toml"), "{e}");
        }
    }

    #[test]
    fn mutated_dataset_specs_open_or_fail_with_a_dataset_error((edits, cut) in mutations()) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // the demo spec with absolute paths and without comments, so most edits hit data
        let demo = root.join("datasets/demo");
        let text: String = std::fs::read_to_string(root.join("datasets/demo.toml"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("\"demo/labels.csv\"", &format!("{:?}", demo.join("labels.csv")))
            .replace("\"demo\"", &format!("{demo:?}"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.toml");
        std::fs::write(&path, mutate_text(&text, &edits, cut)).unwrap();
        let options = DatasetOptions {
            offline: true,
            hub_cache: Some(dir.path().join("hub")),
        };
        // Ok or a typed error: what matters is that neither panics nor hangs.
        let _ = Dataset::open(&path, &options).map(|d| d.name().to_string());
    }
}
