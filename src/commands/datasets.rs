//! `clip-audit datasets list|show`: the dataset specs built into the binary, and the text of one
//! (to copy and edit).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::builtin::{self, BuiltinFile, Kind};
use crate::dataset::{DatasetError, spec_summary};

/// Where a built-in spec's records come from, as `datasets list` says it.
fn data_note(file: &BuiltinFile, format: &str) -> &'static str {
    if !file.data_files().is_empty() {
        "built in (written into the cache on first use)"
    } else if format == "fairface-hub" {
        "downloaded from the Hugging Face Hub (pinned commit and SHA-256)"
    } else {
        "your files: relative paths are read from the current folder"
    }
}

/// The built-in dataset specs: name, format, where the data comes from, spec SHA-256 and
/// description, as a table or JSON.
pub fn list(json: bool) -> Result<String, DatasetError> {
    let mut rows = Vec::new();
    for file in builtin::all(Kind::Dataset) {
        let summary = spec_summary(&PathBuf::from(file.origin()), file.text)?;
        rows.push((file, summary));
    }
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|(file, s)| {
                serde_json::json!({
                    "name": file.name, "spec_name": s.name, "format": s.format,
                    "data": data_note(file, s.format), "spec_sha256": file.sha256(),
                    "description": s.description,
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&items).unwrap_or_default() + "\n");
    }
    let mut out = String::new();
    for (file, s) in rows {
        let _ = writeln!(
            out,
            "{}  ({}, spec sha256 {})",
            file.name,
            s.format,
            file.sha256()
        );
        let _ = writeln!(out, "    {}", s.description);
        let _ = writeln!(out, "    data: {}", data_note(&file, s.format));
    }
    Ok(out)
}

/// The text of a dataset spec file or built-in spec, byte for byte.
pub fn show(arg: &Path) -> Result<String, builtin::TextError> {
    builtin::text(arg, Kind::Dataset)
}
