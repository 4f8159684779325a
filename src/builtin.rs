//! The built-in catalogue: the shipped `probes/*.toml` and `datasets/*.toml`, compiled into the
//! binary (by `build.rs`) so that `--probe clip-paper-race` and `--dataset fairface-val` work from
//! any folder, and the name resolution every `--probe`/`--dataset` argument goes through: an
//! existing file wins; else a bare name (no folder, optional `.toml`) of a built-in; else an error.
//!
//! A built-in dataset spec `NAME` whose data folder `datasets/NAME/` is shipped too (the demo set)
//! carries that folder's files; [`materialise`] writes them, content-checked, into the cache.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::digest::hex;

include!(concat!(env!("OUT_DIR"), "/builtin_catalogue.rs"));

/// How a built-in is written where a file path would be (`probe.file` in `run.json`, messages).
pub const PREFIX: &str = "builtin:";

/// The two kinds of built-in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A probe set (`probes/*.toml`).
    Probe,
    /// A dataset spec (`datasets/*.toml`).
    Dataset,
}

impl Kind {
    /// `probe` or `dataset spec`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Dataset => "dataset spec",
        }
    }

    /// The command that lists the built-ins of this kind.
    fn list_command(self) -> &'static str {
        match self {
            Kind::Probe => "clip-audit probes list",
            Kind::Dataset => "clip-audit datasets list",
        }
    }

    fn table(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Probe => PROBE_FILES,
            Kind::Dataset => DATASET_FILES,
        }
    }
}

/// A probe or dataset spec compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinFile {
    /// Its name: the shipped file's stem (`clip-paper-race` for `probes/clip-paper-race.toml`).
    pub name: &'static str,
    /// The file's text, byte for byte.
    pub text: &'static str,
}

impl BuiltinFile {
    /// `builtin:NAME`, its stand-in for a file path.
    pub fn origin(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }

    /// SHA-256 (hex) of the text: the same as of the shipped file.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(self.text.as_bytes()))
    }

    /// The shipped data files (path relative to `datasets/`, bytes) of a dataset spec: those of
    /// `datasets/NAME/` when that folder is compiled in, else none.
    pub fn data_files(&self) -> Vec<(&'static str, &'static [u8])> {
        let folder = format!("{}/", self.name);
        DATA_FILES
            .iter()
            .filter(|(path, _)| path.starts_with(&folder))
            .copied()
            .collect()
    }
}

/// Every built-in of `kind`, sorted by name.
pub fn all(kind: Kind) -> Vec<BuiltinFile> {
    kind.table()
        .iter()
        .map(|&(name, text)| BuiltinFile { name, text })
        .collect()
}

/// The built-in of `kind` called `name` (a trailing `.toml` is ignored).
pub fn find(kind: Kind, name: &str) -> Option<BuiltinFile> {
    let name = name.strip_suffix(".toml").unwrap_or(name);
    all(kind).into_iter().find(|f| f.name == name)
}

/// A `--probe`/`--dataset` argument, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A file path (an existing file, or a path the caller reports as missing).
    File(PathBuf),
    /// A built-in.
    Builtin(BuiltinFile),
}

/// A bare name that is neither a file nor a built-in.
#[derive(Debug, thiserror::Error)]
#[error(
    "{argument}: no such file, and no built-in {noun} of that name (built-in: {names}; `{list}` shows them)",
    noun = kind.noun(),
    list = kind.list_command()
)]
pub struct UnknownName {
    /// The argument as given.
    pub argument: String,
    /// What was looked for.
    pub kind: Kind,
    /// The built-in names, comma-separated.
    pub names: String,
}

