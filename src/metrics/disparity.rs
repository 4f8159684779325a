//! Disparities between the groups of one grouping: max − min and min / max of each category's
//! rate, each group's ratio to a reference group (flagged Aequitas-style outside [0.8, 1.25]) with
//! the two-proportion z-test of that group's rate against the reference's, and the chi-square
//! p-value of group × category independence.

use serde::Serialize;

use super::CategoryInfo;
use super::difference::two_proportion_p;
use super::rates::chi_square_p;

/// The lower end of the Aequitas fairness band for ratios.
pub const FAIR_RATIO_LOW: f64 = 0.8;
/// The upper end of the Aequitas fairness band for ratios.
pub const FAIR_RATIO_HIGH: f64 = 1.25;

/// Which disparity a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisparityMetric {
    /// Largest minus smallest group rate.
    Difference,
    /// Smallest over largest group rate.
    Ratio,
    /// One group's rate over the reference group's.
    RatioToReference,
    /// p-value of the chi-square test of independence between group and category (over all
    /// categories; `category` is empty).
    Chi2P,
}

impl DisparityMetric {
    /// The name used in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Difference => "difference",
            Self::Ratio => "ratio",
            Self::RatioToReference => "ratio_to_reference",
            Self::Chi2P => "chi2_p",
        }
    }
}

/// One disparity number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disparity {
    /// Grouping name.
    pub attribute: String,
    /// Category (empty for `chi2_p`).
    pub category: String,
    /// Which disparity.
    pub metric: DisparityMetric,
    /// The value; `None` when undefined (a ratio with a zero denominator).
    pub value: Option<f64>,
    /// The group it concerns: the max group for `difference` and `ratio`, the group for
    /// `ratio_to_reference`; empty for `chi2_p`.
    pub group: String,
    /// The min group for `difference` and `ratio`, the reference for `ratio_to_reference`.
    pub reference_group: String,
    /// A ratio outside the band ([`RatioBand`]; by default [0.8, 1.25], Aequitas'
    /// four-fifths band).
    pub flagged: bool,
    /// The raw p-value of this row's test: the chi-square test for `chi2_p`, the pooled
    /// two-proportion z-test of the group's rate against the reference's for
    /// `ratio_to_reference`; `None` for the reference itself, for other metrics and when no test
    /// is possible (both rates 0 or both 1).
    pub p_value: Option<f64>,
    /// `p_value` Holm–Bonferroni-adjusted over every test of the report
    /// ([`super::significance::adjust`]).
    pub p_adjusted: Option<f64>,
}

/// Disparities for one grouping; `table` holds (group, n, count per category) for non-empty groups.
pub fn for_grouping(
    attribute: &str,
    categories: &[CategoryInfo],
    table: &[(String, u64, Vec<u64>)],
    reference: Option<&str>,
    band: RatioBand,
) -> Vec<Disparity> {
    let mut out = Vec::new();
    if table.len() < 2 {
        return out;
    }
    let reference =
        reference.and_then(|reference| table.iter().position(|(g, _, _)| g == reference));
    for (c, category) in categories.iter().enumerate() {
        let rates: Vec<f64> = table
            .iter()
            .map(|(_, n, counts)| counts[c] as f64 / *n as f64)
            .collect();
        out.extend(category_disparities(
            attribute,
            (c, &category.name),
            table,
            &rates,
            reference,
            band,
        ));
    }
    let counts: Vec<Vec<u64>> = table.iter().map(|(_, _, c)| c.clone()).collect();
    let p = chi_square_p(&counts);
    let mut chi = disparity(attribute, "", DisparityMetric::Chi2P, p, ("", ""), band);
    chi.p_value = p;
    out.push(chi);
    out
}

/// One category's difference and ratio (max group vs min group) and, with a reference group (an
/// index into `table`), every group's ratio to it.
fn category_disparities(
    attribute: &str,
    (c, category): (usize, &str),
    table: &[(String, u64, Vec<u64>)],
    rates: &[f64],
    reference: Option<usize>,
    band: RatioBand,
) -> Vec<Disparity> {
    let (hi, lo) = extremes(rates);
    let (max_group, min_group) = (&table[hi].0, &table[lo].0);
    let mut out = vec![
        disparity(
            attribute,
            category,
            DisparityMetric::Difference,
            Some(rates[hi] - rates[lo]),
            (max_group, min_group),
            band,
        ),
        disparity(
            attribute,
            category,
            DisparityMetric::Ratio,
            ratio(rates[lo], rates[hi]),
            (max_group, min_group),
            band,
        ),
    ];
    if let Some(r) = reference {
        let (reference, n_ref, ref_counts) = &table[r];
        for (i, (group, n, counts)) in table.iter().enumerate() {
            let mut row = disparity(
                attribute,
                category,
                DisparityMetric::RatioToReference,
                ratio(rates[i], rates[r]),
                (group, reference),
                band,
            );
            if i != r {
                row.p_value = two_proportion_p(counts[c], *n, ref_counts[c], *n_ref);
            }
            out.push(row);
        }
    }
    out
}

