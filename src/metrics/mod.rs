//! Group metrics of an audit (definitions in README), accumulated one prediction at a time so memory stays
//! flat in the number of images: per-group category rates with Wilson intervals, accuracy of
//! `match`ed predictions, disparities between groups, a chi-square test of independence, and the
//! findings that survive a Holm–Bonferroni correction over all of them.

pub mod difference;
pub mod disparity;
pub mod findings;
pub mod per_template;
pub mod rates;
pub mod request;
pub mod retrieval;
pub mod significance;

use std::collections::BTreeMap;

use serde::Serialize;

pub use difference::{newcombe_interval, two_proportion_p};
pub use disparity::{Disparity, DisparityMetric, RatioBand};
pub use findings::{Finding, Findings};
pub use per_template::{PerTemplate, RateSpread, TemplateRates};
pub use rates::{chi_square_p, wilson_interval};
pub use request::{GroupingRequest, Intersection, ReferenceGroup};
pub use significance::{Alpha, holm};

/// Name of the pseudo-attribute and group holding the overall rates.
pub const ALL: &str = "all";

pub use crate::schema::Attribute;

/// A way of grouping images: one attribute, or an intersection such as `race*gender`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grouping {
    /// `race`, or `race*gender` for an intersection.
    pub name: String,
    /// Indices into the attribute list.
    pub attributes: Vec<usize>,
}

