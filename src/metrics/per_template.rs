//! Prompt sensitivity (`run --per-template`): the rates under each template of the probe on its
//! own, and their spread (min, median, max) across templates beside the ensemble's rate.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AuditMetrics, GroupRate};

/// The rates of every template of the probe, each counted as a one-template probe would count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerTemplate {
    /// One entry per template, in the probe's order.
    pub templates: Vec<TemplateRates>,
    /// Per grouping, group and category (the ensemble's row order): the spread across templates.
    pub spread: Vec<RateSpread>,
}

/// The rates under one template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateRates {
    /// The template as written in the probe (with `{label}`).
    pub template: String,
    /// Rates in the same order as [`AuditMetrics::rates`].
    pub rates: Vec<GroupRate>,
}

/// How one rate varies across templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateSpread {
    /// Grouping name.
    pub attribute: String,
    /// Group.
    pub group: String,
    /// Category name.
    pub category: String,
    /// Images in the group.
    pub n: u64,
    /// The rate under the ensemble of all templates.
    pub ensemble: f64,
    /// The lowest rate of any single template.
    pub min: f64,
    /// The first template (probe order) giving `min`.
    pub min_template: String,
    /// The median of the templates' rates (mean of the middle two for an even count).
    pub median: f64,
    /// The highest rate of any single template.
    pub max: f64,
    /// The first template (probe order) giving `max`.
    pub max_template: String,
}

impl PerTemplate {
    /// Collects each template's metrics (probe order) and the spread around `ensemble`'s rates.
    pub fn new(ensemble: &AuditMetrics, templates: Vec<(String, AuditMetrics)>) -> Self {
        let templates: Vec<TemplateRates> = templates
            .into_iter()
            .map(|(template, metrics)| TemplateRates {
                template,
                rates: metrics.rates,
            })
            .collect();
        let lookup: Vec<(RateIndex, &str)> = templates
            .iter()
            .map(|t| {
                let index = t.rates.iter().map(|r| (key(r), r.rate)).collect();
                (index, t.template.as_str())
            })
            .collect();
        let spread = ensemble
            .rates
            .iter()
            .filter_map(|rate| spread_of(rate, &lookup))
            .collect();
        Self { templates, spread }
    }
}

/// A template's rates by (grouping, group, category).
type RateIndex = BTreeMap<(String, String, String), f64>;

/// The key of a rate's cell.
fn key(r: &GroupRate) -> (String, String, String) {
    (r.attribute.clone(), r.group.clone(), r.category.clone())
}

/// The spread of `rate`'s cell across the templates (`None` without templates).
fn spread_of(rate: &GroupRate, templates: &[(RateIndex, &str)]) -> Option<RateSpread> {
    let wanted = key(rate);
    // group sizes do not depend on predictions, so every template has the ensemble's cells
    let values: Vec<(f64, &str)> = templates
        .iter()
        .filter_map(|(index, template)| index.get(&wanted).map(|&v| (v, *template)))
        .collect();
    let first = values.first()?;
    let (mut min, mut max) = (*first, *first);
    for &v in &values[1..] {
        if v.0 < min.0 {
            min = v;
        }
        if v.0 > max.0 {
            max = v;
        }
    }
    let mut sorted: Vec<f64> = values.iter().map(|v| v.0).collect();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    };
    Some(RateSpread {
        attribute: rate.attribute.clone(),
        group: rate.group.clone(),
        category: rate.category.clone(),
        n: rate.n,
        ensemble: rate.rate,
        min: min.0,
        min_template: min.1.to_string(),
        median,
        max: max.0,
        max_template: max.1.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(counts: &[u64]) -> AuditMetrics {
        AuditMetrics {
            n: 10,
            rates: counts
                .iter()
                .enumerate()
                .map(|(i, &count)| GroupRate {
                    attribute: "race".into(),
                    group: format!("g{i}"),
                    category: "crime".into(),
                    n: 10,
                    count,
                    rate: count as f64 / 10.0,
                    ci_low: 0.0,
                    ci_high: 1.0,
                })
                .collect(),
            accuracy: Vec::new(),
            disparities: Vec::new(),
            empty_groups: BTreeMap::new(),
            reference_groups: BTreeMap::new(),
            findings: Default::default(),
        }
    }

    #[test]
    fn hand_computed_spread() {
        let ensemble = metrics(&[2, 5]);
        let per = PerTemplate::new(
            &ensemble,
            vec![
                ("a {label}".into(), metrics(&[1, 5])),
                ("b {label}".into(), metrics(&[4, 5])),
                ("c {label}".into(), metrics(&[1, 7])),
                ("d {label}".into(), metrics(&[3, 6])),
            ],
        );
        assert_eq!(per.templates.len(), 4);
        let g0 = &per.spread[0];
        assert_eq!((g0.min, g0.max, g0.ensemble), (0.1, 0.4, 0.2));
        // the first template wins ties: a and c both give 0.1
        assert_eq!(
            (g0.min_template.as_str(), g0.max_template.as_str()),
            ("a {label}", "b {label}")
        );
        // sorted 0.1 0.1 0.3 0.4: median (0.1 + 0.3) / 2
        assert_eq!(g0.median, (0.1 + 0.3) / 2.0);
        let g1 = &per.spread[1];
        assert_eq!((g1.min, g1.median, g1.max), (0.5, (0.5 + 0.6) / 2.0, 0.7));
        let odd = PerTemplate::new(
            &ensemble,
            vec![
                ("x".into(), metrics(&[1, 1])),
                ("y".into(), metrics(&[9, 2])),
                ("z".into(), metrics(&[3, 3])),
            ],
        );
        assert_eq!(odd.spread[0].median, 0.3);
    }
}
