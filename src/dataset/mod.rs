//! Record sources: a dataset spec (`datasets/*.toml`) or a FairFace-style label
//! CSV becomes a deterministic stream of records (id, image, demographic attribute values).
//!
//! Formats: `fairface` (label CSV + image folder), `fairface-hub` (the Hugging Face parquet
//! release, through the standard HF cache), `fairface-parquet` (those parquet files on disk),
//! `utkface` (a folder of `age_gender_race_datetime.jpg` files) and `manifest` (any CSV or Parquet
//! with an image column). The spec schema is documented in `src/dataset/spec.rs` and by the
//! shipped `datasets/*.toml`. Records stream: memory stays flat in the number of images.

mod fairface;
mod hub;
mod manifest;
mod plan;
mod root;
mod spec;
mod utkface;

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::builtin::{self, BuiltinFile, Kind, Resolved};
use crate::digest::hex;

use crate::images::ImageLimits;
use crate::input_file::{MAX_TEXT_INPUT_BYTES, read_regular_file};
use crate::schema::Attribute;
pub use crate::schema::SkippedRecord;
use plan::Plan;
use root::ImageRoot;
use spec::SourceSpec;

pub use fairface::{FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES, known_vocabulary};

/// Where a record's image bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An image file on disk (not checked for existence here; the loader counts missing files).
    File(PathBuf),
    /// Image bytes embedded in a parquet file; `name` is `<parquet file>#<row>`.
    Embedded {
        /// `<parquet file>#<row>`, for messages and `skipped.csv`.
        name: String,
        /// The encoded image (JPEG, PNG, …).
        bytes: Vec<u8>,
    },
}

impl ImageSource {
    /// The path, or the `<parquet file>#<row>` name of an embedded image.
    pub fn display(&self) -> String {
        match self {
            ImageSource::File(path) => path.display().to_string(),
            ImageSource::Embedded { name, .. } => name.clone(),
        }
    }

    /// The encoded image bytes (read from disk for a file: a regular file within the limits'
    /// file size, see [`crate::images::read_image_file`]).
    pub fn read_bytes(
        &self,
        limits: &ImageLimits,
    ) -> Result<std::borrow::Cow<'_, [u8]>, crate::images::ImageLoadError> {
        match self {
            ImageSource::File(path) => crate::images::read_image_file(path, limits).map(Into::into),
            ImageSource::Embedded { bytes, .. } => Ok(bytes.as_slice().into()),
        }
    }

    /// Decodes the image to 8-bit RGB within `limits` (see [`crate::images`]).
    pub fn load_rgb(
        &self,
        limits: &ImageLimits,
    ) -> Result<image::RgbImage, crate::images::ImageLoadError> {
        let alpha = crate::images::AlphaMode::default();
        match self {
            ImageSource::File(path) => crate::images::load_rgb_with(path, alpha, limits),
            ImageSource::Embedded { name, bytes } => {
                crate::images::decode_rgb_with(bytes, name, alpha, limits)
            }
        }
    }
}

/// One image with its attribute values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Stable id: the label CSV's `file`, the UTKFace file name, the manifest's id column, …
    pub id: String,
    /// Where the image is.
    pub image: ImageSource,
    /// One value per attribute, in [`Dataset::attributes`] order.
    pub values: Vec<String>,
}

/// An item of [`Dataset::records`]: a record, or a reported skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordItem {
    /// A usable record.
    Record(Record),
    /// A row skipped with its reason (goes to `skipped.csv`).
    Skipped(SkippedRecord),
}

/// Options of [`Dataset::open`].
#[derive(Debug, Clone, Default)]
pub struct DatasetOptions {
    /// Never touch the network: Hub files must already be in the cache.
    pub offline: bool,
    /// Hugging Face hub cache folder (default: `$HF_HUB_CACHE`, `$HF_HOME/hub` or
    /// `~/.cache/huggingface/hub`, as hf-hub resolves it).
    pub hub_cache: Option<PathBuf>,
}

