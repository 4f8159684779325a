//! End-to-end tests of every source format on small data written by the tests.

use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::hex;

use polars::prelude::{
    DataFrame, IntoColumn, IntoSeries, NamedFrom, ParquetWriter, Series, StructChunked, df,
};
use sha2::{Digest, Sha256};

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

fn offline() -> DatasetOptions {
    DatasetOptions {
        offline: true,
        hub_cache: None,
    }
}

/// All items, panicking on an error.
fn items(ds: &Dataset) -> (Vec<Record>, Vec<SkippedRecord>) {
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
fn first_error(ds: &Dataset) -> String {
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

fn open_err(path: &Path) -> String {
    match Dataset::open(path, &offline()) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

const RACES: &str = r#"["Black", "White", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian", "East Asian"]"#;
const AGES: &str =
    r#"["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]"#;

const LABELS: &str = "file,age,gender,race,service_test\n\
val/1.jpg,3-9,Male,East Asian,False\n\
val/2.jpg,50-59,Female,White,True\n\
val/3.jpg,30-39,Male,Latino_Hispanic,True\n";

fn fairface_spec(labels: &str) -> String {
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

#[test]
fn dataset_and_records_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Dataset>();
    send_sync::<RecordItem>();
    send_sync::<DatasetError>();
}

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
fn image_paths_stay_inside_the_root() {
    let root = Path::new("/data/ff");
    assert_eq!(
        image_path_in_root(root, "val/1.jpg").unwrap(),
        root.join("val/1.jpg")
    );
    assert_eq!(
        image_path_in_root(root, "val/../train/1.jpg").unwrap(),
        root.join("val/../train/1.jpg")
    );
    assert!(image_path_in_root(root, "./1.jpg").is_ok());
    for bad in [
        "../1.jpg",
        "val/../../1.jpg",
        "/etc/passwd",
        "\\\\server\\x.jpg",
        "C:\\x.jpg",
        "",
    ] {
        assert!(image_path_in_root(root, bad).is_err(), "{bad}");
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "labels.csv",
        "file,age,gender,race\nval/1.jpg,3-9,Male,White\n../secret.jpg,3-9,Male,White\n",
    );
    let e = first_error(&Dataset::open(&csv, &offline()).unwrap());
    assert!(
        e.contains("row 2 (line 3)") && e.contains("\"../secret.jpg\" leaves the dataset root"),
        "{e}"
    );
    let csv = write(dir.path(), "abs.csv", "file,race\n/etc/passwd,White\n");
    let e = first_error(&Dataset::open(&csv, &offline()).unwrap());
    assert!(
        e.contains("row 1 (line 2)") && e.contains("absolute"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parquet (FairFace Hub release schema)

/// One FairFace parquet row: image bytes, image path, age, gender, race, service_test.
type FfRow = (Vec<u8>, String, i64, i64, i64, bool);

fn ff_rows(n: usize) -> Vec<FfRow> {
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

fn write_ff_parquet(path: &Path, rows: &[FfRow], row_group: usize) {
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
const FF_PARQUET_ATTRIBUTES: &str = r#"
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

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Lays out `files` as a Hugging Face hub cache of HuggingFaceM4/FairFace at `main` = COMMIT.
fn fake_hub_cache(cache: &Path, files: &[(&str, &[FfRow])]) {
    let repo = cache.join("datasets--HuggingFaceM4--FairFace");
    write(&repo, "refs/main", COMMIT);
    for (file, rows) in files {
        write_ff_parquet(&repo.join("snapshots").join(COMMIT).join(file), rows, 4);
    }
}

#[test]
fn fairface_hub_from_a_fake_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let rows = ff_rows(10);
    let file = "0.25/validation-00000-of-00001.parquet";
    fake_hub_cache(&cache, &[(file, &rows)]);
    let spec = write(
        dir.path(),
        "hub.toml",
        &format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"0.25\"\nsplit = \"validation\"\nfiles = [\"{file}\"]\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let options = DatasetOptions {
        offline: true,
        hub_cache: Some(cache.clone()),
    };
    let ds = Dataset::open(&spec, &options).unwrap();
    let (records, skipped) = items(&ds);
    assert!(skipped.is_empty());
    assert_eq!(records.len(), 10);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.id, format!("{file}#{i}"));
        assert_eq!(
            r.image,
            ImageSource::Embedded {
                name: format!("{file}#{i}"),
                bytes: rows[i].0.clone()
            }
        );
    }
    assert_eq!(records[2].values, ["Black", "Male", "10-19", "False"]);
    assert_eq!(records[3].values, ["White", "Female", "20-29", "True"]);
    assert_eq!(
        records[8].values,
        ["Indian", "Male", "more than 70", "False"]
    );
    assert_eq!(records[5].image.display(), format!("{file}#5"));
    let p = ds.provenance();
    assert_eq!(p["format"], "fairface-hub");
    assert_eq!(p["hub"]["repo"], "HuggingFaceM4/FairFace");
    assert_eq!(p["hub"]["revision"], "main");
    assert_eq!(p["hub"]["commit"], COMMIT);
    let cached = cache
        .join("datasets--HuggingFaceM4--FairFace/snapshots")
        .join(COMMIT)
        .join(file);
    let digest = hex(&Sha256::digest(fs::read(&cached).unwrap()));
    assert_eq!(p["files"][0]["sha256"], digest.as_str());
    assert_eq!(p["files"][0]["repo_path"], file);

    // Pinned digest: a match opens, a mismatch is an error naming both.
    let pinned = |digest: &str| {
        format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"0.25\"\nsplit = \"validation\"\nfiles = [\"{file}\"]\nsha256 = {{ \"{file}\" = \"{digest}\" }}\n{FF_PARQUET_ATTRIBUTES}"
        )
    };
    let ok = write(dir.path(), "pinned.toml", &pinned(&digest));
    assert!(Dataset::open(&ok, &options).is_ok());
    let bad = write(dir.path(), "bad.toml", &pinned(&"0".repeat(64)));
    let e = Dataset::open(&bad, &options).unwrap_err().to_string();
    assert!(e.contains("sha256") && e.contains(&digest), "{e}");

    // Image paths as ids.
    let by_path = write(
        dir.path(),
        "bypath.toml",
        &format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"0.25\"\nsplit = \"validation\"\nfiles = [\"{file}\"]\nid = \"image.path\"\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let (records, _) = items(&Dataset::open(&by_path, &options).unwrap());
    assert_eq!(records[0].id, "val/1.jpg");
}

#[test]
fn fairface_hub_default_layout_and_offline_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let rows = ff_rows(3);
    fake_hub_cache(
        &cache,
        &[(
            "0.25/validation-00000-of-00001-951dbd63c8724ee1.parquet",
            &rows,
        )],
    );
    let spec = |config: &str| {
        format!(
            "name = \"ffhub\"\n[source]\nformat = \"fairface-hub\"\nconfig = \"{config}\"\nsplit = \"validation\"\n{FF_PARQUET_ATTRIBUTES}"
        )
    };
    let options = DatasetOptions {
        offline: true,
        hub_cache: Some(cache.clone()),
    };
    let ok = write(dir.path(), "ok.toml", &spec("0.25"));
    let (records, _) = items(&Dataset::open(&ok, &options).unwrap());
    assert_eq!(records.len(), 3);
    // 1.25 is not in this cache: offline, the error names the file, the repo and the cache.
    let missing = write(dir.path(), "missing.toml", &spec("1.25"));
    let e = Dataset::open(&missing, &options).unwrap_err();
    assert!(matches!(e, DatasetError::NotCached { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("1.25/validation-00000-of-00001-09e3e67bb00ab4ec.parquet")
            && e.contains("HuggingFaceM4/FairFace@main")
            && e.contains(&cache.display().to_string())
            && e.contains("offline"),
        "{e}"
    );
    // No default list for an unknown split.
    let unknown = write(
        dir.path(),
        "unknown.toml",
        &spec("0.25").replace("split = \"validation\"", "split = \"test\""),
    );
    let e = open_err(&unknown);
    assert!(
        e.contains("unknown.toml: field source.files: missing"),
        "{e}"
    );
}

#[test]
fn fairface_parquet_unknown_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = ff_rows(6);
    rows[4].4 = 9; // race 9: not in the mapping
    write_ff_parquet(&dir.path().join("val.parquet"), &rows, 2);
    let spec = write(
        dir.path(),
        "local.toml",
        &format!(
            "name = \"ffp\"\n[source]\nformat = \"fairface-parquet\"\npath = \"val.parquet\"\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let mut ok = 0;
    let mut error = None;
    for item in ds.records().unwrap() {
        match item {
            Ok(_) => ok += 1,
            Err(e) => error = Some(e.to_string()),
        }
    }
    assert_eq!(ok, 4, "the rows before the bad one are yielded");
    let e = error.unwrap();
    assert!(
        e.contains("val.parquet: row 4: column race: value \"9\" has no entry in attributes.race.codes (known: 0, 1, 2, 3, 4, 5, 6)"),
        "{e}"
    );
    // Codes are required for the fairface parquet formats.
    let no_codes = write(
        dir.path(),
        "nocodes.toml",
        "name = \"x\"\n[source]\nformat = \"fairface-parquet\"\npath = \"val.parquet\"\n[[attributes]]\nname = \"race\"\nvalues = [\"0\", \"1\"]\n",
    );
    let e = open_err(&no_codes);
    assert!(
        e.contains("nocodes.toml: field attributes.race.codes: required"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// UTKFace

const UTK_SPEC: &str = r#"
name = "utk"
[source]
format = "utkface"
root = "UTKFace"

[[attributes]]
name = "race"
codes = { 0 = "White", 1 = "Black", 2 = "Asian", 3 = "Indian", 4 = "Others" }
values = ["White", "Black", "Asian", "Indian", "Others"]

[[attributes]]
name = "gender"
codes = { 0 = "Male", 1 = "Female" }
values = ["Male", "Female"]

[[attributes]]
name = "age"
from = "age"
bins = { edges = [3, 10, 20, 30, 40, 50, 60, 70], labels = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"] }

[[attributes]]
name = "race_binary"
from = "race"
map = { White = "White", Black = "Non-White", Asian = "Non-White", Indian = "Non-White", Others = "Non-White" }
values = ["White", "Non-White"]
"#;

#[test]
fn utkface_folder_with_malformed_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("UTKFace");
    // Created out of order on purpose.
    for name in [
        "9_1_2_20161219204347420.jpg.chip.jpg",
        "26_0_0_20170116174525125.jpg",
        "39_1_20170116174525125.jpg.chip.jpg", // missing race field (real UTKFace has such names)
        "2_0_1_20161219204347420.jpg",
        "70_1_3_20170109150557335.jpg",
        "69_0_4_20170109150557335.jpg",
        "x_0_1_20170109150557335.jpg",  // non-numeric age
        "30_0_5_20170109150557335.jpg", // race code out of range
        "30_2_0_20170109150557335.jpg", // gender code out of range
        "notes.txt",
        ".DS_Store",
    ] {
        write(&root, name, "jpeg");
    }
    write(&root, "sub/1_0_0_20170109150557335.jpg", "jpeg");
    let spec = write(dir.path(), "utk.toml", UTK_SPEC);
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let (records, skipped) = items(&ds);
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "26_0_0_20170116174525125.jpg",
            "2_0_1_20161219204347420.jpg",
            "69_0_4_20170109150557335.jpg",
            "70_1_3_20170109150557335.jpg",
            "9_1_2_20161219204347420.jpg.chip.jpg",
        ]
    );
    assert_eq!(records[0].values, ["White", "Male", "20-29", "White"]);
    assert_eq!(records[1].values, ["Black", "Male", "0-2", "Non-White"]);
    assert_eq!(records[2].values, ["Others", "Male", "60-69", "Non-White"]);
    assert_eq!(
        records[3].values,
        ["Indian", "Female", "more than 70", "Non-White"]
    );
    assert_eq!(records[4].values, ["Asian", "Female", "3-9", "Non-White"]);
    assert_eq!(
        records[0].image,
        ImageSource::File(root.join("26_0_0_20170116174525125.jpg"))
    );
    let reasons: Vec<(&str, &str)> = skipped
        .iter()
        .map(|s| (s.id.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    let reason = |id: &str| reasons.iter().find(|(i, _)| *i == id).unwrap().1;
    assert!(
        reason("39_1_20170116174525125.jpg.chip.jpg")
            .contains("has 3 underscore-separated fields, expected 4")
    );
    assert!(reason("x_0_1_20170109150557335.jpg").contains("field age is \"x\", expected digits"));
    assert!(
        reason("30_0_5_20170109150557335.jpg")
            .contains("column race: value \"5\" has no entry in attributes.race.codes")
    );
    assert!(reason("30_2_0_20170109150557335.jpg").contains("column gender: value \"2\""));
    assert!(reason("notes.txt").contains("does not end in .jpg"));
    assert_eq!(ds.provenance()["files_listed"], 10);

    // Recursive listing includes sub/.
    let rec = write(
        dir.path(),
        "rec.toml",
        &UTK_SPEC.replace("root = \"UTKFace\"", "root = \"UTKFace\"\nrecursive = true"),
    );
    let (records, _) = items(&Dataset::open(&rec, &offline()).unwrap());
    assert_eq!(
        records.last().unwrap().id,
        "sub/1_0_0_20170109150557335.jpg"
    );

    // A column the names do not have.
    let bad = write(
        dir.path(),
        "bad.toml",
        &UTK_SPEC.replace("name = \"gender\"", "name = \"gender\"\ncolumn = \"sex\""),
    );
    assert!(open_err(&bad).contains("reads column \"sex\""));
}

// ---------------------------------------------------------------------------------------------
// Manifests

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

// ---------------------------------------------------------------------------------------------
// Spec errors

fn spec_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "labels.csv", LABELS);
    let spec = write(dir.path(), "x.toml", text);
    let e = open_err(&spec);
    assert!(e.contains("x.toml"), "{e}");
    e
}

#[test]
fn spec_errors_name_file_and_field() {
    let good = fairface_spec("labels.csv");
    let e = spec_err(&good.replace("description =", "colour = \"red\"\ndescription ="));
    assert!(
        e.contains("field colour: unknown field (allowed here:"),
        "{e}"
    );
    let e = spec_err(&good.replace("root = \"images\"", "root = \"images\"\nimage_root = \"x\""));
    assert!(e.contains("field source.image_root: unknown field"), "{e}");
    let e = spec_err(&good.replace("name = \"gender\"", "name = \"gender\"\nvalue = [\"Male\"]"));
    assert!(
        e.contains("field attributes.gender.value: unknown field"),
        "{e}"
    );
    let e = spec_err(&good.replace("labels = \"labels.csv\"\n", ""));
    assert!(e.contains("field source.labels: missing"), "{e}");
    let e = spec_err(&good.replace("name = \"ff\"\n", ""));
    assert!(e.contains("field name: missing"), "{e}");
    let e = spec_err(&good.replace("values = [\"Male\", \"Female\"]", ""));
    assert!(e.contains("field attributes.gender.values: missing"), "{e}");
    let e = spec_err(&good.replace("values = [\"Male\", \"Female\"]", "values = [\"Male\", 2]"));
    assert!(
        e.contains("field attributes.gender.values[1]: expected a string, got integer"),
        "{e}"
    );
    let e = spec_err(&good.replace("default = \"Non-White\"\n", ""));
    assert!(
        e.contains("field attributes.race_binary.map: does not cover \"Black\""),
        "{e}"
    );
    let e = spec_err(&good.replace("default = \"Non-White\"", "default = \"Other\""));
    assert!(e.contains("field attributes.race_binary.default: \"Other\" is not in attributes.race_binary.values"), "{e}");
    let e = spec_err(&good.replace("format = \"fairface\"", "format = \"imagenet\""));
    assert!(
        e.contains("field source.format: unknown format \"imagenet\""),
        "{e}"
    );
    let e = spec_err(&good.replace("name = \"service_test\"", "name = \"race\""));
    assert!(
        e.contains("field attributes.race.name: attribute \"race\" is declared twice"),
        "{e}"
    );
    let e = spec_err(&format!(
        "{good}\n[[attributes]]\nname = \"b\"\nfrom = \"age\"\nbins = {{ edges = [1, 2], labels = [\"a\"] }}\n"
    ));
    assert!(
        e.contains("field attributes.b.bins.labels: 2 edges make 3 bins, but 1 labels are given"),
        "{e}"
    );
    let e = spec_err(&format!(
        "{good}\n[[attributes]]\nname = \"b\"\nfrom = \"age\"\ncodes = {{ 1 = \"x\" }}\nmap = {{ a = \"b\" }}\nvalues = [\"b\"]\n"
    ));
    assert!(
        e.contains("field attributes.b.codes: not allowed on a derived attribute"),
        "{e}"
    );
    let e = spec_err("name = \"x\"\n[source\n");
    assert!(e.contains("x.toml: TOML parse error"), "{e}");
    let e = spec_err(&good.replace(
        "[[attributes]]\nname = \"race\"",
        "[[attributes]]\nname = \"race\"\ncolumn = \"ethnicity\"",
    ));
    assert!(
        e.contains("labels.csv: no column \"ethnicity\" (attributes.race.column in "),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Determinism, the demo, memory

#[test]
fn record_order_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "labels.csv", LABELS);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    assert_eq!(items(&ds), items(&ds));
    let rows = ff_rows(23);
    write_ff_parquet(&dir.path().join("v.parquet"), &rows, 5);
    let spec = write(
        dir.path(),
        "p.toml",
        &format!(
            "name = \"p\"\n[source]\nformat = \"fairface-parquet\"\npath = [\"v.parquet\", \"v.parquet\"]\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let (a, _) = items(&ds);
    assert_eq!(a.len(), 46);
    assert_eq!(a, items(&ds).0);
    let order: Vec<Vec<u8>> = a[..23]
        .iter()
        .map(|r| match &r.image {
            ImageSource::Embedded { bytes, .. } => bytes.clone(),
            ImageSource::File(_) => unreachable!(),
        })
        .collect();
    assert_eq!(order, rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>());

    // One row group larger than a read slice: read in several slices, in order.
    let rows = ff_rows(600);
    write_ff_parquet(&dir.path().join("v.parquet"), &rows, 600);
    let (records, _) = items(&Dataset::open(&spec, &offline()).unwrap());
    assert_eq!(records.len(), 1200);
    for (i, r) in records.iter().enumerate() {
        let ImageSource::Embedded { bytes, name } = &r.image else {
            panic!()
        };
        assert_eq!(bytes, &rows[i % 600].0, "record {i}");
        assert_eq!(name, &format!("v.parquet#{}", i % 600));
    }
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

#[test]
fn shipped_specs_parse() {
    for name in [
        "fairface-val.toml",
        "fairface-local.toml",
        "utkface.toml",
        "demo.toml",
    ] {
        let path = repo_datasets().join(name);
        let text = fs::read_to_string(&path).unwrap();
        let parsed = spec::parse(&path, &text).unwrap();
        plan::Plan::from_specs(&path, &parsed.attributes).unwrap();
    }
    // The Hub spec's file is the known layout, and offline with an empty cache says what is missing.
    let empty = tempfile::tempdir().unwrap();
    let options = DatasetOptions {
        offline: true,
        hub_cache: Some(empty.path().to_path_buf()),
    };
    let e = Dataset::open(&repo_datasets().join("fairface-val.toml"), &options).unwrap_err();
    assert!(
        e.to_string()
            .contains("0.25/validation-00000-of-00001-951dbd63c8724ee1.parquet"),
        "{e}"
    );
}

/// Anonymous resident memory of this process, in KiB (Linux).
fn rss_anon_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn csv_records_stream_without_collecting() {
    // 20k rows: the stream holds one row at a time; peak anonymous memory must not grow with it.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("file,age,gender,race,service_test\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "val/{i}.jpg,{},{},{},False\n",
            FAIRFACE_AGES[i % 9],
            FAIRFACE_GENDERS[i % 2],
            FAIRFACE_RACES[i % 7]
        ));
    }
    let csv = write(dir.path(), "big.csv", &text);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    // Lazy: a bad last row does not stop the first record from arriving.
    let bad = write(
        dir.path(),
        "bad.csv",
        &format!("{text}val/x.jpg,3-9,Male,Purple,False\n"),
    );
    drop(text);
    let bad = Dataset::open(&bad, &offline()).unwrap();
    let mut bad_iter = bad.records().unwrap();
    assert!(matches!(bad_iter.next(), Some(Ok(RecordItem::Record(_)))));
    assert!(bad_iter.nth(19_999).unwrap().is_err());
    let mut iter = ds.records().unwrap();
    let _ = iter.next();
    let before = rss_anon_kib();
    let mut n = 1;
    for item in iter {
        item.unwrap();
        n += 1;
    }
    assert_eq!(n, 20_000);
    if let (Some(a), Some(b)) = (before, rss_anon_kib()) {
        eprintln!("csv 20k rows: RssAnon {a} KiB -> {b} KiB");
    }
}

/// Measures memory over a large generated CSV and parquet file (run alone:
/// `cargo test memory_stays_flat -- --ignored --nocapture --test-threads=1`).
#[test]
#[ignore]
fn memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    for rows in [20_000usize, 200_000] {
        let mut text = String::from("file,age,gender,race,service_test\n");
        for i in 0..rows {
            text.push_str(&format!(
                "val/{i}.jpg,{},{},{},False\n",
                FAIRFACE_AGES[i % 9],
                FAIRFACE_GENDERS[i % 2],
                FAIRFACE_RACES[i % 7]
            ));
        }
        let csv = write(dir.path(), "big.csv", &text);
        drop(text);
        let ds = Dataset::open(&csv, &offline()).unwrap();
        let start = rss_anon_kib().unwrap();
        let mut peak = start;
        for (i, item) in ds.records().unwrap().enumerate() {
            item.unwrap();
            if i % 1000 == 0 {
                peak = peak.max(rss_anon_kib().unwrap());
            }
        }
        eprintln!("CSV {rows} rows: RssAnon start {start} KiB, peak during iteration {peak} KiB");
    }
    for rows in [2_000usize, 20_000] {
        // ~6 KB of image bytes per row, like FairFace's 0.25 validation file, 100-row groups.
        let data: Vec<FfRow> = (0..rows)
            .map(|i| {
                // Incompressible (xorshift) bytes, so the file is as large as the images.
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
                let bytes: Vec<u8> = (0..6000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                (
                    bytes,
                    format!("val/{i}.jpg"),
                    (i % 9) as i64,
                    (i % 2) as i64,
                    (i % 7) as i64,
                    false,
                )
            })
            .collect();
        let path = dir.path().join("big.parquet");
        write_ff_parquet(&path, &data, 100);
        drop(data);
        let spec = write(
            dir.path(),
            "p.toml",
            &format!(
                "name = \"p\"\n[source]\nformat = \"fairface-parquet\"\npath = \"big.parquet\"\n{FF_PARQUET_ATTRIBUTES}"
            ),
        );
        let ds = Dataset::open(&spec, &offline()).unwrap();
        let start = rss_anon_kib().unwrap();
        let clock = std::time::Instant::now();
        let mut peak = start;
        let mut total = 0usize;
        for (i, item) in ds.records().unwrap().enumerate() {
            if let Ok(RecordItem::Record(Record {
                image: ImageSource::Embedded { bytes, .. },
                ..
            })) = item
            {
                total += bytes.len();
            }
            if i % 100 == 0 {
                peak = peak.max(rss_anon_kib().unwrap());
            }
        }
        eprintln!(
            "Parquet {rows} rows ({} MB of image bytes, file {} MB) read in {:.2} s: RssAnon start {start} KiB, peak {peak} KiB",
            total / 1_000_000,
            fs::metadata(&path).unwrap().len() / 1_000_000,
            clock.elapsed().as_secs_f64(),
        );
    }
}

/// Regenerates `datasets/demo/` (42 synthetic cartoon faces and their FairFace-format labels):
/// `cargo test regenerate_demo -- --ignored`. Deterministic: same bytes every run.
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

#[test]
fn check_records_counts_and_names_both_rows_of_a_repeated_id() {
    let dir = tempfile::tempdir().unwrap();
    let labels = "file,age,gender,race,service_test\n\
                  val/1.jpg,20-29,Male,White,True\n\
                  val/2.jpg,20-29,Female,Black,True\n\
                  val/1.jpg,30-39,Male,White,False\n";
    let csv = write(dir.path(), "labels.csv", labels);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    let e = ds.check_records().unwrap_err().to_string();
    assert!(
        e.contains("duplicate record id \"val/1.jpg\"")
            && e.contains("row 1 (line 2)")
            && e.contains("row 3 (line 4)")
            && e.contains("labels.csv"),
        "{e}"
    );
    write(dir.path(), "labels.csv", &labels[..labels.len() - 33]);
    let ds = Dataset::open(&csv, &offline()).unwrap();
    assert_eq!(
        ds.check_records().unwrap(),
        RecordCounts {
            items: 2,
            skipped: 0
        }
    );
}

#[test]
fn check_records_names_rows_across_parquet_files() {
    let dir = tempfile::tempdir().unwrap();
    let rows = ff_rows(6);
    let mut second = ff_rows(3);
    second[0].1 = rows[4].1.clone(); // the same image path (the id) in both files
    second[1].1 = "val/b2.jpg".into();
    second[2].1 = "val/b3.jpg".into();
    write_ff_parquet(&dir.path().join("a.parquet"), &rows, 4);
    write_ff_parquet(&dir.path().join("b.parquet"), &second, 2);
    let spec = write(
        dir.path(),
        "local.toml",
        &format!(
            "name = \"ffp\"\n[source]\nformat = \"fairface-parquet\"\npath = [\"a.parquet\", \"b.parquet\"]\nid = \"image.path\"\n{FF_PARQUET_ATTRIBUTES}"
        ),
    );
    let ds = Dataset::open(&spec, &offline()).unwrap();
    let e = ds.check_records().unwrap_err().to_string();
    assert!(
        e.contains("\"val/5.jpg\"")
            && e.contains("a.parquet: row 4")
            && e.contains("b.parquet: row 0"),
        "{e}"
    );
}
