//! The report folder as a transaction: an exclusive lock on `--out`, a staging folder beside it
//! that every file is written into, and an atomic swap into place once the report is complete.
//!
//! Guarantees, for every command that writes a report folder:
//! - A failed or killed run leaves the previous report exactly as it was: nothing is written
//!   under `--out` itself; the staging folder `.<name>.staging-<pid>` (same parent, so the same
//!   file system) is renamed into place only after every file is written and synced.
//! - `run.json` is written last and marks a complete report: readers ([`require_complete`])
//!   refuse a folder without it, and refuse staging folders outright.
//! - One writer at a time: `.<name>.lock` beside the folder is held with an exclusive advisory
//!   lock (`flock`) for the whole run. A second run exits naming the holder. The operating system
//!   releases the lock when a process dies, so a lock left by a killed run is taken over, and its
//!   staging folder swept, by the next run. The lock file itself stays (deleting it would let two
//!   runs lock two different files).
//! - A folder is only replaced if it holds nothing but report files, so `--out ~/Documents` is an
//!   error, never a deletion.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::provenance::SCHEMA_VERSION;

/// The file that marks a report folder as complete; written last.
pub const COMPLETE_MARKER: &str = "run.json";

/// The names a report folder may hold: what `run`, `aggregate` and `compare` write.
const REPORT_ENTRIES: &[&str] = &[
    "run.json",
    "predictions.parquet",
    "predictions.csv",
    "groups.csv",
    "accuracy.csv",
    "disparities.csv",
    "skipped.csv",
    "templates.csv",
    "retrieval.csv",
    "metrics.json",
    "tables.md",
    "report.html",
    "charts",
    "compare.csv",
    "compare.json",
    "compare.md",
];

/// Why a report folder could not be prepared, committed or read.
#[derive(Debug, thiserror::Error)]
pub enum ReportFolderError {
    /// `--out` cannot name a report folder (root, `..`, a file).
    #[error("{}: {reason}", path.display())]
    BadPath {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process holds the lock.
    #[error(
        "{}: another clip-audit process is writing this report folder ({holder}); wait for it \
         to finish or choose another --out",
        out.display()
    )]
    Locked {
        /// The report folder.
        out: PathBuf,
        /// What the holder wrote into the lock file (pid, start time, command).
        holder: String,
    },
    /// The folder exists and holds files that are not part of a report.
    #[error(
        "{}: holds `{entry}`, which is not part of a clip-audit report; the report folder is \
         replaced whole, so choose a new or empty folder",
        out.display()
    )]
    NotReplaceable {
        /// The report folder.
        out: PathBuf,
        /// The first foreign entry.
        entry: String,
    },
    /// A folder given to a reader is not a complete report.
    #[error("{}: not a complete clip-audit report: {reason}", path.display())]
    Incomplete {
        /// The folder.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{}: cannot {action}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done, e.g. "create the staging folder".
        action: &'static str,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> ReportFolderError {
    let path = path.to_path_buf();
    move |source| ReportFolderError::Io {
        path,
        action,
        source,
    }
}

/// A report being written: holds the lock on `--out` and owns the staging folder, which is
/// removed on drop unless [`StagedReport::commit`] moved it into place.
#[derive(Debug)]
pub struct StagedReport {
    out: PathBuf,
    staging: PathBuf,
    _lock: File,
    committed: bool,
}

impl StagedReport {
    /// Locks `out`, recovers what a killed run left, checks that `out` may be replaced, and
    /// creates an empty staging folder; `holder` (e.g. the command line) goes into the lock file.
    pub fn begin(out: &Path, holder: &str) -> Result<StagedReport, ReportFolderError> {
        let (parent, name) = split_out(out)?;
        std::fs::create_dir_all(&parent).map_err(io_error(&parent, "create the folder"))?;
        let lock = acquire_lock(&parent.join(format!(".{name}.lock")), out, holder)?;
        let target = parent.join(&name);
        recover_and_sweep(&parent, &name, &target)?;
        check_replaceable(&target)?;
        let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
        std::fs::create_dir(&staging).map_err(io_error(&staging, "create the staging folder"))?;
        Ok(StagedReport {
            out: target,
            staging,
            _lock: lock,
            committed: false,
        })
    }

