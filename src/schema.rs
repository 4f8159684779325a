//! The record-level vocabulary every stage shares: a demographic attribute with its values, and a
//! record that was skipped. Defined once here so that datasets, metrics and reports agree.

use serde::Serialize;

/// A demographic attribute with its vocabulary, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Attribute {
    /// Column name, e.g. `race`.
    pub name: String,
    /// Allowed values in display order (the paper's order for FairFace races).
    pub values: Vec<String>,
}

/// A record that was not classified (missing or undecodable image, malformed UTKFace name, …),
/// with the reason; listed in `skipped.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    /// The record's id (the file name for UTKFace).
    pub id: String,
    /// The image path or source as the dataset names it.
    pub image: String,
    /// Why it was skipped.
    pub reason: String,
}
