//! Built-in probes and dataset specs: every shipped file is in the binary with the same hash,
//! names work from any folder and give the same report as the files, a file wins over a name, and
//! an unknown name is an error naming it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clip_audit::builtin::{self, Kind};
use clip_audit::probe::ProbeSet;
use common::fixture;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary, run in `cwd` with the cache (and so the materialised demo set) in `cache`.
fn clip_audit(cwd: &Path, cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clip-audit"));
    command.current_dir(cwd).env("CLIP_AUDIT_CACHE", cache);
    command
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn failed(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `.toml` files of `folder` of the repository, by file stem.
fn shipped(folder: &str) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(root().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_string(), p))
        .collect();
    files.sort();
    files
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn every_shipped_file_is_built_in_with_the_same_text_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let list = stdout(
        &clip_audit(dir.path(), dir.path())
            .args(["probes", "list"])
            .output()
            .unwrap(),
    );
    let probes = shipped("probes");
    assert!(probes.len() >= 6);
    let names: Vec<&str> = builtin::all(Kind::Probe).iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        probes.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
    );
    for (name, path) in &probes {
        let file = builtin::find(Kind::Probe, name).unwrap();
        assert_eq!(file.text, std::fs::read_to_string(path).unwrap(), "{name}");
        let from_file = ProbeSet::load(path).unwrap();
        let built_in = ProbeSet::builtin(&file).unwrap();
        assert_eq!(built_in.content_hash(), from_file.content_hash(), "{name}");
        assert_eq!(built_in.source, PathBuf::from(format!("builtin:{name}")));
        let row = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from `probes list`:\n{list}"));
        assert!(row.contains(&from_file.content_hash()), "{row}");
        assert!(
            row.contains(&format!(" {} ", from_file.classes.len())),
            "{row}"
        );
    }

    let list = stdout(
        &clip_audit(dir.path(), dir.path())
            .args(["datasets", "list"])
            .output()
            .unwrap(),
    );
    let datasets = shipped("datasets");
    assert_eq!(datasets.len(), builtin::all(Kind::Dataset).len());
    for (name, path) in &datasets {
        let file = builtin::find(Kind::Dataset, name).unwrap();
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(file.text.as_bytes(), bytes, "{name}");
        assert_eq!(file.sha256(), sha256(&bytes));
        assert!(
            list.contains(&format!("{name}  (")) && list.contains(&sha256(&bytes)),
            "{name} missing from `datasets list`:\n{list}"
        );
    }
    // the demo set's data is built in, file for file
    let demo = builtin::find(Kind::Dataset, "demo").unwrap();
    let mut data = Vec::new();
    for entry in std::fs::read_dir(root().join("datasets/demo/val")).unwrap() {
        data.push(entry.unwrap().path());
    }
    data.push(root().join("datasets/demo/labels.csv"));
    assert_eq!(demo.data_files().len(), data.len());
    for path in data {
        let relative = path.strip_prefix(root().join("datasets")).unwrap();
        let relative = relative.to_str().unwrap().replace('\\', "/");
        let found = demo.data_files().into_iter().find(|(p, _)| *p == relative);
        assert_eq!(found.map(|f| f.1), Some(&std::fs::read(&path).unwrap()[..]));
    }
    assert!(list.contains("data: built in"), "{list}");
    assert!(list.contains("data: downloaded from the Hugging Face Hub"));
    assert!(list.contains("data: your files: relative paths are read from the current folder"));
}