/// Why a dataset could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file could not be read.
    #[error("{}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The spec is not valid TOML.
    #[error("{}: {message}", file.display())]
    SpecSyntax {
        /// The spec file.
        file: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A spec field is missing, unknown or invalid.
    #[error("{}: field {field}: {message}", file.display())]
    Spec {
        /// The spec file.
        file: PathBuf,
        /// Dotted field path, e.g. `attributes.race.values`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A data file does not have the expected shape (missing column, bad header, unreadable).
    #[error("{}: {message}", file.display())]
    Format {
        /// The data file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A row holds a value that cannot be used (outside the vocabulary, unknown class index,
    /// image path leaving the dataset root, …).
    #[error("{}: {row}: {message}", file.display())]
    Row {
        /// The data file.
        file: PathBuf,
        /// `row 12 (line 13)` for CSV, `row 12` (0-based) for parquet.
        row: String,
        /// What is wrong, naming the column and the value.
        message: String,
    },
    /// Offline, and a Hub file is not in the cache.
    #[error(
        "dataset {repo}@{revision}: file {file} is not in the Hugging Face cache {} and offline mode forbids downloading it (run once online, or put the file into that cache)",
        cache.display()
    )]
    NotCached {
        /// `owner/name`.
        repo: String,
        /// Requested revision.
        revision: String,
        /// Path inside the repository.
        file: String,
        /// The cache folder searched.
        cache: PathBuf,
    },
    /// The Hub download failed.
    #[error("dataset {repo}@{revision}: file {file}: {message}")]
    Hub {
        /// `owner/name`.
        repo: String,
        /// Requested revision.
        revision: String,
        /// Path inside the repository.
        file: String,
        /// The client's message.
        message: String,
    },
    /// A file's SHA-256 differs from the one pinned in the spec.
    #[error("{}: sha256 is {actual}, but the spec pins {expected}", file.display())]
    Checksum {
        /// The file.
        file: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// Two records have the same id (their predictions could not be told apart).
    #[error("duplicate record id {id:?}: first at {first}, again at {second}; ids must be unique")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where it first appears: `<file>: row N (line L)`.
        first: String,
        /// Where it appears again.
        second: String,
    },
    /// `--dataset` names neither a file nor a built-in dataset spec.
    #[error(transparent)]
    UnknownName(#[from] crate::builtin::UnknownName),
    /// A built-in dataset spec could not be used: its data could not be written into the cache,
    /// or its relative paths (read from the current folder) do not lead to the user's files.
    #[error("built-in dataset spec {name}: {message}")]
    Builtin {
        /// The built-in's name.
        name: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// `--dataset` is neither a `.toml` spec nor a `.csv` label file.
    #[error("{}: expected a dataset spec (.toml) or a FairFace-style label CSV (.csv)", path.display())]
    UnknownInput {
        /// The argument.
        path: PathBuf,
    },
}

/// The records' source, opened.
#[derive(Debug)]
enum Source {
    Csv(manifest::CsvTable),
    Parquet(manifest::ParquetTable),
    Utk(utkface::UtkFolder),
}

/// An opened dataset: its attributes, provenance and a record stream.
#[derive(Debug)]
pub struct Dataset {
    name: String,
    description: String,
    spec_hash: String,
    provenance: serde_json::Value,
    plan: Plan,
    source: Source,
}

impl Dataset {
    /// `arg` is a dataset spec (.toml) or a FairFace-style label CSV used directly, or the name
    /// of a built-in dataset spec (see [`crate::builtin::resolve`]; an existing file wins).
    pub fn open(arg: &Path, options: &DatasetOptions) -> Result<Dataset, DatasetError> {
        match builtin::resolve(arg, Kind::Dataset)? {
            Resolved::File(path) => Self::open_file(&path, options),
            Resolved::Builtin(file) => Self::open_builtin(&file, options),
        }
    }

    /// A built-in dataset spec: one with shipped data (the demo set) is first written with its
    /// data into the cache (see [`builtin::materialise`]); any other is read from the binary, its
    /// relative paths taken from the current folder. `provenance.builtin` names it.
    fn open_builtin(file: &BuiltinFile, options: &DatasetOptions) -> Result<Dataset, DatasetError> {
        let failed = |message: String| DatasetError::Builtin {
            name: file.name.to_string(),
            message,
        };
        let mut dataset = if file.data_files().is_empty() {
            let origin = PathBuf::from(file.origin());
            Self::open_spec_text(&origin, file.text, file.sha256(), options).map_err(|e| {
                match e {
                    DatasetError::Io { .. } | DatasetError::Format { .. } => failed(format!(
                        "its relative paths are read from the current folder ({}); run from the folder that holds the data, or write the spec to a file with `clip-audit datasets show {}` and edit its paths: {}",
                        std::env::current_dir().map_or_else(|_| "?".into(), |d| d.display().to_string()),
                        file.name,
                        with_causes(&e)
                    )),
                    other => other,
                }
            })?
        } else {
            let root = crate::embed_cache::EmbeddingCache::default_root()
                .map_err(|e| failed(format!("its data is written into the cache folder: {e}")))?;
            let spec = builtin::materialise(file, &root).map_err(|e| {
                failed(format!(
                    "writing its data into {}: {e}",
                    root.join("builtin-datasets").display()
                ))
            })?;
            Self::open_spec(&spec, options)?
        };
        dataset.provenance["builtin"] = file.name.into();
        Ok(dataset)
    }

    /// A dataset spec or label CSV file.
    fn open_file(arg: &Path, options: &DatasetOptions) -> Result<Dataset, DatasetError> {
        let ext = arg
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("toml") => Self::open_spec(arg, options),
            Some("csv") => Self::open_label_csv(arg),
            _ => Err(DatasetError::UnknownInput {
                path: arg.to_path_buf(),
            }),
        }
    }

    fn open_spec(file: &Path, options: &DatasetOptions) -> Result<Dataset, DatasetError> {
        let (text, spec_hash) = read_spec(file)?;
        Self::open_spec_text(file, &text, spec_hash, options)
    }

    /// A spec's `text`, read from `file` (which names it and anchors its relative paths).
    fn open_spec_text(
        file: &Path,
        text: &str,
        spec_hash: String,
        options: &DatasetOptions,
    ) -> Result<Dataset, DatasetError> {
        let spec = spec::parse(file, text)?;
        let plan = Plan::from_specs(file, &spec.attributes)?;
        let (source, details) = open_source(file, &spec.source, &plan, options)?;
        let mut provenance = serde_json::json!({
            "format": spec.source.format(),
            "name": spec.name,
            "spec": { "path": file.display().to_string(), "sha256": spec_hash },
            "attributes": plan.attributes,
        });
        merge(&mut provenance, details);
        Ok(Dataset {
            name: spec.name,
            description: spec.description,
            spec_hash,
            provenance,
            plan,
            source,
        })
    }

    fn open_label_csv(csv: &Path) -> Result<Dataset, DatasetError> {
        let (plan, table) = fairface::open_direct(csv)?;
        let entry = file_entry("labels", csv)?;
        let spec_hash = entry["sha256"].as_str().unwrap_or_default().to_string();
        let name = csv
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "labels".into());
        let provenance = serde_json::json!({
            "format": "fairface-csv",
            "name": name,
            "spec": null,
            "files": [entry],
            "image_root": table.root().display().to_string(),
            "attributes": plan.attributes,
        });
        Ok(Dataset {
            description: format!("FairFace-style label CSV {}", csv.display()),
            name,
            spec_hash,
            provenance,
            plan,
            source: Source::Csv(table),
        })
    }

    /// The spec's `name` (the CSV's file stem for a label CSV).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec's `description`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The attributes with their vocabularies, in spec order (derived attributes included).
    pub fn attributes(&self) -> &[Attribute] {
        &self.plan.attributes
    }

    /// SHA-256 (hex) of the spec file's bytes, or of the CSV when a label CSV is given directly.
    pub fn spec_hash(&self) -> &str {
        &self.spec_hash
    }

    /// Where the records come from: format, spec path and hash, data files with SHA-256, Hub repo,
    /// revision and resolved commit, image root, attributes.
    pub fn provenance(&self) -> serde_json::Value {
        self.provenance.clone()
    }

    /// Streams records in a deterministic order; memory stays flat in dataset size. After an
    /// `Err` item the stream ends.
    pub fn records(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<RecordItem, DatasetError>> + '_>, DatasetError> {
        Ok(match &self.source {
            Source::Csv(table) => Box::new(table.records(&self.plan)?),
            Source::Parquet(table) => Box::new(table.records(&self.plan)),
            Source::Utk(folder) => Box::new(folder.records(&self.plan)),
        })
    }
}

