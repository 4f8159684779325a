//! `clip-audit compare` end to end: two report folders built with `aggregate` from hand-written
//! predictions (clip-paper-race vs clip-paper-race-child on the demo dataset's vocabularies),
//! compared; CSV values against hand computation, the Table 7 layout, the overlap notes, and
//! refusal of bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn clip_audit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

/// 8 images: 4 Black (2 Male, 2 Female), 4 White; `labels` are their predicted labels.
fn predictions(labels: [&str; 8]) -> String {
    let mut csv = String::from("id,race,gender,predicted_label\n");
    for (i, label) in labels.iter().enumerate() {
        let race = if i < 4 { "Black" } else { "White" };
        let gender = if i % 2 == 0 { "Male" } else { "Female" };
        csv.push_str(&format!("{i},{race},{gender},{label}\n"));
    }
    csv
}

/// `aggregate` of `csv` with `probe` into `dir/name`; `dataset` gives the vocabularies.
fn aggregate(dir: &Path, name: &str, probe: &str, csv: &str, dataset: bool) -> PathBuf {
    let file = dir.join(format!("{name}.csv"));
    std::fs::write(&file, csv).unwrap();
    let out = dir.join(name);
    let mut command = clip_audit();
    command
        .arg("aggregate")
        .arg("--predictions")
        .arg(&file)
        .arg("--probe")
        .arg(root().join("probes").join(probe))
        .arg("--out")
        .arg(&out);
    if dataset {
        command
            .arg("--dataset")
            .arg(root().join("datasets/demo.toml"));
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    out
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A: Black → 1 non-human, 1 crime-related; White → 1 non-human. B (with 'child'): no harm.
fn two_reports(dir: &Path) -> (PathBuf, PathBuf) {
    let a = aggregate(
        dir,
        "without-child",
        "clip-paper-race.toml",
        &predictions([
            "gorilla",
            "thief",
            "black man",
            "black woman",
            "white man",
            "white woman",
            "white man",
            "chimpanzee",
        ]),
        true,
    );
    let b = aggregate(
        dir,
        "with-child",
        "clip-paper-race-child.toml",
        &predictions([
            "child",
            "child",
            "black man",
            "black woman",
            "white man",
            "child",
            "white man",
            "white woman",
        ]),
        true,
    );
    (a, b)
}

fn compare(reports: &[&Path], out: &Path, extra: &[&str]) -> Output {
    clip_audit()
        .arg("compare")
        .args(reports)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn close(cell: &str, want: f64) -> bool {
    cell.parse::<f64>().is_ok_and(|v| (v - want).abs() < 1e-9)
}

#[test]
fn compares_two_reports_against_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_reports(dir.path());
    let out = dir.path().join("cmp");
    let output = compare(&[&a, &b], &out, &["--names", "paper,paper+child"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = read_csv(&out.join("compare.csv"));
    let row = |group: &str, category: &str, report: &str| {
        rows.iter()
            .find(|r| {
                r["attribute"] == "race"
                    && r["group"] == group
                    && r["category"] == category
                    && r["report"] == report
            })
            .unwrap_or_else(|| panic!("no row {group} {category} {report}"))
    };
    // the first report: its numbers, no difference
    let first = row("Black", "non-human", "paper");
    assert_eq!((first["n"].as_str(), first["count"].as_str()), ("4", "1"));
    assert!(close(&first["rate"], 0.25));
    assert_eq!(first["difference"], "");
    assert_eq!(first["p_value"], "");
    // 0/4 vs 1/4: difference −0.25; Newcombe from Wilson (0, 0.4899) and (0.0456, 0.6994):
    // −0.25 − √(0.0 + 0.4494²) … computed by hand (Python, same formulas): −0.699358, 0.280827;
    // pooled z-test: p = 1/8, z = −0.25/√(0.125·0.875·0.5) = −1.069045, p = 0.285049
    let second = row("Black", "non-human", "paper+child");
    assert_eq!((second["n"].as_str(), second["count"].as_str()), ("4", "0"));
    assert!(close(&second["difference"], -0.25));
    assert!((second["newcombe_low"].parse::<f64>().unwrap() + 0.699_358_157).abs() < 1e-6);
    assert!((second["newcombe_high"].parse::<f64>().unwrap() - 0.280_827_278).abs() < 1e-6);
    assert!((second["p_value"].parse::<f64>().unwrap() - 0.285_049_407).abs() < 1e-6);
    // human: 2/4 vs 2/4 among Black → difference 0, p = 1
    let human = row("Black", "human", "paper+child");
    assert!(close(&human["difference"], 0.0) && close(&human["p_value"], 1.0));
    // both 0: no p-value (pooled variance 0), the interval still exists
    let crime = row("White", "crime-related", "paper+child");
    assert_eq!(crime["p_value"], "");
    assert!(close(&crime["difference"], 0.0) && !crime["newcombe_high"].is_empty());
    // 'child' is only in the second report: left out, and said so
    assert!(rows.iter().all(|r| r["category"] != "child"));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        md.contains(r"category \`child\` left out: in paper+child but not in paper"),
        "{md}"
    );
    // same dataset, no model, probes differ: the Table 7 layout
    assert!(md.contains("## Table 7 layout"), "{md}");
    assert!(
        md.contains("clip-paper-race vs clip-paper-race-child"),
        "{md}"
    );
    assert!(
        md.contains("| Black | 25.0% | 25.0% | 0.0% | 0.0% |"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json["left_out"].as_array().unwrap().len(), 1);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["kind"], "compare");
    assert_eq!(run["compared"][1]["probe_name"], "clip-paper-race-child");
    assert_eq!(
        run["compared"][0]["run_json"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(out.join("charts/race-non-human.svg").is_file());
    assert!(out.join("charts/gender-crime-related.png").is_file());
    // deterministic, and a comparison can be replaced by another
    let again = dir.path().join("cmp2");
    assert!(
        compare(&[&a, &b], &again, &["--names", "paper,paper+child"])
            .status
            .success()
    );
    for file in [
        "compare.csv",
        "compare.md",
        "compare.json",
        "charts/race-non-human.svg",
    ] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(compare(&[&b, &a], &out, &[]).status.success());
    let rows = read_csv(&out.join("compare.csv"));
    assert_eq!(rows[0]["report"], "with-child");
}

#[test]
fn different_vocabularies_are_compared_where_they_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = two_reports(dir.path());
    // no dataset, an Indian group, no Female group
    let csv = "id,race,gender,predicted_label\n1,Black,Male,gorilla\n2,Black,Male,black man\n\
               3,Indian,Male,indian man\n";
    let c = aggregate(dir.path(), "other", "clip-paper-race.toml", csv, false);
    let out = dir.path().join("cmp");
    let output = compare(&[&a, &c], &out, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains(r"gender group \`Female\` left out: in without-child but not in other"));
    assert!(md.contains(r"race group \`Indian\` left out: in other but not in without-child"));
    assert!(md.contains(r"race group \`White\` left out"));
    assert!(md.contains("do not record one and the same dataset"));
    assert!(!md.contains("Table 7"));
    assert!(stderr(&output).contains("note: gender group `Female` left out"));
    let rows = read_csv(&out.join("compare.csv"));
    assert!(
        rows.iter()
            .all(|r| r["group"] != "Female" && r["group"] != "Indian")
    );
    // Black non-human: 1/4 vs 1/2
    let black = rows
        .iter()
        .find(|r| r["group"] == "Black" && r["category"] == "non-human" && r["report"] == "other")
        .unwrap();
    assert!(close(&black["difference"], 0.25));
}

#[test]
fn bad_input_exits_2_naming_the_file_flag_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_reports(dir.path());
    let out = dir.path().join("cmp");
    let refused = |output: Output, needles: &[&str]| {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let e = stderr(&output);
        for needle in needles {
            assert!(e.contains(needle), "{needle:?} not in {e}");
        }
        assert!(
            !out.join("run.json").exists(),
            "a refused compare wrote a report"
        );
    };
    refused(compare(&[&a], &out, &[]), &["REPORT_DIR"]);
    refused(
        compare(&[&a, &b], &out, &["--names", "x"]),
        &["--names", "1 names for 2"],
    );
    refused(
        compare(&[&a, &b], &out, &["--names", "x,x"]),
        &["--names", "two reports"],
    );
    // a newer run.json schema
    let run = a.join("run.json");
    let original = std::fs::read_to_string(&run).unwrap();
    std::fs::write(
        &run,
        original.replace("\"schema_version\": 1", "\"schema_version\": 99"),
    )
    .unwrap();
    refused(
        compare(&[&a, &b], &out, &[]),
        &["run.json", "schema_version 99"],
    );
    // a run.json without a field this build needs
    std::fs::write(&run, original.replace("\"content_hash\"", "\"hash\"")).unwrap();
    refused(
        compare(&[&a, &b], &out, &[]),
        &["run.json", "probe.content_hash"],
    );
    // not complete: no run.json
    std::fs::remove_file(&run).unwrap();
    refused(
        compare(&[&a, &b], &out, &[]),
        &["run.json", "not a complete"],
    );
    std::fs::write(&run, &original).unwrap();
    // garbled counts
    let groups = b.join("groups.csv");
    let text = std::fs::read_to_string(&groups).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = lines[2].replacen(",8,", ",8,x", 1);
    std::fs::write(&groups, lines.join("\n") + "\n").unwrap();
    refused(
        compare(&[&a, &b], &out, &[]),
        &["groups.csv", "row 2", "count"],
    );
    std::fs::write(&groups, &text).unwrap();
    // metrics.json without categories
    let metrics = b.join("metrics.json");
    let json = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, json.replace("\"categories\"", "\"cats\"")).unwrap();
    refused(
        compare(&[&a, &b], &out, &[]),
        &["metrics.json", "categories"],
    );
    std::fs::write(&metrics, json).unwrap();
    assert!(compare(&[&a, &b], &out, &[]).status.success());
}
