//! The dataset spec file (`datasets/*.toml`): a strict reader that names the file and the field in
//! every error, and rejects keys it does not know.
//!
//! Schema (every relative path is relative to the spec file's folder):
//!
//! ```toml
//! name = "fairface-val"                  # required
//! description = "…"                      # optional
//!
//! [source]
//! format = "fairface"                    # fairface | fairface-hub | fairface-parquet | utkface | manifest
//! # fairface:          labels = "x.csv", root = "dir" (default: the CSV's folder),
//! #                    allow_outside_root = false (see below)
//! # fairface-hub:      repo (default HuggingFaceM4/FairFace), revision (default "main"),
//! #                    config = "0.25" | "1.25", split = "validation" | "train",
//! #                    files = [..] (default: the known layout, see hub.rs), sha256 = { file = "hex" },
//! #                    id = "row" | "image.path"
//! # fairface-parquet:  path = "x.parquet" or ["a.parquet", ..], id = "row" | "image.path"
//! # utkface:           root = "dir", recursive = false, allow_outside_root = false
//! # manifest:          path = "x.csv" | "x.parquet", kind = "csv" | "parquet" (default: extension),
//! #                    image_column = "..", id_column = ".." (default: the image path), root = "dir",
//! #                    allow_outside_root = false
//!
//! [[attributes]]                         # one per attribute, in display order
//! name = "race"
//! column = "race"                        # source column (default: name)
//! codes = { 0 = "East Asian", 1 = "Indian" }   # raw value -> name (required for fairface-hub/-parquet)
//! values = ["Black", "White", "Indian"]  # vocabulary, display order (required unless bins)
//!
//! [[attributes]]                         # derived: bins over a numeric column or attribute
//! name = "age"
//! from = "age"
//! bins = { edges = [3, 10, 20], labels = ["0-2", "3-9", "10-19", "20+"] }
//!
//! [[attributes]]                         # derived: value mapping
//! name = "race_binary"
//! from = "race"                          # an attribute declared above, else a source column
//! map = { White = "White" }
//! default = "Non-White"                  # required unless `map` covers every value of `from`
//! values = ["White", "Non-White"]
//! ```
//!
//! Rules: every attribute has a vocabulary (`values`; for `bins` it defaults to `labels`), and a
//! value outside it is a fatal error naming the data file, the row and the value. `codes`
//! targets, `map` targets, `default` and bin labels must be in the vocabulary. Bins are
//! half-open: `edges = [3, 10]` gives `(-inf, 3)`, `[3, 10)`, `[10, inf)`. A `map` over an
//! attribute must cover its whole vocabulary or give `default` (checked when the spec is
//! opened); over a raw column, an unmapped value without `default` is an error at that row.
//!
//! Image paths in the data must be relative to `root` and stay inside it; an image whose path,
//! once symbolic links are resolved, lies outside the root is an error naming the row.
//! `allow_outside_root = true` permits such links (e.g. a folder of links into a shared store);
//! the paths themselves must still be relative without climbing out through `..`. A missing
//! image is not an error: it is skipped and listed in `skipped.csv`. Every row is checked (and
//! record ids must be unique) before the model is loaded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::DatasetError;

/// The FairFace dataset repository on the Hub: a `hub` source's default `repo`.
pub(crate) const DEFAULT_REPO: &str = "HuggingFaceM4/FairFace";

/// A parsed spec, before it is checked against its data.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    pub description: String,
    pub source: SourceSpec,
    pub attributes: Vec<AttributeSpec>,
}

/// How a parquet record's id is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdRule {
    /// `<parquet file>#<row>`.
    Row,
    /// The `path` field of the image struct (the original FairFace file name).
    ImagePath,
}

/// Manifest file kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    Csv,
    Parquet,
}

/// The `[source]` table.
#[derive(Debug, Clone)]
pub(crate) enum SourceSpec {
    FairFace {
        labels: PathBuf,
        root: PathBuf,
        allow_outside_root: bool,
    },
    FairFaceHub(HubSpec),
    FairFaceParquet {
        paths: Vec<PathBuf>,
        id: IdRule,
    },
    UtkFace {
        root: PathBuf,
        recursive: bool,
        allow_outside_root: bool,
    },
    Manifest(ManifestSpec),
}