/// A dataset spec as `clip-audit datasets list` shows it, read without opening its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecSummary {
    /// The spec's `name`.
    pub name: String,
    /// The spec's `description`.
    pub description: String,
    /// The `[source]` format (`fairface`, `fairface-hub`, …).
    pub format: &'static str,
}

/// Parses a spec's `text` (named `file` in messages) into its [`SpecSummary`].
pub fn spec_summary(file: &Path, text: &str) -> Result<SpecSummary, DatasetError> {
    let spec = spec::parse(file, text)?;
    Ok(SpecSummary {
        format: spec.source.format(),
        name: spec.name,
        description: spec.description,
    })
}

/// What the checking pass ([`Dataset::check_records`]) counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Items of the record stream (records plus skipped rows).
    pub items: u64,
    /// Rows skipped already by the source (e.g. a malformed UTKFace file name).
    pub skipped: u64,
}

impl Dataset {
    /// Reads every row once, without decoding images, and fails on the first problem the record
    /// stream can report (unreadable row, value outside a vocabulary, image path leaving the
    /// root) or on a repeated record id (naming both rows), naming file, row and field.
    /// Memory: 16 bytes per record (a hash of its id and its row).
    pub fn check_records(&self) -> Result<RecordCounts, DatasetError> {
        let mut ids = crate::id_index::IdLog::new();
        let mut counts = RecordCounts::default();
        for item in self.records()? {
            let index = counts.items;
            counts.items += 1;
            match item? {
                RecordItem::Record(record) => ids.push(&record.id, index),
                RecordItem::Skipped(_) => counts.skipped += 1,
            }
        }
        if let Some(duplicate) = ids.first_duplicate(|at| self.id_at(at))? {
            return Err(DatasetError::DuplicateId {
                id: duplicate.id,
                first: self.describe_row(duplicate.first),
                second: self.describe_row(duplicate.second),
            });
        }
        Ok(counts)
    }

