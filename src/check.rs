//! The CI gate: fairness rules evaluated against a report folder (and optionally a baseline
//! report), each giving per-group verdicts. Rules that name something the report lacks are errors,
//! never passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::export::{ACCURACY_HEADER, GROUPS_HEADER};

/// Why a check could not run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The report folder is not a complete report (no `run.json`, a staging folder, …).
    #[error(transparent)]
    Incomplete(#[from] crate::report_folder::ReportFolderError),
    /// A report table holds a value that cannot be right (NaN, a negative count, count > n, …).
    #[error("{}: row {row}, column `{column}`: {reason}", path.display())]
    Value {
        /// The table.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// The column.
        column: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// No group of a rule could be judged, so the rule cannot pass.
    #[error("{path}: rule[{index}] ({name}): nothing could be judged: {reason}", path = path.display())]
    NothingJudged {
        /// The rules file.
        path: PathBuf,
        /// 0-based index of the rule.
        index: usize,
        /// The rule's name.
        name: String,
        /// Why no group was judged.
        reason: String,
    },
    /// A file could not be read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The rules file does not parse or has an unknown key (the message names line and key).
    #[error("{path}: {message}")]
    Rules {
        /// The rules file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A rule is inconsistent or names something the report lacks.
    #[error("{path}: rule[{index}] ({name}): field `{field}`: {reason}")]
    Rule {
        /// The rules file.
        path: PathBuf,
        /// 0-based index of the rule.
        index: usize,
        /// The rule's name.
        name: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The metric a rule constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleMetric {
    /// Each group's rate of a category.
    Rate,
    /// Largest minus smallest group rate of a category.
    Difference,
    /// Smallest over largest group rate of a category.
    Ratio,
    /// Each group's zero-shot accuracy.
    Accuracy,
    /// Smallest over largest group accuracy.
    AccuracyRatio,
}

/// One `[[rule]]` of a rules file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Shown in the output and the JUnit test case.
    pub name: String,
    /// What is constrained.
    pub metric: RuleMetric,
    /// The category (for `rate`, `difference`, `ratio`).
    #[serde(default)]
    pub category: Option<String>,
    /// The grouping: an attribute or an intersection such as `race*gender`.
    pub by: String,
    /// Upper limit.
    #[serde(default)]
    pub max: Option<f64>,
    /// Lower limit.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest allowed rise over the baseline report (rate units), for `rate` and `accuracy`
    /// (a fall, for accuracy).
    #[serde(default)]
    pub max_increase: Option<f64>,
    /// Judge `max_increase` on the point values alone, even when the intervals overlap.
    #[serde(default)]
    pub ignore_ci: bool,
    /// Only these groups (default: all groups of `by`).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Groups with fewer images are listed as not judged.
    #[serde(default)]
    pub min_group_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rule: Vec<Rule>,
}

/// Reads and checks a rules file (structure only; names are checked against the report later).
pub fn load_rules(path: &Path) -> Result<Vec<Rule>, CheckError> {
    let rules = parse_rules(path)?;
    check_unique_names(path, &rules)?;
    for (index, rule) in rules.iter().enumerate() {
        check_rule(path, index, rule)?;
    }
    Ok(rules)
}

/// Reads and parses a rules file; a file without rules is an error.
fn parse_rules(path: &Path) -> Result<Vec<Rule>, CheckError> {
    let text = crate::input_file::read_regular_text(path).map_err(|e| CheckError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let file: RulesFile = toml::from_str(&text).map_err(|e| CheckError::Rules {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    if file.rule.is_empty() {
        return Err(CheckError::Rules {
            path: path.to_path_buf(),
            message: "no rules: a gate with nothing to check cannot pass (add [[rule]] tables)"
                .into(),
        });
    }
    Ok(file.rule)
}

/// A rule whose name an earlier rule has is an error naming both.
fn check_unique_names(path: &Path, rules: &[Rule]) -> Result<(), CheckError> {
    let mut names = std::collections::BTreeMap::new();
    for (index, rule) in rules.iter().enumerate() {
        if let Some(first) = names.insert(rule.name.as_str(), index) {
            return Err(CheckError::Rule {
                path: path.to_path_buf(),
                index,
                name: rule.name.clone(),
                field: "name",
                reason: format!("the same name as rule[{first}]; rule names must be unique"),
            });
        }
    }
    Ok(())
}

/// Checks that rule `index` is consistent: a category exactly when its metric takes one, at
/// least one limit, `max_increase` only where it applies, limits non-negative numbers.
fn check_rule(path: &Path, index: usize, rule: &Rule) -> Result<(), CheckError> {
    let bad = |field, reason: &str| CheckError::Rule {
        path: path.to_path_buf(),
        index,
        name: rule.name.clone(),
        field,
        reason: reason.to_string(),
    };
    let needs_category = matches!(
        rule.metric,
        RuleMetric::Rate | RuleMetric::Difference | RuleMetric::Ratio
    );
    if needs_category && rule.category.is_none() {
        return Err(bad("category", "required for this metric"));
    }
    if !needs_category && rule.category.is_some() {
        return Err(bad("category", "accuracy rules take no category"));
    }
    if rule.max.is_none() && rule.min.is_none() && rule.max_increase.is_none() {
        return Err(bad("max", "give `max`, `min` or `max_increase`"));
    }
    if rule.max_increase.is_some()
        && !matches!(rule.metric, RuleMetric::Rate | RuleMetric::Accuracy)
    {
        return Err(bad(
            "max_increase",
            "applies to `rate` and `accuracy` rules only",
        ));
    }
    for (field, value) in [
        ("max", rule.max),
        ("min", rule.min),
        ("max_increase", rule.max_increase),
    ] {
        if let Some(v) = value
            && (!v.is_finite() || v < 0.0)
        {
            return Err(bad(field, "must be a non-negative number"));
        }
    }
    Ok(())
}

/// One group's numbers for a rate or accuracy, as read from a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Images in the group (or matched images, for accuracy).
    pub n: u64,
    /// Of those, images predicted into the category (or correct, for accuracy).
    pub count: u64,
    /// The rate or accuracy.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub ci_low: f64,
    /// Upper end of the 95% interval.
    pub ci_high: f64,
}

/// The tables of a report folder that rules are checked against.
#[derive(Debug, Default)]
pub struct ReportTables {
    /// (grouping, category) → group → numbers, in file order.
    pub rates: BTreeMap<(String, String), Vec<(String, Measured)>>,
    /// grouping → group → numbers.
    pub accuracy: BTreeMap<String, Vec<(String, Measured)>>,
    /// The folder.
    pub dir: PathBuf,
}

impl ReportTables {
    /// Reads `groups.csv` (required) and `accuracy.csv` (when present) from a complete report
    /// folder; any value that cannot be right is an error naming the file, row and column.
    pub fn read(dir: &Path) -> Result<Self, CheckError> {
        let kind = crate::report_folder::require_complete(dir)?;
        let groups = dir.join("groups.csv");
        if let Some(kind @ ("retrieval" | "compare")) = kind.as_deref() {
            return Err(CheckError::File {
                path: groups,
                reason: format!(
                    "missing: this is a `{kind}` report; group rates are in the reports of `run` \
                     and `aggregate`"
                ),
            });
        }
        if !groups.is_file() {
            return Err(CheckError::File {
                path: groups,
                reason: "missing: not a clip-audit report folder".into(),
            });
        }
        let rates = read_rates(&groups)?;
        let accuracy = dir.join("accuracy.csv");
        let accuracy = if accuracy.exists() {
            read_accuracy(&accuracy)?
        } else {
            BTreeMap::new()
        };
        Ok(ReportTables {
            rates,
            accuracy,
            dir: dir.to_path_buf(),
        })
    }
}

/// `groups.csv`: (grouping, category) → group → numbers; a group listed twice is an error.
fn read_rates(path: &Path) -> Result<BTreeMap<(String, String), Groups>, CheckError> {
    let mut rates: BTreeMap<(String, String), Groups> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (row, fields) in read_rows(path, &GROUPS_HEADER)? {
        let cell = Cell {
            path,
            row,
            fields: &fields,
        };
        let measured = cell.measured("count", "rate")?;
        let key = (
            fields["attribute"].clone(),
            fields["category"].clone(),
            fields["group"].clone(),
        );
        if !seen.insert(key) {
            return Err(cell.bad("group", "the same attribute, category and group twice"));
        }
        rates
            .entry((fields["attribute"].clone(), fields["category"].clone()))
            .or_default()
            .push((fields["group"].clone(), measured));
    }
    Ok(rates)
}

/// `accuracy.csv`: grouping → group → numbers; a group listed twice is an error.
fn read_accuracy(path: &Path) -> Result<BTreeMap<String, Groups>, CheckError> {
    let mut accuracy: BTreeMap<String, Groups> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (row, fields) in read_rows(path, &ACCURACY_HEADER)? {
        let cell = Cell {
            path,
            row,
            fields: &fields,
        };
        let measured = cell.measured("correct", "accuracy")?;
        if !seen.insert((fields["attribute"].clone(), fields["group"].clone())) {
            return Err(cell.bad("group", "the same attribute and group twice"));
        }
        accuracy
            .entry(fields["attribute"].clone())
            .or_default()
            .push((fields["group"].clone(), measured));
    }
    Ok(accuracy)
}

/// One data row of a report table: column → cell.
type Row = BTreeMap<String, String>;

/// Reads a report table as (1-based data row, column → cell); a missing column, a row with the
/// wrong number of fields or a file that is not a regular file is an error.
fn read_rows(path: &Path, required: &[&str]) -> Result<Vec<(usize, Row)>, CheckError> {
    let err = |reason: String| CheckError::File {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = crate::input_file::read_regular_file(path, 1 << 30, "limit for report tables")
        .map_err(|e| err(e.to_string()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    for column in required {
        if !header.iter().any(|h| h == column) {
            return Err(err(format!(
                "no column `{column}` (has: {})",
                header.join(",")
            )));
        }
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(format!("row {}: {e}", i + 1)))?;
        rows.push((
            i + 1,
            header
                .iter()
                .cloned()
                .zip(
                    record
                        .iter()
                        .map(|c| crate::csv_cell::restore(c).to_string()),
                )
                .collect(),
        ));
    }
    if rows.is_empty() {
        return Err(err("no data rows".into()));
    }
    Ok(rows)
}

/// One data row of a report table, for strict number parsing with row and column in errors.
struct Cell<'a> {
    path: &'a Path,
    row: usize,
    fields: &'a BTreeMap<String, String>,
}

impl Cell<'_> {
    fn bad(&self, column: &str, reason: impl Into<String>) -> CheckError {
        CheckError::Value {
            path: self.path.to_path_buf(),
            row: self.row,
            column: column.to_string(),
            reason: reason.into(),
        }
    }

    /// A count: a non-negative integer written without sign, exponent or fraction.
    fn count(&self, column: &str) -> Result<u64, CheckError> {
        let text = &self.fields[column];
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.bad(
                column,
                format!("{text:?} is not a count (expected a non-negative integer)"),
            ));
        }
        text.parse()
            .map_err(|_| self.bad(column, format!("{text:?} is too large")))
    }

    /// A proportion: a finite number in [0, 1].
    fn proportion(&self, column: &str) -> Result<f64, CheckError> {
        let text = &self.fields[column];
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok(v),
            _ => Err(self.bad(
                column,
                format!("{text:?} is not a proportion (expected a finite number in [0, 1])"),
            )),
        }
    }

    /// The numbers of a rate (`count_column` of `n`) or accuracy row, checked for consistency.
    fn measured(&self, count_column: &str, value_column: &str) -> Result<Measured, CheckError> {
        let n = self.count("n")?;
        let count = self.count(count_column)?;
        if count > n {
            return Err(self.bad(count_column, format!("{count} is larger than n = {n}")));
        }
        let value = self.proportion(value_column)?;
        let expected = if n == 0 { 0.0 } else { count as f64 / n as f64 };
        if (value - expected).abs() > 1e-9 {
            return Err(self.bad(
                value_column,
                format!("{value} is not {count_column} / n = {count} / {n}"),
            ));
        }
        let (ci_low, ci_high) = (self.proportion("ci_low")?, self.proportion("ci_high")?);
        if n > 0 && !(ci_low <= value + 1e-12 && value <= ci_high + 1e-12) {
            return Err(self.bad(
                "ci_low",
                format!("the interval [{ci_low}, {ci_high}] does not contain {value}"),
            ));
        }
        Ok(Measured {
            n,
            count,
            value,
            ci_low,
            ci_high,
        })
    }
}

/// The outcome for one group (or one whole-grouping number) under one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The rule's name.
    pub rule: String,
    /// The group, or `*` for a whole-grouping metric (difference, ratio).
    pub group: String,
    /// The measured value (or the rise over the baseline, for `max_increase`).
    pub value: Option<f64>,
    /// The limit, e.g. `<= 0.2`.
    pub limit: String,
    /// `pass`, `fail` or `not judged`.
    pub verdict: Outcome,
    /// Why (for not-judged groups and interval decisions).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The limit holds.
    Pass,
    /// The limit is broken.
    Fail,
    /// The group is too small to judge (`min_group_size`).
    NotJudged,
}

impl Outcome {
    /// The word used in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotJudged => "not judged",
        }
    }
}

