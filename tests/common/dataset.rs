//! Helpers for the dataset tests (`tests/dataset_*.rs`): small data written into temporary
//! folders, specs, and readers of the record stream.

use std::fs;
use std::path::{Path, PathBuf};

use clip_audit::dataset::{Dataset, DatasetOptions, Record, RecordItem, SkippedRecord};
use polars::prelude::{
    DataFrame, IntoColumn, IntoSeries, NamedFrom, ParquetWriter, Series, StructChunked,
};

/// Writes `text` to `dir/name` (creating folders) and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

/// Options that never touch the network.
pub fn offline() -> DatasetOptions {
    DatasetOptions {
        offline: true,
        hub_cache: None,
    }
}

/// All items, panicking on an error.
pub fn items(ds: &Dataset) -> (Vec<Record>, Vec<SkippedRecord>) {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for item in ds.records().unwrap() {
        match item.unwrap() {
            RecordItem::Record(r) => records.push(r),
            RecordItem::Skipped(s) => skipped.push(s),
        }
    }
    (records, skipped)
}

/// The first error of the stream, as text.
pub fn first_error(ds: &Dataset) -> String {
    let mut seen = 0;
    for item in ds.records().unwrap() {
        match item {
            Ok(_) => seen += 1,
            Err(e) => {
                return e.to_string();
            }
        }
    }
    panic!("no error after {seen} items")
}

/// The error of opening `path` offline, as text (panics if it opens).
pub fn open_err(path: &Path) -> String {
    match Dataset::open(path, &offline()) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

/// FairFace's races, as a TOML array.
pub const RACES: &str = r#"["Black", "White", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian", "East Asian"]"#;
/// FairFace's age bins, as a TOML array.
pub const AGES: &str =
    r#"["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]"#;

/// A three-row FairFace label CSV.
pub const LABELS: &str = "file,age,gender,race,service_test\n\
val/1.jpg,3-9,Male,East Asian,False\n\
val/2.jpg,50-59,Female,White,True\n\
val/3.jpg,30-39,Male,Latino_Hispanic,True\n";

/// A `fairface` spec reading `labels` (images under `images/`), with a derived `race_binary`.
pub fn fairface_spec(labels: &str) -> String {
    format!(
        r#"# test spec
name = "ff"
description = "FairFace test"

[source]
format = "fairface"
labels = "{labels}"
root = "images"

[[attributes]]
name = "race"
values = {RACES}

[[attributes]]
name = "gender"
values = ["Male", "Female"]

[[attributes]]
name = "age"
values = {AGES}

[[attributes]]
name = "service_test"
values = ["False", "True"]

[[attributes]]
name = "race_binary"
from = "race"
map = {{ White = "White" }}
default = "Non-White"
values = ["White", "Non-White"]
"#
    )
}

// ---------------------------------------------------------------------------------------------
// Parquet (FairFace Hub release schema)

/// One FairFace parquet row: image bytes, image path, age, gender, race, service_test.
pub type FfRow = (Vec<u8>, String, i64, i64, i64, bool);

/// `n` rows with distinct image bytes and cycling class indices.
pub fn ff_rows(n: usize) -> Vec<FfRow> {
    (0..n)
        .map(|i| {
            let bytes = format!("jpeg-bytes-{i}").into_bytes();
            (
                bytes,
                format!("val/{}.jpg", i + 1),
                (i % 9) as i64,
                (i % 2) as i64,
                (i % 7) as i64,
                i % 3 == 0,
            )
        })
        .collect()
}

/// Writes `rows` as a parquet file with the FairFace Hub schema, `row_group` rows per group.
pub fn write_ff_parquet(path: &Path, rows: &[FfRow], row_group: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let n = rows.len();
    let bytes = Series::new(
        "bytes".into(),
        rows.iter().map(|r| r.0.as_slice()).collect::<Vec<&[u8]>>(),
    );
    let paths = Series::new(
        "path".into(),
        rows.iter().map(|r| r.1.as_str()).collect::<Vec<&str>>(),
    );
    let image = StructChunked::from_series("image".into(), n, [bytes, paths].iter())
        .unwrap()
        .into_series();
    let int = |name: &str, f: fn(&FfRow) -> i64| {
        Series::new(name.into(), rows.iter().map(f).collect::<Vec<i64>>())
    };
    let mut df = DataFrame::new_infer_height(vec![
        image.into_column(),
        int("age", |r| r.2).into_column(),
        int("gender", |r| r.3).into_column(),
        int("race", |r| r.4).into_column(),
        Series::new(
            "service_test".into(),
            rows.iter().map(|r| r.5).collect::<Vec<bool>>(),
        )
        .into_column(),
    ])
    .unwrap();
    ParquetWriter::new(fs::File::create(path).unwrap())
        .with_row_group_size(Some(row_group))
        .finish(&mut df)
        .unwrap();
}

/// The attribute part of a FairFace parquet spec (the codes of the Hub release).
pub const FF_PARQUET_ATTRIBUTES: &str = r#"
[[attributes]]
name = "race"
codes = { 0 = "East Asian", 1 = "Indian", 2 = "Black", 3 = "White", 4 = "Middle Eastern", 5 = "Latino_Hispanic", 6 = "Southeast Asian" }
values = ["Black", "White", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian", "East Asian"]

[[attributes]]
name = "gender"
codes = { 0 = "Male", 1 = "Female" }
values = ["Male", "Female"]

[[attributes]]
name = "age"
codes = { 0 = "0-2", 1 = "3-9", 2 = "10-19", 3 = "20-29", 4 = "30-39", 5 = "40-49", 6 = "50-59", 7 = "60-69", 8 = "more than 70" }
values = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]

[[attributes]]
name = "service_test"
codes = { false = "False", true = "True" }
values = ["False", "True"]
"#;
