//! FairFace's original release (Kärkkäinen & Joo 2021, CC BY 4.0): a label CSV
//! (`file,age,gender,race,service_test`, `file` like `val/1.jpg`) and an image folder. Used by the
//! `fairface` spec format and when `--dataset` is a label CSV itself.

use std::collections::BTreeSet;
use std::path::Path;

use super::DatasetError;
use super::manifest::{CsvTable, csv_header};
use super::plan::Plan;
use super::root::ImageRoot;
use crate::schema::Attribute;

/// FairFace's age bins, youngest first.
pub const FAIRFACE_AGES: [&str; 9] = [
    "0-2",
    "3-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-69",
    "more than 70",
];

/// FairFace's vocabulary (display order) for its `age`, `gender` and `race` columns.
pub fn known_vocabulary(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "age" => Some(&FAIRFACE_AGES),
        "gender" => Some(&FAIRFACE_GENDERS),
        "race" => Some(&FAIRFACE_RACES),
        _ => None,
    }
}

/// FairFace's genders.
pub const FAIRFACE_GENDERS: [&str; 2] = ["Male", "Female"];

/// FairFace's races in the CLIP paper's order (Tables 3–4).
pub const FAIRFACE_RACES: [&str; 7] = [
    "Black",
    "White",
    "Indian",
    "Latino_Hispanic",
    "Middle Eastern",
    "Southeast Asian",
    "East Asian",
];

/// The image path column of FairFace label CSVs.
const FILE_COLUMN: &str = "file";

/// A `fairface` spec: the label CSV's `file` column is the id and the image path under `root`.
pub(crate) fn open_spec(
    labels: &Path,
    root: ImageRoot,
    plan: &Plan,
) -> Result<CsvTable, DatasetError> {
    CsvTable::open(labels, root, FILE_COLUMN, None, plan)
}

/// A label CSV given directly: images relative to its folder, every column but `file` an
/// attribute. Vocabularies: FairFace's own for `age`, `gender`, `race` (paper order), the sorted
/// distinct values for any other column (one extra pass over the file).
pub(crate) fn open_direct(csv: &Path) -> Result<(Plan, CsvTable), DatasetError> {
    let header = csv_header(csv)?;
    if !header.iter().any(|h| h == FILE_COLUMN) {
        return Err(DatasetError::Format {
            file: csv.to_path_buf(),
            message: format!(
                "not a FairFace-style label CSV: no column \"file\" (the columns are {})",
                header.join(", ")
            ),
        });
    }
    let columns: Vec<(usize, &String)> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| *h != FILE_COLUMN)
        .collect();
    if columns.is_empty() {
        return Err(DatasetError::Format {
            file: csv.to_path_buf(),
            message: "no attribute columns besides \"file\"".into(),
        });
    }
    let other: Vec<usize> = columns
        .iter()
        .filter(|(_, name)| known(name).is_none())
        .map(|(i, _)| *i)
        .collect();
    let distinct = if other.is_empty() {
        Vec::new()
    } else {
        distinct_values(csv, &other)?
    };
    let plan = Plan::direct(direct_attributes(&columns, distinct));
    let root = csv.parent().unwrap_or(Path::new("")).to_path_buf();
    let table = CsvTable::open(csv, ImageRoot::new(&root, false), FILE_COLUMN, None, &plan)?;
    Ok((plan, table))
}

/// FairFace's vocabulary of a column, owned.
fn known(name: &str) -> Option<Vec<String>> {
    known_vocabulary(name).map(|list| list.iter().map(|s| s.to_string()).collect())
}

/// The sorted distinct (trimmed) values of each of the CSV's `columns` (header indices).
fn distinct_values(csv: &Path, columns: &[usize]) -> Result<Vec<BTreeSet<String>>, DatasetError> {
    let mut distinct: Vec<BTreeSet<String>> = vec![BTreeSet::new(); columns.len()];
    let file = crate::input_file::open_regular_file(csv).map_err(|source| DatasetError::Io {
        path: csv.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                for (set, &c) in distinct.iter_mut().zip(columns) {
                    if let Some(v) = record.get(c) {
                        let v = v.trim();
                        if !set.contains(v) {
                            set.insert(v.to_string());
                        }
                    }
                }
            }
            Err(e) => {
                return Err(DatasetError::Format {
                    file: csv.to_path_buf(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(distinct)
}

/// The attributes of a label CSV's `columns` (index, name): FairFace's vocabulary where known,
/// else the next of `distinct` (one set per column without a known vocabulary, in order).
fn direct_attributes(
    columns: &[(usize, &String)],
    distinct: Vec<BTreeSet<String>>,
) -> Vec<Attribute> {
    let mut next_other = distinct.into_iter();
    columns
        .iter()
        .map(|(_, name)| {
            let values = match known(name) {
                Some(v) => v,
                None => next_other
                    .next()
                    .map(|s| s.into_iter().collect())
                    .unwrap_or_default(),
            };
            Attribute {
                name: name.to_string(),
                values,
            }
        })
        .collect()
}
