//! `clip-audit run`: apply a probe set to a dataset with a model and write the report folder.
//!
//! Records stream from the dataset; the calling thread decodes and preprocesses each batch in
//! parallel while a second thread encodes the previous batch, classifies it, writes its
//! predictions and counts them (a bounded queue of two batches keeps memory flat).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::Tensor;
use rayon::prelude::*;
use serde::Serialize;

use crate::classify::ZeroShotClassifier;
use crate::cli::{GroupingArgs, RunArgs};
use crate::dataset::{Dataset, DatasetOptions, Record, RecordItem};
use crate::embed::{class_embeddings, image_embeddings, pixel_batch};
use crate::embed_cache::{EmbeddingCache, ImageKey, ModelKey};
use crate::export::{Report, ReportContext, SkippedRecord, SkippedWriter, write_report};
use crate::images::{AlphaMode, ImageLimits, decode_rgb_with};
use crate::metrics::{Attribute, CategoryInfo, Grouping, MetricsAccumulator, MetricsSetup};
use crate::model::LoadedModel;
use crate::model::preprocess::preprocess;
use crate::predictions::{PredictionRow, PredictionsWriter};
use crate::probe::ProbeSet;
use crate::provenance::{ToolInfo, command_line, utc_now};
use crate::report_folder::StagedReport;

/// Progress events of a run, for a progress bar or log lines.
pub trait RunProgress: Sync {
    /// A phase starts (loading the model, embedding prompts, classifying).
    fn phase(&self, name: &str);
    /// The dataset holds `total` records (known before classifying starts).
    fn total(&self, total: u64);
    /// `done` records of the dataset have been handled (classified or skipped).
    fn records(&self, done: u64);
}

/// What a finished run reports back.
#[derive(Debug)]
pub struct RunSummary {
    /// The report folder.
    pub out: PathBuf,
    /// Images classified.
    pub classified: u64,
    /// Records skipped (missing, undecodable, malformed).
    pub skipped: u64,
    /// Things the user should know that did not stop the run.
    pub warnings: Vec<String>,
}

/// Everything `run.json` records about a run.
#[derive(Debug, Serialize)]
struct Provenance {
    tool: ToolInfo,
    command: Vec<String>,
    started_utc: String,
    model: serde_json::Value,
    embedding_cache: Option<serde_json::Value>,
    probe: serde_json::Value,
    dataset: serde_json::Value,
    records: u64,
    classified: u64,
    skipped: u64,
    /// `skipped / records` (0 when there are no records).
    skipped_fraction: f64,
    batch_size: usize,
    top_k: usize,
    threads: usize,
    device: String,
    timings_s: BTreeMap<&'static str, f64>,
    warnings: Vec<String>,
}

/// A decoded batch on its way to the encoder, in dataset order.
struct Batch {
    items: Vec<BatchItem>,
}

enum BatchItem {
    /// Decoded and preprocessed; to be encoded (and cached under `key`, when caching).
    Image {
        id: String,
        image: String,
        values: Vec<String>,
        pixels: Vec<f32>,
        key: Option<ImageKey>,
    },
    /// Its embedding came from the cache.
    Cached {
        id: String,
        image: String,
        values: Vec<String>,
        embedding: Vec<f32>,
    },
    Skipped(SkippedRecord),
}

/// SHA-256 of the model files, computed up front or still being computed in the background.
enum ModelHashes {
    Ready(BTreeMap<String, String>),
    Pending(std::thread::JoinHandle<Result<Vec<(String, String)>, crate::model::ModelError>>),
}

impl ModelHashes {
    /// The hashes, waiting for the background computation if needed.
    fn finish(self) -> anyhow::Result<BTreeMap<String, String>> {
        match self {
            ModelHashes::Ready(hashes) => Ok(hashes),
            ModelHashes::Pending(handle) => Ok(handle
                .join()
                .map_err(|_| anyhow::anyhow!("the model-hashing thread panicked"))??
                .into_iter()
                .collect()),
        }
    }
}

/// The embedding cache of a run, with the first write failure (reported once, as a warning).
struct RunCache {
    cache: EmbeddingCache,
    write_error: std::sync::Mutex<Option<String>>,
}

