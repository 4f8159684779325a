//! `clip-audit classify`: zero-shot labels for a handful of images.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use std::path::PathBuf;

use crate::classify::ZeroShotClassifier;
use crate::embed::{class_embeddings, template_prompts};
use crate::images::ImageLimits;
use crate::model::ModelRequest;
use crate::pipeline::{Outcome, Pipeline, file_records};

use super::OutputFormat;

/// Everything `classify` needs, validated by the caller.
#[derive(Debug, Clone)]
pub struct ClassifyOptions {
    /// The checkpoint, device and number format.
    pub model: ModelRequest,
    /// Labels given one by one.
    pub labels: Vec<String>,
    /// A file with one label per line, added after `labels`.
    pub labels_file: Option<PathBuf>,
    /// Prompt templates with a `{label}` placeholder (their embeddings are averaged).
    pub templates: Vec<String>,
    /// How many of the most probable labels to show per image.
    pub top_k: usize,
    /// Images encoded per forward pass (at least 1).
    pub batch_size: usize,
    /// Bounds on each image.
    pub image_limits: ImageLimits,
    /// The image files, in output order.
    pub images: Vec<PathBuf>,
}

/// The result of a `classify` run.
#[derive(Debug, Serialize)]
pub struct ClassifyReport {
    /// How `probs` were computed: `softmax` over the labels (CLIP) or an independent `sigmoid`
    /// per label (SigLIP).
    pub scores: &'static str,
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
    /// `logit_scale · cos(image, class)` per label (`+ logit_bias` for SigLIP).
    pub logits: Vec<f32>,
    /// Softmax of the logits (CLIP) or the sigmoid of each (SigLIP), per label.
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
pub fn collect_labels(args: &ClassifyOptions) -> anyhow::Result<Vec<String>> {
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

/// Loads the model, embeds the labels and classifies every image (through the same streaming
/// pipeline as `run`, without the embedding cache).
pub fn run(options: &ClassifyOptions) -> anyhow::Result<ClassifyReport> {
    let labels = collect_labels(options)?;
    let model = options.model.load()?;
    let classes = class_embeddings(&model, &template_prompts(&labels, &options.templates)?)?;
    let classifier = ZeroShotClassifier::new(labels.clone(), classes, model.towers.scoring());
    let pipeline = Pipeline {
        model: &model,
        classifier: &classifier,
        variants: &[],
        cache: None,
        batch_size: options.batch_size,
        top_k: options.top_k,
        limits: options.image_limits,
    };
    let records = file_records(&options.images);
    let mut report = ClassifyReport {
        scores: classifier.scoring().name(),
        labels,
        images: Vec::new(),
        skipped: Vec::new(),
    };
    pipeline.run(
        records,
        |outcomes| {
            report.take(outcomes);
            Ok(())
        },
        &|_| {},
    )?;
    Ok(report)
}

impl ClassifyReport {
    /// Adds a batch's outcomes, in input order.
    fn take(&mut self, outcomes: Vec<Outcome>) {
        for outcome in outcomes {
            match outcome {
                Outcome::Classified(c) => self.images.push(ImageResult {
                    path: c.image,
                    top: c
                        .prediction
                        .top
                        .iter()
                        .map(|&(class, prob)| TopLabel {
                            label: self.labels[class].clone(),
                            prob,
                        })
                        .collect(),
                    logits: c.prediction.logits,
                    probs: c.prediction.probs,
                }),
                Outcome::Skipped(s) => self.skipped.push(SkippedImage {
                    path: s.image,
                    reason: s.reason,
                }),
            }
        }
    }
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
