//! The report folder under failure: a failed or killed run leaves the previous report
//! byte-identical, `check` refuses an unfinished folder, two concurrent runs cannot both write
//! one folder, and output to a closed pipe or a full device never panics.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::fixture;

fn clip_audit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A FairFace-format dataset of `n` records, hard links of one 448×448 JPEG (so a run takes a
/// few seconds), with one extra record whose image is missing when `missing` is set.
fn slow_dataset(dir: &Path, n: usize, missing: bool) -> PathBuf {
    let val = dir.join("val");
    std::fs::create_dir_all(&val).unwrap();
    let source = val.join("source.jpg");
    std::fs::copy(fixture("images/square_448.jpg"), &source).unwrap();
    let mut csv = String::from("file,age,gender,race,service_test\n");
    let races = ["Black", "White", "Indian", "East Asian"];
    for i in 0..n {
        std::fs::hard_link(&source, val.join(format!("{i}.jpg"))).unwrap();
        csv += &format!("val/{i}.jpg,20-29,Male,{},False\n", races[i % races.len()]);
    }
    if missing {
        csv += "val/missing.jpg,20-29,Female,White,False\n";
    }
    let labels = dir.join("labels.csv");
    std::fs::write(&labels, csv).unwrap();
    labels
}

fn run_command(dataset: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut command = clip_audit();
    command
        .arg("run")
        .arg("--probe")
        .arg(repo("probes/clip-paper-race.toml"))
        .arg("--dataset")
        .arg(dataset)
        .arg("--model")
        .arg(fixture("tiny-clip"))
        .arg("--out")
        .arg(out)
        .args(["--no-cache", "--by", "race", "--batch", "8"])
        .args(extra);
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn check(report: &Path) -> Output {
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        "[[rule]]\nname = \"crime\"\nmetric = \"rate\"\ncategory = \"crime-related\"\nby = \"race\"\nmax = 1.0\n",
    )
    .unwrap();
    clip_audit()
        .arg("check")
        .arg(report)
        .arg("--rules")
        .arg(rules.path())
        .output()
        .unwrap()
}

/// Waits until `path` exists (or the child exits, or 60 s pass); true when it appeared.
fn wait_for(path: impl Fn() -> bool, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if path() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return path();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn staging_exists(parent: &Path) -> bool {
    names(parent).iter().any(|n| n.contains(".staging-"))
}

#[test]
fn a_failed_rerun_leaves_the_previous_report_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = slow_dataset(&tmp.path().join("data"), 40, true);
    let out = tmp.path().join("reports/audit");
    let first = run_command(&dataset, &out, &[]).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(check(&out).status.success());
    let before = snapshot(&out);
    assert!(before.contains_key(Path::new("run.json")));

    // --strict makes the missing image fatal, after predictions have started streaming
    let failed = run_command(&dataset, &out, &["--strict"]).output().unwrap();
    assert_eq!(failed.status.code(), Some(2), "{}", text(&failed));
    assert!(text(&failed).contains("missing.jpg"), "{}", text(&failed));
    assert_eq!(snapshot(&out), before, "the previous report changed");
    assert_eq!(names(&tmp.path().join("reports")), [".audit.lock", "audit"]);
    assert!(check(&out).status.success());
}

#[test]
fn a_killed_run_leaves_no_report_that_looks_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = slow_dataset(&tmp.path().join("data"), 1500, false);
    let reports = tmp.path().join("reports");
    let out = reports.join("audit");
    let mut child = run_command(&dataset, &out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_for(|| reports.exists() && staging_exists(&reports), &mut child);
    // give it time to stream predictions into the staging folder
    std::thread::sleep(Duration::from_millis(300));
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started && still_running, "the run was not caught mid-way");
    assert!(
        !out.exists(),
        "a killed first run must not leave {}",
        out.display()
    );
    let staging = reports.join(
        names(&reports)
            .into_iter()
            .find(|n| n.contains(".staging-"))
            .unwrap(),
    );
    for folder in [&out, &staging] {
        let refused = check(folder);
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        assert!(
            text(&refused).contains("not a complete"),
            "{}",
            text(&refused)
        );
    }
    // the next run takes over the dead run's lock and sweeps its staging folder
    let small = slow_dataset(&tmp.path().join("small"), 8, false);
    let next = run_command(&small, &out, &[]).output().unwrap();
    assert!(next.status.success(), "{}", text(&next));
    assert_eq!(names(&reports), [".audit.lock", "audit"]);
    assert!(check(&out).status.success());
}

