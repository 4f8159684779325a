//! FairFace's Hugging Face parquet release (`HuggingFaceM4/FairFace`, dataset repository),
//! fetched through hf-hub into the standard Hugging Face cache (offline: cache only).
//!
//! Layout at commit [`KNOWN_REVISION`] (the default file list, used when a spec gives no
//! `files`): one folder per padding config, `datasets`-style shard names with a content hash:
//!
//! ```text
//! 0.25/validation-00000-of-00001-951dbd63c8724ee1.parquet      10,954 rows, 63,189,799 bytes
//! 0.25/train-00000-of-00002-d405faba4f4b9b85.parquet
//! 0.25/train-00001-of-00002-dd3cb68164727418.parquet
//! 1.25/validation-00000-of-00001-09e3e67bb00ab4ec.parquet
//! 1.25/train-0000N-of-00004-….parquet                          (4 shards: list them in `files`)
//! ```
//!
//! Columns: `image` (struct `bytes`, `path`), `age`, `gender`, `race` (int64 class indices) and
//! `service_test` (bool). The index → name mapping comes from the spec's `codes`, never from here.

use std::path::{Path, PathBuf};

use super::manifest::ParquetFile;
use super::plan::Plan;
use super::spec::{DEFAULT_REPO, HubSpec};
use super::{DatasetError, DatasetOptions, sha256_file};

/// The commit whose file layout [`default_files`] describes.
pub(crate) const KNOWN_REVISION: &str = "54d573cdb8b5af490ba8da9da2799628f6e5c496";

/// The parquet files of a config and split in `HuggingFaceM4/FairFace` at [`KNOWN_REVISION`].
pub(crate) fn default_files(config: &str, split: &str) -> Option<&'static [&'static str]> {
    match (config, split) {
        ("0.25", "validation") => {
            Some(&["0.25/validation-00000-of-00001-951dbd63c8724ee1.parquet"])
        }
        ("0.25", "train") => Some(&[
            "0.25/train-00000-of-00002-d405faba4f4b9b85.parquet",
            "0.25/train-00001-of-00002-dd3cb68164727418.parquet",
        ]),
        ("1.25", "validation") => {
            Some(&["1.25/validation-00000-of-00001-09e3e67bb00ab4ec.parquet"])
        }
        _ => None,
    }
}

/// The fairface parquet formats map class indices explicitly: every plain attribute needs `codes`.
pub(crate) fn require_codes(
    spec_file: &Path,
    plan: &Plan,
    format: &str,
) -> Result<(), DatasetError> {
    match plan.attributes_without_codes().first() {
        None => Ok(()),
        Some(name) => Err(DatasetError::Spec {
            file: spec_file.to_path_buf(),
            field: format!("attributes.{name}.codes"),
            message: format!(
                "required for format {format}: the parquet columns hold class indices, and their names are given explicitly (e.g. codes = {{ 0 = \"Male\", 1 = \"Female\" }}), never guessed"
            ),
        }),
    }
}

/// Why fetching failed: a dataset error, or a spec field (`field`, message) that cannot be used.
pub(crate) enum FetchError {
    Dataset(DatasetError),
    Spec(&'static str, String),
}

impl From<DatasetError> for FetchError {
    fn from(e: DatasetError) -> Self {
        FetchError::Dataset(e)
    }
}

/// The Hub files of a split, in the local cache.
pub(crate) struct Fetched {
    repo: String,
    revision: String,
    commit: Option<String>,
    config: String,
    split: String,
    cache: PathBuf,
    files: Vec<(String, PathBuf, String, u64)>,
}

impl Fetched {
    /// The cached files, named by their path in the repository.
    pub fn parquet_files(&self) -> Vec<ParquetFile> {
        self.files
            .iter()
            .map(|(name, path, ..)| ParquetFile {
                path: path.clone(),
                name: name.clone(),
            })
            .collect()
    }

    /// `hub` (repo, revision, resolved commit, config, split, cache) and `files` (sha256).
    pub fn provenance(&self) -> serde_json::Value {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|(name, path, sha256, bytes)| {
                serde_json::json!({
                    "role": "parquet",
                    "repo_path": name,
                    "path": path.display().to_string(),
                    "sha256": sha256,
                    "bytes": bytes,
                })
            })
            .collect();
        serde_json::json!({
            "hub": {
                "repo": self.repo,
                "repo_type": "dataset",
                "revision": self.revision,
                "commit": self.commit,
                "config": self.config,
                "split": self.split,
                "cache": self.cache.display().to_string(),
            },
            "files": files,
        })
    }
}

