//! A report that can be trusted under hostile or broken input: every dataset row is checked
//! before the model loads, ids are unique, links cannot leave the dataset root, skips are
//! counted, warned about and bounded, and no CSV cell can run as a spreadsheet formula.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixture;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `clip-audit run --model <model>` with a fresh embedding cache.
fn run_with(model: &Path, probe: &Path, dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .env("CLIP_AUDIT_CACHE", cache.path())
        .arg("run")
        .arg("--probe")
        .arg(probe)
        .arg("--dataset")
        .arg(dataset)
        .arg("--model")
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(["--batch", "4"])
        .args(extra)
        .output()
        .unwrap()
}

/// `clip-audit run` with the tiny model and the CLIP paper probe.
fn run(dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    run_with(
        &fixture("tiny-clip"),
        &root().join("probes/clip-paper-race.toml"),
        dataset,
        out,
        extra,
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\n{}",
        output.status,
        stderr(output)
    );
    stderr(output)
}

fn failed(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    stderr(output)
}

/// A manifest spec over `manifest.csv` (columns id, image, race, gender) in `dir`.
fn manifest_spec(dir: &Path, extra_source: &str, races: &[&str]) -> PathBuf {
    let races: Vec<String> = races.iter().map(|r| format!("{r:?}")).collect();
    let spec = format!(
        r#"name = "integrity"

[source]
format = "manifest"
path = "manifest.csv"
image_column = "image"
id_column = "id"
root = "images"
{extra_source}

[[attributes]]
name = "race"
values = [{}]

[[attributes]]
name = "gender"
values = ["Male", "Female"]
"#,
        races.join(", ")
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, spec).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    path
}

/// Copies demo image `i` into `dir/images/<name>`.
fn demo_image(dir: &Path, i: usize, name: &str) {
    std::fs::copy(
        root().join(format!("datasets/demo/val/{i}.jpg")),
        dir.join("images").join(name),
    )
    .unwrap();
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn a_bad_last_row_of_a_big_manifest_fails_before_the_model_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest_spec(dir.path(), "", &["White", "Black"]);
    let rows = 100_000;
    let mut text = String::from("id,image,race,gender\n");
    for i in 1..rows {
        text += &format!("r{i},missing/{i}.jpg,White,Male\n");
    }
    text += &format!("r{rows},missing/{rows}.jpg,Martian,Male\n");
    std::fs::write(dir.path().join("manifest.csv"), text).unwrap();
    let out = dir.path().join("report");
    // a model that does not exist: the dataset check must come first
    let started = std::time::Instant::now();
    let err = failed(&run_with(
        &dir.path().join("no-such-model"),
        &root().join("probes/clip-paper-race.toml"),
        &spec,
        &out,
        &[],
    ));
    let elapsed = started.elapsed();
    assert!(
        err.contains("manifest.csv")
            && err.contains(&format!("row {rows}"))
            && err.contains("race")
            && err.contains("Martian"),
        "{err}"
    );
    assert!(!err.contains("no-such-model"), "{err}");
    assert!(!out.exists(), "a report folder was created");
    eprintln!("failed on row {rows} after {elapsed:?}");
}

