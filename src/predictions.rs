//! The predictions table: one row per classified image, written to Parquet (and CSV on request)
//! as predictions arrive, and read back (CSV or Parquet, from any classifier) by `aggregate`.

use std::fs::File;
use std::path::{Path, PathBuf};

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
            w.write_record(&header).map_err(|e| err(&csv_path, &e))?;
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
            w.write_record(&record)
                .map_err(|e| PredictionsError::File {
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

/// Predictions read back for aggregation: ids, attribute columns and predicted labels.
pub struct PredictionsTable {
    /// Attribute column names, in file order.
    pub attributes: Vec<String>,
    /// Record ids.
    pub ids: Vec<String>,
    /// Attribute values per row, in attribute order.
    pub values: Vec<Vec<String>>,
    /// Predicted label per row.
    pub labels: Vec<String>,
}

/// Reads a predictions file (`.parquet` or `.csv`). Attribute columns are every column except the
/// fixed ones and `label_column`, unless `attributes` names them.
pub fn read_predictions(
    path: &Path,
    label_column: &str,
    attributes: Option<&[String]>,
) -> Result<PredictionsTable, PredictionsError> {
    let file_err = |e: &dyn std::fmt::Display| PredictionsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let is_parquet = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let df = if is_parquet {
        let file = File::open(path).map_err(|e| file_err(&e))?;
        ParquetReader::new(file)
            .finish()
            .map_err(|e| file_err(&e))?
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(|e| file_err(&e))?
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let attributes: Vec<String> = match attributes {
        Some(a) => a.to_vec(),
        None => names
            .iter()
            .filter(|n| !FIXED_COLUMNS.contains(&n.as_str()) && n.as_str() != label_column)
            .cloned()
            .collect(),
    };
    let strings = |column: &str| -> Result<Vec<String>, PredictionsError> {
        let col = df.column(column).map_err(|_| PredictionsError::Column {
            path: path.to_path_buf(),
            column: column.to_string(),
            reason: format!("missing (the file has: {})", names.join(", ")),
        })?;
        let col = col
            .cast(&DataType::String)
            .map_err(|e| PredictionsError::Column {
                path: path.to_path_buf(),
                column: column.to_string(),
                reason: format!("cannot be read as text: {e}"),
            })?;
        let ca = col.str().map_err(|e| PredictionsError::Column {
            path: path.to_path_buf(),
            column: column.to_string(),
            reason: e.to_string(),
        })?;
        ca.iter()
            .enumerate()
            .map(|(row, v)| {
                v.map(str::to_string)
                    .ok_or_else(|| PredictionsError::Column {
                        path: path.to_path_buf(),
                        column: column.to_string(),
                        reason: format!("empty value in data row {}", row + 1),
                    })
            })
            .collect()
    };
    let ids = if names.iter().any(|n| n == "id") {
        strings("id")?
    } else {
        (1..=df.height()).map(|i| i.to_string()).collect()
    };
    let labels = strings(label_column)?;
    let columns = attributes
        .iter()
        .map(|a| strings(a))
        .collect::<Result<Vec<_>, _>>()?;
    let values = (0..df.height())
        .map(|row| columns.iter().map(|c| c[row].clone()).collect())
        .collect();
    Ok(PredictionsTable {
        attributes,
        ids,
        values,
        labels,
    })
}