/// Evaluates every rule; `baseline` is needed by rules with `max_increase`.
pub fn evaluate(
    rules_path: &Path,
    rules: &[Rule],
    report: &ReportTables,
    baseline: Option<&ReportTables>,
) -> Result<Vec<Verdict>, CheckError> {
    let mut out = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let at = RuleAt {
            path: rules_path,
            index,
            rule,
        };
        let groups = at.selected_groups(report)?;
        // a group without images has no rate to judge, whatever min_group_size says
        let min_size = rule.min_group_size.unwrap_or(0).max(1);
        let (judged, small): (Vec<_>, Vec<_>) =
            groups.into_iter().partition(|(_, m)| m.n >= min_size);
        let mut verdicts: Vec<Verdict> = small
            .iter()
            .map(|(group, m)| Verdict {
                rule: rule.name.clone(),
                group: group.clone(),
                value: Some(m.value),
                limit: format!("n >= {min_size}"),
                verdict: Outcome::NotJudged,
                note: format!("only {} images", m.n),
            })
            .collect();
        match rule.metric {
            RuleMetric::Rate | RuleMetric::Accuracy => {
                verdicts.extend(judge_each_group(rule, &judged));
                if let Some(max_increase) = rule.max_increase {
                    verdicts.extend(at.judge_rise(&judged, baseline, max_increase)?);
                }
            }
            RuleMetric::Difference | RuleMetric::Ratio | RuleMetric::AccuracyRatio => {
                verdicts.extend(judge_spread(rule, &judged));
            }
        }
        at.require_judged(&verdicts)?;
        out.extend(verdicts);
    }
    Ok(out)
}

