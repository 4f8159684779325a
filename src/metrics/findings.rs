//! The report's findings: every group whose rate of a category, compared with its grouping's
//! reference group, is both outside the [0.8, 1.25] ratio band and significant after the
//! Holm–Bonferroni adjustment over all of the report's tests, ordered by effect size, each with
//! one plain sentence quoting its numbers.

use serde::Serialize;

use super::disparity::RatioBand;
use super::{AuditMetrics, DisparityMetric, GroupRate};

/// The findings of a report and what they were judged against.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    /// The family-wise significance level the adjusted p-values are compared with.
    pub alpha: f64,
    /// The ratios of rates counted as parity; a finding's ratio is outside them.
    pub band: RatioBand,
    /// How many tests the Holm adjustment covered (every p-value in `disparities.csv`).
    pub tests: usize,
    /// The findings, largest effect first.
    pub items: Vec<Finding>,
}

/// One disparity that is outside the ratio band and significant after adjustment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Grouping name (`race`, `race*gender`).
    pub attribute: String,
    /// Category.
    pub category: String,
    /// The group the finding is about.
    pub group: String,
    /// The grouping's reference group.
    pub reference_group: String,
    /// The group's rate of the category, with its count, size and 95% Wilson interval.
    pub rate: GroupRate,
    /// The reference group's rate of the category.
    pub reference_rate: GroupRate,
    /// `rate / reference_rate`; `None` when the reference's rate is 0.
    pub ratio: Option<f64>,
    /// Raw p-value of the two-proportion z-test.
    pub p_value: f64,
    /// Holm-adjusted p-value.
    pub p_adjusted: f64,
    /// The finding as one plain sentence.
    pub sentence: String,
}

impl Finding {
    /// Effect size for ordering: `|ln ratio|`, infinite when either rate is 0.
    fn effect(&self) -> f64 {
        match self.ratio {
            Some(r) if r > 0.0 => r.ln().abs(),
            _ => f64::INFINITY,
        }
    }

    /// The absolute difference of the two rates (breaks ties of [`Self::effect`]).
    fn difference(&self) -> f64 {
        (self.rate.rate - self.reference_rate.rate).abs()
    }
}

/// Collects the findings of `metrics`, whose disparities already carry adjusted p-values from a
/// family of `tests` tests; a finding's ratio is outside `band`.
pub fn collect(metrics: &AuditMetrics, alpha: f64, band: RatioBand, tests: usize) -> Findings {
    let mut items: Vec<Finding> = metrics
        .disparities
        .iter()
        .filter(|d| d.metric == DisparityMetric::RatioToReference)
        .filter(|d| d.value.is_none_or(|v| band.outside(v)))
        .filter_map(|d| {
            let (p_value, p_adjusted) = (d.p_value?, d.p_adjusted?);
            if p_adjusted > alpha {
                return None;
            }
            let rate = find_rate(metrics, &d.attribute, &d.group, &d.category)?;
            let reference = find_rate(metrics, &d.attribute, &d.reference_group, &d.category)?;
            let mut finding = Finding {
                attribute: d.attribute.clone(),
                category: d.category.clone(),
                group: d.group.clone(),
                reference_group: d.reference_group.clone(),
                rate: rate.clone(),
                reference_rate: reference.clone(),
                ratio: d.value,
                p_value,
                p_adjusted,
                sentence: String::new(),
            };
            finding.sentence = sentence(&finding);
            Some(finding)
        })
        .collect();
    // stable: equal effects keep the disparities' order (groupings, categories, groups)
    items.sort_by(|a, b| {
        b.effect()
            .total_cmp(&a.effect())
            .then(b.difference().total_cmp(&a.difference()))
    });
    Findings {
        alpha,
        band,
        tests,
        items,
    }
}

fn find_rate<'a>(
    metrics: &'a AuditMetrics,
    attribute: &str,
    group: &str,
    category: &str,
) -> Option<&'a GroupRate> {
    metrics
        .rates
        .iter()
        .find(|r| r.attribute == attribute && r.group == group && r.category == category)
}

/// A group name for people: `Black*Female` → `Black × Female`.
pub fn group_label(group: &str) -> String {
    group.replace('*', " × ")
}

/// `a` or `an` before `word`.
fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// A rate as a percentage with one decimal (`0.164` → `16.4`), as the sentences and the report
/// tables write it.
pub fn pct(rate: f64) -> String {
    format!("{:.1}", rate * 100.0)
}

