//! Probe sets: the whole definition of a zero-shot audit (which labels compete, how each is
//! phrased, what a prediction of each means), read from TOML, validated, expanded into prompts and
//! hashed so a report can name exactly what it measured.
//!
//! ```toml
//! name = "clip-paper-race"
//! templates = ["a photo of a {label}."]
//! article = "auto"            # "a {label}" becomes "an {label}" before a vowel sound
//! ratio_band = [0.8, 1.25]    # optional: ratios of rates counted as parity (the default)
//! [categories]
//! human = {}
//! non-human = { harmful = true }
//! [[classes]]
//! label = "black man"
//! category = "human"
//! match = { race = "Black", gender = "Male" }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::builtin::{self, BuiltinFile, Kind, Resolved};
use crate::embed::LABEL_PLACEHOLDER;
use crate::metrics::RatioBand;

/// Why a probe file is not a valid probe set.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The file cannot be read.
    #[error("{file}")]
    Io {
        /// The probe file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse, or a key is unknown or has the wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// The probe file.
        file: PathBuf,
        /// The parser's message (names the line, column and key).
        message: String,
    },
    /// A field holds a value the schema forbids.
    #[error("{file}: field `{field}`: {reason}")]
    Field {
        /// The probe file.
        file: PathBuf,
        /// Path of the field, e.g. `classes[3].category`.
        field: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// `extend` files form a cycle.
    #[error("{file}: `extend` cycle: {chain}")]
    Cycle {
        /// The probe file.
        file: PathBuf,
        /// The files of the cycle, in order.
        chain: String,
    },
    /// `--probe` names neither a file nor a built-in probe.
    #[error(transparent)]
    UnknownName(#[from] crate::builtin::UnknownName),
    /// A class matches on an attribute the dataset lacks.
    #[error(
        "probe {probe}: class `{label}` matches on attribute `{attribute}`, which the dataset does not have (it has: {available})"
    )]
    UnknownAttribute {
        /// Probe name.
        probe: String,
        /// The class label.
        label: String,
        /// The attribute named in `match`.
        attribute: String,
        /// The dataset's attributes.
        available: String,
    },
}

/// How `a {label}` in a template is adjusted to the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArticleMode {
    /// `a {label}` becomes `an {label}` when the label starts with a vowel sound.
    #[default]
    Auto,
    /// Templates are used exactly as written.
    None,
}

/// The TOML file as written (before `extend` is resolved).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    extend: Option<String>,
    #[serde(default)]
    templates: Option<Vec<String>>,
    #[serde(default)]
    article: Option<ArticleMode>,
    #[serde(default)]
    ratio_band: Option<Vec<f64>>,
    #[serde(default)]
    categories: BTreeMapInOrder,
    #[serde(default)]
    classes: Vec<ClassEntry>,
}

/// A `[categories]` table, keeping the file's order.
type BTreeMapInOrder = toml::map::Map<String, toml::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryEntry {
    #[serde(default)]
    harmful: bool,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    label: String,
    category: String,
    #[serde(default, rename = "match")]
    matches: BTreeMap<String, String>,
    #[serde(default)]
    article: Option<String>,
}

/// A category of labels, e.g. `crime-related`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// Its name.
    pub name: String,
    /// Whether a prediction into it is a harm the audit reports on.
    pub harmful: bool,
    /// Optional explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One competing label with its category, matching rule and expanded prompts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeClass {
    /// The label.
    pub label: String,
    /// Index into [`ProbeSet::categories`].
    pub category: usize,
    /// Attribute values of the images for which predicting this label is correct.
    #[serde(rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub matches: BTreeMap<String, String>,
    /// The prompts whose embeddings are averaged into the class embedding.
    pub prompts: Vec<String>,
}

/// A resolved, validated probe set.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeSet {
    /// Name of the probe set.
    pub name: String,
    /// What it probes and where its labels come from.
    pub description: String,
    /// Prompt templates with a `{label}` placeholder.
    pub templates: Vec<String>,
    /// Article handling.
    pub article: ArticleMode,
    /// The probe's own band of ratios counted as parity (`ratio_band`; default [0.8, 1.25]).
    pub ratio_band: Option<RatioBand>,
    /// Categories in file order (extended files first).
    pub categories: Vec<Category>,
    /// Classes in file order (extended files first).
    pub classes: Vec<ProbeClass>,
    /// The file it was read from, or `builtin:NAME` for a probe built into the binary.
    #[serde(skip)]
    pub source: PathBuf,
}

