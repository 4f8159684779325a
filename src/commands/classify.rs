//! `clip-audit classify`: zero-shot labels for a handful of images.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::classify::ZeroShotClassifier;
use crate::cli::{ClassifyArgs, OutputFormat};
use crate::embed::{class_embeddings, embed_image_files, template_prompts};

/// The result of a `classify` run.
#[derive(Debug, Serialize)]
pub struct ClassifyReport {
    /// The labels, in the order of every score vector.
    pub labels: Vec<String>,
    /// One entry per readable image, in input order.
    pub images: Vec<ImageResult>,
    /// Images that could not be read, with the reason.
    pub skipped: Vec<SkippedImage>,
}

/// Scores of one image.
#[derive(Debug, Serialize)]
pub struct ImageResult {
    /// The image path as given.
    pub path: String,
    /// `logit_scale · cos(image, class)` per label.
    pub logits: Vec<f32>,
    /// Softmax of the logits per label.
    pub probs: Vec<f32>,
    /// The best labels, most probable first.
    pub top: Vec<TopLabel>,
}

/// One of an image's most probable labels.
#[derive(Debug, Serialize)]
pub struct TopLabel {
    /// The label.
    pub label: String,
    /// Its probability.
    pub prob: f32,
}

/// An image that could not be classified.
#[derive(Debug, Serialize)]
pub struct SkippedImage {
    /// The image path as given.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Reads labels from the flags and the optional labels file, in that order.
pub fn collect_labels(args: &ClassifyArgs) -> anyhow::Result<Vec<String>> {
    let mut labels = args.labels.clone();
    if let Some(path) = &args.labels_file {
        labels.extend(read_labels_file(path)?);
    }
    anyhow::ensure!(
        !labels.is_empty(),
        "no labels: give --label LABEL... or --labels-file FILE"
    );
    let mut seen = std::collections::HashSet::new();
    for label in &labels {
        anyhow::ensure!(!label.trim().is_empty(), "empty label");
        anyhow::ensure!(
            seen.insert(label.as_str()),
            "label {label:?} is given twice"
        );
    }
    Ok(labels)
}

fn read_labels_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = crate::input_file::read_regular_text(path)
        .with_context(|| format!("reading labels file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Loads the model, embeds the labels and classifies every image.
pub fn run(args: &ClassifyArgs) -> anyhow::Result<ClassifyReport> {
    let labels = collect_labels(args)?;
    let model = super::load_model(&args.model)?;
    let classes = class_embeddings(&model, &template_prompts(&labels, &args.templates)?)?;
    let classifier = ZeroShotClassifier::new(labels.clone(), classes, model.clip.logit_scale());
    let limits = args.image_limits.limits();
    let embedded = embed_image_files(&model, &args.images, args.batch, &limits, |_| {})?;
    let predictions = classifier.classify(&embedded.embeddings, args.top_k)?;
    let images = embedded
        .indices
        .iter()
        .zip(predictions)
        .map(|(&i, p)| ImageResult {
            path: args.images[i].display().to_string(),
            top: p
                .top
                .iter()
                .map(|&(c, prob)| TopLabel {
                    label: labels[c].clone(),
                    prob,
                })
                .collect(),
            logits: p.logits,
            probs: p.probs,
        })
        .collect();
    let skipped = embedded
        .failures
        .iter()
        .map(|(i, e)| SkippedImage {
            path: args.images[*i].display().to_string(),
            reason: e.reason(),
        })
        .collect();
    Ok(ClassifyReport {
        labels,
        images,
        skipped,
    })
}

/// Renders a report as a table for people or as one JSON object.
pub fn render(report: &ClassifyReport, format: OutputFormat) -> anyhow::Result<String> {
    match format {
        OutputFormat::Json => Ok(serde_json::to_string_pretty(report)? + "\n"),
        OutputFormat::Table => {
            let width = report
                .labels
                .iter()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(5)
                .max(5);
            let mut out = String::new();
            for image in &report.images {
                writeln!(out, "{}", image.path)?;
                for (rank, t) in image.top.iter().enumerate() {
                    writeln!(
                        out,
                        "  {:>2}. {:<width$}  {:>6.2}%",
                        rank + 1,
                        t.label,
                        100.0 * t.prob
                    )?;
                }
            }
            Ok(out)
        }
    }
}
