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

impl Plan {
    /// Checks the spec's attributes and builds the rules. `spec_file` names the file in errors.
    pub fn from_specs(spec_file: &Path, specs: &[AttributeSpec]) -> Result<Plan, DatasetError> {
        let err = |field: String, message: String| DatasetError::Spec {
            file: spec_file.to_path_buf(),
            field,
            message,
        };
        let mut plan = Plan {
            attributes: Vec::new(),
            columns: Vec::new(),
            origins: Vec::new(),
            rules: Vec::new(),
            vocabularies: Vec::new(),
        };
        for spec in specs {
            let field = |key: &str| format!("{}.{key}", spec.field);
            if plan.attributes.iter().any(|a| a.name == spec.name) {
                return Err(err(
                    field("name"),
                    format!("attribute {:?} is declared twice", spec.name),
                ));
            }
            let values = match (&spec.values, &spec.kind) {
                (Some(v), _) => v.clone(),
                (None, AttributeKind::Bins { labels, .. }) => labels.clone(),
                (None, _) => {
                    return Err(err(
                        field("values"),
                        "missing: every attribute needs its vocabulary (the allowed values, in display order)".into(),
                    ));
                }
            };
            if values.is_empty() {
                return Err(err(field("values"), "must not be empty".into()));
            }
            let vocabulary: HashSet<String> = values.iter().cloned().collect();
            if vocabulary.len() != values.len() {
                let mut seen = HashSet::new();
                let dup = values
                    .iter()
                    .find(|v| !seen.insert(*v))
                    .cloned()
                    .unwrap_or_default();
                return Err(err(
                    field("values"),
                    format!("value {dup:?} is listed twice"),
                ));
            }
            let must_be_in_vocabulary = |key: String, value: &str| {
                if vocabulary.contains(value) {
                    Ok(())
                } else {
                    Err(err(
                        key,
                        format!(
                            "{value:?} is not in attributes.{}.values ({})",
                            spec.name,
                            list(&values)
                        ),
                    ))
                }
            };
            let rule = match &spec.kind {
                AttributeKind::Column { column, codes } => {
                    let codes = match codes {
                        None => None,
                        Some(pairs) => {
                            for (code, value) in pairs {
                                must_be_in_vocabulary(format!("{}.{code}", field("codes")), value)?;
                            }
                            let mut known: Vec<String> =
                                pairs.iter().map(|(c, _)| c.clone()).collect();
                            known.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
                                (Ok(x), Ok(y)) => x.cmp(&y),
                                _ => a.cmp(b),
                            });
                            Some(Codes {
                                field: field("codes"),
                                map: pairs.iter().cloned().collect(),
                                known,
                            })
                        }
                    };
                    Rule::Column {
                        column: plan.column_index(
                            column,
                            format!("{} in {}", field("column"), spec_file.display()),
                        ),
                        codes,
                    }
                }
                AttributeKind::Bins {
                    from,
                    edges,
                    labels,
                } => {
                    for (i, label) in labels.iter().enumerate() {
                        must_be_in_vocabulary(format!("{}.labels[{i}]", field("bins")), label)?;
                    }
                    Rule::Bins {
                        input: plan.input(
                            from,
                            format!("{} in {}", field("from"), spec_file.display()),
                        ),
                        edges: edges.clone(),
                        labels: labels.clone(),
                    }
                }
                AttributeKind::Map { from, map, default } => {
                    for (key, value) in map {
                        must_be_in_vocabulary(format!("{}.{key}", field("map")), value)?;
                    }
                    if let Some(d) = default {
                        must_be_in_vocabulary(field("default"), d)?;
                    }
                    let input = plan.input(
                        from,
                        format!("{} in {}", field("from"), spec_file.display()),
                    );
                    let map: HashMap<String, String> = map.iter().cloned().collect();
                    if let (Input::Attribute(i), None) = (input, default) {
                        let missing: Vec<String> = plan.attributes[i]
                            .values
                            .iter()
                            .filter(|v| !map.contains_key(*v))
                            .cloned()
                            .collect();
                        if !missing.is_empty() {
                            return Err(err(
                                field("map"),
                                format!(
                                    "does not cover {} of attribute {from:?} and there is no `default`",
                                    list(&missing)
                                ),
                            ));
                        }
                    }
                    Rule::Map {
                        input,
                        map,
                        default: default.clone(),
                    }
                }
            };
            plan.attributes.push(Attribute {
                name: spec.name.clone(),
                values,
            });
            plan.vocabularies.push(vocabulary);
            plan.rules.push(rule);
        }
        Ok(plan)
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
            let name = &self.attributes[i].name;
            let read = |input: Input, out: &[String]| -> Result<(String, String), Problem> {
                match input {
                    Input::Attribute(a) => Ok((
                        format!("attribute {}", self.attributes[a].name),
                        out[a].clone(),
                    )),
                    Input::Column(c) => {
                        let column = &self.columns[c];
                        match raw[c] {
                            Some(v) => Ok((format!("column {column}"), v.to_string())),
                            None => Err(Problem {
                                kind: ProblemKind::Missing,
                                message: format!("column {column} is empty (null)"),
                            }),
                        }
                    }
                }
            };
            let value = match rule {
                Rule::Column { column, codes } => {
                    let column_name = &self.columns[*column];
                    let Some(v) = raw[*column] else {
                        return Err(Problem {
                            kind: ProblemKind::Missing,
                            message: format!("column {column_name} is empty (null)"),
                        });
                    };
                    match codes {
                        None => v.to_string(),
                        Some(codes) => match codes.map.get(v) {
                            Some(mapped) => mapped.clone(),
                            None => {
                                return Err(Problem {
                                    kind: ProblemKind::UnknownCode,
                                    message: format!(
                                        "column {column_name}: value {v:?} has no entry in {} (known: {})",
                                        codes.field,
                                        codes.known.join(", ")
                                    ),
                                });
                            }
                        },
                    }
                }
                Rule::Bins {
                    input,
                    edges,
                    labels,
                } => {
                    let (what, v) = read(*input, &out)?;
                    let x: f64 = match v.trim().parse::<f64>() {
                        Ok(x) if !x.is_nan() => x,
                        _ => {
                            return Err(Problem {
                                kind: ProblemKind::NotNumeric,
                                message: format!(
                                    "attribute {name}: {what} value {v:?} is not a number"
                                ),
                            });
                        }
                    };
                    labels[edges.partition_point(|e| *e <= x)].clone()
                }
                Rule::Map {
                    input,
                    map,
                    default,
                } => {
                    let (what, v) = read(*input, &out)?;
                    match map.get(&v).or(default.as_ref()) {
                        Some(m) => m.clone(),
                        None => {
                            return Err(Problem {
                                kind: ProblemKind::Unmapped,
                                message: format!(
                                    "attribute {name}: {what} value {v:?} is not in attributes.{name}.map and there is no default"
                                ),
                            });
                        }
                    }
                }
            };
            if !self.vocabularies[i].contains(&value) {
                return Err(Problem {
                    kind: ProblemKind::OutsideVocabulary,
                    message: format!(
                        "attribute {name}: value {value:?} is not in its vocabulary (allowed: {})",
                        list(&self.attributes[i].values)
                    ),
                });
            }
            out.push(value);
        }
        Ok(out)
    }
}