/// Runs the audit and writes the report folder.
pub fn run(args: &RunArgs, progress: &dyn RunProgress) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let started_utc = utc_now();
    let command = command_line();
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let probe = ProbeSet::load(&args.probe)?;
    let dataset = Dataset::open(
        &args.dataset,
        &DatasetOptions {
            offline: args.model.offline,
            hub_cache: args.model.hub_cache.clone(),
        },
    )?;
    let attributes = dataset.attributes().to_vec();
    let attribute_names: Vec<String> = attributes.iter().map(|a| a.name.clone()).collect();
    probe.check_attributes(&attribute_names).with_context(|| {
        format!(
            "probe {} on dataset {}",
            args.probe.display(),
            args.dataset.display()
        )
    })?;
    let mut warnings = Vec::new();
    let setup = metrics_setup(&probe, &attributes, &args.grouping, &mut warnings)?;
    progress.phase("checking the dataset");
    // Every row read once, without decoding images: a bad row or a repeated id fails the run
    // before the model is loaded or anything is written.
    let counts = dataset
        .check_records()
        .with_context(|| format!("checking the dataset {}", args.dataset.display()))?;
    let stage = StagedReport::begin(&args.out, &command.join(" "))?;
    let out_dir = stage.dir();

    progress.phase("loading the model");
    let model = super::load_model(&args.model)?;
    if let Some(note) = &model.compute.note {
        warnings.push(note.clone());
    }
    let cache_root = cache_root(args, &mut warnings);
    // The model files' hashes key the cache, so with a cache they are needed now (memoised under
    // the cache folder). Without one they only go into run.json: hash in the background.
    let (model_hashes, cache) = match &cache_root {
        Some(root) => {
            let memo = root.join("file-hashes");
            let hashes: BTreeMap<String, String> = model
                .files
                .sha256_hashes_memo(Some(&memo))?
                .into_iter()
                .collect();
            let cache = open_cache(root, &model, &hashes)?;
            (ModelHashes::Ready(hashes), Some(cache))
        }
        None => {
            let files = model.files.clone();
            let hashing = std::thread::spawn(move || files.sha256_hashes());
            (ModelHashes::Pending(hashing), None)
        }
    };
    if cache.is_none() {
        // every image will be encoded: load the image tower now, not inside the first batch
        model.clip.load_image_tower()?;
    }
    let loaded = started.elapsed().as_secs_f64();
    progress.phase("embedding the probe's prompts");
    let classes = class_embeddings(&model, &probe.prompts())?;
    let classifier = ZeroShotClassifier::new(probe.labels(), classes, model.clip.logit_scale());
    let prompts_done = started.elapsed().as_secs_f64();

    progress.total(counts.items);
    progress.phase("classifying");
    let mut writer = PredictionsWriter::create(out_dir, &attribute_names, args.predictions_csv)?;
    let mut accumulator = MetricsAccumulator::new(setup.clone());
    let mut skipped = SkippedWriter::create(out_dir)?;
    let mut records_seen = 0u64;
    let (sender, receiver) = sync_channel::<Batch>(2);
    let strict = args.strict;
    let encode_result = std::thread::scope(|scope| -> anyhow::Result<()> {
        let encoder = scope.spawn(|| -> anyhow::Result<()> {
            let mut done = 0u64;
            for batch in receiver {
                done += batch.items.len() as u64;
                classify_batch(
                    batch,
                    &model,
                    cache.as_ref(),
                    &classifier,
                    &probe,
                    args.top_k,
                    strict,
                    &mut writer,
                    &mut accumulator,
                    &mut skipped,
                )?;
                progress.records(done);
            }
            Ok(())
        });
        let produced = produce(
            &dataset,
            &model,
            cache.as_ref(),
            args.batch,
            &args.image_limits.limits(),
            &sender,
            &mut records_seen,
        );
        drop(sender);
        let encoded = encoder
            .join()
            .map_err(|_| anyhow::anyhow!("the encoder thread panicked"))?;
        // an encoder error (e.g. --strict) explains a send failure on the producer side
        encoded?;
        produced
    });
    encode_result?;
    writer.finish()?;
    let (skipped_total, skipped_first) = skipped.finish()?;
    if let Some(error) = cache
        .as_ref()
        .and_then(|c| c.write_error.lock().ok().and_then(|mut e| e.take()))
    {
        warnings.push(format!(
            "the embedding cache could not be written ({error}); later runs will encode again"
        ));
    }
    let images_done = started.elapsed().as_secs_f64();
    let metrics = accumulator.finish();
    let classified = metrics.n;
    let first_skipped = || {
        let first: Vec<String> = skipped_first
            .iter()
            .take(3)
            .map(|s| format!("{}: {}", s.image, s.reason))
            .collect();
        if first.is_empty() {
            String::new()
        } else {
            format!(" (first: {})", first.join("; "))
        }
    };
    if classified == 0 {
        bail!(
            "no image was classified: {} has {records_seen} records, {skipped_total} of them skipped{}",
            args.dataset.display(),
            first_skipped()
        );
    }
    let skipped_fraction = if records_seen == 0 {
        0.0
    } else {
        skipped_total as f64 / records_seen as f64
    };
    if let Some(max) = args.max_skipped
        && skipped_fraction > max
    {
        bail!(
            "{skipped_total} of {records_seen} records ({}) were skipped, more than \
             --max-skipped {max} allows{}",
            percent(skipped_total, records_seen),
            first_skipped()
        );
    }
    if skipped_total > 0 {
        warnings.push(format!(
            "{skipped_total} of {records_seen} records ({}) were skipped (missing, unreadable \
             or malformed); every one is listed with its reason in {}",
            percent(skipped_total, records_seen),
            stage.out().join("skipped.csv").display()
        ));
    }

    let context = ReportContext {
        skipped: skipped_first,
        skipped_total,
        skipped_streamed: true,
        ..report_context(
            format!("{} on {}", probe.name, dataset.name()),
            &probe,
            &setup,
            model.files.display_name(),
            dataset.name().to_string(),
            args.grouping.note.clone(),
        )
    };
    write_report(
        &Report {
            context: &context,
            metrics: &metrics,
        },
        out_dir,
    )?;

    let model_hashes = model_hashes.finish()?;
    let mut timings = BTreeMap::new();
    timings.insert("model_load", loaded);
    timings.insert("prompts", prompts_done - loaded);
    timings.insert("images", images_done - prompts_done);
    timings.insert("total", started.elapsed().as_secs_f64());
    let provenance = Provenance {
        tool: ToolInfo::current(),
        command,
        started_utc,
        model: model_provenance(&model, &model_hashes),
        embedding_cache: cache.as_ref().map(|c| {
            let stats = c.cache.stats();
            serde_json::json!({
                "dir": c.cache.dir().display().to_string(),
                "hits": stats.hits,
                "misses": stats.misses,
                "written": stats.written,
                "corrupt": stats.corrupt,
            })
        }),
        probe: serde_json::json!({
            "name": probe.name,
            "file": args.probe.display().to_string(),
            "content_hash": probe.content_hash(),
            "classes": probe.classes.len(),
        }),
        dataset: serde_json::json!({
            "name": dataset.name(),
            "argument": args.dataset.display().to_string(),
            "spec_sha256": dataset.spec_hash(),
            "source": dataset.provenance(),
        }),
        records: records_seen,
        classified,
        skipped: skipped_total,
        skipped_fraction,
        batch_size: args.batch,
        top_k: args.top_k,
        threads: super::thread_count(),
        device: args.model.device.to_string(),
        timings_s: timings,
        warnings: warnings.clone(),
    };
    let run_json = out_dir.join("run.json");
    std::fs::write(&run_json, serde_json::to_string_pretty(&provenance)? + "\n")
        .with_context(|| format!("writing {}", run_json.display()))?;
    let out = stage.commit()?;
    Ok(RunSummary {
        out,
        classified,
        skipped: skipped_total,
        warnings,
    })
}