/// A `fairface-hub` source: parquet files of a Hugging Face dataset repository.
#[derive(Debug, Clone)]
pub(crate) struct HubSpec {
    pub repo: String,
    pub revision: String,
    pub config: String,
    pub split: String,
    /// Paths inside the repository; `None`: the known layout of `config` and `split`.
    pub files: Option<Vec<String>>,
    /// Pinned SHA-256 digests (hex) by repository path.
    pub sha256: Vec<(String, String)>,
    pub id: IdRule,
}

/// A `manifest` source: a CSV or Parquet table with an image column.
#[derive(Debug, Clone)]
pub(crate) struct ManifestSpec {
    pub path: PathBuf,
    pub kind: ManifestKind,
    pub image_column: String,
    pub id_column: Option<String>,
    pub root: PathBuf,
    pub allow_outside_root: bool,
}

impl SourceSpec {
    /// The `format` string.
    pub fn format(&self) -> &'static str {
        match self {
            SourceSpec::FairFace { .. } => "fairface",
            SourceSpec::FairFaceHub(_) => "fairface-hub",
            SourceSpec::FairFaceParquet { .. } => "fairface-parquet",
            SourceSpec::UtkFace { .. } => "utkface",
            SourceSpec::Manifest(_) => "manifest",
        }
    }
}

/// One `[[attributes]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct AttributeSpec {
    pub name: String,
    /// `attributes.<name>`, for error messages.
    pub field: String,
    pub values: Option<Vec<String>>,
    pub kind: AttributeKind,
}

/// Where an attribute's value comes from.
#[derive(Debug, Clone)]
pub(crate) enum AttributeKind {
    Column {
        column: String,
        codes: Option<Vec<(String, String)>>,
    },
    Bins {
        from: String,
        edges: Vec<f64>,
        labels: Vec<String>,
    },
    Map {
        from: String,
        map: Vec<(String, String)>,
        default: Option<String>,
    },
}

/// Parses spec text; `file` is used for messages and to resolve relative paths.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Spec, DatasetError> {
    let table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| DatasetError::SpecSyntax {
                file: file.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            })?;
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut top = Node::new(file, String::new(), &table);
    let name = top.required_string("name")?;
    if name.trim().is_empty() {
        return Err(top.err("name", "must not be empty"));
    }
    let description = top.string("description")?.unwrap_or_default();
    let source = match top.table("source")? {
        Some(node) => parse_source(node, &dir)?,
        None => return Err(top.err("source", "missing (a [source] table with `format`)")),
    };
    let attributes = match top.get("attributes") {
        None => return Err(top.err("attributes", "missing (at least one [[attributes]] entry)")),
        Some(toml::Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let toml::Value::Table(t) = item else {
                    return Err(top.err(&format!("attributes[{i}]"), "expected a table"));
                };
                out.push(parse_attribute(Node::new(
                    file,
                    format!("attributes[{i}]"),
                    t,
                ))?);
            }
            out
        }
        Some(_) => {
            return Err(top.err("attributes", "expected an array of tables ([[attributes]])"));
        }
    };
    if attributes.is_empty() {
        return Err(top.err("attributes", "must declare at least one attribute"));
    }
    top.finish()?;
    Ok(Spec {
        name,
        description,
        source,
        attributes,
    })
}

fn parse_source(mut node: Node<'_>, dir: &Path) -> Result<SourceSpec, DatasetError> {
    let format = node.required_string("format")?;
    let source = match format.as_str() {
        "fairface" => fairface_source(&mut node, dir)?,
        "fairface-hub" => fairface_hub_source(&mut node)?,
        "fairface-parquet" => fairface_parquet_source(&mut node, dir)?,
        "utkface" => SourceSpec::UtkFace {
            root: dir.join(node.required_string("root")?),
            recursive: node.boolean("recursive")?.unwrap_or(false),
            allow_outside_root: allow_outside_root(&mut node)?,
        },
        "manifest" => manifest_source(&mut node, dir)?,
        other => {
            return Err(node.err(
                "format",
                &format!(
                    "unknown format {other:?} (expected fairface, fairface-hub, fairface-parquet, utkface or manifest)"
                ),
            ));
        }
    };
    node.finish()?;
    Ok(source)
}