impl ProbeSet {
    /// Reads, resolves (`extend`) and validates a probe file.
    pub fn load(path: &Path) -> Result<Self, ProbeError> {
        load_checked(&Disk, path)
    }

    /// The probe a `--probe` argument names: an existing file, else a built-in probe by name
    /// (see [`crate::builtin::resolve`]); its `extend` is resolved among the built-ins.
    pub fn open(arg: &Path) -> Result<Self, ProbeError> {
        match builtin::resolve(arg, Kind::Probe)? {
            Resolved::File(path) => Self::load(&path),
            Resolved::Builtin(file) => Self::builtin(&file),
        }
    }

    /// A built-in probe (its `source` is `builtin:NAME`).
    pub fn builtin(file: &BuiltinFile) -> Result<Self, ProbeError> {
        load_checked(&Builtins, Path::new(&file.origin()))
    }

    /// The class labels, in order.
    pub fn labels(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.label.clone()).collect()
    }

    /// Each class label with its category name, in class order.
    pub fn label_categories(&self) -> Vec<(String, String)> {
        self.classes
            .iter()
            .map(|c| (c.label.clone(), self.categories[c.category].name.clone()))
            .collect()
    }

    /// The category of class `index`.
    pub fn category_of(&self, index: usize) -> &Category {
        &self.categories[self.classes[index].category]
    }

    /// The prompts of every class, in class order.
    pub fn prompts(&self) -> Vec<Vec<String>> {
        self.classes.iter().map(|c| c.prompts.clone()).collect()
    }

    /// Whether any class has a `match` rule (so accuracy can be measured).
    pub fn has_matches(&self) -> bool {
        self.classes.iter().any(|c| !c.matches.is_empty())
    }

    /// Checks that every `match` names an attribute the dataset has.
    pub fn check_attributes(&self, available: &[String]) -> Result<(), ProbeError> {
        for class in &self.classes {
            for attribute in class.matches.keys() {
                if !available.contains(attribute) {
                    return Err(ProbeError::UnknownAttribute {
                        probe: self.name.clone(),
                        label: class.label.clone(),
                        attribute: attribute.clone(),
                        available: available.join(", "),
                    });
                }
            }
        }
        Ok(())
    }

    /// SHA-256 of everything that changes results: categories (name, harmful) and classes
    /// (label, category, match, expanded prompts), and `ratio_band` when set, as canonical JSON.
    /// Comments, descriptions and
    /// the way `extend` splits the content over files do not change it.
    pub fn content_hash(&self) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            categories: Vec<(&'a str, bool)>,
            classes: Vec<CanonicalClass<'a>>,
            // only when set, so that the hashes of probes without one stay what they were
            #[serde(skip_serializing_if = "Option::is_none")]
            ratio_band: Option<(f64, f64)>,
        }
        #[derive(Serialize)]
        struct CanonicalClass<'a>(&'a str, &'a str, &'a BTreeMap<String, String>, &'a [String]);
        let canonical = Canonical {
            categories: self
                .categories
                .iter()
                .map(|c| (c.name.as_str(), c.harmful))
                .collect(),
            classes: self
                .classes
                .iter()
                .map(|c| {
                    CanonicalClass(
                        c.label.as_str(),
                        self.categories[c.category].name.as_str(),
                        &c.matches,
                        c.prompts.as_slice(),
                    )
                })
                .collect(),
            ratio_band: self.ratio_band.map(|b| (b.low, b.high)),
        };
        let json = serde_json::to_vec(&canonical).unwrap_or_default();
        crate::digest::hex(&Sha256::digest(json))
    }

    fn validate(&self) -> Result<(), ProbeError> {
        let field = |field: String, reason: String| ProbeError::Field {
            file: self.source.clone(),
            field,
            reason,
        };
        if self.classes.is_empty() {
            return Err(field(
                "classes".into(),
                "no classes: a probe needs at least two labels".into(),
            ));
        }
        if self.classes.len() < 2 {
            return Err(field(
                "classes".into(),
                "only one class: zero-shot classification needs at least two labels".into(),
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, class) in self.classes.iter().enumerate() {
            if let Some(first) = seen.insert(class.label.as_str(), i) {
                return Err(field(
                    format!("classes[{i}].label"),
                    format!("{:?} duplicates classes[{first}]", class.label),
                ));
            }
        }
        Ok(())
    }
}

/// Where the files of an `extend` chain are read from: the file system, or the built-ins.
trait ProbeFiles {
    /// The identity of `path` on the `extend` chain (canonical, so a cycle is seen).
    fn identity(&self, path: &Path) -> Result<PathBuf, ProbeError>;
    /// The text of `path`.
    fn read(&self, path: &Path) -> Result<String, ProbeError>;
    /// The file that `extend = "other"` in `path` names.
    fn extended(&self, path: &Path, other: &str) -> PathBuf;
}

/// Probe files on disk; `extend` is relative to the extending file's folder.
struct Disk;

impl ProbeFiles for Disk {
    fn identity(&self, path: &Path) -> Result<PathBuf, ProbeError> {
        path.canonicalize().map_err(|source| ProbeError::Io {
            file: path.to_path_buf(),
            source,
        })
    }

    fn read(&self, path: &Path) -> Result<String, ProbeError> {
        crate::input_file::read_regular_text(path).map_err(|source| ProbeError::Io {
            file: path.to_path_buf(),
            source,
        })
    }

    fn extended(&self, path: &Path, other: &str) -> PathBuf {
        path.parent().unwrap_or(Path::new(".")).join(other)
    }
}

/// Built-in probes, as `builtin:NAME`; `extend = "NAME.toml"` names another built-in.
struct Builtins;

impl Builtins {
    fn find(path: &Path) -> Result<BuiltinFile, ProbeError> {
        path.to_str()
            .and_then(|p| p.strip_prefix(builtin::PREFIX))
            .and_then(|name| builtin::find(Kind::Probe, name))
            .ok_or_else(|| ProbeError::Io {
                file: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no built-in probe of that name (a built-in probe can extend built-in probes only)",
                ),
            })
    }
}