#[test]
fn show_works_from_any_folder_and_prints_the_toml_to_copy() {
    let dir = tempfile::tempdir().unwrap();
    let cli = || clip_audit(dir.path(), dir.path());
    let text = stdout(
        &cli()
            .args(["probes", "show", "clip-paper-race"])
            .output()
            .unwrap(),
    );
    let hash = ProbeSet::load(&root().join("probes/clip-paper-race.toml"))
        .unwrap()
        .content_hash();
    assert!(
        text.contains("file: builtin:clip-paper-race")
            && text.contains(&format!("content hash: {hash}"))
            && text.contains("\"a photo of an orangutan.\""),
        "{text}"
    );
    // a built-in that extends another built-in
    let child = stdout(
        &cli()
            .args(["probes", "show", "--json", "clip-paper-race-child.toml"])
            .output()
            .unwrap(),
    );
    let json: serde_json::Value = serde_json::from_str(&child).unwrap();
    assert_eq!(json["classes"].as_array().unwrap().len(), 22);
    let toml = stdout(
        &cli()
            .args(["probes", "show", "--toml", "clip-paper-race"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        toml,
        std::fs::read_to_string(root().join("probes/clip-paper-race.toml")).unwrap()
    );
    let spec = stdout(&cli().args(["datasets", "show", "demo"]).output().unwrap());
    assert_eq!(
        spec,
        std::fs::read_to_string(root().join("datasets/demo.toml")).unwrap()
    );
    // the copy is a working probe file with the same hash
    std::fs::write(dir.path().join("mine.toml"), &toml).unwrap();
    let check = stdout(
        &cli()
            .args(["probes", "validate", "mine.toml"])
            .output()
            .unwrap(),
    );
    assert!(check.contains(&hash[..12]), "{check}");
}

#[test]
fn a_file_of_that_name_wins_over_the_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let probe = "name = \"mine\"\ntemplates = [\"a photo of a {label}.\"]\n[categories]\nh = {}\n[[classes]]\nlabel = \"cat\"\ncategory = \"h\"\n[[classes]]\nlabel = \"dog\"\ncategory = \"h\"\n";
    for file in ["clip-paper-race.toml", "clip-paper-race"] {
        std::fs::write(dir.path().join(file), probe).unwrap();
        let text = stdout(
            &clip_audit(dir.path(), dir.path())
                .args(["probes", "show", file])
                .output()
                .unwrap(),
        );
        assert!(
            text.starts_with("mine") && text.contains(&format!("file: {file}\n")),
            "{text}"
        );
        std::fs::remove_file(dir.path().join(file)).unwrap();
    }
}

#[test]
fn an_unknown_name_is_an_error_naming_it_and_the_builtins() {
    let dir = tempfile::tempdir().unwrap();
    let cli = || clip_audit(dir.path(), dir.path());
    let e = failed(
        &cli()
            .args(["probes", "show", "clip-paper-rac"])
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("clip-paper-rac: no such file, and no built-in probe of that name")
            && e.contains("clip-paper-race-child")
            && e.contains("clip-audit probes list"),
        "{e}"
    );
    let run = |probe: &str, dataset: &str| {
        cli()
            .args(["run", "--probe", probe, "--dataset", dataset, "--model"])
            .arg(fixture("tiny-clip"))
            .args(["--out", "report", "--no-cache"])
            .output()
            .unwrap()
    };
    let e = failed(&run("nope", "demo"));
    assert!(
        e.contains("nope: no such file, and no built-in probe"),
        "{e}"
    );
    let e = failed(&run("clip-paper-race", "fairface-va.toml"));
    assert!(
        e.contains("fairface-va.toml: no such file, and no built-in dataset spec")
            && e.contains("fairface-val")
            && e.contains("clip-audit datasets list"),
        "{e}"
    );
    let e = failed(&cli().args(["datasets", "show", "nope"]).output().unwrap());
    assert!(e.contains("nope: no such file"), "{e}");
    // a path (with a folder) is never taken for a name
    let e = failed(&run("probes/clip-paper-race.toml", "demo"));
    assert!(
        e.contains("probes/clip-paper-race.toml") && !e.contains("built-in"),
        "{e}"
    );
    assert!(!dir.path().join("report").exists());
}

#[test]
fn a_local_builtin_spec_reads_the_current_folder_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cli = || clip_audit(dir.path(), dir.path());
    let run = || {
        cli()
            .args(["run", "--probe", "datacomp-gender", "--dataset", "utkface"])
            .arg("--model")
            .arg(fixture("tiny-clip"))
            .args(["--out", "report", "--no-cache"])
            .output()
            .unwrap()
    };
    let e = failed(&run());
    assert!(
        e.contains("built-in dataset spec utkface")
            && e.contains("current folder")
            && e.contains("clip-audit datasets show utkface")
            && e.contains("utkface/UTKFace: "),
        "{e}"
    );
    let faces = dir.path().join("utkface/UTKFace");
    std::fs::create_dir_all(&faces).unwrap();
    for (image, name) in [
        ("1.jpg", "25_0_1_20170101.jpg.chip.jpg"),
        ("2.jpg", "70_1_0_20170102.jpg.chip.jpg"),
    ] {
        std::fs::copy(
            root().join("datasets/demo/val").join(image),
            faces.join(name),
        )
        .unwrap();
    }
    stdout(&run());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report/run.json")).unwrap())
            .unwrap();
    let dataset = &record["dataset"];
    assert_eq!(dataset["argument"], "utkface");
    assert_eq!(dataset["source"]["builtin"], "utkface");
    assert_eq!(dataset["source"]["spec"]["path"], "builtin:utkface");
    assert_eq!(
        dataset["spec_sha256"],
        sha256(&std::fs::read(root().join("datasets/utkface.toml")).unwrap())
    );
    assert_eq!(record["probe"]["file"], "builtin:datacomp-gender");
}

