//! The difference of two independent proportions: Newcombe's hybrid score interval (Newcombe
//! 1998, method 10) built from the two Wilson intervals, and the pooled two-proportion z-test.

use super::rates::wilson_interval;

/// 95% Newcombe hybrid score interval for `k1/n1 − k2/n2` (Newcombe 1998, method 10): with
/// Wilson intervals `(l1, u1)`, `(l2, u2)` and `d = p1 − p2`, it is
/// `d − √((p1 − l1)² + (u2 − p2)²)` to `d + √((u1 − p1)² + (p2 − l2)²)`. `None` when a sample
/// is empty.
pub fn newcombe_interval(k1: u64, n1: u64, k2: u64, n2: u64) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let (l1, u1) = wilson_interval(k1, n1);
    let (l2, u2) = wilson_interval(k2, n2);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((low.max(-1.0), high.min(1.0)))
}

/// Two-sided p-value of the pooled two-proportion z-test of `k1/n1 = k2/n2`:
/// `z = (p1 − p2) / √(p(1 − p)(1/n1 + 1/n2))` with the pooled `p = (k1 + k2) / (n1 + n2)`.
/// `None` when a sample is empty or the pooled variance is 0 (both rates 0, or both 1).
pub fn two_proportion_p(k1: u64, n1: u64, k2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let pooled = (k1 + k2) as f64 / (a + b);
    let variance = pooled * (1.0 - pooled) * (1.0 / a + 1.0 / b);
    if variance <= 0.0 {
        return None;
    }
    let z = (k1 as f64 / a - k2 as f64 / b) / variance.sqrt();
    Some(statrs::function::erf::erfc(
        z.abs() / std::f64::consts::SQRT_2,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcombe_matches_the_papers_worked_examples() {
        // Newcombe (1998), Statistics in Medicine 17:873–890, Table II, method 10 (hybrid score
        // interval without continuity correction), examples (a)–(f), to 4 decimals; statsmodels'
        // confint_proportions_2indep(method="newcomb") prints the same six intervals
        // (scripts/newcombe_reference.py).
        let cases = [
            (56, 70, 48, 80, 0.0524, 0.3339),
            (9, 10, 3, 10, 0.1705, 0.8090),
            (6, 7, 2, 7, 0.0582, 0.8062),
            (5, 56, 0, 29, -0.0381, 0.1926),
            (0, 10, 0, 20, -0.1611, 0.2775),
            (10, 10, 0, 20, 0.6791, 1.0000),
        ];
        for (k1, n1, k2, n2, low, high) in cases {
            let (l, h) = newcombe_interval(k1, n1, k2, n2).unwrap();
            assert!(
                (l - low).abs() <= 5e-5 && (h - high).abs() <= 5e-5,
                "{k1}/{n1} vs {k2}/{n2}: {l} {h}"
            );
        }
        assert_eq!(newcombe_interval(1, 0, 1, 2), None);
    }

    #[test]
    fn pooled_z_test_matches_hand_computation() {
        // 56/70 vs 48/80: pooled 104/150, z = 0.2 / √(0.69333·0.30667·(1/70 + 1/80)) = 2.650172,
        // p = erfc(z/√2) = 0.0080451; 9/10 vs 3/10: z = 2.738613, p = 0.0061699;
        // 5/56 vs 0/29: z = 1.658649, p = 0.0971866.
        let cases = [
            (56, 70, 48, 80, 0.008_045_081),
            (9, 10, 3, 10, 0.006_169_899),
            (5, 56, 0, 29, 0.097_186_568),
        ];
        for (k1, n1, k2, n2, want) in cases {
            let p = two_proportion_p(k1, n1, k2, n2).unwrap();
            assert!((p - want).abs() < 1e-8, "{k1}/{n1} vs {k2}/{n2}: {p}");
        }
        // symmetric, and 1 for equal rates
        assert_eq!(
            two_proportion_p(3, 10, 9, 10),
            two_proportion_p(9, 10, 3, 10)
        );
        assert!((two_proportion_p(2, 10, 4, 20).unwrap() - 1.0).abs() < 1e-12);
        // pooled variance 0: no test
        assert_eq!(two_proportion_p(0, 10, 0, 20), None);
        assert_eq!(two_proportion_p(10, 10, 20, 20), None);
        assert_eq!(two_proportion_p(0, 0, 1, 2), None);
    }
}