/// Downloads (or, offline, finds in the cache) the split's parquet files and checks pinned
/// SHA-256 digests.
pub(crate) fn fetch(spec: &HubSpec, options: &DatasetOptions) -> Result<Fetched, FetchError> {
    let HubSpec {
        repo,
        revision,
        config,
        split,
        files,
        sha256,
        ..
    } = spec;
    let files = file_list(repo, config, split, files.as_deref())?;
    check_pins(sha256, &files)?;
    let hub = HubRepo { repo, revision };
    let first = files.first().map(String::as_str).unwrap_or("");
    let (client, cache) = hub.client(options, first)?;
    let (owner, name) = repo.split_once('/').unwrap_or(("", repo));
    let handle = client.dataset(owner, name);
    let mut fetched = Vec::new();
    let mut commit = None;
    for file in &files {
        let path = hub.download(&handle, file, options.offline, &cache)?;
        if commit.is_none() {
            commit = snapshot_commit(&path, file);
        }
        let (digest, bytes) = sha256_file(&path)?;
        check_digest(sha256, file, &path, &digest)?;
        fetched.push((file.clone(), path, digest, bytes));
    }
    Ok(Fetched {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit,
        config: config.to_string(),
        split: split.to_string(),
        cache,
        files: fetched,
    })
}

/// The spec's `files`, or the known layout of the FairFace repository's config and split.
fn file_list(
    repo: &str,
    config: &str,
    split: &str,
    files: Option<&[String]>,
) -> Result<Vec<String>, FetchError> {
    match files {
        Some(f) => Ok(f.to_vec()),
        None if repo == DEFAULT_REPO => Ok(default_files(config, split)
            .ok_or_else(|| {
                FetchError::Spec("source.files", format!(
                    "missing: no default file list for config {config:?} split {split:?} of {repo} (the defaults describe commit {KNOWN_REVISION}); list the parquet files (paths inside the repository)"
                ))
            })?
            .iter()
            .map(|s| s.to_string())
            .collect()),
        None => Err(FetchError::Spec("source.files", format!(
            "missing: list the parquet files of {repo} (paths inside the repository)"
        ))),
    }
}

/// Every pinned digest must name a file that is read.
fn check_pins(sha256: &[(String, String)], files: &[String]) -> Result<(), FetchError> {
    for (pinned, _) in sha256 {
        if !files.contains(pinned) {
            return Err(FetchError::Spec(
                "source.sha256",
                format!(
                    "pins {pinned:?}, which is not among the files to read ({})",
                    files.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Fails when `file`'s digest is pinned and differs from `digest` (that of `path`).
fn check_digest(
    sha256: &[(String, String)],
    file: &str,
    path: &Path,
    digest: &str,
) -> Result<(), DatasetError> {
    let mismatch = sha256
        .iter()
        .find(|(f, _)| f == file)
        .filter(|(_, expected)| !expected.eq_ignore_ascii_case(digest));
    match mismatch {
        Some((_, expected)) => Err(DatasetError::Checksum {
            file: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            actual: digest.to_string(),
        }),
        None => Ok(()),
    }
}

/// A dataset repository at a revision, for the hub client and its errors.
struct HubRepo<'a> {
    repo: &'a str,
    revision: &'a str,
}

impl HubRepo<'_> {
    fn error(&self, file: &str, message: String) -> DatasetError {
        DatasetError::Hub {
            repo: self.repo.to_string(),
            revision: self.revision.to_string(),
            file: file.to_string(),
            message,
        }
    }

    /// A blocking client on the cache (`options.hub_cache` or hf-hub's default) and that
    /// cache's folder; `first` (the first file) names a failure.
    fn client(
        &self,
        options: &DatasetOptions,
        first: &str,
    ) -> Result<(hf_hub::HFClientSync, PathBuf), DatasetError> {
        let mut builder = hf_hub::HFClient::builder();
        if let Some(dir) = &options.hub_cache {
            builder = builder.cache_dir(dir.clone());
        }
        let inner = builder
            .build()
            .map_err(|e| self.error(first, crate::hub_error::describe(&e)))?;
        let cache = inner.cache_dir().to_path_buf();
        let client = hf_hub::HFClientSync::from_inner(inner)
            .map_err(|e| self.error(first, crate::hub_error::describe(&e)))?;
        Ok((client, cache))
    }

    /// One file's path in the cache, downloaded first unless `offline`.
    fn download(
        &self,
        handle: &hf_hub::HFRepositorySync<hf_hub::RepoTypeDataset>,
        file: &str,
        offline: bool,
        cache: &Path,
    ) -> Result<PathBuf, DatasetError> {
        let result = handle
            .download_file()
            .filename(file)
            .revision(self.revision.to_string())
            .local_files_only(offline)
            .send();
        match result {
            Ok(path) => Ok(path),
            Err(hf_hub::HFError::LocalEntryNotFound { .. }) => Err(DatasetError::NotCached {
                repo: self.repo.to_string(),
                revision: self.revision.to_string(),
                file: file.to_string(),
                cache: cache.to_path_buf(),
            }),
            Err(hf_hub::HFError::EntryNotFound { .. }) => Err(self.error(
                file,
                "the repository has no such file (list the right ones in source.files)".into(),
            )),
            Err(e) => Err(self.error(file, crate::hub_error::describe(&e))),
        }
    }
}

/// The commit hash in a cache path `…/snapshots/<commit>/<repo path>`.
fn snapshot_commit(path: &Path, repo_path: &str) -> Option<String> {
    let depth = Path::new(repo_path).components().count();
    let snapshot = path.ancestors().nth(depth)?;
    let parent = snapshot.parent()?;
    (parent.file_name()? == "snapshots")
        .then(|| snapshot.file_name()?.to_str().map(str::to_string))?
}