/// Reads records, decodes and preprocesses each batch in parallel (or takes embeddings from the
/// cache), and queues it.
fn produce(
    dataset: &Dataset,
    model: &LoadedModel,
    cache: Option<&RunCache>,
    batch_size: usize,
    limits: &ImageLimits,
    sender: &std::sync::mpsc::SyncSender<Batch>,
    seen: &mut u64,
) -> anyhow::Result<()> {
    // Decoding gets its own threads rather than sharing the encoder's pool: there, a decode task
    // would hold up every parallel step of the encoder that waits for that thread, whereas the
    // operating system interleaves separate threads at a fine grain. When the encoder is the
    // bottleneck these threads mostly wait on the bounded queue. Half the worker count: measured
    // on 2 cores, one decoding thread beside the encoder's two was faster end to end than two.
    // Memory: each of these threads holds at most one image, `limits.per_image_bound()` bytes
    // (its file plus every decoding buffer), so decoding adds at most threads/2 of those.
    let decoders = rayon::ThreadPoolBuilder::new()
        .num_threads((super::thread_count() / 2).max(1))
        .thread_name(|i| format!("clip-audit-decode-{i}"))
        .build()
        .context("starting the decoding threads")?;
    let mut pending = Vec::with_capacity(batch_size);
    let send = |pending: Vec<RecordItem>| -> anyhow::Result<()> {
        let items = decoders.install(|| {
            pending
                .into_par_iter()
                .map(|item| match item {
                    RecordItem::Skipped(s) => BatchItem::Skipped(s),
                    RecordItem::Record(r) => load_item(r, model, cache, limits),
                })
                .collect()
        });
        // a closed channel means the encoder stopped on an error, which the caller reports
        sender
            .send(Batch { items })
            .map_err(|_| anyhow::anyhow!("the encoder stopped"))
    };
    for item in dataset.records()? {
        pending.push(item?);
        *seen += 1;
        if pending.len() == batch_size {
            send(std::mem::replace(
                &mut pending,
                Vec::with_capacity(batch_size),
            ))?;
        }
    }
    if !pending.is_empty() {
        send(pending)?;
    }
    Ok(())
}

