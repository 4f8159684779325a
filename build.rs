//! Records the git commit the binary is built from, for `clip-audit --version`
//! (`unknown` outside a git checkout, e.g. a crate tarball), and writes the catalogue of built-in
//! probes and dataset specs (`$OUT_DIR/builtin_catalogue.rs`, read by `src/builtin.rs`): every
//! `probes/*.toml` and `datasets/*.toml`, plus the files of the data folders in
//! [`EMBEDDED_DATA`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Data folders under `datasets/` compiled into the binary with their specs: small, shipped sets
/// only (never a folder a user fills, such as `datasets/fairface/`).
const EMBEDDED_DATA: [&str; 1] = ["demo"];

fn main() {
    write_catalogue();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .is_some_and(|out| !out.stdout.is_empty());
    let suffix = if dirty && commit != "unknown" {
        "-modified"
    } else {
        ""
    };
    println!("cargo:rustc-env=CLIP_AUDIT_GIT_COMMIT={commit}{suffix}");
    for path in [".git/HEAD", ".git/index", ".git/refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The `.toml` files of `dir`, sorted by file stem (the built-in's name).
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("reading a folder entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort_by(|a, b| a.file_stem().cmp(&b.file_stem()));
    files
}

/// Every file under `dir`, sorted by path.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("reading a folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Writes `$OUT_DIR/builtin_catalogue.rs`: `PROBE_FILES` and `DATASET_FILES` as (file stem, text)
/// and `DATA_FILES` as (path relative to `datasets/`, bytes), each sorted.
fn write_catalogue() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut code = String::new();
    for (constant, folder) in [("PROBE_FILES", "probes"), ("DATASET_FILES", "datasets")] {
        let dir = root.join(folder);
        println!("cargo:rerun-if-changed={}", dir.display());
        let _ = writeln!(code, "static {constant}: &[(&str, &str)] = &[");
        for file in toml_files(&dir) {
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 file name");
            let _ = writeln!(
                code,
                "    ({stem:?}, include_str!({:?})),",
                file.display().to_string()
            );
        }
        let _ = writeln!(code, "];");
    }
    let datasets = root.join("datasets");
    let _ = writeln!(code, "static DATA_FILES: &[(&str, &[u8])] = &[");
    for folder in EMBEDDED_DATA {
        let dir = datasets.join(folder);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        for file in files {
            let relative = file.strip_prefix(&datasets).expect("under datasets/");
            let relative: Vec<&str> = relative
                .components()
                .map(|c| c.as_os_str().to_str().expect("UTF-8 file name"))
                .collect();
            let _ = writeln!(
                code,
                "    ({:?}, include_bytes!({:?})),",
                relative.join("/"),
                file.display().to_string()
            );
        }
    }
    let _ = writeln!(code, "];");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("builtin_catalogue.rs"), code).expect("writing builtin_catalogue.rs");
}