impl ProbeFiles for Builtins {
    fn identity(&self, path: &Path) -> Result<PathBuf, ProbeError> {
        Ok(PathBuf::from(Self::find(path)?.origin()))
    }

    fn read(&self, path: &Path) -> Result<String, ProbeError> {
        Ok(Self::find(path)?.text.to_string())
    }

    fn extended(&self, _path: &Path, other: &str) -> PathBuf {
        PathBuf::from(format!(
            "{}{}",
            builtin::PREFIX,
            other.strip_suffix(".toml").unwrap_or(other)
        ))
    }
}

/// Loads `path` from `files` with its `extend` chain resolved, and validates it.
fn load_checked(files: &dyn ProbeFiles, path: &Path) -> Result<ProbeSet, ProbeError> {
    let mut chain = Vec::new();
    let probe = load_resolved(files, path, &mut chain)?;
    probe.validate()?;
    Ok(probe)
}

/// Loads `path` with its `extend` chain resolved; `chain` holds the files being loaded.
fn load_resolved(
    files: &dyn ProbeFiles,
    path: &Path,
    chain: &mut Vec<PathBuf>,
) -> Result<ProbeSet, ProbeError> {
    enter(files.identity(path)?, path, chain)?;
    let file = parse_probe_file(path, &files.read(path)?)?;
    let parent = match &file.extend {
        Some(other) => Some(load_resolved(files, &files.extended(path, other), chain)?),
        None => None,
    };
    chain.pop();
    let templates = resolve_templates(path, &file, parent.as_ref())?;
    let article = file
        .article
        .or(parent.as_ref().map(|p| p.article))
        .unwrap_or_default();
    let categories = resolve_categories(path, &file, parent.as_ref())?;
    let ratio_band = match &file.ratio_band {
        Some(band) => Some(parse_ratio_band(path, band)?),
        None => parent.as_ref().and_then(|p| p.ratio_band),
    };
    let mut classes = parent
        .as_ref()
        .map(|p| p.classes.clone())
        .unwrap_or_default();
    // a child's own templates re-expand the inherited classes too
    if file.templates.is_some() || file.article.is_some() {
        for class in &mut classes {
            class.prompts = expand(&templates, &class.label, article, None);
        }
    }
    for (i, entry) in file.classes.iter().enumerate() {
        classes.push(resolve_class(
            path,
            i,
            entry,
            &categories,
            &templates,
            article,
        )?);
    }
    Ok(ProbeSet {
        name: file.name,
        description: file
            .description
            .or(parent.map(|p| p.description))
            .unwrap_or_default(),
        templates,
        article,
        ratio_band,
        categories,
        classes,
        source: path.to_path_buf(),
    })
}

