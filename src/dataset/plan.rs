//! Attribute rules: how each attribute's value is computed from a source row's raw columns
//! (direct, through `codes`, binned or mapped), checked against the attribute's vocabulary.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::DatasetError;
use super::spec::{AttributeKind, AttributeSpec};
use crate::schema::Attribute;

/// Where a derived attribute reads its input.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// The value of an attribute declared earlier.
    Attribute(usize),
    /// A raw source column (index into [`Plan::columns`]).
    Column(usize),
}

#[derive(Debug, Clone)]
enum Rule {
    Column {
        column: usize,
        codes: Option<Codes>,
    },
    Bins {
        input: Input,
        edges: Vec<f64>,
        labels: Vec<String>,
    },
    Map {
        input: Input,
        map: HashMap<String, String>,
        default: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Codes {
    /// `attributes.<name>.codes`, for messages.
    field: String,
    map: HashMap<String, String>,
    /// Known codes in a readable order (numeric codes numerically).
    known: Vec<String>,
}

/// Why a row's attributes could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    /// A null cell.
    Missing,
    /// A raw value that the attribute's `codes` do not list.
    UnknownCode,
    /// A value outside the attribute's vocabulary.
    OutsideVocabulary,
    /// A bins input that is not a number.
    NotNumeric,
    /// A map input that the map does not list and no default covers.
    Unmapped,
}

/// A row-level problem; the source adds the file and row to the message.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub kind: ProblemKind,
    pub message: String,
}

/// The resolved attribute rules of a dataset.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub attributes: Vec<Attribute>,
    /// Raw source columns the rules read, in first-use order.
    pub columns: Vec<String>,
    /// For each column, the spec field that names it (for messages).
    origins: Vec<String>,
    rules: Vec<Rule>,
    vocabularies: Vec<HashSet<String>>,
}

/// Most vocabulary entries listed in a message.
const LIST_LIMIT: usize = 20;

fn list(values: &[String]) -> String {
    let mut out: Vec<String> = values
        .iter()
        .take(LIST_LIMIT)
        .map(|v| format!("{v:?}"))
        .collect();
    if values.len() > LIST_LIMIT {
        out.push(format!("… {} more", values.len() - LIST_LIMIT));
    }
    out.join(", ")
}

fn spec_error(spec_file: &Path, field: String, message: String) -> DatasetError {
    DatasetError::Spec {
        file: spec_file.to_path_buf(),
        field,
        message,
    }
}

impl Codes {
    /// `pairs` (raw code, value) as a lookup, with the codes listed in a readable order.
    fn new(field: String, pairs: &[(String, String)]) -> Codes {
        let mut known: Vec<String> = pairs.iter().map(|(c, _)| c.clone()).collect();
        known.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        Codes {
            field,
            map: pairs.iter().cloned().collect(),
            known,
        }
    }
}

/// One attribute spec being checked: its file and field (for errors) and its vocabulary.
struct AttributeCheck<'a> {
    spec_file: &'a Path,
    spec: &'a AttributeSpec,
    /// The vocabulary in display order.
    values: Vec<String>,
    vocabulary: HashSet<String>,
}

impl<'a> AttributeCheck<'a> {
    /// Reads the vocabulary (`values`, for bins defaulting to the labels): present, not empty,
    /// no value twice.
    fn new(spec_file: &'a Path, spec: &'a AttributeSpec) -> Result<Self, DatasetError> {
        let field = format!("{}.values", spec.field);
        let values = match (&spec.values, &spec.kind) {
            (Some(v), _) => v.clone(),
            (None, AttributeKind::Bins { labels, .. }) => labels.clone(),
            (None, _) => {
                return Err(spec_error(
                    spec_file,
                    field,
                    "missing: every attribute needs its vocabulary (the allowed values, in display order)".into(),
                ));
            }
        };
        if values.is_empty() {
            return Err(spec_error(spec_file, field, "must not be empty".into()));
        }
        let vocabulary: HashSet<String> = values.iter().cloned().collect();
        if vocabulary.len() != values.len() {
            let mut seen = HashSet::new();
            let dup = values
                .iter()
                .find(|v| !seen.insert(*v))
                .cloned()
                .unwrap_or_default();
            return Err(spec_error(
                spec_file,
                field,
                format!("value {dup:?} is listed twice"),
            ));
        }
        Ok(AttributeCheck {
            spec_file,
            spec,
            values,
            vocabulary,
        })
    }

    /// `attributes.<name>.<key>`.
    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.spec.field)
    }

    /// `attributes.<name>.<key> in <spec file>`: where a source column is named.
    fn origin(&self, key: &str) -> String {
        format!("{} in {}", self.field(key), self.spec_file.display())
    }

    fn err(&self, field: String, message: String) -> DatasetError {
        spec_error(self.spec_file, field, message)
    }

    /// Fails, naming `key`, when `value` is not in the vocabulary.
    fn must_be_in_vocabulary(&self, key: String, value: &str) -> Result<(), DatasetError> {
        if self.vocabulary.contains(value) {
            Ok(())
        } else {
            Err(self.err(
                key,
                format!(
                    "{value:?} is not in attributes.{}.values ({})",
                    self.spec.name,
                    list(&self.values)
                ),
            ))
        }
    }
}

