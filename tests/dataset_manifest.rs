//! The `manifest` format: any CSV or Parquet table with an image column, with codes, bins and
//! maps.

mod common;

use std::fs;

use clip_audit::dataset::{Dataset, ImageSource};
use common::dataset::*;
use polars::prelude::{ParquetWriter, df};

#[test]
fn csv_manifest_with_bins_codes_and_maps() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "data/manifest.csv",
        "key,img,years,sex,ethnicity\nA,faces/a.png,2,m,Black\nB,faces/b.png,35.5,f,White\nC,faces/c.png,70,f,Indian\nD,faces/d.png,69,m,White\n",
    );
    let spec = write(
        dir.path(),
        "m.toml",
        r#"
name = "m"
[source]
format = "manifest"
path = "data/manifest.csv"
image_column = "img"
id_column = "key"

[[attributes]]
name = "gender"
column = "sex"
codes = { m = "Male", f = "Female" }
values = ["Male", "Female"]

[[attributes]]
name = "race"
column = "ethnicity"
values = ["Black", "White", "Indian"]

[[attributes]]
name = "age"
from = "years"
bins = { edges = [3, 10, 20, 30, 40, 50, 60, 70], labels = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"] }

[[attributes]]
name = "race_binary"
from = "race"
map = { White = "White" }
default = "Non-White"
values = ["White", "Non-White"]
"#,
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let (records, _) = items(&ds);
    let got: Vec<(&str, Vec<String>)> = records
        .iter()
        .map(|r| (r.id.as_str(), r.values.clone()))
        .collect();
    assert_eq!(
        got[0],
        (
            "A",
            vec![
                "Male".into(),
                "Black".into(),
                "0-2".into(),
                "Non-White".into()
            ]
        )
    );
    assert_eq!(
        got[1],
        (
            "B",
            vec![
                "Female".into(),
                "White".into(),
                "30-39".into(),
                "White".into()
            ]
        )
    );
    assert_eq!(got[2].1[2], "more than 70");
    assert_eq!(got[3].1[2], "60-69");
    // Images are relative to the manifest's folder by default.
    assert_eq!(
        records[0].image,
        ImageSource::File(dir.path().join("data/faces/a.png"))
    );
    assert_eq!(ds.provenance()["files"][0]["role"], "manifest");

    // Non-numeric bin input.
    write(
        dir.path(),
        "data/manifest.csv",
        "key,img,years,sex,ethnicity\nA,faces/a.png,old,m,Black\n",
    );
    let e = first_error(&Dataset::open(&spec, &offline()).unwrap());
    assert!(
        e.contains("row 1 (line 2): attribute age: column years value \"old\" is not a number"),
        "{e}"
    );
    // A column the manifest lacks.
    write(
        dir.path(),
        "data/manifest.csv",
        "key,img,years,gender,ethnicity\nA,faces/a.png,3,m,Black\n",
    );
    let e = open_err(&spec);
    assert!(e.contains("manifest.csv: no column \"sex\""), "{e}");
}

#[test]
fn parquet_manifest_with_path_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = df!(
        "image" => ["a.jpg", "b.jpg", "sub/c.jpg"],
        "group" => [1i64, 0, 1],
        "label" => ["x", "y", "x"],
    )
    .unwrap();
    ParquetWriter::new(fs::File::create(dir.path().join("m.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let spec = write(
        dir.path(),
        "m.toml",
        r#"
name = "pm"
[source]
format = "manifest"
path = "m.parquet"
image_column = "image"
root = "imgs"

[[attributes]]
name = "group"
codes = { 0 = "control", 1 = "treated" }
values = ["treated", "control"]

[[attributes]]
name = "label"
values = ["x", "y"]
"#,
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let (records, _) = items(&ds);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].id, "sub/c.jpg");
    assert_eq!(
        records[2].image,
        ImageSource::File(dir.path().join("imgs/sub/c.jpg"))
    );
    assert_eq!(records[1].values, ["control", "y"]);

    // A path leaving the root is a fatal error naming the row.
    let mut df =
        df!("image" => ["a.jpg", "../../etc/x.jpg"], "group" => [1i64, 0], "label" => ["x", "y"])
            .unwrap();
    ParquetWriter::new(fs::File::create(dir.path().join("m.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    let e = first_error(&Dataset::open(&spec, &offline()).unwrap());
    assert!(
        e.contains("m.parquet: row 1: image path \"../../etc/x.jpg\" leaves the dataset root"),
        "{e}"
    );
}
