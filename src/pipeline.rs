//! The streaming classification pipeline shared by `run`, `classify` and `bench`:
//! records → image bytes → pixels (or a cached embedding) → embeddings → predictions.
//!
//! The calling thread reads records and decodes and preprocesses each batch in parallel on its own
//! decoding threads, while a second thread encodes the previous batch, classifies it and hands the
//! outcomes, in record order, to the caller's sink. A bounded queue of two batches keeps memory
//! flat in the number of records.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, sync_channel};

use anyhow::Context;
use candle_core::Tensor;
use rayon::prelude::*;

use crate::classify::{Prediction, ZeroShotClassifier};
use crate::dataset::{ImageSource, Record, RecordItem};
use crate::embed::{image_embeddings, pixel_batch};
use crate::embed_cache::{EmbeddingCache, ImageKey};
use crate::images::{AlphaMode, ImageLimits, ImageLoadError, decode_rgb_with};
use crate::model::LoadedModel;
use crate::model::preprocess::preprocess;
use crate::schema::SkippedRecord;

/// What became of one record.
#[derive(Debug)]
pub enum Outcome {
    /// The image was classified.
    Classified(Classified),
    /// The image could not be used; the reason goes to `skipped.csv`.
    Skipped(SkippedRecord),
}

/// A classified record.
#[derive(Debug)]
pub struct Classified {
    /// The record's id.
    pub id: String,
    /// The image path (or embedded image name).
    pub image: String,
    /// The record's attribute values.
    pub values: Vec<String>,
    /// Scores and best labels.
    pub prediction: Prediction,
    /// The best class under each of [`Pipeline::variants`], in order (empty without variants).
    pub variant_best: Vec<usize>,
}

/// The pipeline's fixed parts: model, classifier, optional cache and per-image bounds.
pub struct Pipeline<'a> {
    /// The loaded checkpoint.
    pub model: &'a LoadedModel,
    /// Class embeddings and labels.
    pub classifier: &'a ZeroShotClassifier,
    /// Further classifiers over the same labels (`run --per-template`: one per template), each
    /// applied to the same image embeddings; their best classes go to
    /// [`Classified::variant_best`].
    pub variants: &'a [ZeroShotClassifier],
    /// Embeddings of images seen before (keyed by image bytes), and where new ones are stored.
    pub cache: Option<&'a EmbeddingCache>,
    /// Images encoded per forward pass (at least 1).
    pub batch_size: usize,
    /// Labels kept per prediction, most probable first.
    pub top_k: usize,
    /// Bounds on each image's file and decoded size.
    pub limits: ImageLimits,
}

/// What a pass of the pipeline counted besides its outcomes.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Records read from the source (classified and skipped).
    pub records: u64,
    /// The first failure to store an embedding in the cache (later runs encode again).
    pub cache_write_error: Option<String>,
}

/// A decoded batch on its way to the encoder, in record order.
struct Batch {
    items: Vec<BatchItem>,
}

/// An image read for the encoder.
enum Loaded {
    /// Its embedding, from the cache.
    Cached(Vec<f32>),
    /// Its preprocessed pixels, and its cache key when caching.
    Pixels(Vec<f32>, Option<ImageKey>),
}

/// One record of a batch.
enum BatchItem {
    /// Decoded and preprocessed; to be encoded (and cached under `key`, when caching).
    Pixels {
        record: Record,
        image: String,
        pixels: Vec<f32>,
        key: Option<ImageKey>,
    },
    /// Its embedding came from the cache.
    Cached {
        record: Record,
        image: String,
        embedding: Vec<f32>,
    },
    /// Skipped by the source or while reading.
    Skipped(SkippedRecord),
}

/// Records of image files, ids their positions and no attribute values (`classify`, `bench`).
pub fn file_records(
    paths: &[PathBuf],
) -> impl Iterator<Item = Result<RecordItem, std::convert::Infallible>> + '_ {
    paths.iter().enumerate().map(|(i, path)| {
        Ok(RecordItem::Record(Record {
            id: i.to_string(),
            image: ImageSource::File(path.clone()),
            values: Vec::new(),
        }))
    })
}

