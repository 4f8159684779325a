//! The `utkface` format: labels parsed from the file names of a folder.

mod common;

use clip_audit::dataset::{Dataset, ImageSource};
use common::dataset::*;

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