/// The indices of the highest and the lowest rate; the first group in display order wins ties, so
/// output is deterministic.
fn extremes(rates: &[f64]) -> (usize, usize) {
    let (mut hi, mut lo) = (0, 0);
    for (i, &r) in rates.iter().enumerate() {
        if r > rates[hi] {
            hi = i;
        }
        if r < rates[lo] {
            lo = i;
        }
    }
    (hi, lo)
}

/// One disparity row about `(group, reference_group)`; ratios outside `band` are flagged.
fn disparity(
    attribute: &str,
    category: &str,
    metric: DisparityMetric,
    value: Option<f64>,
    (group, reference_group): (&str, &str),
    band: RatioBand,
) -> Disparity {
    let flagged = matches!(
        metric,
        DisparityMetric::Ratio | DisparityMetric::RatioToReference
    ) && value.is_some_and(|v| band.outside(v));
    Disparity {
        attribute: attribute.to_string(),
        category: category.to_string(),
        metric,
        value,
        group: group.to_string(),
        reference_group: reference_group.to_string(),
        flagged,
        p_value: None,
        p_adjusted: None,
    }
}

/// The ratios of rates counted as parity: by default [0.8, 1.25] (Aequitas' four-fifths band),
/// or a probe's own `ratio_band`. A ratio outside it is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioBand {
    /// The lowest ratio still counted as parity.
    pub low: f64,
    /// The highest ratio still counted as parity.
    pub high: f64,
}

impl Default for RatioBand {
    fn default() -> RatioBand {
        RatioBand {
            low: FAIR_RATIO_LOW,
            high: FAIR_RATIO_HIGH,
        }
    }
}

impl RatioBand {
    /// A band `[low, high]` with `0 < low < 1 < high`, both finite; otherwise why not.
    pub fn new(low: f64, high: f64) -> Result<RatioBand, String> {
        if low.is_finite() && high.is_finite() && 0.0 < low && low < 1.0 && 1.0 < high {
            Ok(RatioBand { low, high })
        } else {
            Err(format!(
                "expected [low, high] with 0 < low < 1 < high, got [{low}, {high}]"
            ))
        }
    }

    /// Whether `ratio` leaves the band, allowing for float rounding at the edges (12/10 ÷ 24/25
    /// is exactly 1.25 but computes as 1.2500000000000002).
    pub fn outside(self, ratio: f64) -> bool {
        const EPS: f64 = 1e-9;
        !(self.low - EPS..=self.high + EPS).contains(&ratio)
    }
}

impl std::fmt::Display for RatioBand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.low, self.high)
    }
}

/// `a / b`, undefined when `b` is zero — except 0 / 0, where equal (zero) rates mean parity.
fn ratio(a: f64, b: f64) -> Option<f64> {
    if b > 0.0 {
        Some(a / b)
    } else if a == 0.0 {
        Some(1.0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_ratio_reference_and_flags() {
        let categories = vec![
            CategoryInfo {
                name: "human".into(),
                harmful: false,
            },
            CategoryInfo {
                name: "crime".into(),
                harmful: true,
            },
        ];
        // A: 10 images, 2 crime (0.2); B: 20 images, 8 crime (0.4); C: 5 images, 0 crime
        let table = vec![
            ("A".to_string(), 10, vec![8, 2]),
            ("B".to_string(), 20, vec![12, 8]),
            ("C".to_string(), 5, vec![5, 0]),
        ];
        let d = for_grouping("race", &categories, &table, Some("B"), RatioBand::default());
        let find = |cat: &str, metric, group: &str| {
            d.iter()
                .find(|x| x.category == cat && x.metric == metric && x.group == group)
                .unwrap()
        };
        let diff = find("crime", DisparityMetric::Difference, "B");
        assert_eq!(
            (diff.value, diff.reference_group.as_str()),
            (Some(0.4), "C")
        );
        let ratio = find("crime", DisparityMetric::Ratio, "B");
        assert_eq!(ratio.value, Some(0.0));
        assert!(ratio.flagged);
        let a = find("crime", DisparityMetric::RatioToReference, "A");
        assert_eq!(a.value, Some(0.5));
        assert!(a.flagged);
        let b = find("crime", DisparityMetric::RatioToReference, "B");
        assert_eq!(b.value, Some(1.0));
        assert!(!b.flagged);
        // the reference is not tested against itself; A's 2/10 against B's 8/20 is
        assert_eq!(b.p_value, None);
        assert_eq!(a.p_value, two_proportion_p(2, 10, 8, 20));
        assert!(a.p_value.is_some());
        let human_a = find("human", DisparityMetric::RatioToReference, "A");
        assert!((human_a.value.unwrap() - 0.8 / 0.6).abs() < 1e-12);
        assert!(human_a.flagged); // 1.33 > 1.25
        assert!(d.iter().any(|x| x.metric == DisparityMetric::Chi2P
            && x.value.is_some()
            && x.p_value == x.value));
    }
}