/// The preprocessed pixels (CHW, the model's input size) of one image, read within `limits`.
pub fn image_pixels(
    image: &ImageSource,
    model: &LoadedModel,
    limits: &ImageLimits,
) -> Result<Vec<f32>, ImageLoadError> {
    let bytes = image.read_bytes(limits)?;
    decoded_pixels(&bytes, &image.display(), model, limits)
}

fn decoded_pixels(
    bytes: &[u8],
    name: &str,
    model: &LoadedModel,
    limits: &ImageLimits,
) -> Result<Vec<f32>, ImageLoadError> {
    let rgb = decode_rgb_with(bytes, name, AlphaMode::default(), limits)?;
    Ok(preprocess(&rgb, &model.preprocess))
}

impl Pipeline<'_> {
    /// Classifies every record of `records`, handing each batch's outcomes in record order to
    /// `sink` (on the encoding thread) and the number of records done so far to `on_progress`.
    /// A source error, a model error or a sink error stops the pass.
    pub fn run<E>(
        &self,
        records: impl Iterator<Item = Result<RecordItem, E>>,
        sink: impl FnMut(Vec<Outcome>) -> anyhow::Result<()> + Send,
        on_progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<PipelineStats>
    where
        E: Into<anyhow::Error>,
    {
        let write_error = Mutex::new(None);
        let (sender, receiver) = sync_channel::<Batch>(2);
        let mut sink = sink;
        let records_read = std::thread::scope(|scope| -> anyhow::Result<u64> {
            let encoder = scope.spawn(|| -> anyhow::Result<()> {
                let mut done = 0u64;
                for batch in receiver {
                    done += batch.items.len() as u64;
                    sink(self.classify_batch(batch, &write_error)?)?;
                    on_progress(done);
                }
                Ok(())
            });
            let produced = self.produce(records, &sender);
            drop(sender);
            let encoded = encoder
                .join()
                .map_err(|_| anyhow::anyhow!("the encoder thread panicked"))?;
            // an encoder or sink error (e.g. --strict) explains a send failure on this side
            encoded?;
            produced
        })?;
        Ok(PipelineStats {
            records: records_read,
            cache_write_error: write_error.into_inner().ok().flatten(),
        })
    }

    /// Reads records, decodes and preprocesses each batch in parallel (or takes embeddings from
    /// the cache), and queues it; returns the number of records read.
    fn produce<E: Into<anyhow::Error>>(
        &self,
        records: impl Iterator<Item = Result<RecordItem, E>>,
        sender: &SyncSender<Batch>,
    ) -> anyhow::Result<u64> {
        let decoders = decoding_threads()?;
        let batch_size = self.batch_size.max(1);
        let mut pending = Vec::with_capacity(batch_size);
        let mut seen = 0u64;
        let send = |pending: Vec<RecordItem>| -> anyhow::Result<()> {
            let items = decoders.install(|| {
                pending
                    .into_par_iter()
                    .map(|item| match item {
                        RecordItem::Skipped(s) => BatchItem::Skipped(s),
                        RecordItem::Record(r) => self.load_item(r),
                    })
                    .collect()
            });
            // a closed channel means the encoder stopped on an error, which the caller reports
            sender
                .send(Batch { items })
                .map_err(|_| anyhow::anyhow!("the encoder stopped"))
        };
        for item in records {
            pending.push(item.map_err(Into::into)?);
            seen += 1;
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
        Ok(seen)
    }

    /// Reads one record's image: its cached embedding, or its preprocessed pixels.
    fn load_item(&self, record: Record) -> BatchItem {
        let image = record.image.display();
        match self.read_image(&record.image, &image) {
            Ok(Loaded::Cached(embedding)) => BatchItem::Cached {
                record,
                image,
                embedding,
            },
            Ok(Loaded::Pixels(pixels, key)) => BatchItem::Pixels {
                record,
                image,
                pixels,
                key,
            },
            Err(e) => BatchItem::Skipped(SkippedRecord {
                id: record.id,
                image,
                reason: e.reason(),
            }),
        }
    }

    /// The cached embedding of an image's bytes, or its pixels and cache key.
    fn read_image(&self, source: &ImageSource, name: &str) -> Result<Loaded, ImageLoadError> {
        let bytes = source.read_bytes(&self.limits)?;
        let key = self.cache.map(|_| ImageKey::of_bytes(&bytes));
        if let (Some(cache), Some(k)) = (self.cache, &key)
            && let Some(embedding) = cache.get(k)
        {
            return Ok(Loaded::Cached(embedding));
        }
        let pixels = decoded_pixels(&bytes, name, self.model, &self.limits)?;
        Ok(Loaded::Pixels(pixels, key))
    }

    /// Encodes a batch's images (storing new embeddings in the cache) and classifies them.
    fn classify_batch(
        &self,
        mut batch: Batch,
        write_error: &Mutex<Option<String>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let mut pixels = Vec::new();
        for item in &mut batch.items {
            if let BatchItem::Pixels { pixels: p, .. } = item {
                pixels.push(std::mem::take(p));
            }
        }
        let encoded: Vec<Vec<f32>> = if pixels.is_empty() {
            Vec::new()
        } else {
            let tensor = pixel_batch(self.model, pixels)?;
            image_embeddings(self.model, &tensor)?.to_vec2::<f32>()?
        };
        let mut encoded = encoded.into_iter();
        let mut rows = Vec::new();
        let mut embeddings = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.items.len());
        for item in batch.items {
            let (record, image, embedding) = match item {
                BatchItem::Skipped(s) => {
                    outcomes.push(Some(Outcome::Skipped(s)));
                    continue;
                }
                BatchItem::Cached {
                    record,
                    image,
                    embedding,
                } => (record, image, embedding),
                BatchItem::Pixels {
                    record, image, key, ..
                } => {
                    let embedding = encoded.next().context("an encoded image is missing")?;
                    self.store(key, &embedding, write_error);
                    (record, image, embedding)
                }
            };
            rows.push((outcomes.len(), record, image));
            embeddings.extend(embedding);
            outcomes.push(None);
        }
        self.fill_predictions(rows, embeddings, &mut outcomes)?;
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Stores a new embedding in the cache, remembering the first failure.
    fn store(&self, key: Option<ImageKey>, embedding: &[f32], write_error: &Mutex<Option<String>>) {
        if let (Some(cache), Some(key)) = (self.cache, key)
            && let Err(e) = cache.put(&key, embedding)
            && let Ok(mut first) = write_error.lock()
        {
            first.get_or_insert_with(|| e.to_string());
        }
    }

    /// Classifies the embeddings of `rows` and puts each prediction at its record's place.
    fn fill_predictions(
        &self,
        rows: Vec<(usize, Record, String)>,
        embeddings: Vec<f32>,
        outcomes: &mut [Option<Outcome>],
    ) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let dim = self.model.towers.embedding_dim();
        let tensor = Tensor::from_vec(embeddings, (rows.len(), dim), &self.model.device)?;
        let predictions = self.classifier.classify(&tensor, self.top_k)?;
        let mut variant_best = vec![Vec::with_capacity(self.variants.len()); rows.len()];
        for variant in self.variants {
            for (row, p) in variant.classify(&tensor, 1)?.iter().enumerate() {
                variant_best[row].push(p.best());
            }
        }
        let rows = rows.into_iter().zip(predictions).zip(variant_best);
        for (((at, record, image), prediction), variant_best) in rows {
            outcomes[at] = Some(Outcome::Classified(Classified {
                id: record.id,
                image,
                values: record.values,
                prediction,
                variant_best,
            }));
        }
        Ok(())
    }
}

/// Threads that decode and preprocess images, apart from the encoder's pool.
///
/// Decoding gets its own threads rather than sharing the encoder's pool: there, a decode task
/// would hold up every parallel step of the encoder that waits for that thread, whereas the
/// operating system interleaves separate threads at a fine grain. When the encoder is the
/// bottleneck these threads mostly wait on the bounded queue. Half the worker count: measured on
/// 2 cores, one decoding thread beside the encoder's two was faster end to end than two. Memory:
/// each of these threads holds at most one image, `limits.per_image_bound()` bytes (its file plus
/// every decoding buffer), so decoding adds at most threads/2 of those.
fn decoding_threads() -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads((rayon::current_num_threads() / 2).max(1))
        .thread_name(|i| format!("clip-audit-decode-{i}"))
        .build()
        .context("starting the decoding threads")
}