    /// The folder to write every report file into.
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    /// The final report folder (absolute).
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Syncs every staged file, checks that the completion marker is there, and swaps the staging
    /// folder into place; the previous report (if any) is removed afterwards, best effort.
    pub fn commit(mut self) -> Result<PathBuf, ReportFolderError> {
        let marker = self.staging.join(COMPLETE_MARKER);
        if !marker.is_file() {
            return Err(ReportFolderError::Incomplete {
                path: self.staging.clone(),
                reason: format!("{COMPLETE_MARKER} was not written"),
            });
        }
        sync_tree(&self.staging)?;
        let replaced = swap_into_place(&self.staging, &self.out)?;
        self.committed = true;
        if let Some(parent) = self.out.parent() {
            sync_dir(parent)?;
        }
        if replaced {
            // The staging path now holds the previous report. The new one is already in place,
            // so failing to delete the old one must not fail the run: the next run sweeps it.
            let _ = std::fs::remove_dir_all(&self.staging);
        }
        Ok(self.out.clone())
    }
}

impl Drop for StagedReport {
    fn drop(&mut self) {
        if !self.committed {
            // best effort: a leftover is swept by the next run that takes the lock
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// The absolute parent folder and the file name of `out`, following a symlink at `out` itself.
fn split_out(out: &Path) -> Result<(PathBuf, String), ReportFolderError> {
    let bad = |reason: &str| ReportFolderError::BadPath {
        path: out.to_path_buf(),
        reason: reason.to_string(),
    };
    let resolved = match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(out).map_err(io_error(out, "resolve the link"))?
        }
        _ => std::path::absolute(out).map_err(io_error(out, "resolve the path"))?,
    };
    let name = match resolved.file_name().and_then(|n| n.to_str()) {
        Some(name) if name != ".." => name.to_string(),
        _ => {
            return Err(bad(
                "expected a path ending in a folder name, e.g. reports/audit",
            ));
        }
    };
    let parent = resolved
        .parent()
        .ok_or_else(|| bad("the report folder needs a parent folder"))?
        .to_path_buf();
    Ok((parent, name))
}

/// Opens (creating) and exclusively locks the lock file, recording `holder` in it.
fn acquire_lock(path: &Path, out: &Path, holder: &str) -> Result<File, ReportFolderError> {
    let mut file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = (&file).take(4096).read_to_string(&mut text);
            let text = text.trim();
            return Err(ReportFolderError::Locked {
                out: out.to_path_buf(),
                holder: if text.is_empty() {
                    format!("lock file {}", path.display())
                } else {
                    format!("{text}; lock file {}", path.display())
                },
            });
        }
        Err(TryLockError::Error(source)) => {
            return Err(ReportFolderError::Io {
                path: path.to_path_buf(),
                action: "lock",
                source,
            });
        }
    }
    let record = format!(
        "pid {} since {}: {holder}\n",
        std::process::id(),
        crate::provenance::utc_now()
    );
    file.set_len(0)
        .and_then(|()| file.write_all(record.as_bytes()))
        .map_err(io_error(path, "write the lock file"))?;
    Ok(file)
}

/// Opens the lock file without blocking on a FIFO and refuses anything but a regular file.
fn open_lock_file(path: &Path) -> Result<File, ReportFolderError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = options
        .open(path)
        .map_err(io_error(path, "open the lock file"))?;
    let meta = file
        .metadata()
        .map_err(io_error(path, "read the lock file's metadata"))?;
    if !meta.is_file() {
        return Err(ReportFolderError::BadPath {
            path: path.to_path_buf(),
            reason: "the lock file is not a regular file".into(),
        });
    }
    Ok(file)
}