/// One rule with its place in the rules file, for lookups and errors that name it.
struct RuleAt<'a> {
    path: &'a Path,
    index: usize,
    rule: &'a Rule,
}

impl RuleAt<'_> {
    fn bad(&self, field: &'static str, reason: String) -> CheckError {
        CheckError::Rule {
            path: self.path.to_path_buf(),
            index: self.index,
            name: self.rule.name.clone(),
            field,
            reason,
        }
    }

    fn is_accuracy(&self) -> bool {
        matches!(
            self.rule.metric,
            RuleMetric::Accuracy | RuleMetric::AccuracyRatio
        )
    }

    /// The groups of the rule's grouping (and category) in `tables`; `which` names the report
    /// ("checked", "baseline") in errors.
    fn lookup(&self, tables: &ReportTables, which: &str) -> Result<Groups, CheckError> {
        let rule = self.rule;
        let found = if self.is_accuracy() {
            tables.accuracy.get(&rule.by).cloned()
        } else {
            let category = rule.category.clone().unwrap_or_default();
            if !tables.rates.keys().any(|(_, c)| *c == category) {
                let known: BTreeSet<&str> = tables.rates.keys().map(|(_, c)| c.as_str()).collect();
                return Err(self.bad(
                    "category",
                    format!(
                        "the {which} report has no category {category:?} (has: {})",
                        join(known)
                    ),
                ));
            }
            tables.rates.get(&(rule.by.clone(), category)).cloned()
        };
        found.ok_or_else(|| {
            let (kind, known): (&str, BTreeSet<&str>) = if self.is_accuracy() {
                (
                    "accuracy",
                    tables.accuracy.keys().map(String::as_str).collect(),
                )
            } else {
                (
                    "rates",
                    tables.rates.keys().map(|(a, _)| a.as_str()).collect(),
                )
            };
            self.bad(
                "by",
                format!(
                    "the {which} report has no {kind} by {:?} (has: {})",
                    rule.by,
                    join(known)
                ),
            )
        })
    }

    /// The checked report's groups, restricted to the rule's `groups` (each must exist).
    fn selected_groups(&self, report: &ReportTables) -> Result<Groups, CheckError> {
        let mut groups = self.lookup(report, "checked")?;
        if let Some(wanted) = &self.rule.groups {
            for g in wanted {
                if !groups.iter().any(|(name, _)| name == g) {
                    let known: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(self.bad(
                        "groups",
                        format!(
                            "no group {g:?} by {} (has: {})",
                            self.rule.by,
                            known.join(", ")
                        ),
                    ));
                }
            }
            groups.retain(|(name, _)| wanted.contains(name));
        }
        Ok(groups)
    }

    /// `max_increase`: each judged group's rise over the baseline, failing only when the 95%
    /// intervals do not overlap (unless `ignore_ci`).
    fn judge_rise(
        &self,
        judged: &[(String, Measured)],
        baseline: Option<&ReportTables>,
        max_increase: f64,
    ) -> Result<Vec<Verdict>, CheckError> {
        let rule = self.rule;
        let baseline = baseline.ok_or_else(|| {
            self.bad(
                "max_increase",
                "needs a baseline report: pass --against DIR".into(),
            )
        })?;
        let before = self.lookup(baseline, "baseline")?;
        let limit = format!("rise <= {max_increase}");
        let mut out = Vec::new();
        for (group, now) in judged {
            let Some((_, then)) = before.iter().find(|(g, m)| g == group && m.n > 0) else {
                out.push(Verdict {
                    rule: rule.name.clone(),
                    group: group.clone(),
                    value: None,
                    limit: limit.clone(),
                    verdict: Outcome::NotJudged,
                    note: "group absent from the baseline report, or without images there".into(),
                });
                continue;
            };
            out.push(rise_verdict(rule, group, now, then, &limit, max_increase));
        }
        Ok(out)
    }

    /// A rule none of whose verdicts was judged cannot pass: an error naming it.
    fn require_judged(&self, verdicts: &[Verdict]) -> Result<(), CheckError> {
        if verdicts.iter().any(|v| v.verdict != Outcome::NotJudged) {
            return Ok(());
        }
        let reason = verdicts
            .first()
            .map_or("the rule has no limit that applies".to_string(), |v| {
                v.note.clone()
            });
        Err(CheckError::NothingJudged {
            path: self.path.to_path_buf(),
            index: self.index,
            name: self.rule.name.clone(),
            reason: format!("{reason}; a rule with no judged group cannot pass"),
        })
    }
}