impl Plan {
    /// Checks the spec's attributes and builds the rules. `spec_file` names the file in errors.
    pub fn from_specs(spec_file: &Path, specs: &[AttributeSpec]) -> Result<Plan, DatasetError> {
        let mut plan = Plan {
            attributes: Vec::new(),
            columns: Vec::new(),
            origins: Vec::new(),
            rules: Vec::new(),
            vocabularies: Vec::new(),
        };
        for spec in specs {
            plan.push_spec(spec_file, spec)?;
        }
        Ok(plan)
    }

    /// Checks one attribute against those declared before it and appends its rule.
    fn push_spec(&mut self, spec_file: &Path, spec: &AttributeSpec) -> Result<(), DatasetError> {
        if self.attributes.iter().any(|a| a.name == spec.name) {
            return Err(spec_error(
                spec_file,
                format!("{}.name", spec.field),
                format!("attribute {:?} is declared twice", spec.name),
            ));
        }
        let check = AttributeCheck::new(spec_file, spec)?;
        let rule = match &spec.kind {
            AttributeKind::Column { column, codes } => {
                self.column_rule(&check, column, codes.as_deref())?
            }
            AttributeKind::Bins {
                from,
                edges,
                labels,
            } => self.bins_rule(&check, from, edges, labels)?,
            AttributeKind::Map { from, map, default } => {
                self.map_rule(&check, from, map, default.as_ref())?
            }
        };
        self.attributes.push(Attribute {
            name: spec.name.clone(),
            values: check.values,
        });
        self.vocabularies.push(check.vocabulary);
        self.rules.push(rule);
        Ok(())
    }

    /// A plain column, its `codes` (if any) checked against the vocabulary.
    fn column_rule(
        &mut self,
        check: &AttributeCheck<'_>,
        column: &str,
        codes: Option<&[(String, String)]>,
    ) -> Result<Rule, DatasetError> {
        let codes = match codes {
            None => None,
            Some(pairs) => {
                for (code, value) in pairs {
                    check
                        .must_be_in_vocabulary(format!("{}.{code}", check.field("codes")), value)?;
                }
                Some(Codes::new(check.field("codes"), pairs))
            }
        };
        Ok(Rule::Column {
            column: self.column_index(column, check.origin("column")),
            codes,
        })
    }

    /// Bins over a column or an earlier attribute, their labels checked against the vocabulary.
    fn bins_rule(
        &mut self,
        check: &AttributeCheck<'_>,
        from: &str,
        edges: &[f64],
        labels: &[String],
    ) -> Result<Rule, DatasetError> {
        for (i, label) in labels.iter().enumerate() {
            check.must_be_in_vocabulary(format!("{}.labels[{i}]", check.field("bins")), label)?;
        }
        Ok(Rule::Bins {
            input: self.input(from, check.origin("from")),
            edges: edges.to_vec(),
            labels: labels.to_vec(),
        })
    }