    /// The id of the record at `index` of the stream (read again; empty for a skipped row).
    fn id_at(&self, index: u64) -> Result<String, DatasetError> {
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        Ok(match self.records()?.nth(index).transpose()? {
            Some(RecordItem::Record(record)) => record.id,
            _ => String::new(),
        })
    }

    /// Where the item at `index` of the record stream comes from: file and row.
    fn describe_row(&self, index: u64) -> String {
        match &self.source {
            Source::Csv(table) => table.describe_row(index),
            Source::Parquet(table) => table.describe_row(index),
            Source::Utk(folder) => folder.describe_row(index),
        }
    }
}

/// `error` followed by each of its causes, `: `-separated.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A spec file's text and the SHA-256 (hex) of its bytes.
fn read_spec(file: &Path) -> Result<(String, String), DatasetError> {
    let bytes = read_regular_file(file, MAX_TEXT_INPUT_BYTES, "limit for dataset specs").map_err(
        |source| DatasetError::Io {
            path: file.to_path_buf(),
            source,
        },
    )?;
    let spec_hash = hex(&Sha256::digest(&bytes));
    let text = String::from_utf8(bytes).map_err(|_| DatasetError::SpecSyntax {
        file: file.to_path_buf(),
        message: "not UTF-8 text".into(),
    })?;
    Ok((text, spec_hash))
}