/// A grouping's groups with their numbers, in file order.
type Groups = Vec<(String, Measured)>;

/// The rule's `max` and `min` applied to `value`: (limit text, holds).
fn bounds(rule: &Rule, value: f64) -> Vec<(String, bool)> {
    let mut checks = Vec::new();
    if let Some(max) = rule.max {
        checks.push((format!("<= {max}"), value <= max));
    }
    if let Some(min) = rule.min {
        checks.push((format!(">= {min}"), value >= min));
    }
    checks
}

/// One group's rise over its baseline (a fall, for accuracy) against `max_increase`: it fails
/// only when the 95% intervals do not overlap, unless the rule says `ignore_ci`.
fn rise_verdict(
    rule: &Rule,
    group: &str,
    now: &Measured,
    then: &Measured,
    limit: &str,
    max_increase: f64,
) -> Verdict {
    let rise = if rule.metric == RuleMetric::Rate {
        now.value - then.value
    } else {
        then.value - now.value
    };
    let overlap = now.ci_low <= then.ci_high && then.ci_low <= now.ci_high;
    let exceeded = rise > max_increase + 1e-12;
    let fails = exceeded && (rule.ignore_ci || !overlap);
    let note = if exceeded && overlap && !rule.ignore_ci {
        format!(
            "rise exceeds the limit but the 95% intervals overlap ({:.4}–{:.4} vs \
             baseline {:.4}–{:.4})",
            now.ci_low, now.ci_high, then.ci_low, then.ci_high
        )
    } else {
        format!("baseline {:.4}, now {:.4}", then.value, now.value)
    };
    verdict(rule, group, Some(rise), limit.to_string(), !fails, note)
}