/// `format = "fairface"`: a label CSV and the image root (default: the CSV's folder).
fn fairface_source(node: &mut Node<'_>, dir: &Path) -> Result<SourceSpec, DatasetError> {
    let labels = dir.join(node.required_string("labels")?);
    let root = match node.string("root")? {
        Some(r) => dir.join(r),
        None => labels.parent().unwrap_or(Path::new("")).to_path_buf(),
    };
    Ok(SourceSpec::FairFace {
        labels,
        root,
        allow_outside_root: allow_outside_root(node)?,
    })
}

/// `format = "fairface-hub"`: repository, revision, config, split, files and pinned digests.
fn fairface_hub_source(node: &mut Node<'_>) -> Result<SourceSpec, DatasetError> {
    let repo = node
        .string("repo")?
        .unwrap_or_else(|| DEFAULT_REPO.to_string());
    if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
        return Err(node.err("repo", &format!("expected owner/name, got {repo:?}")));
    }
    let revision = node
        .string("revision")?
        .unwrap_or_else(|| "main".to_string());
    let config = node.required_string("config")?;
    let split = node.required_string("split")?;
    let files = node.strings("files")?;
    if files.as_ref().is_some_and(Vec::is_empty) {
        return Err(node.err("files", "must list at least one parquet file"));
    }
    let sha256 = node.string_map("sha256")?.unwrap_or_default();
    for (f, digest) in &sha256 {
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(node.err(&format!("sha256.{f}"), "expected 64 hex digits"));
        }
    }
    let id = parse_id(node)?;
    Ok(SourceSpec::FairFaceHub(HubSpec {
        repo,
        revision,
        config,
        split,
        files,
        sha256,
        id,
    }))
}

/// `format = "fairface-parquet"`: one parquet file or a list of them.
fn fairface_parquet_source(node: &mut Node<'_>, dir: &Path) -> Result<SourceSpec, DatasetError> {
    let paths = node
        .string_or_strings("path")?
        .ok_or_else(|| node.err("path", "missing (a parquet file or a list of them)"))?;
    if paths.is_empty() {
        return Err(node.err("path", "must list at least one parquet file"));
    }
    let id = parse_id(node)?;
    Ok(SourceSpec::FairFaceParquet {
        paths: paths.into_iter().map(|p| dir.join(p)).collect(),
        id,
    })
}

/// `format = "manifest"`: a CSV or Parquet table, its image and id columns, the image root
/// (default: the table's folder).
fn manifest_source(node: &mut Node<'_>, dir: &Path) -> Result<SourceSpec, DatasetError> {
    let file = dir.join(node.required_string("path")?);
    let kind = manifest_kind(node, &file)?;
    let image_column = node.required_string("image_column")?;
    let id_column = node.string("id_column")?;
    let root = match node.string("root")? {
        Some(r) => dir.join(r),
        None => file.parent().unwrap_or(Path::new("")).to_path_buf(),
    };
    Ok(SourceSpec::Manifest(ManifestSpec {
        path: file,
        kind,
        image_column,
        id_column,
        root,
        allow_outside_root: allow_outside_root(node)?,
    }))
}

/// A manifest's `kind`, by default from the extension of its `file`.
fn manifest_kind(node: &mut Node<'_>, file: &Path) -> Result<ManifestKind, DatasetError> {
    match node.string("kind")?.as_deref() {
        Some("csv") => Ok(ManifestKind::Csv),
        Some("parquet") => Ok(ManifestKind::Parquet),
        Some(other) => Err(node.err(
            "kind",
            &format!("expected \"csv\" or \"parquet\", got {other:?}"),
        )),
        None => match file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "csv" => Ok(ManifestKind::Csv),
            Some(e) if e == "parquet" => Ok(ManifestKind::Parquet),
            _ => Err(node.err(
                "kind",
                "missing, and the path's extension is neither .csv nor .parquet",
            )),
        },
    }
}

