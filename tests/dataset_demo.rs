//! The bundled demo set (`datasets/demo/`): it loads through its spec and its label CSV, and
//! `regenerate_demo` rewrites it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use clip_audit::dataset::{Dataset, FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES, ImageSource};
use common::dataset::*;

fn repo_datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

#[test]
fn demo_spec_loads_all_records() {
    let ds = Dataset::open(&repo_datasets().join("demo.toml"), &offline()).unwrap();
    let (records, skipped) = items(&ds);
    assert!(skipped.is_empty());
    assert_eq!(records.len(), 42);
    let mut cells = std::collections::BTreeSet::new();
    for r in &records {
        let ImageSource::File(path) = &r.image else {
            panic!("demo images are files")
        };
        assert!(path.is_file(), "{}", path.display());
        cells.insert((r.values[0].clone(), r.values[1].clone()));
    }
    assert_eq!(cells.len(), 14, "all 7 races × 2 genders");
    // The label CSV works directly, too.
    let direct = Dataset::open(&repo_datasets().join("demo/labels.csv"), &offline()).unwrap();
    assert_eq!(items(&direct).0.len(), 42);
}

/// Regenerates `datasets/demo/` (42 synthetic cartoon faces and their FairFace-format labels):
/// `cargo test --test dataset_demo regenerate_demo -- --ignored`. Deterministic: same bytes every
/// run.
#[test]
#[ignore]
fn regenerate_demo() {
    let demo = repo_datasets().join("demo");
    fs::create_dir_all(demo.join("val")).unwrap();
    let mut labels = String::from("file,age,gender,race,service_test\n");
    // Skin, hair and background palettes: arbitrary, only to make the images differ. The drawing
    // deliberately does not follow the labels (skin tone, hair length and lines vary with the
    // image index, not with race, gender or age): the labels are assigned, not depicted.
    let skins: [[u8; 3]; 7] = [
        [92, 60, 40],
        [236, 200, 170],
        [170, 120, 85],
        [200, 150, 110],
        [210, 165, 125],
        [185, 135, 95],
        [225, 190, 150],
    ];
    for i in 0..42usize {
        let race = i / 6;
        let gender = (i / 3) % 2;
        let k = i % 3;
        let age = (race + gender + 3 * k) % 9;
        let file = format!("val/{}.jpg", i + 1);
        labels.push_str(&format!(
            "{file},{},{},{},{}\n",
            FAIRFACE_AGES[age],
            FAIRFACE_GENDERS[gender],
            FAIRFACE_RACES[race],
            if i % 2 == 0 { "True" } else { "False" }
        ));
        let skin = skins[(i * 3) % 7];
        let bg = [
            (60 + 25 * k) as u8,
            (90 + 20 * (i % 5)) as u8,
            (140 + 15 * (i % 7)) as u8,
        ];
        let shade = i % 9;
        let hair = [
            (30 + 8 * shade) as u8,
            (20 + 6 * shade) as u8,
            (15 + 5 * shade) as u8,
        ];
        let long_hair = i % 4 < 2;
        let lines = i % 5 == 0;
        let img = image::RgbImage::from_fn(96, 96, |x, y| {
            let (fx, fy) = (x as f32 - 48.0, y as f32 - 50.0);
            let face = (fx / 26.0).powi(2) + (fy / 33.0).powi(2) <= 1.0;
            let head = (fx / 31.0).powi(2) + ((fy + 6.0) / 37.0).powi(2) <= 1.0;
            let mane = (fx / 36.0).powi(2) + ((fy + 2.0) / 44.0).powi(2) <= 1.0 && fy < 34.0;
            let hair_px = !face && ((head && fy < 0.0) || (long_hair && mane));
            let eye = ((fx.abs() - 10.0).powi(2) + (fy + 6.0).powi(2)) <= 9.0;
            let mouth = fx.abs() < 9.0 && (fy - 16.0).abs() < 1.5;
            let wrinkle =
                lines && fx.abs() < 8.0 && ((fy + 18.0).abs() < 0.6 || (fy + 14.0).abs() < 0.6);
            let px = if eye || mouth || wrinkle {
                [25, 20, 20]
            } else if face {
                skin
            } else if hair_px {
                hair
            } else {
                bg
            };
            image::Rgb(px)
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img)
            .unwrap();
        fs::write(demo.join(&file), out).unwrap();
    }
    fs::write(demo.join("labels.csv"), labels).unwrap();
}