/// `run` with the tiny model from `cwd`, writing `out`.
fn demo_run(cwd: &Path, cache: &Path, probe: &Path, dataset: &Path, out: &Path) {
    stdout(
        &clip_audit(cwd, cache)
            .arg("run")
            .arg("--probe")
            .arg(probe)
            .arg("--dataset")
            .arg(dataset)
            .arg("--model")
            .arg(fixture("tiny-clip"))
            .arg("--out")
            .arg(out)
            .args(["--no-cache", "--batch", "8", "--intersect", "race*gender"])
            .output()
            .unwrap(),
    );
}

#[test]
fn a_run_by_name_from_any_folder_equals_the_run_with_the_files() {
    let empty = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (by_name, by_file) = (out.path().join("by-name"), out.path().join("by-file"));
    // a folder of that name (as `datasets/demo/` seen from `datasets/`) is not a file
    std::fs::create_dir(empty.path().join("demo")).unwrap();
    demo_run(
        empty.path(),
        cache.path(),
        Path::new("clip-paper-race"),
        Path::new("demo"),
        &by_name,
    );
    demo_run(
        &root(),
        cache.path(),
        &root().join("probes/clip-paper-race.toml"),
        &root().join("datasets/demo.toml"),
        &by_file,
    );
    for file in [
        "groups.csv",
        "accuracy.csv",
        "disparities.csv",
        "skipped.csv",
    ] {
        let (a, b) = (by_name.join(file), by_file.join(file));
        if b.exists() {
            assert_eq!(
                std::fs::read(a).unwrap(),
                std::fs::read(b).unwrap(),
                "{file}"
            );
        }
    }
    let json = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
    };
    let (name, file) = (json(&by_name), json(&by_file));
    assert_eq!(name["probe"]["file"], "builtin:clip-paper-race");
    assert_eq!(name["probe"]["content_hash"], file["probe"]["content_hash"]);
    assert_eq!(name["dataset"]["argument"], "demo");
    assert_eq!(name["dataset"]["source"]["builtin"], "demo");
    assert!(file["dataset"]["source"].get("builtin").is_none());
    assert_eq!(
        name["dataset"]["spec_sha256"],
        file["dataset"]["spec_sha256"]
    );
    assert_eq!(
        name["dataset"]["source"]["files"][0]["sha256"],
        file["dataset"]["source"]["files"][0]["sha256"]
    );
    // the demo data was written once into the cache and is reused
    let copies = cache.path().join("builtin-datasets");
    assert_eq!(std::fs::read_dir(&copies).unwrap().count(), 1);
    let spec_path = name["dataset"]["source"]["spec"]["path"].as_str().unwrap();
    assert!(Path::new(spec_path).starts_with(&copies), "{spec_path}");
}

#[test]
fn concurrent_materialisations_of_the_demo_set_agree() {
    let root = tempfile::tempdir().unwrap();
    let demo = builtin::find(Kind::Dataset, "demo").unwrap();
    let specs: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| builtin::materialise(&demo, root.path()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(specs.iter().all(|s| *s == specs[0]));
    let copies = root.path().join("builtin-datasets");
    let entries: Vec<String> = std::fs::read_dir(&copies)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "no temporary folder is left: {entries:?}");
    for (path, bytes) in demo.data_files() {
        let file = specs[0].parent().unwrap().join(path);
        assert_eq!(std::fs::read(file).unwrap(), bytes, "{path}");
    }
}
