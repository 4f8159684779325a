//! What run and aggregate share: the metrics setup (categories, groupings, reference groups) and
//! the report context built from a probe set and a grouping request.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::export::ReportContext;
use crate::metrics::{Attribute, CategoryInfo, Grouping, GroupingRequest, MetricsSetup};
use crate::probe::ProbeSet;

/// The report context of `probe` tabulated with `setup` (no skipped images; set them after).
pub fn report_context(
    title: String,
    probe: &ProbeSet,
    setup: &MetricsSetup,
    model: String,
    dataset: String,
    note: Option<String>,
) -> ReportContext {
    ReportContext {
        title,
        probe_name: probe.name.clone(),
        probe_description: probe.description.clone(),
        probe_hash: probe.content_hash(),
        model,
        dataset,
        scores: None,
        templates: probe.templates.clone(),
        categories: setup.categories.clone(),
        attributes: setup.attributes.clone(),
        groupings: setup.groupings.clone(),
        labels: probe.label_categories(),
        skipped: Vec::new(),
        skipped_total: 0,
        skipped_streamed: false,
        note,
        per_template: None,
    }
}

/// Builds the metrics setup: categories and match rules from the probe, groupings and
/// reference groups from the request. A `match` value the dataset cannot have is a warning.
pub fn metrics_setup(
    probe: &ProbeSet,
    attributes: &[Attribute],
    request: &GroupingRequest,
    warnings: &mut Vec<String>,
) -> anyhow::Result<MetricsSetup> {
    let groupings = groupings(request, attributes)?;
    let reference = reference_groups(request, &groupings, attributes)?;
    let class_matches = class_matches(probe, attributes, warnings)?;
    Ok(MetricsSetup {
        attributes: attributes.to_vec(),
        groupings,
        categories: probe
            .categories
            .iter()
            .map(|c| CategoryInfo {
                name: c.name.clone(),
                harmful: c.harmful,
            })
            .collect(),
        class_category: probe.classes.iter().map(|c| c.category).collect(),
        class_matches,
        reference,
        alpha: request.alpha,
        band: probe.ratio_band.unwrap_or_default(),
    })
}

/// The groupings to tabulate: each attribute asked for (all by default), then the intersections.
fn groupings(request: &GroupingRequest, attributes: &[Attribute]) -> anyhow::Result<Vec<Grouping>> {
    let names: Vec<&str> = if request.by.is_empty() {
        attributes.iter().map(|a| a.name.as_str()).collect()
    } else {
        request.by.iter().map(String::as_str).collect()
    };
    let mut groupings = Vec::new();
    for name in names {
        groupings
            .push(Grouping::new(&[name], attributes).map_err(|e| anyhow::anyhow!("--by: {e}"))?);
    }
    for spec in &request.intersections {
        let parts: Vec<&str> = spec.attributes.iter().map(String::as_str).collect();
        groupings.push(
            Grouping::new(&parts, attributes)
                .map_err(|e| anyhow::anyhow!("--intersect {spec}: {e}"))?,
        );
    }
    Ok(groupings)
}

/// The reference group of each grouping named by `--reference`, checked against the groupings.
fn reference_groups(
    request: &GroupingRequest,
    groupings: &[Grouping],
    attributes: &[Attribute],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut reference = BTreeMap::new();
    for spec in &request.references {
        let (attribute, group) = (spec.grouping.as_str(), spec.group.as_str());
        let grouping = groupings
            .iter()
            .find(|g| g.name == attribute)
            .with_context(|| {
                format!("--reference {spec}: `{attribute}` is not a tabulated grouping")
            })?;
        let valid = grouping.attributes.len() == 1
            && attributes[grouping.attributes[0]]
                .values
                .iter()
                .any(|v| v == group)
            || grouping.attributes.len() > 1;
        anyhow::ensure!(
            valid,
            "--reference {spec}: `{group}` is not a value of `{attribute}`"
        );
        reference.insert(attribute.to_string(), group.to_string());
    }
    Ok(reference)
}

/// Each class's `match` rules as (attribute index, value); a value the dataset cannot have is a
/// warning, since a prediction of that class can then never count as correct.
fn class_matches(
    probe: &ProbeSet,
    attributes: &[Attribute],
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<Vec<(usize, String)>>> {
    probe
        .classes
        .iter()
        .map(|c| {
            c.matches
                .iter()
                .map(|(a, v)| {
                    let index = attributes.iter().position(|x| &x.name == a).context("checked")?;
                    if !attributes[index].values.contains(v) {
                        warnings.push(format!(
                            "probe {}: class `{}` matches {a} = {v:?}, which is not a value of `{a}` in \
                             the dataset ({}), so a prediction of it never counts as correct",
                            probe.name,
                            c.label,
                            attributes[index].values.join(", ")
                        ));
                    }
                    Ok((index, v.clone()))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect()
}
