//! UTKFace (Zhang et al. 2017, non-commercial research use): a folder of
//! `[age]_[gender]_[race]_[datetime].jpg` (or `.jpg.chip.jpg`) files. The name's four fields are
//! the source columns `age`, `gender`, `race`, `datetime`; codes map to names through the spec
//! (`datasets/utkface.toml`). Names that do not parse, or whose codes the spec does not list, are
//! yielded as skipped records with the reason, never guessed.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::plan::{Plan, ProblemKind};
use super::root::ImageRoot;
use super::{DatasetError, ImageSource, Record, RecordItem, SkippedRecord};
use crate::digest::hex;

/// The source columns a UTKFace file name provides, in name order.
pub(crate) const UTK_COLUMNS: [&str; 4] = ["age", "gender", "race", "datetime"];

/// A listed UTKFace folder (file names only; images are not opened here).
#[derive(Debug)]
pub(crate) struct UtkFolder {
    root: ImageRoot,
    recursive: bool,
    /// Paths relative to the root, `/`-separated, sorted bytewise.
    names: Vec<String>,
    /// Index of each plan column in [`UTK_COLUMNS`].
    columns: Vec<usize>,
}

impl UtkFolder {
    /// Lists the folder (sorted) and checks that the spec only reads the name's fields.
    pub fn open(
        image_root: ImageRoot,
        recursive: bool,
        plan: &Plan,
    ) -> Result<UtkFolder, DatasetError> {
        let root = image_root.path();
        let columns = plan
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                UTK_COLUMNS.iter().position(|u| u == c).ok_or_else(|| DatasetError::Format {
                    file: root.to_path_buf(),
                    message: format!(
                        "the spec reads column {c:?} ({}), but UTKFace file names only provide {}",
                        plan.column_origin(i),
                        UTK_COLUMNS.join(", ")
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = Vec::new();
        list(root, "", recursive, &mut names)?;
        names.sort();
        Ok(UtkFolder {
            root: image_root,
            recursive,
            names,
            columns,
        })
    }

    /// Root, file count and a hash of the sorted name list (names carry the labels).
    pub fn provenance(&self) -> serde_json::Value {
        let mut hasher = Sha256::new();
        for name in &self.names {
            hasher.update(name.as_bytes());
            hasher.update(b"\n");
        }
        serde_json::json!({
            "image_root": self.root.path().display().to_string(),
            "recursive": self.recursive,
            "files_listed": self.names.len(),
            "names_sha256": hex(&hasher.finalize()),
        })
    }

    /// `<root>: file <name>` for the record at `index`.
    pub fn describe_row(&self, index: u64) -> String {
        let name = usize::try_from(index)
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("?", String::as_str);
        format!("{}: file {name}", self.root.path().display())
    }

    /// Streams the files in sorted order.
    pub fn records<'a>(
        &'a self,
        plan: &'a Plan,
    ) -> impl Iterator<Item = Result<RecordItem, DatasetError>> + 'a {
        let mut failed = false;
        self.names.iter().map_while(move |name| {
            if failed {
                return None;
            }
            let item = self.item(plan, name);
            failed = item.is_err();
            Some(item)
        })
    }

    fn item(&self, plan: &Plan, name: &str) -> Result<RecordItem, DatasetError> {
        let image = self.root.path().join(name);
        if let Err(message) = self.root.check_resolved(&image, name) {
            return Err(DatasetError::Row {
                file: self.root.path().to_path_buf(),
                row: format!("file {name}"),
                message,
            });
        }
        let skip = |reason: String| {
            Ok(RecordItem::Skipped(SkippedRecord {
                id: name.to_string(),
                image: image.display().to_string(),
                reason,
            }))
        };
        let file_name = name.rsplit('/').next().unwrap_or(name);
        let fields = match parse_name(file_name) {
            Ok(f) => f,
            Err(reason) => return skip(reason),
        };
        let raw: Vec<Option<&str>> = self.columns.iter().map(|&c| Some(fields[c])).collect();
        match plan.resolve(&raw) {
            Ok(values) => Ok(RecordItem::Record(Record {
                id: name.to_string(),
                image: ImageSource::File(image.clone()),
                values,
            })),
            Err(p) if matches!(p.kind, ProblemKind::UnknownCode | ProblemKind::NotNumeric) => {
                skip(format!("file name {file_name:?}: {}", p.message))
            }
            Err(p) => Err(DatasetError::Row {
                file: self.root.path().to_path_buf(),
                row: format!("file {name}"),
                message: p.message,
            }),
        }
    }
}

/// Collects file names under `dir` (relative to the root, `/`-separated), skipping hidden
/// entries; descends into folders only when `recursive`.
fn list(
    root: &Path,
    prefix: &str,
    recursive: bool,
    out: &mut Vec<String>,
) -> Result<(), DatasetError> {
    let dir = if prefix.is_empty() {
        root.to_path_buf()
    } else {
        root.join(prefix)
    };
    let io = |source| DatasetError::Io {
        path: dir.clone(),
        source,
    };
    for entry in std::fs::read_dir(&dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().map_err(io)?;
        let is_dir = if kind.is_symlink() {
            entry.path().is_dir()
        } else {
            kind.is_dir()
        };
        if is_dir {
            if recursive {
                list(root, &relative, recursive, out)?;
            }
        } else {
            out.push(relative);
        }
    }
    Ok(())
}

/// Splits `age_gender_race_datetime.jpg[.chip.jpg]` into its four fields, or says why not.
pub(crate) fn parse_name(file_name: &str) -> Result<[&str; 4], String> {
    let lower = file_name.to_ascii_lowercase();
    let stem_len = if lower.ends_with(".jpg.chip.jpg") {
        file_name.len() - ".jpg.chip.jpg".len()
    } else if lower.ends_with(".jpg") {
        file_name.len() - ".jpg".len()
    } else {
        return Err(format!(
            "file name {file_name:?} does not end in .jpg or .jpg.chip.jpg"
        ));
    };
    let stem = &file_name[..stem_len];
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() != 4 {
        return Err(format!(
            "file name {file_name:?} has {} underscore-separated fields, expected 4 (age_gender_race_datetime)",
            parts.len()
        ));
    }
    for (part, field) in parts.iter().zip(UTK_COLUMNS) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "file name {file_name:?}: field {field} is {part:?}, expected digits"
            ));
        }
    }
    Ok([parts[0], parts[1], parts[2], parts[3]])
}
