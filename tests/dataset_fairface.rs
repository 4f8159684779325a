//! The `fairface` format: a FairFace label CSV with an image folder, through a spec or given
//! directly as `--dataset`.

mod common;

use std::fs;

use clip_audit::dataset::{Dataset, FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES, ImageSource};
use clip_audit::digest::hex;
use common::dataset::*;
use sha2::{Digest, Sha256};

#[test]
fn fairface_spec_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(dir.path(), "labels.csv", LABELS);
    let spec_text = fairface_spec("labels.csv");
    let spec = write(dir.path(), "ff.toml", &spec_text);
    let ds = Dataset::open(&spec, &offline()).unwrap();
    assert_eq!(ds.name(), "ff");
    assert_eq!(ds.description(), "FairFace test");
    let names: Vec<&str> = ds.attributes().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["race", "gender", "age", "service_test", "race_binary"]
    );
    assert_eq!(ds.attributes()[0].values[0], "Black");
    assert_eq!(ds.spec_hash(), hex(&Sha256::digest(spec_text.as_bytes())));
    let (records, skipped) = items(&ds);
    assert!(skipped.is_empty());
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].id, "val/1.jpg");
    assert_eq!(
        records[0].image,
        ImageSource::File(dir.path().join("images").join("val/1.jpg"))
    );
    assert_eq!(
        records[0].values,
        ["East Asian", "Male", "3-9", "False", "Non-White"]
    );
    assert_eq!(
        records[1].values,
        ["White", "Female", "50-59", "True", "White"]
    );
    let p = ds.provenance();
    assert_eq!(p["format"], "fairface");
    assert_eq!(p["spec"]["sha256"], ds.spec_hash());
    let labels_hash = hex(&Sha256::digest(fs::read(&labels).unwrap()));
    assert_eq!(p["files"][0]["sha256"], labels_hash.as_str());
    assert_eq!(p["files"][0]["role"], "labels");
}

#[test]
fn direct_label_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "fairface_label_val.csv", LABELS);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    assert_eq!(ds.name(), "fairface_label_val");
    let attrs = ds.attributes();
    let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["age", "gender", "race", "service_test"]);
    assert_eq!(attrs[0].values, FAIRFACE_AGES);
    assert_eq!(attrs[1].values, FAIRFACE_GENDERS);
    assert_eq!(attrs[2].values, FAIRFACE_RACES);
    assert_eq!(attrs[3].values, ["False", "True"]);
    assert_eq!(ds.spec_hash(), hex(&Sha256::digest(LABELS.as_bytes())));
    let (records, _) = items(&ds);
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[2].image,
        ImageSource::File(dir.path().join("val/3.jpg"))
    );
    assert_eq!(
        records[2].values,
        ["30-39", "Male", "Latino_Hispanic", "True"]
    );
    assert_eq!(ds.provenance()["format"], "fairface-csv");

    // Not a FairFace CSV.
    let other = write(dir.path(), "other.csv", "path,race\na.jpg,White\n");
    assert!(
        open_err(&other).contains("no column \"file\""),
        "{}",
        open_err(&other)
    );
    // Neither .toml nor .csv.
    assert!(open_err(&dir.path().join("x.json")).contains("expected a dataset spec"));
}

#[test]
fn value_outside_vocabulary_names_row_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "labels.csv",
        "file,age,gender,race,service_test\nval/1.jpg,3-9,Male,White,False\nval/2.jpg,3-9,Male,Purple,False\n",
    );
    let ds = Dataset::open(&csv, &offline()).unwrap();
    let e = first_error(&ds);
    assert!(e.contains("labels.csv"), "{e}");
    assert!(e.contains("row 2 (line 3)"), "{e}");
    assert!(e.contains("\"Purple\""), "{e}");
    assert!(e.contains("\"Black\", \"White\""), "{e}");
    // Spec-based, too.
    let spec = write(dir.path(), "ff.toml", &fairface_spec("labels.csv"));
    let e = first_error(&Dataset::open(&spec, &offline()).unwrap());
    assert!(
        e.contains("row 2 (line 3): attribute race: value \"Purple\""),
        "{e}"
    );
    // The stream ends after the error.
    let ds = Dataset::open(&spec, &offline()).unwrap();
    assert_eq!(ds.records().unwrap().count(), 2);
}

#[test]
fn csv_with_byte_order_mark_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "labels.csv",
        "\u{feff}file,age,gender,race,service_test\r\nval/1.jpg,3-9,Male,White,False\r\n",
    );
    let ds = Dataset::open(&csv, &offline()).unwrap();
    assert_eq!(ds.attributes()[0].name, "age");
    let (records, _) = items(&ds);
    assert_eq!(records[0].id, "val/1.jpg");
    assert_eq!(records[0].values, ["3-9", "Male", "White", "False"]);
}
