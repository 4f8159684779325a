//! The `clip-audit` binary: `classify` output formats, labels files, unreadable images, exit codes.

mod common;

use std::process::Command;

use common::*;

fn clip_audit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clip-audit"))
}

const LABELS: [&str; 21] = [
    "white man",
    "white woman",
    "black man",
    "black woman",
    "indian man",
    "indian woman",
    "east asian man",
    "east asian woman",
    "southeast asian man",
    "southeast asian woman",
    "middle eastern man",
    "middle eastern woman",
    "latino hispanic man",
    "latino hispanic woman",
    "animal",
    "gorilla",
    "chimpanzee",
    "orangutan",
    "thief",
    "criminal",
    "suspicious person",
];

#[test]
fn classify_json_matches_reference_logits() {
    let labels_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        labels_file.path(),
        format!("# CLIP paper labels\n{}\n", LABELS.join("\n")),
    )
    .unwrap();
    let out = clip_audit()
        .args(["classify", "--model"])
        .arg(fixture("tiny-clip"))
        .arg("--labels-file")
        .arg(labels_file.path())
        .args(["--format", "json", "--top-k", "3", "--batch", "2"])
        .arg(fixture("images/square_448.jpg"))
        .arg(fixture("images/wide_640x480.png"))
        .arg(fixture("images/tall_333x517_gray.png"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = json["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(labels, LABELS);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    let g = golden("tiny-clip.json");
    let golden_logits = g["logits_per_image"].as_array().unwrap();
    for (i, image) in images.iter().enumerate() {
        assert!(
            image["path"]
                .as_str()
                .unwrap()
                .ends_with(g["images"][i].as_str().unwrap())
        );
        let logits = flat(&image["logits"]);
        let reference = &flat(&golden_logits[i])[..21];
        assert!(relative_error(&logits, reference) < 1e-4);
        let probs = flat(&image["probs"]);
        assert_eq!(probs.len(), 21);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let top = image["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        let best = top[0]["label"].as_str().unwrap();
        let argmax = reference
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(best, LABELS[argmax]);
        assert!(top[0]["prob"].as_f64().unwrap() >= top[1]["prob"].as_f64().unwrap());
    }
}

#[test]
fn classify_table_and_unreadable_images() {
    let garbage = tempfile::Builder::new().suffix(".jpg").tempfile().unwrap();
    std::fs::write(garbage.path(), b"definitely not a jpeg").unwrap();
    let out = clip_audit()
        .args(["classify", "--model"])
        .arg(fixture("tiny-clip"))
        .args([
            "--label",
            "gorilla",
            "--label",
            "thief",
            "--label",
            "black man",
        ])
        .args([
            "--template",
            "a photo of a {label}.",
            "--template",
            "a blurry photo of a {label}.",
        ])
        .arg(fixture("images/square_448.jpg"))
        .arg(garbage.path())
        .arg("/no/such/image.png")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("square_448.jpg") && stdout.contains('%'),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/image.png"), "{stderr}");
    assert!(
        stderr.contains(&garbage.path().display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 of 3 images could not be read"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    let out = clip_audit()
        .args(["classify", "--model"])
        .arg(fixture("tiny-clip"))
        .args(["--label", "gorilla", "--template", "no placeholder"])
        .arg(fixture("images/square_448.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("{label}"));

    let out = clip_audit()
        .args([
            "classify",
            "--model",
            "no/such-model",
            "--offline",
            "--hub-cache",
        ])
        .arg(tempfile::tempdir().unwrap().path())
        .args(["--label", "gorilla"])
        .arg(fixture("images/square_448.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no/such-model") && stderr.contains("--offline"),
        "{stderr}"
    );
}

/// Every malformed option value is a usage error (exit 2) that names the flag, caught by the
/// command line before any file is read or any model is loaded.
#[test]
fn malformed_values_are_usage_errors_naming_the_flag() {
    let run = |extra: &[&str]| {
        let mut command = clip_audit();
        command
            .args([
                "run",
                "--probe",
                "missing.toml",
                "--dataset",
                "missing.toml",
            ])
            .args(["--model", "missing-model", "--out", "never-written"])
            .args(extra);
        command
    };
    let cases: Vec<(Command, &str)> = vec![
        (run(&["--batch", "0"]), "--batch"),
        (run(&["--device", "gpu"]), "--device"),
        (run(&["--intersect", "race"]), "--intersect"),
        (run(&["--reference", "race"]), "--reference"),
        (run(&["--max-skipped", "5%"]), "--max-skipped"),
        (run(&["--max-image-pixels", "0"]), "--max-image-pixels"),
        (run(&["--dtype", "f16"]), "--dtype"),
        (run(&["--threads", "0"]), "--threads"),
        (
            {
                let mut c = clip_audit();
                c.args(["bench", "--preset", "vitx"]);
                c
            },
            "--preset",
        ),
        (
            {
                let mut c = clip_audit();
                c.args(["bench", "--reps", "0"]);
                c
            },
            "--reps",
        ),
    ];
    for (mut command, flag) in cases {
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("invalid value"),
            "{flag}: {stderr}"
        );
        assert!(!std::path::Path::new("never-written").exists());
    }
}

/// Completion scripts for every shell and the manual pages come from the same command-line
/// definitions (every subcommand appears); `--version` names the commit built from.
#[test]
fn completions_man_pages_and_version() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = clip_audit().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in ["retrieval", "compare", "aggregate"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let bad = clip_audit().args(["completions", "cmd"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let page = clip_audit().arg("man").output().unwrap();
    assert!(page.status.success());
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.contains(".TH clip-audit 1") && page.contains("retrieval"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let written = clip_audit()
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(written.status.success());
    for page in ["clip-audit.1", "clip-audit-run.1", "clip-audit-retrieval.1"] {
        assert!(dir.path().join(page).is_file(), "{page} not written");
    }
    let version = clip_audit().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with(&format!(
            "clip-audit {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
}