/// `allow_outside_root` (default false): may image links resolve outside the root?
fn allow_outside_root(node: &mut Node<'_>) -> Result<bool, DatasetError> {
    Ok(node.boolean("allow_outside_root")?.unwrap_or(false))
}

fn parse_id(node: &mut Node<'_>) -> Result<IdRule, DatasetError> {
    match node.string("id")?.as_deref() {
        None | Some("row") => Ok(IdRule::Row),
        Some("image.path") => Ok(IdRule::ImagePath),
        Some(other) => Err(node.err(
            "id",
            &format!("expected \"row\" or \"image.path\", got {other:?}"),
        )),
    }
}

fn parse_attribute(mut node: Node<'_>) -> Result<AttributeSpec, DatasetError> {
    let name = node.required_string("name")?;
    if name.trim().is_empty() {
        return Err(node.err("name", "must not be empty"));
    }
    // From here on, errors name the attribute: `attributes.race.values`.
    node.path = format!("attributes.{name}");
    let values = node.strings("values")?;
    let keys = KindKeys::read(&mut node)?;
    let kind = if keys.is_derived() {
        derived_kind(&node, keys)?
    } else {
        if keys.default.is_some() {
            return Err(node.err("default", "only allowed with `map`"));
        }
        AttributeKind::Column {
            column: keys.column.unwrap_or_else(|| name.clone()),
            codes: keys.codes,
        }
    };
    let field = node.path.clone();
    node.finish()?;
    Ok(AttributeSpec {
        name,
        field,
        values,
        kind,
    })
}

/// The keys of an `[[attributes]]` entry that say where its value comes from, as given.
struct KindKeys<'a> {
    column: Option<String>,
    codes: Option<Vec<(String, String)>>,
    from: Option<String>,
    bins: Option<Node<'a>>,
    map: Option<Vec<(String, String)>>,
    default: Option<String>,
}

impl<'a> KindKeys<'a> {
    fn read(node: &mut Node<'a>) -> Result<Self, DatasetError> {
        Ok(KindKeys {
            column: node.string("column")?,
            codes: node.string_map("codes")?,
            from: node.string("from")?,
            bins: node.table("bins")?,
            map: node.string_map("map")?,
            default: node.string("default")?,
        })
    }

    /// Derived (from another column or attribute) rather than a plain column?
    fn is_derived(&self) -> bool {
        self.from.is_some() || self.bins.is_some() || self.map.is_some()
    }
}

/// A derived attribute: `from` with either `bins` or `map`, and no `column` or `codes`.
fn derived_kind(node: &Node<'_>, keys: KindKeys<'_>) -> Result<AttributeKind, DatasetError> {
    let derived_conflict = |key: &str| {
        node.err(
            key,
            "not allowed on a derived attribute (one with `from`, `bins` or `map`)",
        )
    };
    if keys.column.is_some() {
        return Err(derived_conflict("column"));
    }
    if keys.codes.is_some() {
        return Err(derived_conflict("codes"));
    }
    let from = keys
        .from
        .ok_or_else(|| node.err("from", "missing (the column or attribute to derive from)"))?;
    match (keys.bins, keys.map) {
        (Some(_), Some(_)) => Err(node.err("map", "give either `bins` or `map`, not both")),
        (None, None) => Err(node.err("bins", "a derived attribute needs `bins` or `map`")),
        (Some(bins), None) => {
            if keys.default.is_some() {
                return Err(node.err("default", "only allowed with `map`"));
            }
            parse_bins(bins, from)
        }
        (None, Some(map)) => Ok(AttributeKind::Map {
            from,
            map,
            default: keys.default,
        }),
    }
}

/// The `bins` table: finite, strictly increasing `edges` and one more `labels` than edges.
fn parse_bins(mut b: Node<'_>, from: String) -> Result<AttributeKind, DatasetError> {
    let edges = b
        .numbers("edges")?
        .ok_or_else(|| b.err("edges", "missing"))?;
    let labels = b
        .strings("labels")?
        .ok_or_else(|| b.err("labels", "missing"))?;
    if edges.is_empty() {
        return Err(b.err("edges", "must have at least one edge"));
    }
    if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(b.err("edges", "must be finite and strictly increasing"));
    }
    if labels.len() != edges.len() + 1 {
        return Err(b.err(
            "labels",
            &format!(
                "{} edges make {} bins, but {} labels are given",
                edges.len(),
                edges.len() + 1,
                labels.len()
            ),
        ));
    }
    b.finish()?;
    Ok(AttributeKind::Bins {
        from,
        edges,
        labels,
    })
}