/// `rate` and `accuracy`: every judged group against `max`/`min`.
fn judge_each_group(rule: &Rule, judged: &[(String, Measured)]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for (group, m) in judged {
        for (limit, ok) in bounds(rule, m.value) {
            out.push(verdict(
                rule,
                group,
                Some(m.value),
                limit,
                ok,
                String::new(),
            ));
        }
    }
    out
}

/// `difference`, `ratio`, `accuracy_ratio`: one number over the judged groups (max − min or
/// min / max), not judged with fewer than two groups.
fn judge_spread(rule: &Rule, judged: &[(String, Measured)]) -> Vec<Verdict> {
    if judged.len() < 2 {
        return vec![Verdict {
            rule: rule.name.clone(),
            group: "*".into(),
            value: None,
            limit: String::new(),
            verdict: Outcome::NotJudged,
            note: "fewer than two judged groups".into(),
        }];
    }
    let hi = judged
        .iter()
        .map(|(_, m)| m.value)
        .fold(f64::NEG_INFINITY, f64::max);
    let lo = judged
        .iter()
        .map(|(_, m)| m.value)
        .fold(f64::INFINITY, f64::min);
    let name = |v: f64| {
        judged
            .iter()
            .find(|(_, m)| m.value == v)
            .map_or(String::new(), |(g, _)| g.clone())
    };
    let note = format!("max {} ({hi:.4}), min {} ({lo:.4})", name(hi), name(lo));
    let value = match rule.metric {
        RuleMetric::Difference => hi - lo,
        _ if hi > 0.0 => lo / hi,
        _ => 1.0,
    };
    bounds(rule, value)
        .into_iter()
        .map(|(limit, ok)| verdict(rule, "*", Some(value), limit, ok, note.clone()))
        .collect()
}