/// With the lock held: puts back a previous report that a killed swap left aside, and removes
/// staging folders of runs that died.
fn recover_and_sweep(parent: &Path, name: &str, target: &Path) -> Result<(), ReportFolderError> {
    let entries = std::fs::read_dir(parent).map_err(io_error(parent, "list the folder"))?;
    let staging_prefix = format!(".{name}.staging-");
    let previous_prefix = format!(".{name}.previous-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let path = entry.path();
        if file_name.starts_with(&previous_prefix) && !target.exists() {
            std::fs::rename(&path, target)
                .map_err(io_error(&path, "restore the previous report"))?;
        } else if file_name.starts_with(&staging_prefix) || file_name.starts_with(&previous_prefix)
        {
            std::fs::remove_dir_all(&path)
                .map_err(io_error(&path, "remove a dead run's staging folder"))?;
        }
    }
    Ok(())
}

/// `out` may be replaced when it does not exist, or is a folder holding only report files.
fn check_replaceable(out: &Path) -> Result<(), ReportFolderError> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(out, "read the folder's metadata")(e)),
    };
    if !meta.is_dir() {
        return Err(ReportFolderError::BadPath {
            path: out.to_path_buf(),
            reason: "exists and is not a folder".into(),
        });
    }
    for entry in std::fs::read_dir(out).map_err(io_error(out, "list the folder"))? {
        let entry = entry.map_err(io_error(out, "list the folder"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !REPORT_ENTRIES.contains(&name.as_str()) {
            return Err(ReportFolderError::NotReplaceable {
                out: out.to_path_buf(),
                entry: name,
            });
        }
    }
    Ok(())
}

/// Moves `staging` to `out` atomically; returns whether a previous `out` was swapped out (it is
/// then at `staging`).
fn swap_into_place(staging: &Path, out: &Path) -> Result<bool, ReportFolderError> {
    if !out.exists() {
        std::fs::rename(staging, out).map_err(io_error(out, "move the report into place"))?;
        return Ok(false);
    }
    #[cfg(target_os = "linux")]
    match exchange(staging, out) {
        Ok(()) => return Ok(true),
        // file systems without RENAME_EXCHANGE fall through to two renames
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {}
        Err(e) => return Err(io_error(out, "swap the report into place")(e)),
    }
    // Two renames: a kill between them leaves `.<name>.previous-<pid>`, which the next run
    // renames back before doing anything else.
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned());
    let aside = out.with_file_name(format!(
        ".{}.previous-{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    std::fs::rename(out, &aside).map_err(io_error(out, "move the previous report aside"))?;
    std::fs::rename(staging, out).map_err(io_error(out, "move the report into place"))?;
    std::fs::rename(&aside, staging).map_err(io_error(&aside, "move the previous report"))?;
    Ok(true)
}

/// Atomically exchanges two paths (`renameat2` with `RENAME_EXCHANGE`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; renameat2
    // reads them and nothing else, and AT_FDCWD makes relative paths resolve as in `rename`.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Flushes every file under `dir` and the folders themselves to stable storage.
fn sync_tree(dir: &Path) -> Result<(), ReportFolderError> {
    for entry in std::fs::read_dir(dir).map_err(io_error(dir, "list the staging folder"))? {
        let entry = entry.map_err(io_error(dir, "list the staging folder"))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(io_error(&path, "read the file type"))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_error(&path, "sync the file"))?;
        }
    }
    sync_dir(dir)
}

/// Flushes a folder's entries (renames, new files) to stable storage where the platform can.
fn sync_dir(dir: &Path) -> Result<(), ReportFolderError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir, "sync the folder"))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether `dir`'s name is that of a staging or set-aside folder, never a report to read.
fn is_transient_name(dir: &Path) -> bool {
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    name.starts_with('.') && (name.contains(".staging-") || name.contains(".previous-"))
}

