//! `metrics.json`: every number of the report, machine-readable, with stable keys in a fixed
//! order (structs and `BTreeMap`s only) so identical inputs give identical bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Artefact, ChartCache, ExportError, Exporter, Report};
use crate::metrics::{
    Attribute, CategoryInfo, Disparity, Findings, GroupAccuracy, GroupRate, PerTemplate,
};

/// Writes `metrics.json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

/// Version of the `metrics.json` layout; bumped when a key changes meaning or disappears.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct MetricsFile<'a> {
    format_version: u32,
    probe: Probe<'a>,
    model: &'a str,
    /// How probabilities were computed (absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<&'a str>,
    dataset: &'a str,
    n: u64,
    categories: &'a [CategoryInfo],
    attributes: &'a [Attribute],
    groupings: Vec<GroupingEntry<'a>>,
    rates: &'a [GroupRate],
    accuracy: &'a [GroupAccuracy],
    disparities: &'a [Disparity],
    empty_groups: &'a BTreeMap<String, Vec<String>>,
    reference_groups: &'a BTreeMap<String, String>,
    skipped: u64,
    /// The rates under each template alone and their spread (`run --per-template` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    per_template: Option<&'a PerTemplate>,
    /// Disparities outside the ratio band and significant after the Holm adjustment.
    findings: &'a Findings,
}

#[derive(Serialize)]
struct Probe<'a> {
    name: &'a str,
    hash: &'a str,
}

#[derive(Serialize)]
struct GroupingEntry<'a> {
    name: &'a str,
    attributes: Vec<&'a str>,
}

impl Exporter for JsonExporter {
    fn render(&self, report: &Report, _: &ChartCache) -> Result<Vec<Artefact>, ExportError> {
        let (context, metrics) = (report.context, report.metrics);
        let file = MetricsFile {
            format_version: FORMAT_VERSION,
            probe: Probe {
                name: &context.probe_name,
                hash: &context.probe_hash,
            },
            model: &context.model,
            scores: context.scores.as_deref(),
            dataset: &context.dataset,
            n: metrics.n,
            categories: &context.categories,
            attributes: &context.attributes,
            groupings: context
                .groupings
                .iter()
                .map(|g| GroupingEntry {
                    name: &g.name,
                    attributes: g
                        .attributes
                        .iter()
                        .filter_map(|&i| context.attributes.get(i).map(|a| a.name.as_str()))
                        .collect(),
                })
                .collect(),
            rates: &metrics.rates,
            accuracy: &metrics.accuracy,
            disparities: &metrics.disparities,
            empty_groups: &metrics.empty_groups,
            reference_groups: &metrics.reference_groups,
            skipped: context.skipped_count(),
            per_template: context.per_template.as_ref(),
            findings: &metrics.findings,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|source| ExportError::Json {
            path: PathBuf::from("metrics.json"),
            source,
        })?;
        bytes.push(b'\n');
        Ok(vec![Artefact::new("metrics.json", bytes)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;
    use serde_json::Value;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn round_trip_and_stable_keys() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let dir = tempfile::tempdir().unwrap();
        let files = JsonExporter.write(&report, dir.path()).unwrap();
        let text = std::fs::read_to_string(&files[0]).unwrap();
        // pretty-printed, keys in declaration order (serde_json's `preserve_order` is not needed
        // for that: structs serialise their fields in order)
        assert!(text.starts_with("{\n  \"format_version\": 1,\n  \"probe\": {\n"));
        let v: Value = serde_json::from_str(&text).unwrap();
        let top: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim_start().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            top,
            [
                "format_version",
                "probe",
                "model",
                "dataset",
                "n",
                "categories",
                "attributes",
                "groupings",
                "rates",
                "accuracy",
                "disparities",
                "empty_groups",
                "reference_groups",
                "skipped",
                "findings"
            ]
        );
        assert_eq!(v["probe"]["hash"], "sha256:0123456789abcdef");
        assert_eq!(v["n"], metrics.n);
        assert_eq!(v["skipped"], 2);
        assert_eq!(v["groupings"][2]["name"], "race*gender");
        assert_eq!(v["groupings"][2]["attributes"][1], "gender");
        let rates = v["rates"].as_array().unwrap();
        assert_eq!(rates.len(), metrics.rates.len());
        let mut rate_keys = keys(&rates[0]);
        rate_keys.sort_unstable();
        assert_eq!(
            rate_keys,
            [
                "attribute",
                "category",
                "ci_high",
                "ci_low",
                "count",
                "group",
                "n",
                "rate"
            ]
        );
        for (j, r) in rates.iter().zip(&metrics.rates) {
            assert_eq!(j["count"], r.count);
            let rate = j["rate"].as_f64().unwrap();
            assert!(
                (rate - r.rate).abs() <= 1e-15 * r.rate.max(1.0),
                "{rate} vs {}",
                r.rate
            );
        }
        let d = v["disparities"].as_array().unwrap();
        assert_eq!(d.len(), metrics.disparities.len());
        assert!(d.iter().all(|x| x["flagged"].is_boolean()));
        assert!(d.iter().any(|x| x["metric"] == "ratio_to_reference"));
        assert_eq!(v["empty_groups"]["race*gender"][0], "East Asian*Female");
        assert_eq!(
            v["reference_groups"]["gender"],
            metrics.reference_groups["gender"].as_str()
        );
        assert_eq!(
            v["accuracy"].as_array().unwrap().len(),
            metrics.accuracy.len()
        );
    }

    #[test]
    fn deterministic_bytes() {
        let (context, metrics) = testdata::sample();
        let report = Report {
            context: &context,
            metrics: &metrics,
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let fa = JsonExporter.write(&report, a.path()).unwrap();
        let fb = JsonExporter.write(&report, b.path()).unwrap();
        assert_eq!(
            std::fs::read(&fa[0]).unwrap(),
            std::fs::read(&fb[0]).unwrap()
        );
    }
}
