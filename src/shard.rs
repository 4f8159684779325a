//! Sharded runs: `run --shard K/N` classifies one contiguous share of a dataset's records, and
//! [`ShardSet::read`] checks, from each shard's `run.json`, that the predictions handed to
//! `aggregate` are every shard of one run (same dataset, probe and model), each exactly once.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;

use crate::provenance::{DatasetRecord, InputFileRecord, ShardRecord, ShardSetRecord};
use crate::schema::Attribute;

/// One share of a dataset: shard `index` of `count` (0-based, `index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K: which share.
    pub index: usize,
    /// N: how many shares.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `K/N` (0-based K < N).
    fn from_str(text: &str) -> Result<Shard, String> {
        let expected = || format!("expected K/N with 0 <= K < N (e.g. 0/4), got {text:?}");
        let (k, n) = text.split_once('/').ok_or_else(expected)?;
        let index: usize = k.trim().parse().map_err(|_| expected())?;
        let count: usize = n.trim().parse().map_err(|_| expected())?;
        if count == 0 || index >= count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The positions in the dataset's record stream that this shard takes out of `total`:
    /// `⌊K·T/N⌋..⌊(K+1)·T/N⌋`, so the N shards cover every record exactly once, whatever the
    /// thread count or batch size, and differ in size by at most one.
    pub fn range(self, total: u64) -> Range<u64> {
        let at = |k: usize| (u128::from(total) * k as u128 / self.count as u128) as u64;
        at(self.index)..at(self.index + 1)
    }

    /// The `shard` section of this shard's `run.json`.
    pub fn record(self, total: u64) -> ShardRecord {
        let range = self.range(total);
        ShardRecord {
            index: self.index,
            count: self.count,
            first_record: range.start,
            end_record: range.end,
            dataset_records: total,
        }
    }
}

/// Why a set of predictions files is not every shard of one run.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A shard's `run.json` could not be read or lacks a field.
    #[error("{path}: {reason}")]
    RunJson {
        /// The `run.json`.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Some predictions come from shards and this one does not.
    #[error(
        "{path} is not from a sharded run (its folder has no run.json with a `shard` section), \
         but {shard} is: aggregate the N shards of one run, or unsharded predictions only"
    )]
    NotAShard {
        /// The predictions file.
        path: PathBuf,
        /// A predictions file that is a shard.
        shard: PathBuf,
    },
    /// Two shards disagree on what they ran.
    #[error(
        "{path} is shard {shard} of a different run than {first}: its {what} differs ({values})"
    )]
    Mismatch {
        /// The shard's predictions file.
        path: PathBuf,
        /// Its `K/N`.
        shard: String,
        /// The first shard's predictions file.
        first: PathBuf,
        /// What differs (`dataset spec SHA-256`, `probe content hash`, …).
        what: String,
        /// `<this shard's value> vs <the first shard's>`.
        values: String,
    },
    /// The same shard was given twice.
    #[error("shard {index}/{count} is given twice: {first} and {second} (overlapping shards)")]
    Overlap {
        /// K.
        index: usize,
        /// N.
        count: usize,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// Shards are missing.
    #[error("shard{} {} missing: the run is split into {count} shards and {given} were given",
        if missing.len() > 1 { "s" } else { "" },
        list(missing, *count))]
    Missing {
        /// The missing K's.
        missing: Vec<usize>,
        /// N.
        count: usize,
        /// How many shards were given.
        given: usize,
    },
    /// A shard's record range is not the one `--shard K/N` gives.
    #[error(
        "{path}: shard {index}/{count} records {first}..{end} of {total}, but K/N gives \
         {expected_first}..{expected_end} (an edited run.json?)"
    )]
    Range {
        /// The `run.json`.
        path: PathBuf,
        /// K.
        index: usize,
        /// N.
        count: usize,
        /// Recorded first position.
        first: u64,
        /// Recorded end position.
        end: u64,
        /// Recorded dataset size.
        total: u64,
        /// Expected first position.
        expected_first: u64,
        /// Expected end position.
        expected_end: u64,
    },
}