/// Checks that `dir` is a complete report folder: not a staging folder, and `run.json` present,
/// a regular file, and a JSON object written by clip-audit. Returns the `kind` it records
/// (`run`, `aggregate`, `retrieval`, `compare`; `None` for reports older than the key).
pub fn require_complete(dir: &Path) -> Result<Option<String>, ReportFolderError> {
    let incomplete = |reason: String| ReportFolderError::Incomplete {
        path: dir.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(incomplete("no such folder".into()));
    }
    if is_transient_name(dir) {
        return Err(incomplete(
            "this is the staging folder of a run that has not finished".into(),
        ));
    }
    let marker = dir.join(COMPLETE_MARKER);
    let bytes = crate::input_file::read_regular_file(&marker, 16 << 20, "limit for run.json")
        .map_err(|e| {
        incomplete(format!(
            "{COMPLETE_MARKER}: {e} (it is written last: the run that wrote this folder did not \
             finish, or this is not a report folder)"
        ))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| incomplete(format!("{COMPLETE_MARKER} is not valid JSON: {e}")))?;
    let tool = value
        .get("tool")
        .and_then(|t| t.get("name").or(Some(t)))
        .and_then(|t| t.as_str());
    if tool != Some(env!("CARGO_PKG_NAME")) {
        return Err(incomplete(format!(
            "{COMPLETE_MARKER} was not written by {}",
            env!("CARGO_PKG_NAME")
        )));
    }
    // reports written before run.json was versioned have no schema_version: version 0
    let version = value.get("schema_version").map_or(Some(0), |v| v.as_u64());
    match version {
        Some(v) if v <= u64::from(SCHEMA_VERSION) => {
            Ok(value.get("kind").and_then(|k| k.as_str()).map(String::from))
        }
        _ => Err(incomplete(format!(
            "{COMPLETE_MARKER} has schema_version {}, but this clip-audit reads at most {SCHEMA_VERSION} \
             (the report was written by a newer clip-audit)",
            value["schema_version"]
        ))),
    }
}

/// Refuses a predictions file that sits in a report folder that did not finish (a staging folder,
/// or report files without `run.json`); predictions from elsewhere are accepted as they are.
pub fn require_complete_source(file: &Path) -> Result<(), ReportFolderError> {
    let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if is_transient_name(dir) {
        return require_complete(dir).map(|_| ());
    }
    let looks_like_report = ["groups.csv", "metrics.json", "report.html", "skipped.csv"]
        .iter()
        .any(|name| dir.join(name).exists());
    if looks_like_report {
        require_complete(dir)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// reader never sees a partial file and a failed write leaves the old one.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportFolderError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ReportFolderError::BadPath {
            path: path.to_path_buf(),
            reason: "expected a file name".into(),
        })?;
    let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = File::create(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(ReportFolderError::Io {
            path: path.to_path_buf(),
            action: "write",
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_report(dir: &Path, marker: &str) {
        std::fs::write(dir.join("groups.csv"), marker).unwrap();
        std::fs::write(
            dir.join(COMPLETE_MARKER),
            r#"{"tool": {"name": "clip-audit", "version": "0"}}"#,
        )
        .unwrap();
    }

    #[test]
    fn run_json_versions_up_to_this_build_are_read_and_newer_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join(COMPLETE_MARKER);
        let record = |version: &str| {
            format!(r#"{{"schema_version": {version}, "tool": {{"name": "clip-audit"}}}}"#)
        };
        // no schema_version: a report from before the record was versioned
        write_report(dir.path(), "old");
        require_complete(dir.path()).unwrap();
        std::fs::write(&marker, record(&SCHEMA_VERSION.to_string())).unwrap();
        require_complete(dir.path()).unwrap();
        for newer in [
            (SCHEMA_VERSION + 1).to_string(),
            "\"1\"".into(),
            "-1".into(),
        ] {
            std::fs::write(&marker, record(&newer)).unwrap();
            let err = require_complete(dir.path()).unwrap_err().to_string();
            assert!(err.contains("schema_version"), "{newer}: {err}");
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_replaces_the_previous_report_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("audit");
        let first = StagedReport::begin(&out, "first").unwrap();
        write_report(first.dir(), "one");
        std::fs::write(first.dir().join("skipped.csv"), "old").unwrap();
        first.commit().unwrap();
        let second = StagedReport::begin(&out, "second").unwrap();
        write_report(second.dir(), "two");
        assert_eq!(
            std::fs::read_to_string(out.join("groups.csv")).unwrap(),
            "one"
        );
        second.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("groups.csv")).unwrap(),
            "two"
        );
        assert!(
            !out.join("skipped.csv").exists(),
            "no file survives from the old report"
        );
        assert_eq!(entries(tmp.path()), [".audit.lock", "audit"]);
        require_complete(&out).unwrap();
    }

    #[test]
    fn a_failed_run_leaves_the_previous_report_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("audit");
        let first = StagedReport::begin(&out, "first").unwrap();
        write_report(first.dir(), "one");
        first.commit().unwrap();
        let failed = StagedReport::begin(&out, "failed").unwrap();
        std::fs::write(failed.dir().join("groups.csv"), "partial").unwrap();
        drop(failed);
        assert_eq!(
            std::fs::read_to_string(out.join("groups.csv")).unwrap(),
            "one"
        );
        assert_eq!(entries(tmp.path()), [".audit.lock", "audit"]);
        // a stage without run.json cannot be committed
        let unfinished = StagedReport::begin(&out, "unfinished").unwrap();
        std::fs::write(unfinished.dir().join("groups.csv"), "partial").unwrap();
        let err = unfinished.commit().unwrap_err();
        assert!(
            err.to_string().contains("run.json was not written"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("groups.csv")).unwrap(),
            "one"
        );
    }

    #[test]
    fn a_second_writer_is_refused_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("audit");
        let holder = StagedReport::begin(&out, "clip-audit run --out audit").unwrap();
        let err = StagedReport::begin(&out, "other").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ReportFolderError::Locked { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("clip-audit run --out audit"), "{text}");
        drop(holder);
        StagedReport::begin(&out, "after").unwrap();
    }

    #[test]
    fn leftovers_of_a_killed_run_are_swept_or_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("audit");
        std::fs::create_dir(tmp.path().join(".audit.staging-99999")).unwrap();
        // a report set aside by a swap that was killed between its two renames
        let aside = tmp.path().join(".audit.previous-99999");
        std::fs::create_dir(&aside).unwrap();
        write_report(&aside, "kept");
        let stage = StagedReport::begin(&out, "next").unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("groups.csv")).unwrap(),
            "kept"
        );
        let names = entries(tmp.path());
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[1].starts_with(".audit.staging-"), "{names:?}");
        assert_eq!(stage.dir().file_name(), Some(names[1].as_ref()));
    }

    #[test]
    fn a_folder_with_foreign_files_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("documents");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("thesis.tex"), "precious").unwrap();
        let err = StagedReport::begin(&out, "run").unwrap_err();
        assert!(err.to_string().contains("thesis.tex"), "{err}");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = StagedReport::begin(&file, "run").unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        let err = StagedReport::begin(Path::new("/"), "run").unwrap_err();
        assert!(err.to_string().contains("folder name"), "{err}");
    }

    #[test]
    fn readers_refuse_unfinished_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("partial");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("groups.csv"), "x").unwrap();
        let err = require_complete(&dir).unwrap_err().to_string();
        assert!(
            err.contains("run.json") && err.contains("did not finish"),
            "{err}"
        );
        std::fs::write(dir.join("run.json"), "{").unwrap();
        let err = require_complete(&dir).unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        std::fs::write(dir.join("run.json"), r#"{"tool": "other"}"#).unwrap();
        assert!(require_complete(&dir).is_err());
        std::fs::write(dir.join("run.json"), r#"{"tool": "clip-audit"}"#).unwrap();
        require_complete(&dir).unwrap();
        let staging = tmp.path().join(".audit.staging-1");
        std::fs::create_dir(&staging).unwrap();
        write_report(&staging, "x");
        let err = require_complete(&staging).unwrap_err().to_string();
        assert!(err.contains("staging"), "{err}");
        assert!(require_complete_source(&staging.join("predictions.parquet")).is_err());
        // predictions outside any report folder are fine
        let loose = tmp.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        require_complete_source(&loose.join("predictions.csv")).unwrap();
        std::fs::remove_file(dir.join("run.json")).unwrap();
        assert!(require_complete_source(&dir.join("predictions.parquet")).is_err());
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("junit.xml");
        write_file_atomically(&path, b"one").unwrap();
        write_file_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(tmp.path()), ["junit.xml"]);
        let err = write_file_atomically(&tmp.path().join("no/such/dir/x"), b"x").unwrap_err();
        assert!(err.to_string().contains("no/such/dir/x"), "{err}");
    }
}