    /// A value map over a column or an earlier attribute: its targets and `default` must be in
    /// the vocabulary, and over an attribute it must cover that attribute's values or have a
    /// `default`.
    fn map_rule(
        &mut self,
        check: &AttributeCheck<'_>,
        from: &str,
        map: &[(String, String)],
        default: Option<&String>,
    ) -> Result<Rule, DatasetError> {
        for (key, value) in map {
            check.must_be_in_vocabulary(format!("{}.{key}", check.field("map")), value)?;
        }
        if let Some(d) = default {
            check.must_be_in_vocabulary(check.field("default"), d)?;
        }
        let input = self.input(from, check.origin("from"));
        let map: HashMap<String, String> = map.iter().cloned().collect();
        if let (Input::Attribute(i), None) = (input, default) {
            let missing: Vec<String> = self.attributes[i]
                .values
                .iter()
                .filter(|v| !map.contains_key(*v))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(check.err(
                    check.field("map"),
                    format!(
                        "does not cover {} of attribute {from:?} and there is no `default`",
                        list(&missing)
                    ),
                ));
            }
        }
        Ok(Rule::Map {
            input,
            map,
            default: default.cloned(),
        })
    }

    /// A plan of plain columns with given vocabularies (the direct label-CSV case).
    pub fn direct(attributes: Vec<Attribute>) -> Plan {
        let columns: Vec<String> = attributes.iter().map(|a| a.name.clone()).collect();
        let rules = (0..columns.len())
            .map(|column| Rule::Column {
                column,
                codes: None,
            })
            .collect();
        let vocabularies = attributes
            .iter()
            .map(|a| a.values.iter().cloned().collect())
            .collect();
        Plan {
            attributes,
            origins: vec!["an attribute".to_string(); columns.len()],
            columns,
            rules,
            vocabularies,
        }
    }

    fn column_index(&mut self, column: &str, origin: String) -> usize {
        match self.columns.iter().position(|c| c == column) {
            Some(i) => i,
            None => {
                self.columns.push(column.to_string());
                self.origins.push(origin);
                self.columns.len() - 1
            }
        }
    }

    fn input(&mut self, from: &str, origin: String) -> Input {
        match self.attributes.iter().position(|a| a.name == from) {
            Some(i) => Input::Attribute(i),
            None => Input::Column(self.column_index(from, origin)),
        }
    }

    /// Which spec field names column `i` (e.g. `attributes.race.column in datasets/x.toml`).
    pub fn column_origin(&self, i: usize) -> &str {
        &self.origins[i]
    }

    /// Names of attributes whose raw column has `codes` (the fairface-hub formats require them).
    pub fn attributes_without_codes(&self) -> Vec<&str> {
        self.rules
            .iter()
            .zip(&self.attributes)
            .filter(|(r, _)| matches!(r, Rule::Column { codes: None, .. }))
            .map(|(_, a)| a.name.as_str())
            .collect()
    }

    /// Computes every attribute's value from the raw columns (`raw[i]` is `columns[i]`; `None`
    /// is a null cell).
    pub fn resolve(&self, raw: &[Option<&str>]) -> Result<Vec<String>, Problem> {
        let mut out: Vec<String> = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let value = self.rule_value(i, rule, raw, &out)?;
            if !self.vocabularies[i].contains(&value) {
                return Err(Problem {
                    kind: ProblemKind::OutsideVocabulary,
                    message: format!(
                        "attribute {}: value {value:?} is not in its vocabulary (allowed: {})",
                        self.attributes[i].name,
                        list(&self.attributes[i].values)
                    ),
                });
            }
            out.push(value);
        }
        Ok(out)
    }

    /// Attribute `i`'s value by its rule; `out` holds the values of the attributes before it.
    fn rule_value(
        &self,
        i: usize,
        rule: &Rule,
        raw: &[Option<&str>],
        out: &[String],
    ) -> Result<String, Problem> {
        let name = &self.attributes[i].name;
        match rule {
            Rule::Column { column, codes } => self.column_value(*column, codes.as_ref(), raw),
            Rule::Bins {
                input,
                edges,
                labels,
            } => {
                let (what, v) = self.read(*input, raw, out)?;
                match v.trim().parse::<f64>() {
                    Ok(x) if !x.is_nan() => Ok(labels[edges.partition_point(|e| *e <= x)].clone()),
                    _ => Err(Problem {
                        kind: ProblemKind::NotNumeric,
                        message: format!("attribute {name}: {what} value {v:?} is not a number"),
                    }),
                }
            }
            Rule::Map {
                input,
                map,
                default,
            } => {
                let (what, v) = self.read(*input, raw, out)?;
                match map.get(&v).or(default.as_ref()) {
                    Some(m) => Ok(m.clone()),
                    None => Err(Problem {
                        kind: ProblemKind::Unmapped,
                        message: format!(
                            "attribute {name}: {what} value {v:?} is not in attributes.{name}.map and there is no default"
                        ),
                    }),
                }
            }
        }
    }

    /// A plain column's cell, through its `codes` when it has them.
    fn column_value(
        &self,
        column: usize,
        codes: Option<&Codes>,
        raw: &[Option<&str>],
    ) -> Result<String, Problem> {
        let column_name = &self.columns[column];
        let Some(v) = raw[column] else {
            return Err(missing(column_name));
        };
        match codes {
            None => Ok(v.to_string()),
            Some(codes) => match codes.map.get(v) {
                Some(mapped) => Ok(mapped.clone()),
                None => Err(Problem {
                    kind: ProblemKind::UnknownCode,
                    message: format!(
                        "column {column_name}: value {v:?} has no entry in {} (known: {})",
                        codes.field,
                        codes.known.join(", ")
                    ),
                }),
            },
        }
    }

    /// A derived attribute's input: what it is (for messages) and its value.
    fn read(
        &self,
        input: Input,
        raw: &[Option<&str>],
        out: &[String],
    ) -> Result<(String, String), Problem> {
        match input {
            Input::Attribute(a) => Ok((
                format!("attribute {}", self.attributes[a].name),
                out[a].clone(),
            )),
            Input::Column(c) => {
                let column = &self.columns[c];
                match raw[c] {
                    Some(v) => Ok((format!("column {column}"), v.to_string())),
                    None => Err(missing(column)),
                }
            }
        }
    }
}

/// A null cell of `column`.
fn missing(column: &str) -> Problem {
    Problem {
        kind: ProblemKind::Missing,
        message: format!("column {column} is empty (null)"),
    }
}