/// `K/N` for each K (the first 20).
fn list(indices: &[usize], count: usize) -> String {
    let shown: Vec<String> = indices
        .iter()
        .take(20)
        .map(|k| format!("{k}/{count}"))
        .collect();
    let more = indices.len().saturating_sub(20);
    if more > 0 {
        format!("{} (and {more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// What a shard's `run.json` says (the fields the checks and the combined report need).
#[derive(Debug, Clone, Deserialize)]
pub struct ShardRun {
    /// The probe's name and content hash.
    pub probe: ShardProbe,
    /// The model section (as recorded).
    pub model: Value,
    /// The dataset section.
    pub dataset: DatasetRecord,
    /// Records of the shard.
    pub records: u64,
    /// Images it classified (its predictions' row count).
    pub classified: u64,
    /// Records it skipped (its `skipped.csv` rows).
    pub skipped: u64,
    /// Its share.
    pub shard: ShardRecord,
}

/// The probe of a shard.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardProbe {
    /// Its name.
    pub name: String,
    /// Its content hash.
    pub content_hash: String,
}

/// One shard given to `aggregate`.
#[derive(Debug, Clone)]
pub struct ShardInput {
    /// The predictions file as given.
    pub predictions: PathBuf,
    /// Its report folder.
    pub folder: PathBuf,
    /// Its `run.json` with that file's hash.
    pub run_json: InputFileRecord,
    /// What its `run.json` says.
    pub run: ShardRun,
}

/// Every shard of one run, checked: same dataset, probe and model; each K once; none missing.
#[derive(Debug, Clone)]
pub struct ShardSet {
    /// The shards in K order.
    pub shards: Vec<ShardInput>,
}

impl ShardSet {
    /// Reads the `run.json` beside each predictions file. `None` when none of them comes from a
    /// sharded run; an error when only some do, or when they are not every shard of one run.
    pub fn read(predictions: &[PathBuf]) -> Result<Option<ShardSet>, ShardError> {
        let mut shards = Vec::new();
        let mut plain = None;
        for path in predictions {
            match read_shard(path)? {
                Some(shard) => shards.push(shard),
                None => plain = plain.or(Some(path)),
            }
        }
        let Some(first) = shards.first() else {
            return Ok(None);
        };
        if let Some(path) = plain {
            return Err(ShardError::NotAShard {
                path: path.clone(),
                shard: first.predictions.clone(),
            });
        }
        for shard in &shards[1..] {
            same_run(&shards[0], shard)?;
        }
        let shards = in_order(shards)?;
        Ok(Some(ShardSet { shards }))
    }

    /// N.
    pub fn count(&self) -> usize {
        self.shards.len()
    }

    /// The first shard's record (all agree on the dataset, probe and model).
    pub fn first(&self) -> &ShardRun {
        &self.shards[0].run
    }

    /// Records of the whole dataset.
    pub fn dataset_records(&self) -> u64 {
        self.first().shard.dataset_records
    }

    /// The sum of a per-shard count.
    pub fn total(&self, count: impl Fn(&ShardRun) -> u64) -> u64 {
        self.shards.iter().map(|s| count(&s.run)).sum()
    }

    /// The dataset's attributes with their vocabularies, as the shards recorded them.
    pub fn attributes(&self) -> Result<Vec<Attribute>, ShardError> {
        let shard = &self.shards[0];
        let attributes = shard.run.dataset.source.get("attributes").cloned();
        attributes
            .and_then(|a| serde_json::from_value(a).ok())
            .ok_or_else(|| ShardError::RunJson {
                path: PathBuf::from(&shard.run_json.file),
                reason: "dataset.source.attributes: expected a list of {name, values}".into(),
            })
    }

    /// The shard whose predictions file is `path`.
    pub fn shard_of(&self, path: &Path) -> Option<&ShardInput> {
        self.shards.iter().find(|s| s.predictions == path)
    }

    /// The `shards` section of the combined `run.json`.
    pub fn record(&self) -> ShardSetRecord {
        ShardSetRecord {
            count: self.count(),
            dataset_records: self.dataset_records(),
            run_json: self.shards.iter().map(|s| s.run_json.clone()).collect(),
        }
    }
}

/// The shard behind `predictions`: `None` when its folder has no `run.json` or one without a
/// `shard` section.
fn read_shard(predictions: &Path) -> Result<Option<ShardInput>, ShardError> {
    let folder = match predictions.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = folder.join("run.json");
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |reason: String| ShardError::RunJson {
        path: path.clone(),
        reason,
    };
    let bytes = crate::input_file::read_regular_file(&path, 16 << 20, "limit for run.json")
        .map_err(|e| bad(e.to_string()))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if value.get("shard").is_none_or(Value::is_null) {
        return Ok(None);
    }
    if value.get("kind").and_then(Value::as_str) != Some("run") {
        return Err(bad("has a `shard` section but `kind` is not \"run\"".into()));
    }
    let run: ShardRun = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let expected = Shard {
        index: run.shard.index,
        count: run.shard.count,
    };
    let range = expected.range(run.shard.dataset_records);
    if run.shard.count == 0
        || run.shard.index >= run.shard.count
        || range != (run.shard.first_record..run.shard.end_record)
    {
        return Err(ShardError::Range {
            path,
            index: run.shard.index,
            count: run.shard.count,
            first: run.shard.first_record,
            end: run.shard.end_record,
            total: run.shard.dataset_records,
            expected_first: range.start,
            expected_end: range.end,
        });
    }
    Ok(Some(ShardInput {
        predictions: predictions.to_path_buf(),
        folder,
        run_json: InputFileRecord {
            file: path.display().to_string(),
            sha256: crate::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        },
        run,
    }))
}

/// Fails unless `shard` ran what `first` ran, naming the first field that differs.
fn same_run(first: &ShardInput, shard: &ShardInput) -> Result<(), ShardError> {
    let (a, b) = (identity(&first.run), identity(&shard.run));
    for ((what, first_value), (_, value)) in a.into_iter().zip(b) {
        if value != first_value {
            return Err(ShardError::Mismatch {
                path: shard.predictions.clone(),
                shard: format!("{}/{}", shard.run.shard.index, shard.run.shard.count),
                first: first.predictions.clone(),
                what,
                values: format!("{value} vs {first_value}"),
            });
        }
    }
    Ok(())
}

/// What decides a shard's predictions, field by field, without paths (nodes may mount the data
/// and the model differently): N, the probe, the dataset's spec, data files, Hub commit and
/// size, and the model's files, family, scoring and number format.
fn identity(run: &ShardRun) -> Vec<(String, String)> {
    let text = |value: Option<&Value>| value.map_or_else(|| "null".into(), Value::to_string);
    let source = &run.dataset.source;
    let mut fields = vec![
        ("shard count N".to_string(), run.shard.count.to_string()),
        ("probe content hash".into(), run.probe.content_hash.clone()),
        (
            "dataset spec SHA-256".into(),
            run.dataset.spec_sha256.clone(),
        ),
        (
            "dataset record count".into(),
            run.shard.dataset_records.to_string(),
        ),
        (
            "dataset files' SHA-256".into(),
            files_sha256(source.get("files")),
        ),
        (
            "dataset Hub commit".into(),
            text(source.pointer("/hub/commit")),
        ),
        (
            "dataset file-name list".into(),
            text(source.get("names_sha256")),
        ),
        ("model files' SHA-256".into(), text(run.model.get("sha256"))),
    ];
    for key in ["family", "scores", "logit_scale", "logit_bias"] {
        fields.push((format!("model {key}"), text(run.model.get(key))));
    }
    fields.push((
        "model number format".into(),
        text(run.model.pointer("/compute/used")),
    ));
    fields
}

/// The `sha256` of each entry of a dataset's `files`, comma-separated.
fn files_sha256(files: Option<&Value>) -> String {
    let hashes: Vec<&str> = files
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f.get("sha256")?.as_str())
                .collect()
        })
        .unwrap_or_default();
    hashes.join(",")
}