/// Resolves `arg`: an existing file wins; else a bare name (no folder; no extension or `.toml`)
/// is looked up among the built-ins (a folder of that name, such as `datasets/demo/` seen from
/// `datasets/`, is not a file); any other path stays a path (its reader names it).
pub fn resolve(arg: &Path, kind: Kind) -> Result<Resolved, UnknownName> {
    if arg.exists() && !arg.is_dir() {
        return Ok(Resolved::File(arg.to_path_buf()));
    }
    let Some(name) = bare_name(arg) else {
        return Ok(Resolved::File(arg.to_path_buf()));
    };
    find(kind, name)
        .map(Resolved::Builtin)
        .ok_or_else(|| UnknownName {
            argument: arg.display().to_string(),
            kind,
            names: all(kind)
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Why [`text`] has no text to give.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A bare name that is neither a file nor a built-in.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    /// The file cannot be read.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The text of the file or built-in that `arg` names, byte for byte (`probes show --toml`,
/// `datasets show`: a built-in to copy and edit).
pub fn text(arg: &Path, kind: Kind) -> Result<String, TextError> {
    match resolve(arg, kind)? {
        Resolved::File(path) => {
            crate::input_file::read_regular_text(&path).map_err(|source| TextError::Io {
                path: path.clone(),
                source,
            })
        }
        Resolved::Builtin(file) => Ok(file.text.to_string()),
    }
}

/// `arg` as a name: one plain component, without an extension other than `.toml`.
fn bare_name(arg: &Path) -> Option<&str> {
    let text = arg.to_str()?;
    let plain = !text.is_empty()
        && !text.contains(['/', '\\'])
        && !matches!(text, "." | "..")
        && arg
            .extension()
            .is_none_or(|e| e.eq_ignore_ascii_case("toml"));
    plain.then_some(text)
}

/// Writes a built-in dataset spec with its data files into
/// `<root>/builtin-datasets/<name>-<content hash>/` (the spec as `<name>.toml`, the data under
/// `<name>/`, so the spec's relative paths hold) and returns the spec's path. A folder already
/// there is reused when every file's bytes match; a damaged one is replaced. Each copy is written
/// into a private temporary folder and renamed into place, so concurrent runs never see half.
pub fn materialise(file: &BuiltinFile, root: &Path) -> io::Result<PathBuf> {
    let files = materialised_files(file);
    let mut digest = Sha256::new();
    for (path, bytes) in &files {
        digest.update((path.len() as u64).to_le_bytes());
        digest.update(path.as_bytes());
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    }
    let key = format!("{}-{}", file.name, &hex(&digest.finalize())[..16]);
    let parent = root.join("builtin-datasets");
    let dir = parent.join(&key);
    let spec = dir.join(format!("{}.toml", file.name));
    for _ in 0..3 {
        if dir.exists() {
            if matches(&dir, &files) {
                return Ok(spec);
            }
            // damaged (edited, truncated): move it aside, then write a fresh copy
            let aside = parent.join(format!(".{key}.damaged-{}", unique()));
            if std::fs::rename(&dir, &aside).is_ok() {
                let _ = std::fs::remove_dir_all(&aside);
            }
        }
        let temp = parent.join(format!(".{key}.tmp-{}", unique()));
        let written = write_all(&temp, &files).and_then(|()| std::fs::rename(&temp, &dir));
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&temp);
            if !dir.exists() {
                written?;
            }
            // another process put its copy in place first: check that one
        }
    }
    if matches(&dir, &files) {
        Ok(spec)
    } else {
        Err(io::Error::other(format!(
            "{}: the copy of the built-in dataset {} keeps differing from the one in the binary; delete the folder",
            dir.display(),
            file.name
        )))
    }
}

/// The files of a materialised built-in: the spec, then its data (paths relative to its folder).
fn materialised_files(file: &BuiltinFile) -> Vec<(String, &'static [u8])> {
    let mut files = vec![(format!("{}.toml", file.name), file.text.as_bytes())];
    files.extend(
        file.data_files()
            .into_iter()
            .map(|(path, bytes)| (path.to_string(), bytes)),
    );
    files
}

/// Whether every file under `dir` has exactly the expected bytes.
fn matches(dir: &Path, files: &[(String, &[u8])]) -> bool {
    files.iter().all(|(path, bytes)| {
        std::fs::read(dir.join(path)).is_ok_and(|found| found.as_slice() == *bytes)
    })
}

/// Writes `files` under a new folder `dir`.
fn write_all(dir: &Path, files: &[(String, &[u8])]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (path, bytes) in files {
        let target = dir.join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&target, bytes)?;
    }
    Ok(())
}

/// A name part no other process or call uses at the same time: process id, time and a counter.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_builtins_and_paths_stay_paths() {
        let probe = |arg: &str| resolve(Path::new(arg), Kind::Probe);
        assert!(
            matches!(probe("clip-paper-race"), Ok(Resolved::Builtin(f)) if f.name == "clip-paper-race")
        );
        assert!(
            matches!(probe("clip-paper-race.toml"), Ok(Resolved::Builtin(f)) if f.name == "clip-paper-race")
        );
        assert!(matches!(
            probe("no/such/clip-paper-race.toml"),
            Ok(Resolved::File(_))
        ));
        assert!(matches!(
            probe("clip-paper-race.json"),
            Ok(Resolved::File(_))
        ));
        let e = probe("clip-paper-rac").unwrap_err().to_string();
        assert!(
            e.contains("clip-paper-rac: no such file") && e.contains("clip-paper-race-child"),
            "{e}"
        );
        assert!(
            matches!(resolve(Path::new("demo"), Kind::Dataset), Ok(Resolved::Builtin(f)) if f.name == "demo")
        );
        assert!(resolve(Path::new("demo"), Kind::Probe).is_err());
    }

    #[test]
    fn materialise_reuses_a_good_copy_and_repairs_a_damaged_one() {
        let root = tempfile::tempdir().unwrap();
        let demo = find(Kind::Dataset, "demo").unwrap();
        assert!(demo.data_files().len() > 40);
        let spec = materialise(&demo, root.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&spec).unwrap(), demo.text);
        let labels = spec.parent().unwrap().join("demo/labels.csv");
        std::fs::write(&labels, "file,age\n").unwrap();
        assert_eq!(materialise(&demo, root.path()).unwrap(), spec);
        assert_eq!(std::fs::read(&labels).unwrap(), demo.data_files()[0].1);
        let folders = std::fs::read_dir(root.path().join("builtin-datasets"))
            .unwrap()
            .count();
        assert_eq!(folders, 1, "temporary and damaged copies are removed");
    }
}