/// Reads one record's image (within `limits`): its cached embedding, or its preprocessed pixels.
fn load_item(
    record: Record,
    model: &LoadedModel,
    cache: Option<&RunCache>,
    limits: &ImageLimits,
) -> BatchItem {
    let image = record.image.display();
    let bytes = match record.image.read_bytes(limits) {
        Ok(bytes) => bytes,
        Err(e) => {
            return BatchItem::Skipped(SkippedRecord {
                id: record.id,
                image,
                reason: e.reason(),
            });
        }
    };
    let key = cache.map(|_| ImageKey::of_bytes(&bytes));
    if let (Some(c), Some(k)) = (cache, &key)
        && let Some(embedding) = c.cache.get(k)
    {
        return BatchItem::Cached {
            id: record.id,
            image,
            values: record.values,
            embedding,
        };
    }
    match decode_rgb_with(&bytes, &image, AlphaMode::default(), limits) {
        Ok(rgb) => BatchItem::Image {
            id: record.id,
            image,
            values: record.values,
            pixels: preprocess(&rgb, &model.preprocess),
            key,
        },
        Err(e) => BatchItem::Skipped(SkippedRecord {
            id: record.id,
            image,
            reason: e.reason(),
        }),
    }
}

/// Encodes a batch's images (storing new embeddings in the cache), classifies them, and records
/// predictions, counts and skips.
#[allow(clippy::too_many_arguments)]
fn classify_batch(
    batch: Batch,
    model: &LoadedModel,
    cache: Option<&RunCache>,
    classifier: &ZeroShotClassifier,
    probe: &ProbeSet,
    top_k: usize,
    strict: bool,
    writer: &mut PredictionsWriter,
    accumulator: &mut MetricsAccumulator,
    skipped: &mut SkippedWriter,
) -> anyhow::Result<()> {
    /// Where a classified item's embedding comes from.
    enum Source {
        Cached(Vec<f32>),
        Encoded { row: usize, key: Option<ImageKey> },
    }
    let mut pixels = Vec::new();
    let mut meta = Vec::new();
    for item in batch.items {
        match item {
            BatchItem::Image {
                id,
                image,
                values,
                pixels: p,
                key,
            } => {
                meta.push((
                    id,
                    image,
                    values,
                    Source::Encoded {
                        row: pixels.len(),
                        key,
                    },
                ));
                pixels.push(p);
            }
            BatchItem::Cached {
                id,
                image,
                values,
                embedding,
            } => meta.push((id, image, values, Source::Cached(embedding))),
            BatchItem::Skipped(s) => {
                if strict {
                    bail!("--strict: record {} ({}): {}", s.id, s.image, s.reason);
                }
                skipped.push(s)?;
            }
        }
    }
    if meta.is_empty() {
        return Ok(());
    }
    let encoded: Vec<Vec<f32>> = if pixels.is_empty() {
        Vec::new()
    } else {
        image_embeddings(model, &pixel_batch(model, pixels)?)?.to_vec2::<f32>()?
    };
    let dim = model.clip.config().projection_dim;
    let mut flat = Vec::with_capacity(meta.len() * dim);
    let mut rows = Vec::with_capacity(meta.len());
    for (id, image, values, source) in meta {
        match source {
            Source::Cached(embedding) => flat.extend_from_slice(&embedding),
            Source::Encoded { row, key } => {
                let embedding = &encoded[row];
                if let (Some(c), Some(key)) = (cache, key)
                    && let Err(e) = c.cache.put(&key, embedding)
                    && let Ok(mut first) = c.write_error.lock()
                {
                    first.get_or_insert_with(|| e.to_string());
                }
                flat.extend_from_slice(embedding);
            }
        }
        rows.push((id, image, values));
    }
    let embeddings = Tensor::from_vec(flat, (rows.len(), dim), &model.device)?;
    let predictions = classifier.classify(&embeddings, top_k)?;
    let labels = classifier.labels();
    for ((id, image, values), prediction) in rows.into_iter().zip(predictions) {
        let best = prediction.best();
        accumulator
            .add(&values, best)
            .with_context(|| format!("record {id} ({image})"))?;
        writer.push(PredictionRow {
            id,
            image,
            values,
            predicted_label: labels[best].clone(),
            predicted_category: probe.category_of(best).name.clone(),
            top_labels: prediction
                .top
                .iter()
                .map(|&(c, _)| labels[c].clone())
                .collect(),
            top_probs: prediction.top.iter().map(|&(_, p)| p).collect(),
        })?;
    }
    Ok(())
}

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
        categories: setup.categories.clone(),
        attributes: setup.attributes.clone(),
        groupings: setup.groupings.clone(),
        labels: probe.label_categories(),
        skipped: Vec::new(),
        skipped_total: 0,
        skipped_streamed: false,
        note,
    }
}

