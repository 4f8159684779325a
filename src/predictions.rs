//! The predictions table: one row per classified image, written to Parquet (and CSV on request)
//! as predictions arrive, and streamed back (CSV or Parquet, from any classifier) by `aggregate`:
//! CSV row by row, Parquet one row group at a time, so memory stays flat in the number of rows.
//! CSV cells are neutralised against formula injection on write and restored on read
//! ([`crate::csv_cell`]); Parquet holds the values as they are.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::io::parquet::read::FileMetadata;

use polars::prelude::*;

/// Fixed columns of `predictions.parquet`; attribute columns sit between `image` and these.
pub const FIXED_COLUMNS: [&str; 6] = [
    "id",
    "image",
    "predicted_label",
    "predicted_category",
    "top_labels",
    "top_probs",
];

/// Rows buffered before a Parquet row group is written.
const ROWS_PER_GROUP: usize = 4096;

/// Why predictions could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PredictionsError {
    /// A file could not be created, written or read.
    #[error("{path}: {reason}")]
    File {
        /// The predictions file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// An attribute name clashes with a fixed column.
    #[error(
        "attribute `{0}` has the name of a fixed predictions column; rename it in the dataset spec"
    )]
    ReservedName(String),
    /// A required column is absent or has the wrong type.
    #[error("{path}: column `{column}`: {reason}")]
    Column {
        /// The predictions file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What was expected.
        reason: String,
    },
    /// A data row cannot be used (empty value, wrong number of fields, unreadable).
    #[error("{}: data row {row}: column `{column}`: {reason}", path.display())]
    Row {
        /// The predictions file.
        path: PathBuf,
        /// 1-based data row (the header is not counted).
        row: u64,
        /// The column, or `*` when the whole row is at fault.
        column: String,
        /// What is wrong and what was expected.
        reason: String,
    },
}

/// One classified image.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// Record id.
    pub id: String,
    /// Image path (or embedded image name).
    pub image: String,
    /// Attribute values, in attribute order.
    pub values: Vec<String>,
    /// The most probable label.
    pub predicted_label: String,
    /// Its category.
    pub predicted_category: String,
    /// The top-k labels, most probable first.
    pub top_labels: Vec<String>,
    /// Their probabilities.
    pub top_probs: Vec<f32>,
}

/// Streams prediction rows into `predictions.parquet` (and optionally `predictions.csv`).
pub struct PredictionsWriter {
    parquet: polars::io::parquet::write::BatchedWriter<File>,
    csv: Option<csv::Writer<File>>,
    attributes: Vec<String>,
    buffer: Vec<PredictionRow>,
    path: PathBuf,
}