#[test]
fn duplicate_ids_name_both_rows() {
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest_spec(dir.path(), "", &["White", "Black"]);
    std::fs::write(
        dir.path().join("manifest.csv"),
        "id,image,race,gender\na,1.jpg,White,Male\nb,2.jpg,Black,Male\nc,3.jpg,White,Female\n\
         b,4.jpg,Black,Female\n",
    )
    .unwrap();
    let out = dir.path().join("report");
    let err = failed(&run(&spec, &out, &[]));
    assert!(
        err.contains("duplicate record id \"b\"")
            && err.contains("row 2 (line 3)")
            && err.contains("row 4 (line 5)")
            && err.contains("manifest.csv"),
        "{err}"
    );
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn a_link_out_of_the_dataset_root_is_an_error_unless_the_spec_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "id,image,race,gender\na,1.jpg,White,Male\nb,link.jpg,Black,Female\n";
    let spec = manifest_spec(dir.path(), "", &["White", "Black"]);
    std::fs::write(dir.path().join("manifest.csv"), rows).unwrap();
    demo_image(dir.path(), 1, "1.jpg");
    std::fs::copy(
        root().join("datasets/demo/val/2.jpg"),
        dir.path().join("outside.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("outside.jpg"),
        dir.path().join("images/link.jpg"),
    )
    .unwrap();
    let out = dir.path().join("report");
    for strict in [&[][..], &["--strict"][..]] {
        let err = failed(&run(&spec, &out, strict));
        assert!(
            err.contains("row 2 (line 3)")
                && err.contains("\"link.jpg\"")
                && err.contains("outside the dataset root")
                && err.contains("allow_outside_root"),
            "{err}"
        );
        assert!(!out.exists());
    }

    manifest_spec(dir.path(), "allow_outside_root = true", &["White", "Black"]);
    ok(&run(&spec, &out, &[]));
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["classified"], 2);

    // the field is checked like every other
    manifest_spec(
        dir.path(),
        "allow_outside_root = \"yes\"",
        &["White", "Black"],
    );
    let err = failed(&run(&spec, &dir.path().join("other"), &[]));
    assert!(
        err.contains("source.allow_outside_root") && err.contains("expected true or false"),
        "{err}"
    );
}

/// 8 images and 2 missing ones.
fn two_of_ten_missing(dir: &Path) -> PathBuf {
    let spec = manifest_spec(dir, "", &["White", "Black"]);
    let mut text = String::from("id,image,race,gender\n");
    for i in 1..=8 {
        demo_image(dir, i, &format!("{i}.jpg"));
        let race = ["White", "Black"][i % 2];
        text += &format!("r{i},{i}.jpg,{race},Male\n");
    }
    text += "m1,gone1.jpg,White,Female\nm2,gone2.jpg,Black,Female\n";
    std::fs::write(dir.join("manifest.csv"), text).unwrap();
    spec
}

#[test]
fn skips_warn_on_stderr_and_are_recorded_in_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let spec = two_of_ten_missing(dir.path());
    let out = dir.path().join("report");
    let err = ok(&run(&spec, &out, &["--max-skipped", "0.2"]));
    assert!(
        err.contains("warning: 2 of 10 records (20.00%) were skipped")
            && err.contains("skipped.csv"),
        "{err}"
    );
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["skipped"], 2);
    assert_eq!(run_json["records"], 10);
    assert_eq!(run_json["skipped_fraction"], 0.2);
    assert_eq!(read_csv(&out.join("skipped.csv")).len(), 2);
}

#[test]
fn more_skips_than_max_skipped_fail_with_exit_2_and_no_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let spec = two_of_ten_missing(dir.path());
    let out = dir.path().join("report");
    let err = failed(&run(&spec, &out, &["--max-skipped", "0.1"]));
    assert!(
        err.contains("2 of 10 records (20.00%) were skipped, more than --max-skipped 0.1 allows")
            && err.contains("gone1.jpg"),
        "{err}"
    );
    assert!(!out.join("run.json").exists());

    for bad in ["1.5", "-0.1", "ten"] {
        let flag = format!("--max-skipped={bad}");
        let err = failed(&run(&spec, &dir.path().join("x"), &[&flag]));
        assert!(
            err.contains("--max-skipped") && err.contains("between 0 and 1"),
            "{err}"
        );
    }
}

const HOSTILE: [&str; 4] = [
    "=HYPERLINK(\"http://evil.example\",\"x\")",
    "-1+2",
    "@SUM(A1)",
    "+cmd",
];

/// A cell a spreadsheet could run as a formula.
fn dangerous(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.parse::<f64>().is_err()
}