impl Grouping {
    /// Builds a grouping from attribute names (`["race", "gender"]` → `race*gender`).
    pub fn new(names: &[&str], attributes: &[Attribute]) -> Result<Self, String> {
        let indices = names
            .iter()
            .map(|n| {
                attributes.iter().position(|a| a.name == *n).ok_or_else(|| {
                    let known: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
                    format!(
                        "unknown attribute `{n}` (the dataset has: {})",
                        known.join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if indices.is_empty() {
            return Err("empty grouping".into());
        }
        Ok(Self {
            name: names.join("*"),
            attributes: indices,
        })
    }

    /// The groups in display order: the product of the attributes' vocabularies.
    fn groups(&self, attributes: &[Attribute]) -> Vec<String> {
        let mut groups = vec![String::new()];
        for (k, &a) in self.attributes.iter().enumerate() {
            groups = groups
                .iter()
                .flat_map(|prefix| {
                    attributes[a].values.iter().map(move |v| {
                        if k == 0 {
                            v.clone()
                        } else {
                            format!("{prefix}*{v}")
                        }
                    })
                })
                .collect();
        }
        groups
    }

    /// Index of an image's group among [`Self::groups`], from its attribute value indices.
    fn group_index(&self, value_index: &[usize], attributes: &[Attribute]) -> usize {
        self.attributes.iter().fold(0, |acc, &a| {
            acc * attributes[a].values.len() + value_index[a]
        })
    }
}

/// A category as the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryInfo {
    /// Category name.
    pub name: String,
    /// Whether predictions into it are harms.
    pub harmful: bool,
}

/// Everything the accumulator needs to know about the probe and the dataset.
#[derive(Debug, Clone)]
pub struct MetricsSetup {
    /// The dataset's attributes.
    pub attributes: Vec<Attribute>,
    /// Groupings to tabulate (each attribute alone, plus requested intersections).
    pub groupings: Vec<Grouping>,
    /// The probe's categories, in order.
    pub categories: Vec<CategoryInfo>,
    /// For each class, the index of its category.
    pub class_category: Vec<usize>,
    /// For each class, its `match` rule as (attribute index, value) pairs; empty = no rule.
    pub class_matches: Vec<Vec<(usize, String)>>,
    /// Reference group per grouping name (default: the largest group).
    pub reference: BTreeMap<String, String>,
    /// Family-wise significance level of the findings (`--alpha`).
    pub alpha: Alpha,
    /// The ratios counted as parity (the probe's `ratio_band`, else [0.8, 1.25]).
    pub band: RatioBand,
}

/// Rate of one category in one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRate {
    /// Grouping name (`race`, `race*gender`, or `all`).
    pub attribute: String,
    /// Group (`Black`, `Black*Female`, or `all`).
    pub group: String,
    /// Category name.
    pub category: String,
    /// Images in the group.
    pub n: u64,
    /// Images of the group predicted into the category.
    pub count: u64,
    /// `count / n`.
    pub rate: f64,
    /// Lower end of the 95% Wilson score interval.
    pub ci_low: f64,
    /// Upper end of the 95% Wilson score interval.
    pub ci_high: f64,
}

/// Zero-shot accuracy of one group, over images some class `match`es.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupAccuracy {
    /// Grouping name.
    pub attribute: String,
    /// Group.
    pub group: String,
    /// Images of the group that some class matches.
    pub n: u64,
    /// Of those, images whose predicted class matches them.
    pub correct: u64,
    /// `correct / n`.
    pub accuracy: f64,
    /// Lower end of the 95% Wilson score interval.
    pub ci_low: f64,
    /// Upper end of the 95% Wilson score interval.
    pub ci_high: f64,
}

/// Every number of an audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditMetrics {
    /// Images classified.
    pub n: u64,
    /// Rates per grouping, group and category (overall first, then groupings in order).
    pub rates: Vec<GroupRate>,
    /// Accuracy per grouping and group (empty when no class has a `match` rule).
    pub accuracy: Vec<GroupAccuracy>,
    /// Disparities between the groups of each grouping.
    pub disparities: Vec<Disparity>,
    /// Groups of the vocabulary with no images, per grouping (not in the tables).
    pub empty_groups: BTreeMap<String, Vec<String>>,
    /// The reference group used for `ratio_to_reference`, per grouping.
    pub reference_groups: BTreeMap<String, String>,
    /// Disparities outside the ratio band and significant after the Holm adjustment.
    pub findings: Findings,
}

/// Counts predictions; [`MetricsAccumulator::finish`] turns them into [`AuditMetrics`].
pub struct MetricsAccumulator {
    setup: MetricsSetup,
    value_index: Vec<BTreeMap<String, usize>>,
    /// Per grouping: per group: count per category.
    counts: Vec<Vec<Vec<u64>>>,
    /// Per grouping: per group: (matched images, correct).
    matched: Vec<Vec<(u64, u64)>>,
    overall: Vec<u64>,
    overall_matched: (u64, u64),
    n: u64,
}

/// An image whose attribute value is outside the vocabulary.
#[derive(Debug, thiserror::Error)]
#[error("attribute `{attribute}` has value {value:?}, which is not in its vocabulary ({allowed})")]
pub struct UnknownValue {
    /// The attribute.
    pub attribute: String,
    /// The offending value.
    pub value: String,
    /// The allowed values.
    pub allowed: String,
}

impl MetricsAccumulator {
    /// Starts with zero counts.
    pub fn new(setup: MetricsSetup) -> Self {
        let value_index = setup
            .attributes
            .iter()
            .map(|a| {
                a.values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i))
                    .collect()
            })
            .collect();
        let n_categories = setup.categories.len();
        let counts = setup
            .groupings
            .iter()
            .map(|g| vec![vec![0; n_categories]; g.groups(&setup.attributes).len()])
            .collect();
        let matched = setup
            .groupings
            .iter()
            .map(|g| vec![(0, 0); g.groups(&setup.attributes).len()])
            .collect();
        Self {
            value_index,
            counts,
            matched,
            overall: vec![0; n_categories],
            overall_matched: (0, 0),
            n: 0,
            setup,
        }
    }

    /// Adds one image: its attribute values (in attribute order) and its predicted class.
    pub fn add(&mut self, values: &[String], predicted_class: usize) -> Result<(), UnknownValue> {
        let indices = values
            .iter()
            .enumerate()
            .map(|(a, v)| {
                self.value_index[a]
                    .get(v)
                    .copied()
                    .ok_or_else(|| UnknownValue {
                        attribute: self.setup.attributes[a].name.clone(),
                        value: v.clone(),
                        allowed: self.setup.attributes[a].values.join(", "),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let category = self.setup.class_category[predicted_class];
        let holds = |rule: &[(usize, String)]| {
            !rule.is_empty() && rule.iter().all(|(a, v)| &values[*a] == v)
        };
        let matchable = self.setup.class_matches.iter().any(|r| holds(r));
        let correct = matchable && holds(&self.setup.class_matches[predicted_class]);
        self.n += 1;
        self.overall[category] += 1;
        if matchable {
            self.overall_matched.0 += 1;
            self.overall_matched.1 += correct as u64;
        }
        for (g, grouping) in self.setup.groupings.iter().enumerate() {
            let group = grouping.group_index(&indices, &self.setup.attributes);
            self.counts[g][group][category] += 1;
            if matchable {
                self.matched[g][group].0 += 1;
                self.matched[g][group].1 += correct as u64;
            }
        }
        Ok(())
    }

    /// Computes rates, intervals, accuracies and disparities.
    pub fn finish(self) -> AuditMetrics {
        let has_rules = self.setup.class_matches.iter().any(|r| !r.is_empty());
        let mut out = AuditMetrics {
            n: self.n,
            rates: Vec::new(),
            accuracy: Vec::new(),
            disparities: Vec::new(),
            empty_groups: BTreeMap::new(),
            reference_groups: BTreeMap::new(),
            findings: Findings::default(),
        };
        self.push_overall(&mut out, has_rules);
        for (g, grouping) in self.setup.groupings.iter().enumerate() {
            self.push_grouping(&mut out, g, grouping, has_rules);
        }
        let tests = significance::adjust(&mut out.disparities);
        out.findings = findings::collect(&out, self.setup.alpha.get(), self.setup.band, tests);
        out
    }

    /// Adds the overall rates, and the overall accuracy when rules matched any image.
    fn push_overall(&self, out: &mut AuditMetrics, has_rules: bool) {
        for (c, category) in self.setup.categories.iter().enumerate() {
            out.rates.push(group_rate(
                ALL,
                ALL,
                &category.name,
                self.n,
                self.overall[c],
            ));
        }
        if has_rules && self.overall_matched.0 > 0 {
            out.accuracy
                .push(group_accuracy(ALL, ALL, self.overall_matched));
        }
    }

    /// Adds grouping `g`'s rates, accuracies, empty groups, reference group and disparities.
    fn push_grouping(
        &self,
        out: &mut AuditMetrics,
        g: usize,
        grouping: &Grouping,
        has_rules: bool,
    ) {
        let setup = &self.setup;
        let names = grouping.groups(&setup.attributes);
        let sizes: Vec<u64> = self.counts[g].iter().map(|c| c.iter().sum()).collect();
        let present: Vec<usize> = (0..names.len()).filter(|&i| sizes[i] > 0).collect();
        let empty: Vec<String> = (0..names.len())
            .filter(|&i| sizes[i] == 0)
            .map(|i| names[i].clone())
            .collect();
        if !empty.is_empty() {
            out.empty_groups.insert(grouping.name.clone(), empty);
        }
        self.push_group_rates(out, g, grouping, &names, &sizes, &present);
        if has_rules {
            self.push_group_accuracy(out, g, grouping, &names, &present);
        }
        let reference = setup
            .reference
            .get(&grouping.name)
            .and_then(|r| names.iter().position(|n| n == r))
            .filter(|&i| sizes[i] > 0)
            .or_else(|| largest(&present, &sizes));
        if let Some(r) = reference {
            out.reference_groups
                .insert(grouping.name.clone(), names[r].clone());
        }
        let table: Vec<(String, u64, Vec<u64>)> = present
            .iter()
            .map(|&i| (names[i].clone(), sizes[i], self.counts[g][i].clone()))
            .collect();
        out.disparities.extend(disparity::for_grouping(
            &grouping.name,
            &setup.categories,
            &table,
            reference.map(|r| names[r].as_str()),
            setup.band,
        ));
    }

    /// Adds the rate of every category in every non-empty group of grouping `g`, category-major.
    fn push_group_rates(
        &self,
        out: &mut AuditMetrics,
        g: usize,
        grouping: &Grouping,
        names: &[String],
        sizes: &[u64],
        present: &[usize],
    ) {
        for (c, category) in self.setup.categories.iter().enumerate() {
            for &i in present {
                out.rates.push(group_rate(
                    &grouping.name,
                    &names[i],
                    &category.name,
                    sizes[i],
                    self.counts[g][i][c],
                ));
            }
        }
    }

    /// Adds the accuracy of every non-empty group of grouping `g` that has matched images.
    fn push_group_accuracy(
        &self,
        out: &mut AuditMetrics,
        g: usize,
        grouping: &Grouping,
        names: &[String],
        present: &[usize],
    ) {
        for &i in present {
            if self.matched[g][i].0 > 0 {
                out.accuracy.push(group_accuracy(
                    &grouping.name,
                    &names[i],
                    self.matched[g][i],
                ));
            }
        }
    }
}

/// The largest group (first in display order on ties).
fn largest(present: &[usize], sizes: &[u64]) -> Option<usize> {
    present
        .iter()
        .copied()
        .fold(None, |best: Option<usize>, i| match best {
            Some(b) if sizes[b] >= sizes[i] => Some(b),
            _ => Some(i),
        })
}

fn group_rate(attribute: &str, group: &str, category: &str, n: u64, count: u64) -> GroupRate {
    let (ci_low, ci_high) = wilson_interval(count, n);
    GroupRate {
        attribute: attribute.to_string(),
        group: group.to_string(),
        category: category.to_string(),
        n,
        count,
        rate: if n == 0 { 0.0 } else { count as f64 / n as f64 },
        ci_low,
        ci_high,
    }
}

fn group_accuracy(attribute: &str, group: &str, (n, correct): (u64, u64)) -> GroupAccuracy {
    let (ci_low, ci_high) = wilson_interval(correct, n);
    GroupAccuracy {
        attribute: attribute.to_string(),
        group: group.to_string(),
        n,
        correct,
        accuracy: correct as f64 / n as f64,
        ci_low,
        ci_high,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> MetricsSetup {
        let attributes = vec![
            Attribute {
                name: "race".into(),
                values: vec!["Black".into(), "White".into(), "Asian".into()],
            },
            Attribute {
                name: "gender".into(),
                values: vec!["Male".into(), "Female".into()],
            },
        ];
        let groupings = vec![
            Grouping::new(&["race"], &attributes).unwrap(),
            Grouping::new(&["gender"], &attributes).unwrap(),
            Grouping::new(&["race", "gender"], &attributes).unwrap(),
        ];
        MetricsSetup {
            attributes,
            groupings,
            categories: vec![
                CategoryInfo {
                    name: "human".into(),
                    harmful: false,
                },
                CategoryInfo {
                    name: "crime".into(),
                    harmful: true,
                },
            ],
            // classes: black man, white woman, thief
            class_category: vec![0, 0, 1],
            class_matches: vec![
                vec![(0, "Black".into()), (1, "Male".into())],
                vec![(0, "White".into()), (1, "Female".into())],
                vec![],
            ],
            reference: BTreeMap::new(),
            alpha: Alpha::default(),
            band: RatioBand::default(),
        }
    }

    fn add(acc: &mut MetricsAccumulator, race: &str, gender: &str, class: usize) {
        acc.add(&[race.to_string(), gender.to_string()], class)
            .unwrap();
    }

    fn rate<'a>(
        m: &'a AuditMetrics,
        attribute: &str,
        group: &str,
        category: &str,
    ) -> &'a GroupRate {
        m.rates
            .iter()
            .find(|r| r.attribute == attribute && r.group == group && r.category == category)
            .unwrap()
    }

    #[test]
    fn hand_computed_rates_and_accuracy() {
        let mut acc = MetricsAccumulator::new(setup());
        // Black men: 3 images, one called thief, two called black man
        add(&mut acc, "Black", "Male", 0);
        add(&mut acc, "Black", "Male", 0);
        add(&mut acc, "Black", "Male", 2);
        // White women: 2 images, one thief, one white woman
        add(&mut acc, "White", "Female", 2);
        add(&mut acc, "White", "Female", 1);
        // a white man (no class matches him) called black man
        add(&mut acc, "White", "Male", 0);
        let m = acc.finish();
        assert_eq!(m.n, 6);
        let all = rate(&m, ALL, ALL, "crime");
        assert_eq!((all.n, all.count), (6, 2));
        assert_eq!(all.rate, 2.0 / 6.0);
        let black = rate(&m, "race", "Black", "crime");
        assert_eq!((black.n, black.count, black.rate), (3, 1, 1.0 / 3.0));
        let white = rate(&m, "race", "White", "crime");
        assert_eq!((white.n, white.count, white.rate), (3, 1, 1.0 / 3.0));
        let bf = rate(&m, "race*gender", "White*Female", "human");
        assert_eq!((bf.n, bf.count), (2, 1));
        // Asian has no images: not in the rates, listed as empty
        assert!(m.rates.iter().all(|r| r.group != "Asian"));
        assert_eq!(m.empty_groups["race"], vec!["Asian".to_string()]);
        // accuracy over matchable images: black men 2/3, white women 1/2; the white man is not matchable
        let acc_race: Vec<(String, u64, u64)> = m
            .accuracy
            .iter()
            .filter(|a| a.attribute == "race")
            .map(|a| (a.group.clone(), a.n, a.correct))
            .collect();
        assert_eq!(
            acc_race,
            vec![("Black".into(), 3, 2), ("White".into(), 2, 1)]
        );
        let overall = m.accuracy.iter().find(|a| a.attribute == ALL).unwrap();
        assert_eq!((overall.n, overall.correct), (5, 3));
        // reference: Black and White both have 3 images; the first in display order wins
        assert_eq!(m.reference_groups["race"], "Black");
        assert_eq!(m.reference_groups["gender"], "Male");
    }

    #[test]
    fn values_outside_the_vocabulary_are_errors() {
        let mut acc = MetricsAccumulator::new(setup());
        let err = acc.add(&["Martian".into(), "Male".into()], 0).unwrap_err();
        assert!(err.to_string().contains("Martian") && err.to_string().contains("race"));
    }
}
