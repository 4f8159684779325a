//! Proportions with 95% Wilson score intervals, and the chi-square test of independence.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// The 97.5th percentile of the standard normal distribution.
const Z_95: f64 = 1.959_963_984_540_054;

/// 95% Wilson score interval for `count` successes in `n` trials (`(0, 0)` when `n == 0`).
pub fn wilson_interval(count: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let n = n as f64;
    let p = count as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// p-value of Pearson's chi-square test of independence for a groups × categories table of
/// counts. Rows and columns that are all zero are dropped; `None` when fewer than two rows or
/// columns remain (no test is possible).
pub fn chi_square_p(table: &[Vec<u64>]) -> Option<f64> {
    let columns = table.first().map_or(0, Vec::len);
    let keep_cols: Vec<usize> = (0..columns)
        .filter(|&c| table.iter().any(|row| row[c] > 0))
        .collect();
    let rows: Vec<Vec<f64>> = table
        .iter()
        .filter(|row| row.iter().any(|&x| x > 0))
        .map(|row| keep_cols.iter().map(|&c| row[c] as f64).collect())
        .collect();
    if rows.len() < 2 || keep_cols.len() < 2 {
        return None;
    }
    let total: f64 = rows.iter().flatten().sum();
    let row_sums: Vec<f64> = rows.iter().map(|r| r.iter().sum()).collect();
    let col_sums: Vec<f64> = (0..keep_cols.len())
        .map(|c| rows.iter().map(|r| r[c]).sum())
        .collect();
    let mut statistic = 0.0;
    for (i, row) in rows.iter().enumerate() {
        for (j, &observed) in row.iter().enumerate() {
            let expected = row_sums[i] * col_sums[j] / total;
            statistic += (observed - expected).powi(2) / expected;
        }
    }
    let freedom = ((rows.len() - 1) * (keep_cols.len() - 1)) as f64;
    let dist = ChiSquared::new(freedom).ok()?;
    Some(dist.sf(statistic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_published_values() {
        // Wilson (1927) / Newcombe (1998), Table I: 81/263 → 0.2553–0.3662;
        // 15/148 → 0.0624–0.1605; 0/20 → 0–0.1611; 29/29 → 0.8830–1.
        let cases = [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (29, 29, 0.8830, 1.0),
        ];
        for (k, n, lo, hi) in cases {
            let (l, h) = wilson_interval(k, n);
            assert!(close(l, lo, 5e-5) && close(h, hi, 5e-5), "{k}/{n}: {l} {h}");
        }
        assert_eq!(wilson_interval(0, 0), (0.0, 0.0));
    }

    #[test]
    fn chi_square_matches_hand_computation() {
        // [[10, 20], [30, 40]]: expected [[12, 18], [28, 42]];
        // chi2 = 4/12 + 4/18 + 4/28 + 4/42 = 0.793650..., df 1, p = erfc(sqrt(chi2 / 2)) = 0.372998
        let p = chi_square_p(&[vec![10, 20], vec![30, 40]]).unwrap();
        assert!(close(p, 0.372_998_48, 1e-6), "{p}");
        // independence: identical rows → p = 1
        assert!(close(
            chi_square_p(&[vec![5, 5], vec![5, 5]]).unwrap(),
            1.0,
            1e-12
        ));
        // one category only: no test
        assert_eq!(chi_square_p(&[vec![5, 0], vec![7, 0]]), None);
    }
}