fn verdict(
    rule: &Rule,
    group: &str,
    value: Option<f64>,
    limit: String,
    ok: bool,
    note: String,
) -> Verdict {
    Verdict {
        rule: rule.name.clone(),
        group: group.to_string(),
        value,
        limit,
        verdict: if ok { Outcome::Pass } else { Outcome::Fail },
        note,
    }
}

fn join(items: BTreeSet<&str>) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// Whether every verdict passed (not-judged groups do not fail a rule).
pub fn all_pass(verdicts: &[Verdict]) -> bool {
    verdicts.iter().all(|v| v.verdict != Outcome::Fail)
}

/// A people-readable table of verdicts.
pub fn render_table(verdicts: &[Verdict]) -> String {
    let mut rows = vec![[
        "rule".to_string(),
        "group".into(),
        "value".into(),
        "limit".into(),
        "verdict".into(),
        "note".into(),
    ]];
    for v in verdicts {
        rows.push([
            v.rule.clone(),
            v.group.clone(),
            v.value.map_or("–".into(), |x| format!("{x:.4}")),
            v.limit.clone(),
            v.verdict.as_str().to_uppercase(),
            v.note.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// JUnit XML: one test case per rule; failures carry the offending groups and values.
pub fn render_junit(rules: &[Rule], verdicts: &[Verdict]) -> String {
    let failures = rules
        .iter()
        .filter(|r| {
            verdicts
                .iter()
                .any(|v| v.rule == r.name && v.verdict == Outcome::Fail)
        })
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"clip-audit check\" tests=\"{}\" failures=\"{failures}\">\n",
        rules.len()
    );
    for rule in rules {
        out.push_str(&junit_testcase(rule, verdicts));
    }
    out.push_str("</testsuite>\n</testsuites>\n");
    out
}

/// One rule's JUnit test case: its failed groups as a failure, its not-judged groups as output.
fn junit_testcase(rule: &Rule, verdicts: &[Verdict]) -> String {
    let mine: Vec<&Verdict> = verdicts.iter().filter(|v| v.rule == rule.name).collect();
    let mut out = format!(
        "  <testcase classname=\"clip-audit\" name=\"{}\">\n",
        xml(&rule.name)
    );
    let failed: Vec<&&Verdict> = mine.iter().filter(|v| v.verdict == Outcome::Fail).collect();
    if !failed.is_empty() {
        let lines: Vec<String> = failed
            .iter()
            .map(|v| {
                format!(
                    "{}: {} (limit {}) {}",
                    v.group,
                    v.value.map_or("–".into(), |x| format!("{x:.4}")),
                    v.limit,
                    v.note
                )
            })
            .collect();
        out.push_str(&format!(
            "    <failure message=\"{} group(s) outside the limit\">{}</failure>\n",
            failed.len(),
            xml(&lines.join("\n"))
        ));
    }
    let skipped: Vec<String> = mine
        .iter()
        .filter(|v| v.verdict == Outcome::NotJudged)
        .map(|v| format!("{}: {}", v.group, v.note))
        .collect();
    if !skipped.is_empty() {
        out.push_str(&format!(
            "    <system-out>not judged: {}</system-out>\n",
            xml(&skipped.join("; "))
        ));
    }
    out.push_str("  </testcase>\n");
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
