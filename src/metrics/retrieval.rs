//! Retrieval bias of a ranking (Geyik et al. 2019; Berg et al. 2022): how far the groups of the
//! top `k` images returned for a text query are from a target distribution.
//!
//! Conventions (those of the public `debias-vision-lang` code, natural logarithms throughout):
//! - `Skew@k(a) = ln(p̂ₖ(a) / p*(a))`, with `p̂ₖ(a)` the share of group `a` in the top `k`; a group
//!   absent from the top `k` counts as one image (`p̂ₖ(a) = 1/k`), so the skew stays finite;
//! - `MaxSkew@k` and `MinSkew@k` are the largest and smallest skew over the target's groups;
//! - `NDKL = Σᵢ KL(p̂ᵢ ‖ p*) / log₂(i+1) ÷ Σᵢ 1/log₂(i+1)` over every prefix `i = 1..N` of the
//!   whole ranking, where `KL(p̂ ‖ p*) = Σₐ p̂(a) ln(p̂(a)/p*(a))` drops the terms with `p̂(a) = 0`;
//! - `Bias@k = (n₁ − n₂)/(n₁ + n₂)` in the top `k`, for an attribute with exactly two groups
//!   (`n₁` the first in the vocabulary's order).

use serde::Serialize;

/// The distribution a ranking is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every group present in the ranked images equally likely.
    Uniform,
    /// Each group's share of the ranked images.
    Dataset,
}

impl Target {
    /// `uniform` or `dataset`, as the CSV and `metrics.json` say it.
    pub fn name(self) -> &'static str {
        match self {
            Target::Uniform => "uniform",
            Target::Dataset => "dataset",
        }
    }
}

/// Indices of `scores` from the highest to the lowest; exact ties keep index (record) order.
pub fn ranking(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // a stable sort keeps tied records in record order
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// The target probability of each of `groups` groups for the images' group indices; a group no
/// image belongs to has probability 0 (and is left out of the skews).
pub fn target_distribution(image_groups: &[usize], groups: usize, target: Target) -> Vec<f64> {
    let counts = group_counts(image_groups.iter().copied(), groups);
    let present = counts.iter().filter(|&&c| c > 0).count();
    counts
        .iter()
        .map(|&c| match target {
            _ if c == 0 => 0.0,
            Target::Uniform => 1.0 / present as f64,
            Target::Dataset => c as f64 / image_groups.len() as f64,
        })
        .collect()
}

/// How many of `image_groups` fall in each of `groups` groups.
fn group_counts(image_groups: impl Iterator<Item = usize>, groups: usize) -> Vec<u64> {
    let mut counts = vec![0u64; groups];
    for g in image_groups {
        counts[g] += 1;
    }
    counts
}

/// The bias measures of one query's ranking for one attribute at one `k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankingBias {
    /// `MaxSkew@k`.
    pub max_skew: f64,
    /// `MinSkew@k`.
    pub min_skew: f64,
    /// `Bias@k`, for two groups with at least one of them in the top `k` (`None` otherwise).
    pub bias_at_k: Option<f64>,
}

/// MaxSkew@k, MinSkew@k and Bias@k of `ranked_groups` (the group index of each ranked image,
/// best first) against `target`; `k` must be between 1 and the ranking's length.
pub fn bias_at(ranked_groups: &[usize], k: usize, target: &[f64]) -> RankingBias {
    assert!(
        k >= 1 && k <= ranked_groups.len(),
        "k {k} outside 1..={}",
        ranked_groups.len()
    );
    let counts = group_counts(ranked_groups[..k].iter().copied(), target.len());
    let skews: Vec<f64> = counts
        .iter()
        .zip(target)
        .filter(|&(_, &p)| p > 0.0)
        .map(|(&n, &p)| ((n.max(1) as f64 / k as f64) / p).ln())
        .collect();
    let bias_at_k = match counts[..] {
        [n1, n2] if n1 + n2 > 0 => Some((n1 as f64 - n2 as f64) / (n1 + n2) as f64),
        _ => None,
    };
    RankingBias {
        max_skew: skews.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        min_skew: skews.iter().copied().fold(f64::INFINITY, f64::min),
        bias_at_k,
    }
}

/// One row of `retrieval.csv`: one query, attribute and `k`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalRow {
    /// The query (the probe class's label).
    pub query: String,
    /// The attribute.
    pub attribute: String,
    /// The cut-off.
    pub k: usize,
    /// MaxSkew@k, MinSkew@k and Bias@k.
    #[serde(flatten)]
    pub bias: RankingBias,
    /// NDKL of the whole ranking (the same for every `k`).
    pub ndkl: f64,
}

