//! `clip-audit probes validate|show`: check probe files and print what they expand to.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::probe::{ProbeError, ProbeSet};

/// One line per valid file; the first invalid file's error.
pub fn validate(files: &[PathBuf]) -> Result<String, ProbeError> {
    let mut out = String::new();
    for file in files {
        let probe = ProbeSet::load(file)?;
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

/// A probe's categories, classes and prompts, as text or JSON.
pub fn show(file: &Path, json: bool) -> anyhow::Result<String> {
    let probe = ProbeSet::load(file)?;
    if json {
        let mut value = serde_json::to_value(&probe)?;
        value["content_hash"] = probe.content_hash().into();
        return Ok(serde_json::to_string_pretty(&value)? + "\n");
    }
    let mut out = String::new();
    writeln!(out, "{} — {}", probe.name, probe.description)?;
    writeln!(out, "file: {}", file.display())?;
    writeln!(out, "content hash: {}", probe.content_hash())?;
    writeln!(
        out,
        "templates: {:?} (article: {:?})",
        probe.templates, probe.article
    )?;
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