/// Opens the spec's `[source]` (checking its columns against `plan`) and describes it for the
/// provenance (data files with SHA-256, image root, Hub repository, …).
fn open_source(
    file: &Path,
    source: &SourceSpec,
    plan: &Plan,
    options: &DatasetOptions,
) -> Result<(Source, serde_json::Value), DatasetError> {
    Ok(match source {
        SourceSpec::FairFace {
            labels,
            root,
            allow_outside_root,
        } => {
            let table =
                fairface::open_spec(labels, ImageRoot::new(root, *allow_outside_root), plan)?;
            let details = serde_json::json!({
                "files": [file_entry("labels", labels)?],
                "image_root": root.display().to_string(),
            });
            (Source::Csv(table), details)
        }
        SourceSpec::FairFaceHub(hub) => open_hub(file, hub, plan, options)?,
        SourceSpec::FairFaceParquet { paths, id } => {
            hub::require_codes(file, plan, "fairface-parquet")?;
            let files = paths
                .iter()
                .map(|p| manifest::ParquetFile::local(p.clone()))
                .collect::<Vec<_>>();
            let table = manifest::ParquetTable::open_fairface(files, *id, plan)?;
            let entries = paths
                .iter()
                .map(|p| file_entry("parquet", p))
                .collect::<Result<Vec<_>, _>>()?;
            (
                Source::Parquet(table),
                serde_json::json!({ "files": entries }),
            )
        }
        SourceSpec::UtkFace {
            root,
            recursive,
            allow_outside_root,
        } => {
            let folder = utkface::UtkFolder::open(
                ImageRoot::new(root, *allow_outside_root),
                *recursive,
                plan,
            )?;
            let details = folder.provenance();
            (Source::Utk(folder), details)
        }
        SourceSpec::Manifest(manifest) => open_manifest(manifest, plan)?,
    })
}

/// A `fairface-hub` source: its files fetched into (or found in) the Hugging Face cache.
fn open_hub(
    file: &Path,
    hub: &spec::HubSpec,
    plan: &Plan,
    options: &DatasetOptions,
) -> Result<(Source, serde_json::Value), DatasetError> {
    hub::require_codes(file, plan, "fairface-hub")?;
    let fetched = hub::fetch(hub, options).map_err(|e| match e {
        hub::FetchError::Dataset(e) => e,
        hub::FetchError::Spec(field, message) => DatasetError::Spec {
            file: file.to_path_buf(),
            field: field.into(),
            message,
        },
    })?;
    let table = manifest::ParquetTable::open_fairface(fetched.parquet_files(), hub.id, plan)?;
    Ok((Source::Parquet(table), fetched.provenance()))
}

/// A `manifest` source: a CSV or Parquet table.
fn open_manifest(
    spec: &spec::ManifestSpec,
    plan: &Plan,
) -> Result<(Source, serde_json::Value), DatasetError> {
    let spec::ManifestSpec {
        path,
        kind,
        image_column,
        id_column,
        root,
        allow_outside_root,
    } = spec;
    let image_root = ImageRoot::new(root, *allow_outside_root);
    let source = match kind {
        spec::ManifestKind::Csv => Source::Csv(manifest::CsvTable::open(
            path,
            image_root,
            image_column,
            id_column.as_deref(),
            plan,
        )?),
        spec::ManifestKind::Parquet => Source::Parquet(manifest::ParquetTable::open_manifest(
            path,
            image_root,
            image_column,
            id_column.as_deref(),
            plan,
        )?),
    };
    let details = serde_json::json!({
        "files": [file_entry("manifest", path)?],
        "image_root": root.display().to_string(),
        "image_column": image_column,
        "id_column": id_column,
    });
    Ok((source, details))
}

/// Adds `extra`'s keys to `base` (both JSON objects).
fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
}