/// A TOML table being read: tracks which keys were asked for, so unknown keys are reported.
struct Node<'a> {
    file: &'a Path,
    path: String,
    table: &'a toml::Table,
    asked: BTreeSet<String>,
}

impl<'a> Node<'a> {
    fn new(file: &'a Path, path: String, table: &'a toml::Table) -> Self {
        Node {
            file,
            path,
            table,
            asked: BTreeSet::new(),
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn err(&self, key: &str, message: &str) -> DatasetError {
        DatasetError::Spec {
            file: self.file.to_path_buf(),
            field: self.field(key),
            message: message.to_string(),
        }
    }

    fn get(&mut self, key: &str) -> Option<&'a toml::Value> {
        self.asked.insert(key.to_string());
        self.table.get(key)
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, DatasetError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(key, &format!("expected a string, got {}", v.type_str()))),
        }
    }

    fn required_string(&mut self, key: &str) -> Result<String, DatasetError> {
        self.string(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    fn boolean(&mut self, key: &str) -> Result<Option<bool>, DatasetError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(
                key,
                &format!("expected true or false, got {}", v.type_str()),
            )),
        }
    }

    /// An array whose items `convert` accepts; `what` names one item in errors.
    fn array_of<T>(
        &mut self,
        key: &str,
        what: &str,
        convert: impl Fn(&toml::Value) -> Option<T>,
    ) -> Result<Option<Vec<T>>, DatasetError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    convert(v).ok_or_else(|| {
                        self.err(
                            &format!("{key}[{i}]"),
                            &format!("expected a {what}, got {}", v.type_str()),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(
                key,
                &format!("expected an array of {what}s, got {}", v.type_str()),
            )),
        }
    }

    fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, DatasetError> {
        self.array_of(key, "string", |v| v.as_str().map(String::from))
    }

    fn string_or_strings(&mut self, key: &str) -> Result<Option<Vec<String>>, DatasetError> {
        match self.table.get(key) {
            Some(toml::Value::String(s)) => {
                self.asked.insert(key.to_string());
                Ok(Some(vec![s.clone()]))
            }
            _ => self.strings(key),
        }
    }

    fn numbers(&mut self, key: &str) -> Result<Option<Vec<f64>>, DatasetError> {
        self.array_of(key, "number", |v| {
            v.as_integer().map(|n| n as f64).or_else(|| v.as_float())
        })
    }

    /// A table of string values, in key order of the document's table (TOML tables are maps;
    /// order is not significant for codes and maps).
    fn string_map(&mut self, key: &str) -> Result<Option<Vec<(String, String)>>, DatasetError> {
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => t
                .iter()
                .map(|(k, v)| match v {
                    toml::Value::String(s) => Ok((k.clone(), s.clone())),
                    v => Err(self.err(
                        &format!("{key}.{k}"),
                        &format!("expected a string, got {}", v.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(
                key,
                &format!(
                    "expected a table of strings like {{ 0 = \"Male\" }}, got {}",
                    v.type_str()
                ),
            )),
        }
    }

    fn table(&mut self, key: &str) -> Result<Option<Node<'a>>, DatasetError> {
        let field = self.field(key);
        match self.get(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(Node::new(self.file, field, t))),
            Some(v) => Err(self.err(key, &format!("expected a table, got {}", v.type_str()))),
        }
    }

    /// Fails on the first key that was never asked for.
    fn finish(self) -> Result<(), DatasetError> {
        if let Some(unknown) = self.table.keys().find(|k| !self.asked.contains(*k)) {
            let allowed: Vec<&str> = self.asked.iter().map(String::as_str).collect();
            return Err(self.err(
                unknown,
                &format!("unknown field (allowed here: {})", allowed.join(", ")),
            ));
        }
        Ok(())
    }
}
