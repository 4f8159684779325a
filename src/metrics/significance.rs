//! Multiple testing: the Holm–Bonferroni step-down adjustment over every p-value of a report, and
//! the significance level (`--alpha`) its findings are judged at.
//!
//! The family is every p-value in `disparities.csv`: one chi-square test per grouping and one
//! two-proportion z-test per (grouping, category, group other than the reference). Holm (1979)
//! controls the family-wise error rate under any dependence between the tests, which the
//! overlapping groupings (`race`, `race*gender`) have.

use std::fmt;
use std::str::FromStr;

use super::Disparity;

/// A significance level strictly between 0 and 1 (default 0.05).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Alpha(f64);

impl Alpha {
    /// The level, checked to lie strictly between 0 and 1.
    pub fn new(value: f64) -> Result<Self, String> {
        if value > 0.0 && value < 1.0 {
            Ok(Self(value))
        } else {
            Err(format!(
                "{value}: a significance level must lie strictly between 0 and 1, e.g. 0.05"
            ))
        }
    }

    /// The level as a number.
    pub fn get(self) -> f64 {
        self.0
    }
}

// NaN cannot be constructed, so equality is total.
impl Eq for Alpha {}

impl Default for Alpha {
    fn default() -> Self {
        Self(0.05)
    }
}

impl FromStr for Alpha {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: expected a number between 0 and 1, e.g. 0.05"))?;
        Self::new(value)
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Holm–Bonferroni adjusted p-values, in the order of `p`: with the m p-values sorted ascending,
/// `p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j))`. Ties keep their input order, which does
/// not change the result.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (j, &i) in order.iter().enumerate() {
        let step = ((m - j) as f64 * p[i]).min(1.0);
        running = running.max(step);
        adjusted[i] = running;
    }
    adjusted
}

/// Sets `p_adjusted` of every disparity that has a `p_value`, Holm-adjusting them together;
/// returns the number of tests in the family.
pub fn adjust(disparities: &mut [Disparity]) -> usize {
    let tested: Vec<usize> = (0..disparities.len())
        .filter(|&i| disparities[i].p_value.is_some())
        .collect();
    let raw: Vec<f64> = tested
        .iter()
        .filter_map(|&i| disparities[i].p_value)
        .collect();
    for (&i, adjusted) in tested.iter().zip(holm(&raw)) {
        disparities[i].p_adjusted = Some(adjusted);
    }
    tested.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_matches_a_hand_worked_example() {
        // m = 5, sorted 0.01 0.02 0.03 0.04 0.05:
        // 5·0.01 = 0.05; 4·0.02 = 0.08; 3·0.03 = 0.09; 2·0.04 = 0.08 → max 0.09; 1·0.05 = 0.05 → 0.09
        let p = [0.04, 0.01, 0.05, 0.03, 0.02];
        let want = [0.09, 0.05, 0.09, 0.09, 0.08];
        for (got, want) in holm(&p).iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // capped at 1, and monotone in the raw p-values
        assert_eq!(holm(&[0.5, 0.6]), vec![1.0, 1.0]);
        assert_eq!(holm(&[]), Vec::<f64>::new());
        assert_eq!(holm(&[0.2]), vec![0.2]);
    }

    #[test]
    fn holm_matches_statsmodels() {
        // tests/fixtures/holm/statsmodels.json, written by scripts/holm_reference.py with
        // statsmodels.stats.multitest.multipletests(p, method="holm")
        let text = include_str!("../../tests/fixtures/holm/statsmodels.json");
        let cases: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
        let cases = cases["cases"].as_array().expect("cases");
        assert!(cases.len() >= 3);
        for case in cases {
            let numbers = |key: &str| -> Vec<f64> {
                case[key]
                    .as_array()
                    .expect("array")
                    .iter()
                    .map(|v| v.as_f64().expect("number"))
                    .collect()
            };
            let (p, want) = (numbers("p"), numbers("holm"));
            let got = holm(&p);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-12 * w.max(1e-300),
                    "{p:?}: {got:?} vs {want:?}"
                );
            }
            let rejected: Vec<bool> = got.iter().map(|&g| g <= 0.05).collect();
            let want_rejected: Vec<bool> = case["reject"]
                .as_array()
                .expect("reject")
                .iter()
                .map(|v| v.as_bool().expect("bool"))
                .collect();
            assert_eq!(rejected, want_rejected, "{p:?}");
        }
    }

    #[test]
    fn alpha_parses_and_refuses_out_of_range() {
        assert_eq!("0.01".parse::<Alpha>().unwrap().get(), 0.01);
        assert_eq!(Alpha::default().get(), 0.05);
        for bad in ["0", "1", "-0.1", "1.5", "NaN", "x", ""] {
            assert!(bad.parse::<Alpha>().is_err(), "{bad}");
        }
    }
}