#[test]
fn a_second_concurrent_run_is_refused_and_the_first_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = slow_dataset(&tmp.path().join("data"), 600, false);
    let reports = tmp.path().join("reports");
    let out = reports.join("audit");
    let mut first = run_command(&dataset, &out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(
        || reports.exists() && staging_exists(&reports),
        &mut first
    ));
    let second = run_command(&dataset, &out, &[]).output().unwrap();
    let first_done = first.wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    let message = text(&second);
    assert!(message.contains("another clip-audit process"), "{message}");
    assert!(message.contains("pid "), "{message}");
    assert!(first_done.status.success(), "{}", text(&first_done));
    assert!(check(&out).status.success());
    // the report the first run left is whole: aggregate reads its predictions
    let again = clip_audit()
        .arg("aggregate")
        .arg("--predictions")
        .arg(out.join("predictions.parquet"))
        .arg("--probe")
        .arg(repo("probes/clip-paper-race.toml"))
        .args(["--by", "race", "--out"])
        .arg(tmp.path().join("aggregated"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        std::fs::read_to_string(out.join("groups.csv")).unwrap(),
        std::fs::read_to_string(tmp.path().join("aggregated/groups.csv")).unwrap()
    );
}

#[test]
fn aggregate_refuses_predictions_of_an_unfinished_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = slow_dataset(&tmp.path().join("data"), 8, false);
    let out = tmp.path().join("audit");
    let run = run_command(&dataset, &out, &[]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    std::fs::remove_file(out.join("run.json")).unwrap();
    let refused = clip_audit()
        .arg("aggregate")
        .arg("--predictions")
        .arg(out.join("predictions.parquet"))
        .arg("--probe")
        .arg(repo("probes/clip-paper-race.toml"))
        .arg("--out")
        .arg(tmp.path().join("aggregated"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("not a complete"),
        "{}",
        text(&refused)
    );
    assert!(!tmp.path().join("aggregated").exists());
}

#[test]
fn a_folder_with_other_files_is_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = slow_dataset(&tmp.path().join("data"), 8, false);
    let out = tmp.path().join("documents");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), "precious").unwrap();
    let refused = run_command(&dataset, &out, &[]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("thesis.tex"), "{}", text(&refused));
    assert_eq!(names(&out), ["thesis.tex"]);
}

/// Runs `command` with its standard output a pipe whose reading end is already closed.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_keeps_the_exit_code_and_never_panics() {
    let mut show = clip_audit();
    show.args(["probes", "show"])
        .arg(repo("probes/clip-paper-race.toml"));
    let out = with_closed_stdout(show);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));

    // a failing gate stays a failure when nobody reads its output
    let tmp = tempfile::tempdir().unwrap();
    let dataset = slow_dataset(&tmp.path().join("data"), 8, false);
    let report = tmp.path().join("audit");
    assert!(
        run_command(&dataset, &report, &[])
            .status()
            .unwrap()
            .success()
    );
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"human\"\nmetric = \"rate\"\ncategory = \"human\"\nby = \"race\"\nmin = 1.5\n",
    )
    .unwrap();
    for format in ["json", "table"] {
        let mut gate = clip_audit();
        gate.arg("check")
            .arg(&report)
            .arg("--rules")
            .arg(&rules)
            .args(["--format", format]);
        let out = with_closed_stdout(gate);
        assert_eq!(out.status.code(), Some(1), "{format}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
    }
}

#[test]
fn a_full_output_device_is_exit_2_with_a_message() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full here");
        return;
    };
    let out = clip_audit()
        .args(["probes", "show"])
        .arg(repo("probes/clip-paper-race.toml"))
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains("writing to standard output"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

/// A small tmpfs mounted for the test's lifetime (needs root; `None` where mounting is refused).
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount(size: &str) -> Option<TinyFs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyFs { dir })
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_fails_the_run_and_keeps_the_previous_report() {
    let Some(fs) = TinyFs::mount("300k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let out = fs.dir.path().join("audit");
    let demo = repo("datasets/demo.toml");
    // the first report (about 200 KB) fits; a second one beside it does not
    let first = run_command(&demo, &out, &[]).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let before = snapshot(&out);
    let second = run_command(&demo, &out, &["--predictions-csv"])
        .output()
        .unwrap();
    let message = text(&second);
    assert_eq!(second.status.code(), Some(2), "{message}");
    assert!(message.contains("No space left on device"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(snapshot(&out), before, "the previous report changed");
    assert_eq!(names(fs.dir.path()), [".audit.lock", "audit"]);
    assert!(check(&out).status.success());
}