/// SHA-256 and size of a file, read in chunks.
pub(crate) fn sha256_file(path: &Path) -> Result<(String, u64), DatasetError> {
    crate::digest::sha256_file(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `{role, path, sha256, bytes}` for provenance.
pub(crate) fn file_entry(role: &str, path: &Path) -> Result<serde_json::Value, DatasetError> {
    let (sha256, bytes) = sha256_file(path)?;
    Ok(serde_json::json!({
        "role": role,
        "path": path.display().to_string(),
        "sha256": sha256,
        "bytes": bytes,
    }))
}

/// Checks that an image path from the data stays inside the dataset root and returns it joined
/// to the root. Rejects empty and absolute paths and `..` components that climb above the root
/// (a lexical check; files are not touched).
pub(crate) fn image_path_in_root(root: &Path, raw: &str) -> Result<PathBuf, String> {
    if raw.is_empty() {
        return Err("the image path is empty".into());
    }
    let path = Path::new(raw);
    let bytes = raw.as_bytes();
    let windows_absolute = raw.starts_with('\\')
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':');
    if path.is_absolute() || path.has_root() || windows_absolute {
        return Err(format!(
            "image path {raw:?} is absolute; image paths must be relative to the dataset root {}",
            root.display()
        ));
    }
    let mut depth = 0usize;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(format!(
                        "image path {raw:?} leaves the dataset root {}",
                        root.display()
                    ));
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("image path {raw:?} is absolute"));
            }
        }
    }
    Ok(root.join(path))
}

#[cfg(test)]
mod tests {
    //! Tests that need the module's private items; the public API is tested in
    //! `tests/dataset_*.rs`.

    use std::fs;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn offline() -> DatasetOptions {
        DatasetOptions {
            offline: true,
            hub_cache: None,
        }
    }

    /// The first error of the stream, as text.
    fn first_error(ds: &Dataset) -> String {
        match ds.records().unwrap().find_map(Result::err) {
            Some(e) => e.to_string(),
            None => panic!("no error"),
        }
    }

    fn repo_datasets() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
    }

    #[test]
    fn image_paths_stay_inside_the_root() {
        let root = Path::new("/data/ff");
        assert_eq!(
            image_path_in_root(root, "val/1.jpg").unwrap(),
            root.join("val/1.jpg")
        );
        assert_eq!(
            image_path_in_root(root, "val/../train/1.jpg").unwrap(),
            root.join("val/../train/1.jpg")
        );
        assert!(image_path_in_root(root, "./1.jpg").is_ok());
        for bad in [
            "../1.jpg",
            "val/../../1.jpg",
            "/etc/passwd",
            "\\\\server\\x.jpg",
            "C:\\x.jpg",
            "",
        ] {
            assert!(image_path_in_root(root, bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "labels.csv",
            "file,age,gender,race\nval/1.jpg,3-9,Male,White\n../secret.jpg,3-9,Male,White\n",
        );
        let e = first_error(&Dataset::open(&csv, &offline()).unwrap());
        assert!(
            e.contains("row 2 (line 3)") && e.contains("\"../secret.jpg\" leaves the dataset root"),
            "{e}"
        );
        let csv = write(dir.path(), "abs.csv", "file,race\n/etc/passwd,White\n");
        let e = first_error(&Dataset::open(&csv, &offline()).unwrap());
        assert!(
            e.contains("row 1 (line 2)") && e.contains("absolute"),
            "{e}"
        );
    }

    #[test]
    fn shipped_specs_parse() {
        for name in [
            "fairface-val.toml",
            "fairface-local.toml",
            "utkface.toml",
            "demo.toml",
        ] {
            let path = repo_datasets().join(name);
            let text = fs::read_to_string(&path).unwrap();
            let parsed = spec::parse(&path, &text).unwrap();
            plan::Plan::from_specs(&path, &parsed.attributes).unwrap();
        }
        // The Hub spec's file is the known layout, and offline with an empty cache says what is missing.
        let empty = tempfile::tempdir().unwrap();
        let options = DatasetOptions {
            offline: true,
            hub_cache: Some(empty.path().to_path_buf()),
        };
        let e = Dataset::open(&repo_datasets().join("fairface-val.toml"), &options).unwrap_err();
        assert!(
            e.to_string()
                .contains("0.25/validation-00000-of-00001-951dbd63c8724ee1.parquet"),
            "{e}"
        );
    }
}