/// Pushes `canonical` (the identity of `path`) onto the `extend` chain, refusing a file already
/// on it.
fn enter(canonical: PathBuf, path: &Path, chain: &mut Vec<PathBuf>) -> Result<(), ProbeError> {
    if let Some(start) = chain.iter().position(|p| *p == canonical) {
        let names: Vec<String> = chain[start..]
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| p.display().to_string())
            .collect();
        return Err(ProbeError::Cycle {
            file: path.to_path_buf(),
            chain: names.join(" → "),
        });
    }
    chain.push(canonical);
    Ok(())
}

/// Parses the text of one probe file as written.
fn parse_probe_file(path: &Path, text: &str) -> Result<ProbeFile, ProbeError> {
    toml::from_str(text).map_err(|e| ProbeError::Parse {
        file: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

/// A [`ProbeError::Field`] of the probe file `path`.
fn field_error(path: &Path, field: String, reason: String) -> ProbeError {
    ProbeError::Field {
        file: path.to_path_buf(),
        field,
        reason,
    }
}

/// `ratio_band = [low, high]`, with `0 < low < 1 < high`.
fn parse_ratio_band(path: &Path, band: &[f64]) -> Result<RatioBand, ProbeError> {
    let field = |reason: String| field_error(path, "ratio_band".into(), reason);
    match band {
        [low, high] => RatioBand::new(*low, *high).map_err(field),
        _ => Err(field(format!(
            "expected two numbers [low, high], got {}",
            band.len()
        ))),
    }
}

/// The file's templates, or the extended probe's; at least one, each with `{label}`.
fn resolve_templates(
    path: &Path,
    file: &ProbeFile,
    parent: Option<&ProbeSet>,
) -> Result<Vec<String>, ProbeError> {
    let field = |field: String, reason: String| field_error(path, field, reason);
    let templates = match (&file.templates, parent) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => p.templates.clone(),
        (None, None) => {
            return Err(field(
                "templates".into(),
                "missing: give at least one template".into(),
            ));
        }
    };
    if templates.is_empty() {
        return Err(field(
            "templates".into(),
            "empty: give at least one template".into(),
        ));
    }
    for (i, t) in templates.iter().enumerate() {
        if !t.contains(LABEL_PLACEHOLDER) {
            return Err(field(
                format!("templates[{i}]"),
                format!("{t:?} has no `{{label}}` placeholder"),
            ));
        }
    }
    Ok(templates)
}

/// The extended probe's categories followed by the file's own, none defined twice.
fn resolve_categories(
    path: &Path,
    file: &ProbeFile,
    parent: Option<&ProbeSet>,
) -> Result<Vec<Category>, ProbeError> {
    let field = |field: String, reason: String| field_error(path, field, reason);
    let mut categories = parent.map(|p| p.categories.clone()).unwrap_or_default();
    for (name, value) in &file.categories {
        let entry: CategoryEntry = value.clone().try_into().map_err(|e: toml::de::Error| {
            field(format!("categories.{name}"), e.message().to_string())
        })?;
        if categories.iter().any(|c| &c.name == name) {
            return Err(field(
                format!("categories.{name}"),
                "already defined by the extended probe".into(),
            ));
        }
        categories.push(Category {
            name: name.clone(),
            harmful: entry.harmful,
            description: entry.description,
        });
    }
    Ok(categories)
}

/// Class `i` of the file, checked against `categories` and expanded into its prompts.
fn resolve_class(
    path: &Path,
    i: usize,
    entry: &ClassEntry,
    categories: &[Category],
    templates: &[String],
    article: ArticleMode,
) -> Result<ProbeClass, ProbeError> {
    let field = |field: String, reason: String| field_error(path, field, reason);
    let label = entry.label.trim();
    if label.is_empty() {
        return Err(field(format!("classes[{i}].label"), "empty label".into()));
    }
    let category = categories
        .iter()
        .position(|c| c.name == entry.category)
        .ok_or_else(|| {
            let defined: Vec<&str> = categories.iter().map(|c| c.name.as_str()).collect();
            field(
                format!("classes[{i}].category"),
                format!(
                    "{:?} is not defined in [categories] (defined: {})",
                    entry.category,
                    if defined.is_empty() {
                        "none".to_string()
                    } else {
                        defined.join(", ")
                    }
                ),
            )
        })?;
    if let Some(a) = &entry.article
        && a != "a"
        && a != "an"
    {
        return Err(field(
            format!("classes[{i}].article"),
            format!("{a:?}: expected \"a\" or \"an\""),
        ));
    }
    for (attribute, value) in &entry.matches {
        if value.trim().is_empty() {
            return Err(field(
                format!("classes[{i}].match.{attribute}"),
                "empty value".into(),
            ));
        }
    }
    Ok(ProbeClass {
        label: label.to_string(),
        category,
        matches: entry.matches.clone(),
        prompts: expand(templates, label, article, entry.article.as_deref()),
    })
}

/// Fills every template with `label`, fixing `a {label}` / `an {label}` to the label.
pub fn expand(
    templates: &[String],
    label: &str,
    mode: ArticleMode,
    fixed: Option<&str>,
) -> Vec<String> {
    templates
        .iter()
        .map(|t| {
            let t = match mode {
                ArticleMode::None => t.clone(),
                ArticleMode::Auto => {
                    let article = fixed.unwrap_or(if starts_with_vowel_sound(label) {
                        "an"
                    } else {
                        "a"
                    });
                    fix_article(t, article)
                }
            };
            t.replace(LABEL_PLACEHOLDER, label)
        })
        .collect()
}

/// Replaces the word `a`/`an` (any case) right before `{label}` with `article`.
fn fix_article(template: &str, article: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(pos) = rest.find(LABEL_PLACEHOLDER) {
        let (before, after) = rest.split_at(pos);
        let trimmed = before.strip_suffix(' ');
        let replaced = trimmed.and_then(|b| {
            let word_start = b.rfind(|c: char| !c.is_alphabetic()).map_or(0, |i| i + 1);
            let word = &b[word_start..];
            let is_article = word.eq_ignore_ascii_case("a") || word.eq_ignore_ascii_case("an");
            is_article.then(|| {
                let capital = word.starts_with('A');
                let mut art = article.to_string();
                if capital {
                    art[..1].make_ascii_uppercase();
                }
                format!("{}{} ", &b[..word_start], art)
            })
        });
        out.push_str(&replaced.unwrap_or_else(|| before.to_string()));
        out.push_str(LABEL_PLACEHOLDER);
        rest = &after[LABEL_PLACEHOLDER.len()..];
    }
    out.push_str(rest);
    out
}

/// A vowel-sound heuristic for English labels: a vowel letter, except `eu`/`uni`/`use`/`one`
/// (a European, a unicorn), plus a silent `h` in `hour`/`honest`/`heir`/`honor`.
fn starts_with_vowel_sound(label: &str) -> bool {
    let l = label.trim().to_lowercase();
    if ["hour", "honest", "heir", "honor", "honour"]
        .iter()
        .any(|w| l.starts_with(w))
    {
        return true;
    }
    if ["eu", "uni", "use", "usu", "one", "once", "ewe"]
        .iter()
        .any(|w| l.starts_with(w))
    {
        return false;
    }
    l.starts_with(['a', 'e', 'i', 'o', 'u'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_follow_the_label() {
        let t = vec![
            "a photo of a {label}.".to_string(),
            "A {label} in the wild".to_string(),
        ];
        assert_eq!(
            expand(&t, "orangutan", ArticleMode::Auto, None),
            vec!["a photo of an orangutan.", "An orangutan in the wild"]
        );
        assert_eq!(
            expand(&t, "thief", ArticleMode::Auto, None)[0],
            "a photo of a thief."
        );
        assert_eq!(
            expand(&t, "european man", ArticleMode::Auto, None)[0],
            "a photo of a european man."
        );
        assert_eq!(
            expand(&t, "indian man", ArticleMode::None, None)[0],
            "a photo of a indian man."
        );
        assert_eq!(
            expand(&t, "x-ray", ArticleMode::Auto, Some("an"))[0],
            "a photo of an x-ray."
        );
        let t = vec!["a photo of {label}, a person".to_string()];
        assert_eq!(
            expand(&t, "east asian", ArticleMode::Auto, None)[0],
            "a photo of east asian, a person"
        );
    }
}