/// The shards sorted by K, refusing a K given twice and any K missing.
fn in_order(mut shards: Vec<ShardInput>) -> Result<Vec<ShardInput>, ShardError> {
    shards.sort_by_key(|s| s.run.shard.index);
    for pair in shards.windows(2) {
        if pair[0].run.shard.index == pair[1].run.shard.index {
            return Err(ShardError::Overlap {
                index: pair[0].run.shard.index,
                count: pair[0].run.shard.count,
                first: pair[0].predictions.clone(),
                second: pair[1].predictions.clone(),
            });
        }
    }
    let count = shards[0].run.shard.count;
    let given: Vec<usize> = shards.iter().map(|s| s.run.shard.index).collect();
    let missing: Vec<usize> = (0..count)
        .filter(|k| given.binary_search(k).is_err())
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing {
            missing,
            count,
            given: shards.len(),
        });
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_reject_bad_values() {
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "0/0", "1", "a/3", "-1/3", "1/3/4", ""] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains("expected K/N"), "{bad}: {error}");
        }
    }

    #[test]
    fn shards_partition_every_record_once() {
        for total in [0u64, 1, 2, 7, 42, 10_954] {
            for count in [1usize, 2, 3, 7, 16] {
                let mut next = 0;
                for index in 0..count {
                    let range = Shard { index, count }.range(total);
                    assert_eq!(range.start, next, "{total} {index}/{count}");
                    assert!(range.end - range.start <= total / count as u64 + 1);
                    next = range.end;
                }
                assert_eq!(next, total);
            }
        }
        assert_eq!(Shard { index: 1, count: 3 }.range(42), 14..28);
        assert_eq!(Shard { index: 2, count: 3 }.range(10), 6..10);
    }
}