impl PredictionsWriter {
    /// Creates `dir/predictions.parquet` (and `dir/predictions.csv` when `with_csv`).
    pub fn create(
        dir: &Path,
        attributes: &[String],
        with_csv: bool,
    ) -> Result<Self, PredictionsError> {
        for a in attributes {
            if FIXED_COLUMNS.contains(&a.as_str()) {
                return Err(PredictionsError::ReservedName(a.clone()));
            }
        }
        let path = dir.join("predictions.parquet");
        let err = |path: &Path, e: &dyn std::fmt::Display| PredictionsError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = File::create(&path).map_err(|e| err(&path, &e))?;
        let schema = schema(attributes);
        let parquet = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&schema)
            .map_err(|e| err(&path, &e))?;
        let csv = if with_csv {
            let csv_path = dir.join("predictions.csv");
            let mut w = csv::Writer::from_path(&csv_path).map_err(|e| err(&csv_path, &e))?;
            let mut header = vec!["id", "image"];
            header.extend(attributes.iter().map(String::as_str));
            header.extend(&FIXED_COLUMNS[2..]);
            crate::csv_cell::write_record(&mut w, &header).map_err(|e| err(&csv_path, &e))?;
            Some(w)
        } else {
            None
        };
        Ok(Self {
            parquet,
            csv,
            attributes: attributes.to_vec(),
            buffer: Vec::with_capacity(ROWS_PER_GROUP),
            path,
        })
    }

    /// Adds one row (written out in row groups).
    pub fn push(&mut self, row: PredictionRow) -> Result<(), PredictionsError> {
        if let Some(w) = &mut self.csv {
            let labels = row.top_labels.join("|");
            let probs = row
                .top_probs
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("|");
            let mut record = vec![row.id.as_str(), row.image.as_str()];
            record.extend(row.values.iter().map(String::as_str));
            record.extend([
                row.predicted_label.as_str(),
                row.predicted_category.as_str(),
                labels.as_str(),
                probs.as_str(),
            ]);
            crate::csv_cell::write_record(w, &record).map_err(|e| PredictionsError::File {
                path: self.path.with_extension("csv"),
                reason: e.to_string(),
            })?;
        }
        self.buffer.push(row);
        if self.buffer.len() >= ROWS_PER_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PredictionsError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let df = frame(&self.buffer, &self.attributes).map_err(|e| PredictionsError::File {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.parquet
            .write_batch(&df)
            .map_err(|e| PredictionsError::File {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the remaining rows and closes the files.
    pub fn finish(mut self) -> Result<(), PredictionsError> {
        self.flush()?;
        self.parquet.finish().map_err(|e| PredictionsError::File {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(mut w) = self.csv.take() {
            w.flush().map_err(|e| PredictionsError::File {
                path: self.path.with_extension("csv"),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

fn schema(attributes: &[String]) -> Schema {
    let mut fields = vec![
        Field::new("id".into(), DataType::String),
        Field::new("image".into(), DataType::String),
    ];
    fields.extend(
        attributes
            .iter()
            .map(|a| Field::new(a.as_str().into(), DataType::String)),
    );
    fields.extend([
        Field::new("predicted_label".into(), DataType::String),
        Field::new("predicted_category".into(), DataType::String),
        Field::new(
            "top_labels".into(),
            DataType::List(Box::new(DataType::String)),
        ),
        Field::new(
            "top_probs".into(),
            DataType::List(Box::new(DataType::Float32)),
        ),
    ]);
    Schema::from_iter(fields)
}

fn frame(rows: &[PredictionRow], attributes: &[String]) -> PolarsResult<DataFrame> {
    let text = |name: &str, f: &dyn Fn(&PredictionRow) -> &str| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>())
    };
    let mut columns = vec![text("id", &|r| &r.id), text("image", &|r| &r.image)];
    for (a, name) in attributes.iter().enumerate() {
        columns.push(text(name, &|r| &r.values[a]));
    }
    columns.push(text("predicted_label", &|r| &r.predicted_label));
    columns.push(text("predicted_category", &|r| &r.predicted_category));
    let labels: ListChunked = rows
        .iter()
        .map(|r| Some(Series::new(PlSmallStr::EMPTY, &r.top_labels)))
        .collect();
    let probs: ListChunked = rows
        .iter()
        .map(|r| Some(Series::new(PlSmallStr::EMPTY, &r.top_probs)))
        .collect();
    columns.push(
        labels
            .into_series()
            .with_name("top_labels".into())
            .into_column(),
    );
    columns.push(
        probs
            .into_series()
            .with_name("top_probs".into())
            .into_column(),
    );
    DataFrame::new_infer_height(columns)
}

/// One row of a predictions file as `aggregate` uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionRecord {
    /// 1-based data row in its file.
    pub row: u64,
    /// Record id (the row number when the file has no `id` column).
    pub id: String,
    /// Attribute values, in [`PredictionsFile::attributes`] order.
    pub values: Vec<String>,
    /// The predicted label.
    pub label: String,
}

/// A stream of predictions rows that ends after its first `Err`.
type RowStream<'a> = Box<dyn Iterator<Item = Result<PredictionRecord, PredictionsError>> + 'a>;

/// Where the columns of a predictions file are.
#[derive(Debug)]
enum Layout {
    /// Header indices of the id (if any), label and attribute columns.
    Csv {
        id: Option<usize>,
        label: usize,
        attributes: Vec<usize>,
    },
    /// The footer, and whether an `id` column exists.
    Parquet {
        metadata: Arc<FileMetadata>,
        has_id: bool,
    },
}

/// A predictions file (`.parquet` or `.csv`) opened for streaming: its columns are checked, its
/// rows are read by [`PredictionsFile::rows`].
#[derive(Debug)]
pub struct PredictionsFile {
    path: PathBuf,
    label_column: String,
    attributes: Vec<String>,
    layout: Layout,
}

impl PredictionsFile {
    /// Opens `path` and finds its columns. Attribute columns are every column except the fixed
    /// ones and `label_column`, unless `attributes` names them.
    pub fn open(
        path: &Path,
        label_column: &str,
        attributes: Option<&[String]>,
    ) -> Result<PredictionsFile, PredictionsError> {
        let (names, parquet) = column_names(path)?;
        let attributes: Vec<String> = match attributes {
            Some(a) => a.to_vec(),
            None => names
                .iter()
                .filter(|n| !FIXED_COLUMNS.contains(&n.as_str()) && n.as_str() != label_column)
                .cloned()
                .collect(),
        };
        let label = find_column(path, &names, label_column)?;
        let attribute_columns = attributes
            .iter()
            .map(|a| find_column(path, &names, a))
            .collect::<Result<Vec<_>, _>>()?;
        let id = names.iter().position(|n| n == "id");
        let layout = match parquet {
            Some(metadata) => Layout::Parquet {
                metadata,
                has_id: id.is_some(),
            },
            None => Layout::Csv {
                id,
                label,
                attributes: attribute_columns,
            },
        };
        Ok(PredictionsFile {
            path: path.to_path_buf(),
            label_column: label_column.to_string(),
            attributes,
            layout,
        })
    }

    /// The attribute columns read, in order.
    pub fn attributes(&self) -> &[String] {
        &self.attributes
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Streams the rows in file order; after an `Err` the stream ends.
    pub fn rows(
        &self,
    ) -> Result<
        Box<dyn Iterator<Item = Result<PredictionRecord, PredictionsError>> + '_>,
        PredictionsError,
    > {
        match &self.layout {
            Layout::Csv {
                id,
                label,
                attributes,
            } => self.csv_rows(*id, *label, attributes),
            Layout::Parquet { metadata, has_id } => Ok(self.parquet_rows(metadata, *has_id)),
        }
    }

    /// Streams a CSV file record by record; its header is read first for the row width.
    fn csv_rows<'a>(
        &'a self,
        id: Option<usize>,
        label: usize,
        attributes: &'a [usize],
    ) -> Result<RowStream<'a>, PredictionsError> {
        let mut reader = csv_reader(&self.path).map_err(|e| PredictionsError::File {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let width = reader
            .headers()
            .map_err(|e| PredictionsError::File {
                path: self.path.clone(),
                reason: e.to_string(),
            })?
            .len();
        let mut record = csv::StringRecord::new();
        let mut row = 0u64;
        let mut failed = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if failed {
                return None;
            }
            row += 1;
            let item = match reader.read_record(&mut record) {
                Ok(false) => return None,
                Ok(true) => self.csv_row(&record, row, width, id, label, attributes),
                Err(e) => Err(self.row_err(row, "*", e.to_string())),
            };
            failed = item.is_err();
            Some(item)
        })))
    }

    /// Streams a Parquet file one row group at a time.
    fn parquet_rows<'a>(&'a self, metadata: &'a Arc<FileMetadata>, has_id: bool) -> RowStream<'a> {
        let mut group = 0usize;
        let mut row = 0u64;
        let mut queue: VecDeque<PredictionRecord> = VecDeque::new();
        let mut failed = false;
        Box::new(std::iter::from_fn(move || {
            loop {
                if failed {
                    return None;
                }
                if let Some(next) = queue.pop_front() {
                    return Some(Ok(next));
                }
                if group >= metadata.row_groups.len() {
                    return None;
                }
                match self.parquet_group(metadata, group, has_id, row) {
                    Ok(rows) => {
                        row += rows.len() as u64;
                        queue.extend(rows);
                    }
                    Err(e) => {
                        failed = true;
                        return Some(Err(e));
                    }
                }
                group += 1;
            }
        }))
    }

    fn row_err(&self, row: u64, column: &str, reason: String) -> PredictionsError {
        PredictionsError::Row {
            path: self.path.clone(),
            row,
            column: column.to_string(),
            reason,
        }
    }

    fn csv_row(
        &self,
        record: &csv::StringRecord,
        row: u64,
        width: usize,
        id: Option<usize>,
        label: usize,
        attributes: &[usize],
    ) -> Result<PredictionRecord, PredictionsError> {
        if record.len() != width {
            return Err(self.row_err(
                row,
                "*",
                format!("{} fields, but the header has {width}", record.len()),
            ));
        }
        let cell = |index: usize, column: &str| -> Result<String, PredictionsError> {
            let value = crate::csv_cell::restore(record.get(index).unwrap_or(""));
            if value.is_empty() {
                return Err(self.row_err(row, column, "empty value; expected text".into()));
            }
            Ok(value.to_string())
        };
        Ok(PredictionRecord {
            row,
            id: match id {
                Some(i) => cell(i, "id")?,
                None => row.to_string(),
            },
            values: attributes
                .iter()
                .zip(&self.attributes)
                .map(|(&i, name)| cell(i, name))
                .collect::<Result<_, _>>()?,
            label: cell(label, &self.label_column)?,
        })
    }

    /// Reads row group `group` (its first row is data row `first + 1`).
    fn parquet_group(
        &self,
        metadata: &Arc<FileMetadata>,
        group: usize,
        has_id: bool,
        first: u64,
    ) -> Result<Vec<PredictionRecord>, PredictionsError> {
        let df = self.read_row_group(metadata, group, has_id)?;
        let ids = if has_id {
            Some(self.text_column(&df, "id")?)
        } else {
            None
        };
        let labels = self.text_column(&df, &self.label_column)?;
        let values = self
            .attributes
            .iter()
            .map(|a| self.text_column(&df, a))
            .collect::<Result<Vec<_>, _>>()?;
        let value = |ca: &StringChunked, i: usize, row: u64, column: &str| {
            ca.get(i)
                .map(str::to_string)
                .ok_or_else(|| self.row_err(row, column, "empty value; expected text".into()))
        };
        (0..df.height())
            .map(|i| {
                let row = first + i as u64 + 1;
                Ok(PredictionRecord {
                    row,
                    id: match &ids {
                        Some(ids) => value(ids, i, row, "id")?,
                        None => row.to_string(),
                    },
                    values: values
                        .iter()
                        .zip(&self.attributes)
                        .map(|(ca, name)| value(ca, i, row, name))
                        .collect::<Result<_, _>>()?,
                    label: value(&labels, i, row, &self.label_column)?,
                })
            })
            .collect()
    }

    /// The columns read from a Parquet file: `id` (when present), the label, the attributes.
    fn projection(&self, has_id: bool) -> Vec<String> {
        let mut projection: Vec<String> = Vec::new();
        if has_id {
            projection.push("id".into());
        }
        for column in std::iter::once(&self.label_column).chain(&self.attributes) {
            if !projection.contains(column) {
                projection.push(column.clone());
            }
        }
        projection
    }

    /// Reads the projected columns of row group `group` alone into a frame.
    fn read_row_group(
        &self,
        metadata: &Arc<FileMetadata>,
        group: usize,
        has_id: bool,
    ) -> Result<DataFrame, PredictionsError> {
        let file_err = |e: &dyn std::fmt::Display| PredictionsError::File {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let projection = self.projection(has_id);
        let one_group = FileMetadata {
            num_rows: metadata.row_groups[group].num_rows(),
            row_groups: vec![metadata.row_groups[group].clone()],
            ..(**metadata).clone()
        };
        let handle = File::open(&self.path).map_err(|e| file_err(&e))?;
        let mut reader = ParquetReader::new(handle)
            .with_columns(Some(projection))
            .read_parallel(ParallelStrategy::None);
        reader.set_metadata(Arc::new(one_group));
        reader.finish().map_err(|e| file_err(&e))
    }

    /// Column `column` of `df` as text (any type that casts to a string).
    fn text_column(&self, df: &DataFrame, column: &str) -> Result<StringChunked, PredictionsError> {
        let col_err = |reason: String| PredictionsError::Column {
            path: self.path.clone(),
            column: column.to_string(),
            reason,
        };
        let col = df.column(column).map_err(|e| col_err(e.to_string()))?;
        let col = col
            .cast(&DataType::String)
            .map_err(|e| col_err(format!("cannot be read as text: {e}")))?;
        Ok(col.str().map_err(|e| col_err(e.to_string()))?.clone())
    }
}

/// The column names of a predictions file, with its Parquet footer when it is a `.parquet` file
/// (CSV header cells are restored from their neutralised form).
fn column_names(path: &Path) -> Result<(Vec<String>, Option<Arc<FileMetadata>>), PredictionsError> {
    let file_err = |e: &dyn std::fmt::Display| PredictionsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let is_parquet = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        let file = File::open(path).map_err(|e| file_err(&e))?;
        let mut reader = ParquetReader::new(file);
        let schema = reader.schema().map_err(|e| file_err(&e))?;
        let metadata = reader.get_metadata().map_err(|e| file_err(&e))?.clone();
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        Ok((names, Some(metadata)))
    } else {
        let mut reader = csv_reader(path).map_err(|e| file_err(&e))?;
        let header = reader.headers().map_err(|e| file_err(&e))?;
        let names = header
            .iter()
            .map(|h| crate::csv_cell::restore(h).to_string())
            .collect();
        Ok((names, None))
    }
}

/// The index of `column` in `names`; a missing column is an error listing the file's columns.
fn find_column(path: &Path, names: &[String], column: &str) -> Result<usize, PredictionsError> {
    names
        .iter()
        .position(|n| n == column)
        .ok_or_else(|| PredictionsError::Column {
            path: path.to_path_buf(),
            column: column.to_string(),
            reason: format!("missing (the file has: {})", names.join(", ")),
        })
}

/// A CSV reader with a header row; rows of another width are reported, not rejected by csv.
fn csv_reader(path: &Path) -> csv::Result<csv::Reader<File>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
}

#[cfg(test)]
mod tests;