#[test]
fn injection_strings_are_neutralised_in_every_csv_and_read_back_by_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest_spec(dir.path(), "", &HOSTILE);
    let mut text = String::from("id,image,race,gender\n");
    for i in 1..=8 {
        demo_image(dir.path(), i, &format!("{i}.jpg"));
        let race = HOSTILE[i % 4].replace('"', "\"\"");
        text += &format!(
            "\"={i}\",{i}.jpg,\"{race}\",{}\n",
            ["Male", "Female"][i % 2]
        );
    }
    text += "\"@missing\",gone.jpg,+cmd,Male\n";
    std::fs::write(dir.path().join("manifest.csv"), text).unwrap();
    let probe = dir.path().join("probe.toml");
    std::fs::write(
        &probe,
        r#"name = "hostile"
templates = ["a photo of a {label}."]

[categories]
"=HYPERLINK(\"http://evil.example\",\"y\")" = { harmful = true }
"+safe" = {}

[[classes]]
label = "@SUM(1+1)"
category = "=HYPERLINK(\"http://evil.example\",\"y\")"
match = { race = "-1+2" }

[[classes]]
label = "-2+3 person"
category = "+safe"

[[classes]]
label = "'quoted person"
category = "+safe"
match = { race = "@SUM(A1)" }
"#,
    )
    .unwrap();
    let out = dir.path().join("report");
    ok(&run_with(
        &fixture("tiny-clip"),
        &probe,
        &spec,
        &out,
        &["--predictions-csv"],
    ));
    let files = [
        "groups.csv",
        "disparities.csv",
        "accuracy.csv",
        "predictions.csv",
        "skipped.csv",
    ];
    for file in files {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(out.join(file))
            .unwrap();
        let mut cells = 0;
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                assert!(
                    !dangerous(cell),
                    "{file}: cell {cell:?} could run as a formula"
                );
                cells += 1;
            }
        }
        assert!(cells > 0, "{file} is empty");
    }
    let groups = read_csv(&out.join("groups.csv"));
    assert!(groups.iter().any(|r| r["group"] == "'-1+2"), "{groups:?}");
    let skipped = read_csv(&out.join("skipped.csv"));
    assert_eq!(skipped[0]["id"], "'@missing");

    // aggregate reads the neutralised CSV back to the same values as the parquet file
    let mut reports = Vec::new();
    for predictions in ["predictions.csv", "predictions.parquet"] {
        let agg = dir.path().join(format!("agg-{predictions}"));
        let output = Command::new(env!("CARGO_BIN_EXE_clip-audit"))
            .arg("aggregate")
            .arg("--predictions")
            .arg(out.join(predictions))
            .arg("--probe")
            .arg(&probe)
            .arg("--dataset")
            .arg(&spec)
            .arg("--out")
            .arg(&agg)
            .output()
            .unwrap();
        ok(&output);
        reports.push(agg);
    }
    for file in ["groups.csv", "disparities.csv", "accuracy.csv"] {
        let run_file = std::fs::read(out.join(file)).unwrap();
        for agg in &reports {
            assert!(
                std::fs::read(agg.join(file)).unwrap() == run_file,
                "{}: {file} differs from the run's",
                agg.display()
            );
        }
    }
}

#[test]
fn aggregate_names_both_rows_of_a_repeated_id_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    let header = "id,race,gender,predicted_label\n";
    std::fs::write(
        &a,
        format!("{header}x,White,Male,white man\ny,Black,Male,black man\n"),
    )
    .unwrap();
    std::fs::write(
        &b,
        format!("{header}z,White,Male,white man\ny,Black,Male,black man\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .arg("aggregate")
        .arg("--predictions")
        .arg(&a)
        .arg("--predictions")
        .arg(&b)
        .arg("--probe")
        .arg(root().join("probes/clip-paper-race.toml"))
        .arg("--out")
        .arg(dir.path().join("agg"))
        .output()
        .unwrap();
    let err = failed(&output);
    assert!(
        err.contains("b.csv: data row 2 (id y): the id appears twice, first at")
            && err.contains("a.csv: data row 2"),
        "{err}"
    );
}
