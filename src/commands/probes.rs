//! `clip-audit probes validate|show|list`: check probe files, print what they expand to, and list
//! the probes built into the binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::builtin::{self, Kind};
use crate::metrics::RatioBand;
use crate::probe::{ProbeError, ProbeSet};

/// One line per valid file; the first invalid file's error.
pub fn validate(files: &[PathBuf]) -> Result<String, ProbeError> {
    let mut out = String::new();
    for file in files {
        let probe = ProbeSet::open(file)?;
        let _ = writeln!(
            out,
            "ok {}: {} ({} classes in {} categories, {} prompts, hash {})",
            file.display(),
            probe.name,
            probe.classes.len(),
            probe.categories.len(),
            probe.classes.iter().map(|c| c.prompts.len()).sum::<usize>(),
            &probe.content_hash()[..12],
        );
    }
    Ok(out)
}

/// The built-in probes: name, classes, content hash and description, as a table or JSON.
pub fn list(json: bool) -> Result<String, ProbeError> {
    let mut rows = Vec::new();
    for file in builtin::all(Kind::Probe) {
        let probe = ProbeSet::builtin(&file)?;
        rows.push((
            file.name,
            probe.classes.len(),
            probe.content_hash(),
            probe.description,
        ));
    }
    if json {
        let items: Vec<serde_json::Value> = rows
            .into_iter()
            .map(|(name, classes, hash, description)| {
                serde_json::json!({
                    "name": name, "classes": classes, "content_hash": hash,
                    "description": description,
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&items).unwrap_or_default() + "\n");
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:width$}  CLASSES  {:64}  DESCRIPTION\n",
        "NAME", "CONTENT HASH"
    );
    for (name, classes, hash, description) in rows {
        let _ = writeln!(out, "{name:width$}  {classes:>7}  {hash}  {description}");
    }
    Ok(out)
}

/// The text of a probe file or built-in probe, byte for byte (to copy and edit).
pub fn toml_text(arg: &Path) -> Result<String, builtin::TextError> {
    builtin::text(arg, Kind::Probe)
}

/// A probe's categories, classes and prompts, as text or JSON.
pub fn show(file: &Path, json: bool) -> anyhow::Result<String> {
    let probe = ProbeSet::open(file)?;
    if json {
        let mut value = serde_json::to_value(&probe)?;
        value["content_hash"] = probe.content_hash().into();
        return Ok(serde_json::to_string_pretty(&value)? + "\n");
    }
    let mut out = String::new();
    writeln!(out, "{} — {}", probe.name, probe.description)?;
    writeln!(out, "file: {}", probe.source.display())?;
    writeln!(out, "content hash: {}", probe.content_hash())?;
    writeln!(
        out,
        "templates: {:?} (article: {:?})",
        probe.templates, probe.article
    )?;
    match probe.ratio_band {
        Some(band) => writeln!(out, "ratio band: {band} (the probe's own)")?,
        None => writeln!(out, "ratio band: {} (default)", RatioBand::default())?,
    }
    for (c, category) in probe.categories.iter().enumerate() {
        let harmful = if category.harmful { " [harmful]" } else { "" };
        writeln!(out, "\n[{}]{harmful}", category.name)?;
        for class in probe.classes.iter().filter(|k| k.category == c) {
            let rule = if class.matches.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = class
                    .matches
                    .iter()
                    .map(|(a, v)| format!("{a}={v}"))
                    .collect();
                format!("  (correct for {})", parts.join(", "))
            };
            writeln!(out, "  {}{rule}", class.label)?;
            for prompt in &class.prompts {
                writeln!(out, "      {prompt:?}")?;
            }
        }
    }
    Ok(out)
}