/// Mean, smallest and largest value of one measure over the queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            return None;
        }
        Some(Spread {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The measures of one attribute and `k` summarised over the queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalSummaryRow {
    /// The attribute.
    pub attribute: String,
    /// The cut-off.
    pub k: usize,
    /// Queries summarised.
    pub queries: usize,
    /// MaxSkew@k over the queries.
    pub max_skew: Option<Spread>,
    /// MinSkew@k over the queries.
    pub min_skew: Option<Spread>,
    /// NDKL over the queries.
    pub ndkl: Option<Spread>,
    /// Bias@k over the queries where it is defined.
    pub bias_at_k: Option<Spread>,
}

/// Summaries of `rows` per attribute and `k`, in first-appearance order.
pub fn summarise(rows: &[RetrievalRow]) -> Vec<RetrievalSummaryRow> {
    let mut keys: Vec<(&str, usize)> = Vec::new();
    for row in rows {
        if !keys.contains(&(row.attribute.as_str(), row.k)) {
            keys.push((row.attribute.as_str(), row.k));
        }
    }
    keys.into_iter()
        .map(|(attribute, k)| {
            let of = || {
                rows.iter()
                    .filter(move |r| r.attribute == attribute && r.k == k)
            };
            RetrievalSummaryRow {
                attribute: attribute.to_string(),
                k,
                queries: of().count(),
                max_skew: Spread::of(of().map(|r| r.bias.max_skew)),
                min_skew: Spread::of(of().map(|r| r.bias.min_skew)),
                ndkl: Spread::of(of().map(|r| r.ndkl)),
                bias_at_k: Spread::of(of().filter_map(|r| r.bias.bias_at_k)),
            }
        })
        .collect()
}

/// NDKL of the whole ranking `ranked_groups` against `target` (0 for an empty ranking).
pub fn ndkl(ranked_groups: &[usize], target: &[f64]) -> f64 {
    let mut counts = vec![0u64; target.len()];
    let (mut weighted, mut normaliser) = (0.0, 0.0);
    for (i, &g) in ranked_groups.iter().enumerate() {
        counts[g] += 1;
        let prefix = (i + 1) as f64;
        let kl: f64 = counts
            .iter()
            .zip(target)
            .filter(|&(&n, _)| n > 0)
            .map(|(&n, &p)| {
                let share = n as f64 / prefix;
                share * (share / p).ln()
            })
            .sum();
        let discount = 1.0 / (prefix + 1.0).log2();
        weighted += kl * discount;
        normaliser += discount;
    }
    if normaliser == 0.0 {
        0.0
    } else {
        weighted / normaliser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn ties_keep_record_order() {
        assert_eq!(ranking(&[0.1, 0.5, 0.5, 0.9, 0.1]), vec![3, 1, 2, 0, 4]);
    }

    #[test]
    fn targets() {
        let groups = [0, 0, 0, 1, 2, 2];
        assert_eq!(
            target_distribution(&groups, 4, Target::Uniform),
            vec![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0]
        );
        assert_eq!(
            target_distribution(&groups, 4, Target::Dataset),
            vec![0.5, 1.0 / 6.0, 1.0 / 3.0, 0.0]
        );
    }

    /// Hand-computed: ranking A A B A B B, uniform target (1/2, 1/2).
    #[test]
    fn skews_and_bias_by_hand() {
        let ranked = [0, 0, 1, 0, 1, 1];
        let target = [0.5, 0.5];
        // k = 1: A 1/1, B absent → counts as 1/1
        let at1 = bias_at(&ranked, 1, &target);
        close(at1.max_skew, 2f64.ln());
        close(at1.min_skew, 2f64.ln());
        close(at1.bias_at_k.unwrap(), 1.0);
        // k = 3: A 2/3, B 1/3
        let at3 = bias_at(&ranked, 3, &target);
        close(at3.max_skew, (4.0f64 / 3.0).ln());
        close(at3.min_skew, (2.0f64 / 3.0).ln());
        close(at3.bias_at_k.unwrap(), 1.0 / 3.0);
        // k = N: balanced
        let at6 = bias_at(&ranked, 6, &target);
        close(at6.max_skew, 0.0);
        close(at6.min_skew, 0.0);
        close(at6.bias_at_k.unwrap(), 0.0);
    }

    /// Three groups: Bias@k is undefined; an empty group of the vocabulary is not a target group.
    #[test]
    fn three_groups_and_an_empty_one() {
        let ranked = [2, 2, 0, 1];
        let target = target_distribution(&ranked, 4, Target::Uniform);
        let at2 = bias_at(&ranked, 2, &target);
        // group 2: 2/2 over 1/3; groups 0 and 1 absent: 1/2 over 1/3
        close(at2.max_skew, 3f64.ln());
        close(at2.min_skew, 1.5f64.ln());
        assert_eq!(at2.bias_at_k, None);
    }

    /// Hand-computed NDKL of A A B against (1/2, 1/2): prefix KLs ln 2, ln 2, KL((2/3, 1/3)).
    #[test]
    fn ndkl_by_hand() {
        let kl3 = (2.0 / 3.0) * (4.0f64 / 3.0).ln() + (1.0 / 3.0) * (2.0f64 / 3.0).ln();
        let (d1, d2, d3) = (1.0, 1.0 / 3f64.log2(), 0.5);
        let expected = (2f64.ln() * d1 + 2f64.ln() * d2 + kl3 * d3) / (d1 + d2 + d3);
        close(ndkl(&[0, 0, 1], &[0.5, 0.5]), expected);
        // a ranking that always matches the target has NDKL 0 only at balanced prefixes
        close(ndkl(&[], &[0.5, 0.5]), 0.0);
        assert!(ndkl(&[0, 1, 0, 1], &[0.5, 0.5]) > 0.0);
        close(ndkl(&[0, 0, 0], &[1.0, 0.0]), 0.0);
    }
}