/// A p-value: three significant digits, scientific notation below 0.001.
pub fn p_text(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// "Faces labelled Black were sent to a non-human label 8.0% of the time (95% CI 6.3–10.1),
/// 4.00× the rate for White faces (2.0%, 1.4–2.9; Holm-adjusted p = 1.2e-9)."
fn sentence(f: &Finding) -> String {
    let (r, x) = (&f.rate, &f.reference_rate);
    let head = format!(
        "Faces labelled {} were sent to {} {} label {}% of the time (95% CI {}–{})",
        group_label(&f.group),
        article(&f.category),
        f.category,
        pct(r.rate),
        pct(r.ci_low),
        pct(r.ci_high)
    );
    let reference = format!(
        "{}%, {}–{}; Holm-adjusted p = {}",
        pct(x.rate),
        pct(x.ci_low),
        pct(x.ci_high),
        p_text(f.p_adjusted)
    );
    match f.ratio {
        Some(ratio) => format!(
            "{head}, {ratio:.2}× the rate for {} faces ({reference}).",
            group_label(&f.reference_group)
        ),
        None => format!(
            "{head}, while {} faces never were ({reference}).",
            group_label(&f.reference_group)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CategoryInfo, Grouping, MetricsAccumulator, MetricsSetup};
    use super::*;
    use crate::metrics::Attribute;
    use std::collections::BTreeMap;

    /// race: White 400 (2% non-human), Black 200 (8%), Asian 200 (2.5%), Tiny 10 (20%).
    fn metrics() -> AuditMetrics {
        metrics_with(RatioBand::default())
    }

    /// [`metrics`] judged against `band`.
    fn metrics_with(band: RatioBand) -> AuditMetrics {
        let attributes = vec![Attribute {
            name: "race".into(),
            values: ["White", "Black", "Asian", "Tiny"]
                .map(String::from)
                .to_vec(),
        }];
        let setup = MetricsSetup {
            groupings: vec![Grouping::new(&["race"], &attributes).unwrap()],
            attributes,
            categories: vec![
                CategoryInfo {
                    name: "human".into(),
                    harmful: false,
                },
                CategoryInfo {
                    name: "non-human".into(),
                    harmful: true,
                },
            ],
            class_category: vec![0, 1],
            class_matches: vec![vec![], vec![]],
            reference: BTreeMap::new(),
            alpha: Default::default(),
            band,
        };
        let mut acc = MetricsAccumulator::new(setup);
        for (race, n, harmful) in [("White", 400, 8), ("Black", 200, 16), ("Asian", 200, 5)]
            .into_iter()
            .chain([("Tiny", 10, 2)])
        {
            for i in 0..n {
                acc.add(&[race.to_string()], usize::from(i < harmful))
                    .unwrap();
            }
        }
        acc.finish()
    }

    #[test]
    fn only_outside_the_band_and_significant_after_holm() {
        let m = metrics();
        let f = &m.findings;
        // 3 z-tests per category (Black, Asian, Tiny vs White) × 2 categories + 1 chi-square
        assert_eq!(f.tests, 7);
        assert_eq!(f.alpha, 0.05);
        // Asian 2.5% is 1.25× White's 2% (inside the band); Black 8% is 4× (z = 3.53, raw
        // p = 4.1e-4, 7 tests: adjusted ≤ 0.003); Tiny's 2 of 10 is 10× (z = 3.64): both found
        let groups: Vec<(&str, &str)> = f
            .items
            .iter()
            .map(|x| (x.group.as_str(), x.category.as_str()))
            .collect();
        assert_eq!(groups, [("Tiny", "non-human"), ("Black", "non-human")]);
        assert!(!groups.iter().any(|(g, _)| *g == "Asian"), "{groups:?}");
        for x in &f.items {
            assert!(
                x.p_adjusted <= 0.05 && x.ratio.is_none_or(|r| RatioBand::default().outside(r))
            );
            assert!(x.p_adjusted >= x.p_value);
        }
        // ordered by |ln ratio|: Tiny (10×) before Black (4×)
        let effects: Vec<f64> = f.items.iter().map(Finding::effect).collect();
        assert!(effects.windows(2).all(|w| w[0] >= w[1]), "{effects:?}");
        let black = f.items.iter().find(|x| x.group == "Black").unwrap();
        assert_eq!(black.ratio, Some(4.0));
        assert!(
            black.sentence.starts_with(
                "Faces labelled Black were sent to a non-human label 8.0% of the time (95% CI "
            ),
            "{}",
            black.sentence
        );
        assert!(
            black
                .sentence
                .contains(", 4.00× the rate for White faces (2.0%, "),
            "{}",
            black.sentence
        );
    }

    #[test]
    fn a_stricter_alpha_finds_less_and_the_adjusted_p_is_holms() {
        let m = metrics();
        let tested: Vec<&super::super::Disparity> = m
            .disparities
            .iter()
            .filter(|d| d.p_value.is_some())
            .collect();
        let raw: Vec<f64> = tested.iter().map(|d| d.p_value.unwrap()).collect();
        let holm = super::super::significance::holm(&raw);
        for (d, h) in tested.iter().zip(holm) {
            assert_eq!(d.p_adjusted, Some(h));
        }
        let strict = collect(&m, 1e-12, RatioBand::default(), m.findings.tests);
        assert!(strict.items.len() < m.findings.items.len());
    }

    #[test]
    fn a_probes_own_band_decides_what_is_outside() {
        // [0.2, 5]: Black's 4× is inside now, Tiny's 10× still outside
        let band = RatioBand::new(0.2, 5.0).unwrap();
        let m = metrics_with(band);
        assert_eq!(m.findings.band, band);
        let groups: Vec<&str> = m.findings.items.iter().map(|x| x.group.as_str()).collect();
        assert_eq!(groups, ["Tiny"]);
        let flagged = |m: &AuditMetrics, group: &str| {
            m.disparities.iter().any(|d| {
                d.group == group && d.metric == DisparityMetric::RatioToReference && d.flagged
            })
        };
        assert!(!flagged(&m, "Black") && flagged(&m, "Tiny"));
        assert!(flagged(&metrics(), "Black"));
        // the tests and their adjusted p-values do not depend on the band
        assert_eq!(m.findings.tests, metrics().findings.tests);
        for bad in [
            (0.0, 1.25),
            (0.8, 1.0),
            (1.2, 0.9),
            (f64::NAN, 2.0),
            (0.5, f64::INFINITY),
        ] {
            assert!(RatioBand::new(bad.0, bad.1).is_err(), "{bad:?}");
        }
        assert_eq!(RatioBand::default().to_string(), "[0.8, 1.25]");
    }

    #[test]
    fn articles_and_labels() {
        assert_eq!(article("non-human"), "a");
        assert_eq!(article("animal"), "an");
        assert_eq!(group_label("Black*Female"), "Black × Female");
        assert_eq!(p_text(0.0123), "0.012");
        assert_eq!(p_text(0.000_012_3), "1.2e-5");
    }
}
