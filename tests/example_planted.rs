//! The shipped planted example (`reports/example-planted/`, made by
//! `scripts/regenerate-example-planted.sh` from the synthetic predictions of
//! `scripts/make-planted-example.py`): it is current, and its findings are exactly the planted
//! disparities (`examples/planted/planted.json`) — every one found, nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The note the regenerate script passes (the file's text without its last newline).
fn note() -> String {
    std::fs::read_to_string(root().join("examples/planted/NOTE.txt"))
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

/// `aggregate` exactly as `scripts/regenerate-example-planted.sh` runs it, into `out`.
fn aggregate(out: &Path) {
    let output = aggregate_with(out, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `aggregate` as the regenerate script runs it, with `extra` arguments.
fn aggregate_with(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .current_dir(root())
        .args([
            "aggregate",
            "--predictions",
            "examples/planted/predictions.csv",
            "--probe",
            "probes/clip-paper-race.toml",
            "--intersect",
            "race*gender",
            "--reference",
            "race=White",
            "--reference",
            "race*gender=White*Male",
            "--note",
            &note(),
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// Every file of `dir` but run.json (times and the command line), relative to it.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "run.json") {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

#[test]
fn the_shipped_planted_example_is_current() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("example-planted");
    aggregate(&fresh);
    let shipped = root().join("reports/example-planted");
    let (a, b) = (files(&fresh), files(&shipped));
    assert_eq!(
        a, b,
        "reports/example-planted is stale: run scripts/regenerate-example-planted.sh"
    );
    for file in &a {
        let (x, y) = (
            std::fs::read(fresh.join(file)).unwrap(),
            std::fs::read(shipped.join(file)).unwrap(),
        );
        assert!(
            x == y,
            "reports/example-planted/{} is stale: run scripts/regenerate-example-planted.sh",
            file.display()
        );
    }
}

#[test]
fn the_planted_disparities_are_found_and_nothing_else() {
    let read = |p: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(root().join(p)).unwrap()).unwrap()
    };
    let planted = read("examples/planted/planted.json");
    let metrics = read("reports/example-planted/metrics.json");
    let key = |v: &serde_json::Value| {
        (
            v["attribute"].as_str().unwrap().to_string(),
            v["category"].as_str().unwrap().to_string(),
            v["group"].as_str().unwrap().to_string(),
        )
    };
    let want: BTreeSet<_> = planted["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let found: Vec<_> = metrics["findings"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    assert_eq!(want.len(), 8);
    assert_eq!(found.len(), want.len(), "{found:?}");
    assert_eq!(found.iter().cloned().collect::<BTreeSet<_>>(), want);
    // the decoy is outside the band but not significant, and so no finding
    for decoy in planted["decoys"].as_array().unwrap() {
        assert!(!found.contains(&key(decoy)), "{decoy}");
    }
    assert_eq!(metrics["reference_groups"]["race"], "White");
    assert_eq!(metrics["findings"]["alpha"], 0.05);
    // the page and tables.md open with the findings
    for page in ["report.html", "tables.md"] {
        let text =
            std::fs::read_to_string(root().join("reports/example-planted").join(page)).unwrap();
        let findings = text.find("Findings").unwrap();
        let first_table = text.find("By race").unwrap();
        assert!(findings < first_table, "{page}");
        assert!(
            text.contains("Faces labelled Black were sent to a non-human label 8.0% of the time"),
            "{page}"
        );
    }
}

#[test]
fn alpha_sets_the_level_and_bad_values_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("strict");
    let output = aggregate_with(&out, &["--alpha", "1e-6"]);
    assert!(output.status.success(), "{output:?}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let findings = &metrics["findings"];
    assert_eq!(findings["alpha"], 1e-6);
    let items = findings["items"].as_array().unwrap();
    // only Indian men's crime-related rate and Black faces' non-human rate have adjusted p < 1e-6
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(
        items
            .iter()
            .all(|x| x["p_adjusted"].as_f64().unwrap() <= 1e-6)
    );
    for bad in ["0", "1", "-0.5", "five"] {
        let flag = format!("--alpha={bad}");
        let output = aggregate_with(&tmp.path().join("bad"), &[&flag]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--alpha") && stderr.contains("between 0 and 1"),
            "{stderr}"
        );
        assert!(!tmp.path().join("bad").exists());
    }
}
