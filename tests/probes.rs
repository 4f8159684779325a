//! Probe sets: the shipped ones are valid; every kind of bad probe is refused with a message that
//! names the file and the field.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use clip_audit::probe::ProbeSet;

fn clip_audit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_probes_validate() {
    let files = shipped();
    assert!(files.len() >= 5);
    let out = clip_audit()
        .args(["probes", "validate"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), files.len());
}

#[test]
fn clip_paper_probe_has_the_papers_21_classes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
    let probe = ProbeSet::load(&dir.join("clip-paper-race.toml")).unwrap();
    assert_eq!(probe.classes.len(), 21);
    let count = |cat: &str| {
        probe
            .classes
            .iter()
            .filter(|c| probe.categories[c.category].name == cat)
            .count()
    };
    assert_eq!(
        (count("human"), count("non-human"), count("crime-related")),
        (14, 4, 3)
    );
    let orangutan = probe
        .classes
        .iter()
        .find(|c| c.label == "orangutan")
        .unwrap();
    assert_eq!(
        orangutan.prompts,
        vec!["a photo of an orangutan.".to_string()]
    );
    let child = ProbeSet::load(&dir.join("clip-paper-race-child.toml")).unwrap();
    assert_eq!(child.classes.len(), 22);
    assert_eq!(child.classes[21].label, "child");
    assert_ne!(child.content_hash(), probe.content_hash());
    // the hash depends on content, not on comments or formatting
    let copy = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(dir.join("clip-paper-race.toml")).unwrap();
    std::fs::write(
        copy.path().join("p.toml"),
        format!("# another comment\n\n{text}"),
    )
    .unwrap();
    assert_eq!(
        ProbeSet::load(&copy.path().join("p.toml"))
            .unwrap()
            .content_hash(),
        probe.content_hash()
    );
}

fn invalid(files: &[(&str, &str)], main: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().join(main);
    let out = clip_audit()
        .args(["probes", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains(main),
        "error does not name the file: {stderr}"
    );
    stderr
}

const HEAD: &str = "name = \"t\"\ntemplates = [\"a photo of a {label}.\"]\n[categories]\nhuman = {}\ncrime = { harmful = true }\n";

#[test]
fn duplicate_label() {
    let text = format!(
        "{HEAD}[[classes]]\nlabel = \"thief\"\ncategory = \"crime\"\n[[classes]]\nlabel = \"man\"\ncategory = \"human\"\n[[classes]]\nlabel = \"thief\"\ncategory = \"crime\"\n"
    );
    let e = invalid(&[("p.toml", &text)], "p.toml");
    assert!(
        e.contains("classes[2].label") && e.contains("duplicates classes[0]"),
        "{e}"
    );
}

#[test]
fn unknown_category() {
    let text = format!(
        "{HEAD}[[classes]]\nlabel = \"thief\"\ncategory = \"crimes\"\n[[classes]]\nlabel = \"man\"\ncategory = \"human\"\n"
    );
    let e = invalid(&[("p.toml", &text)], "p.toml");
    assert!(
        e.contains("classes[0].category") && e.contains("crimes") && e.contains("human, crime"),
        "{e}"
    );
}

#[test]
fn template_without_placeholder() {
    let text = "name = \"t\"\ntemplates = [\"a photo of a {label}.\", \"a photo\"]\n[categories]\nh = {}\n[[classes]]\nlabel = \"a\"\ncategory = \"h\"\n[[classes]]\nlabel = \"b\"\ncategory = \"h\"\n";
    let e = invalid(&[("p.toml", text)], "p.toml");
    assert!(e.contains("templates[1]") && e.contains("{label}"), "{e}");
}

#[test]
fn empty_class_list() {
    let e = invalid(&[("p.toml", HEAD)], "p.toml");
    assert!(e.contains("`classes`") && e.contains("no classes"), "{e}");
}

#[test]
fn unknown_key() {
    let text = format!(
        "{HEAD}[[classes]]\nlabel = \"thief\"\ncategory = \"crime\"\nmatches = {{ race = \"x\" }}\n"
    );
    let e = invalid(&[("p.toml", &text)], "p.toml");
    assert!(
        e.contains("unknown field `matches`") && e.contains("line"),
        "{e}"
    );
}

#[test]
fn extend_cycle() {
    let a = "name = \"a\"\nextend = \"b.toml\"\n";
    let b = "name = \"b\"\nextend = \"a.toml\"\n";
    let e = invalid(&[("a.toml", a), ("b.toml", b)], "a.toml");
    assert!(e.contains("cycle") && e.contains("b.toml"), "{e}");
}

#[test]
fn show_prints_prompts_and_hash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
    let out = clip_audit()
        .args(["probes", "show"])
        .arg(dir.join("clip-paper-race.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"a photo of an orangutan.\"") && text.contains("content hash: "),
        "{text}"
    );
    let out = clip_audit()
        .args(["probes", "show", "--json"])
        .arg(dir.join("datacomp-age.toml"))
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["classes"][0]["prompts"][0],
        "a photo of a person 0-2 years old"
    );
    assert_eq!(json["content_hash"].as_str().unwrap().len(), 64);
}

#[test]
fn a_ratio_band_is_checked_inherited_and_hashed_only_when_set() {
    let classes = "[[classes]]\nlabel = \"man\"\ncategory = \"human\"\n[[classes]]\nlabel = \"thief\"\ncategory = \"crime\"\n";
    let with = |band: &str| {
        format!(
            "{}{}",
            HEAD.replacen('\n', &format!("\n{band}\n"), 1),
            classes
        )
    };
    for (band, reason) in [
        ("ratio_band = [1.25, 0.8]", "0 < low < 1 < high"),
        ("ratio_band = [0.8]", "expected two numbers"),
        ("ratio_band = [0, 2]", "0 < low < 1 < high"),
        ("ratio_band = \"wide\"", "ratio_band"),
    ] {
        let e = invalid(&[("t.toml", &with(band))], "t.toml");
        assert!(
            e.contains("ratio_band") && e.contains(reason),
            "{band}: {e}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = format!("{HEAD}{classes}");
    std::fs::write(dir.path().join("plain.toml"), &plain).unwrap();
    std::fs::write(
        dir.path().join("band.toml"),
        with("ratio_band = [0.5, 2.0]"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("child.toml"),
        "name = \"child\"\nextend = \"band.toml\"\n",
    )
    .unwrap();
    let load = |name: &str| ProbeSet::load(&dir.path().join(name)).unwrap();
    let (plain, band, child) = (load("plain.toml"), load("band.toml"), load("child.toml"));
    assert_eq!(plain.ratio_band, None);
    let expected = clip_audit::metrics::RatioBand::new(0.5, 2.0).unwrap();
    assert_eq!(band.ratio_band, Some(expected));
    assert_eq!(child.ratio_band, Some(expected), "inherited through extend");
    // the band changes what a report finds, so it is part of the hash; without one the hash
    // is what it always was (the shipped probes' hashes are pinned in tests/builtin.rs)
    assert_ne!(plain.content_hash(), band.content_hash());
    assert_eq!(band.content_hash(), child.content_hash());
}