/// Builds the metrics setup: categories and match rules from the probe, groupings and
/// reference groups from the options. A `match` value the dataset cannot have is a warning.
pub fn metrics_setup(
    probe: &ProbeSet,
    attributes: &[Attribute],
    options: &GroupingArgs,
    warnings: &mut Vec<String>,
) -> anyhow::Result<MetricsSetup> {
    let names: Vec<&str> = if options.by.is_empty() {
        attributes.iter().map(|a| a.name.as_str()).collect()
    } else {
        options.by.iter().map(String::as_str).collect()
    };
    let mut groupings = Vec::new();
    for name in names {
        groupings
            .push(Grouping::new(&[name], attributes).map_err(|e| anyhow::anyhow!("--by: {e}"))?);
    }
    for spec in &options.intersect {
        let parts: Vec<&str> = spec.attributes.iter().map(String::as_str).collect();
        groupings.push(
            Grouping::new(&parts, attributes)
                .map_err(|e| anyhow::anyhow!("--intersect {spec}: {e}"))?,
        );
    }
    let mut reference = BTreeMap::new();
    for spec in &options.reference {
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
    let class_matches = probe
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
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    })
}

fn model_provenance(model: &LoadedModel, hashes: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::json!({
        "name": model.files.display_name(),
        "origin": model.files.origin,
        "sha256": hashes,
        "logit_scale": model.clip.logit_scale(),
        "compute": model.compute,
    })
}

/// The cache folder the options ask for; `None` with `--no-cache`, or (with a warning) when no
/// cache folder can be found.
fn cache_root(args: &RunArgs, warnings: &mut Vec<String>) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    match &args.cache_dir {
        Some(dir) => Some(dir.clone()),
        None => match EmbeddingCache::default_root() {
            Ok(root) => Some(root),
            Err(e) => {
                warnings.push(format!("embedding cache off: {e}"));
                None
            }
        },
    }
}

/// Opens the embedding cache of this model under `root`.
fn open_cache(
    root: &std::path::Path,
    model: &LoadedModel,
    hashes: &BTreeMap<String, String>,
) -> anyhow::Result<RunCache> {
    // everything that decides an image's embedding besides its bytes
    let mut parts: Vec<(&str, &str)> = hashes
        .iter()
        .filter(|(file, _)| file.as_str() != "tokenizer.json")
        .map(|(file, hash)| (file.as_str(), hash.as_str()))
        .collect();
    parts.push(("dtype", model.compute.used.name()));
    parts.push(("image_encoder", model.compute.encoder.tower_name()));
    let key = ModelKey::new(&parts);
    let cache = EmbeddingCache::open(root, &key, model.clip.config().projection_dim)
        .with_context(|| format!("opening the embedding cache in {}", root.display()))?;
    cache.sweep_stale_temp_files();
    Ok(RunCache {
        cache,
        write_error: std::sync::Mutex::new(None),
    })
}

/// `part / whole` as a percentage with two decimals that never rounds to 0% or 100% falsely.
fn percent(part: u64, whole: u64) -> String {
    let value = if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    };
    let text = format!("{value:.2}%");
    match text.as_str() {
        "0.00%" if part > 0 => "<0.01%".into(),
        "100.00%" if part < whole => ">99.99%".into(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_never_round_to_none_or_all() {
        assert_eq!(percent(2, 10), "20.00%");
        assert_eq!(percent(0, 10), "0.00%");
        assert_eq!(percent(10, 10), "100.00%");
        assert_eq!(percent(1, 1_000_000), "<0.01%");
        assert_eq!(percent(999_999, 1_000_000), ">99.99%");
        assert_eq!(percent(0, 0), "0.00%");
    }
}
