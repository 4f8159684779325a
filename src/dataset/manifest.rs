//! Tabular sources: a CSV read row by row (FairFace label CSVs and CSV manifests) and Parquet read
//! one slice of a row group at a time (FairFace's Hub release and Parquet manifests). Images are
//! a path column (relative to the dataset root) or embedded bytes (a `{bytes, path}` struct or a
//! binary column).

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::io::parquet::read::FileMetadata;
use polars::prelude::*;

use super::plan::Plan;
use super::root::ImageRoot;
use super::spec::IdRule;
use super::{DatasetError, ImageSource, Record, RecordItem, SkippedRecord};

/// Most rows decoded at once from a parquet file (a row group is read in slices of this size).
const PARQUET_BATCH_ROWS: usize = 256;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a CSV with a header row.
fn csv_reader(path: &Path) -> Result<csv::Reader<File>, DatasetError> {
    let file = crate::input_file::open_regular_file(path).map_err(io_err(path))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file))
}

/// Reads just the header of a CSV.
pub(crate) fn csv_header(path: &Path) -> Result<Vec<String>, DatasetError> {
    let mut reader = csv_reader(path)?;
    let header = reader.headers().map_err(|e| DatasetError::Format {
        file: path.to_path_buf(),
        message: format!("cannot read the header: {e}"),
    })?;
    Ok(header.iter().map(|h| h.trim().to_string()).collect())
}

fn find_column(
    file: &Path,
    header: &[String],
    column: &str,
    what: &str,
) -> Result<usize, DatasetError> {
    header
        .iter()
        .position(|h| h == column)
        .ok_or_else(|| DatasetError::Format {
            file: file.to_path_buf(),
            message: format!(
                "no column {column:?} ({what}); the columns are {}",
                header.join(", ")
            ),
        })
}

/// A CSV of records: one row per image.
#[derive(Debug)]
pub(crate) struct CsvTable {
    path: PathBuf,
    root: ImageRoot,
    image_column: usize,
    id_column: Option<usize>,
    /// Header index of each of the plan's raw columns.
    columns: Vec<usize>,
}

impl CsvTable {
    /// Checks the header for the image, id and attribute columns.
    pub fn open(
        path: &Path,
        root: ImageRoot,
        image_column: &str,
        id_column: Option<&str>,
        plan: &Plan,
    ) -> Result<CsvTable, DatasetError> {
        let header = csv_header(path)?;
        let image = find_column(path, &header, image_column, "the image path column")?;
        let id = id_column
            .map(|c| find_column(path, &header, c, "the id column"))
            .transpose()?;
        let columns = plan
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| find_column(path, &header, c, plan.column_origin(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CsvTable {
            path: path.to_path_buf(),
            root,
            image_column: image,
            id_column: id,
            columns,
        })
    }

    /// The folder image paths are relative to.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `<file>: row N (line L)` for the record at `index` (0-based; one record per data row).
    pub fn describe_row(&self, index: u64) -> String {
        let line = csv_reader(&self.path).ok().and_then(|mut reader| {
            let mut record = csv::StringRecord::new();
            reader.headers().ok()?;
            for _ in 0..=index {
                if !reader.read_record(&mut record).ok()? {
                    return None;
                }
            }
            record.position().map(|p| p.line())
        });
        match line {
            Some(line) => format!("{}: row {} (line {line})", self.path.display(), index + 1),
            None => format!("{}: row {}", self.path.display(), index + 1),
        }
    }

    /// Streams the rows in file order.
    pub fn records<'a>(&'a self, plan: &'a Plan) -> Result<CsvRecords<'a>, DatasetError> {
        let mut reader = csv_reader(&self.path)?;
        // Consume the header so positions are those of data rows.
        reader.headers().map_err(|e| DatasetError::Format {
            file: self.path.clone(),
            message: format!("cannot read the header: {e}"),
        })?;
        Ok(CsvRecords {
            table: self,
            plan,
            reader,
            record: csv::StringRecord::new(),
            row: 0,
            done: false,
        })
    }
}

/// Iterator over a [`CsvTable`]'s records.
pub(crate) struct CsvRecords<'a> {
    table: &'a CsvTable,
    plan: &'a Plan,
    reader: csv::Reader<File>,
    record: csv::StringRecord,
    row: u64,
    done: bool,
}

impl CsvRecords<'_> {
    fn next_item(&mut self) -> Option<Result<RecordItem, DatasetError>> {
        let table = self.table;
        match self.reader.read_record(&mut self.record) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => {
                return Some(Err(DatasetError::Format {
                    file: table.path.clone(),
                    message: e.to_string(),
                }));
            }
        }
        self.row += 1;
        let line = self
            .record
            .position()
            .map(|p| p.line())
            .unwrap_or(self.row + 1);
        let row_err = |message: String| DatasetError::Row {
            file: table.path.clone(),
            row: format!("row {} (line {line})", self.row),
            message,
        };
        let record = &self.record;
        let image_raw = record.get(table.image_column).unwrap_or("").trim();
        let image = match table.root.image(image_raw) {
            Ok(p) => p,
            Err(message) => return Some(Err(row_err(message))),
        };
        let raw: Vec<Option<&str>> = table
            .columns
            .iter()
            .map(|&c| record.get(c).map(str::trim))
            .collect();
        let values = match self.plan.resolve(&raw) {
            Ok(v) => v,
            Err(problem) => return Some(Err(row_err(problem.message))),
        };
        let id = match table.id_column {
            Some(c) => record.get(c).unwrap_or("").trim().to_string(),
            None => image_raw.to_string(),
        };
        if id.is_empty() {
            return Some(Err(row_err("the id column is empty".into())));
        }
        Some(Ok(RecordItem::Record(Record {
            id,
            image: ImageSource::File(image),
            values,
        })))
    }
}

impl Iterator for CsvRecords<'_> {
    type Item = Result<RecordItem, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_item();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// A parquet file of a table, with the name used in image names (`<name>#<row>`).
#[derive(Debug, Clone)]
pub(crate) struct ParquetFile {
    /// Where the file is on disk.
    pub path: PathBuf,
    /// Display name: the path inside the Hub repository, or the file name.
    pub name: String,
}

impl ParquetFile {
    /// A file on disk, named by its file name.
    pub fn local(path: PathBuf) -> ParquetFile {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        ParquetFile { path, name }
    }
}

/// How the image column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageKind {
    /// A string path relative to the root.
    Path,
    /// A struct with `bytes` (and usually `path`), as Hugging Face `datasets` writes images.
    Struct { has_path: bool },
    /// Raw bytes.
    Bytes,
}

/// How a parquet record's id is made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ParquetId {
    /// `<file name>#<row>`.
    Row,
    /// The image path (the path column, or the struct's `path` field).
    ImagePath,
    /// A named column.
    Column(String),
}

/// A slice of one row group, at most [`PARQUET_BATCH_ROWS`] rows.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// Row group index.
    group: usize,
    /// First row inside the row group.
    start: usize,
    /// Number of rows.
    len: usize,
    /// Index of the first row in the file.
    row: usize,
}

struct OpenedFile {
    file: ParquetFile,
    metadata: Arc<FileMetadata>,
    /// The footer without row groups; a batch reads through a copy holding only its row group,
    /// so each read touches one row group (not every group before it).
    base: FileMetadata,
    batches: Vec<Batch>,
}

impl fmt::Debug for OpenedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedFile")
            .field("file", &self.file)
            .field("rows", &self.metadata.num_rows)
            .field("batches", &self.batches.len())
            .finish()
    }
}

/// One or more parquet files read in order, a slice at a time.
#[derive(Debug)]
pub(crate) struct ParquetTable {
    files: Vec<OpenedFile>,
    image_column: String,
    image_kind: ImageKind,
    id: ParquetId,
    /// Root for path images.
    root: Option<ImageRoot>,
    /// Columns to read: the image column, the id column, then the plan's columns.
    projection: Vec<String>,
}

fn polars_err(file: &Path) -> impl Fn(PolarsError) -> DatasetError + '_ {
    move |e| DatasetError::Format {
        file: file.to_path_buf(),
        message: format!("cannot read parquet: {e}"),
    }
}

/// Reads a parquet file's footer and schema.
fn open_parquet(file: &ParquetFile) -> Result<(OpenedFile, Schema), DatasetError> {
    let handle = crate::input_file::open_regular_file(&file.path).map_err(io_err(&file.path))?;
    let mut reader = ParquetReader::new(handle);
    let to_err = polars_err(&file.path);
    let arrow_schema = reader.schema().map_err(&to_err)?;
    let metadata = reader.get_metadata().map_err(&to_err)?.clone();
    let schema = Schema::from_arrow_schema(arrow_schema.as_ref());
    let mut batches = Vec::new();
    let mut offset = 0usize;
    for (group, metadata) in metadata.row_groups.iter().enumerate() {
        let rows = metadata.num_rows();
        let mut start = 0;
        while start < rows {
            let len = PARQUET_BATCH_ROWS.min(rows - start);
            batches.push(Batch {
                group,
                start,
                len,
                row: offset + start,
            });
            start += len;
        }
        offset += rows;
    }
    let base = FileMetadata {
        row_groups: Vec::new(),
        ..(*metadata).clone()
    };
    Ok((
        OpenedFile {
            file: file.clone(),
            metadata,
            base,
            batches,
        },
        schema,
    ))
}

fn image_kind(file: &Path, schema: &Schema, column: &str) -> Result<ImageKind, DatasetError> {
    let Some(dtype) = schema.get(column) else {
        return Err(DatasetError::Format {
            file: file.to_path_buf(),
            message: format!(
                "no column {column:?} (the image column); the columns are {}",
                column_list(schema)
            ),
        });
    };
    match dtype {
        DataType::String => Ok(ImageKind::Path),
        DataType::Binary | DataType::BinaryOffset => Ok(ImageKind::Bytes),
        DataType::Struct(fields)
            if fields.iter().any(|f| {
                f.name() == "bytes"
                    && matches!(f.dtype(), DataType::Binary | DataType::BinaryOffset)
            }) =>
        {
            Ok(ImageKind::Struct {
                has_path: fields
                    .iter()
                    .any(|f| f.name() == "path" && matches!(f.dtype(), DataType::String)),
            })
        }
        other => Err(DatasetError::Format {
            file: file.to_path_buf(),
            message: format!(
                "image column {column:?} has type {other}; expected a path string, binary, or a struct with `bytes`"
            ),
        }),
    }
}

fn column_list(schema: &Schema) -> String {
    schema
        .iter_names()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The image column's kind `kind` in `file` must be embedded bytes when `embedded_only`, and
/// the same as in the files before it (`previous`).
fn check_image_kind(
    file: &Path,
    image_column: &str,
    kind: ImageKind,
    previous: Option<ImageKind>,
    embedded_only: bool,
) -> Result<(), DatasetError> {
    if embedded_only && kind == ImageKind::Path {
        return Err(DatasetError::Format {
            file: file.to_path_buf(),
            message: format!(
                "image column {image_column:?} holds paths, expected embedded image bytes"
            ),
        });
    }
    if previous.is_some_and(|prev| prev != kind) {
        return Err(DatasetError::Format {
            file: file.to_path_buf(),
            message: format!(
                "image column {image_column:?} has a different type than in the first file"
            ),
        });
    }
    Ok(())
}

/// Fails, naming the first one, when the schema lacks a column the plan or the id reads.
fn require_columns(
    file: &Path,
    schema: &Schema,
    plan: &Plan,
    id: &ParquetId,
) -> Result<(), DatasetError> {
    let mut needed: Vec<(&str, &str)> = plan
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), plan.column_origin(i)))
        .collect();
    if let ParquetId::Column(c) = id {
        needed.push((c, "the id column"));
    }
    for (column, origin) in needed {
        if schema.get(column).is_none() {
            return Err(DatasetError::Format {
                file: file.to_path_buf(),
                message: format!(
                    "no column {column:?} ({origin}); the columns are {}",
                    column_list(schema)
                ),
            });
        }
    }
    Ok(())
}

/// The id rule for images of `kind`: without stored paths, image-path ids become row ids in a
/// manifest and are an error in a FairFace source (`embedded_only`; `first` names its file).
fn id_for_images(
    id: ParquetId,
    kind: ImageKind,
    embedded_only: bool,
    first: &Path,
    image_column: &str,
) -> Result<ParquetId, DatasetError> {
    match (kind, id) {
        (ImageKind::Bytes | ImageKind::Struct { has_path: false }, ParquetId::ImagePath)
            if !embedded_only =>
        {
            // Embedded images without paths in a manifest: name records by row.
            Ok(ParquetId::Row)
        }
        (ImageKind::Bytes | ImageKind::Struct { has_path: false }, ParquetId::ImagePath) => {
            Err(DatasetError::Format {
                file: first.to_path_buf(),
                message: format!(
                    "id = \"image.path\", but column {image_column:?} has no `path` field"
                ),
            })
        }
        (_, id) => Ok(id),
    }
}

/// The columns to read: the image column, the id column, then the plan's columns.
fn projection(image_column: &str, id: &ParquetId, plan: &Plan) -> Vec<String> {
    let mut projection = vec![image_column.to_string()];
    if let ParquetId::Column(c) = id {
        projection.push(c.clone());
    }
    for c in &plan.columns {
        if !projection.contains(c) {
            projection.push(c.clone());
        }
    }
    projection
}

impl ParquetTable {
    /// FairFace's Hub layout: an `image` struct (`bytes`, `path`) and class-index columns.
    pub fn open_fairface(
        files: Vec<ParquetFile>,
        id: IdRule,
        plan: &Plan,
    ) -> Result<ParquetTable, DatasetError> {
        let id = match id {
            IdRule::Row => ParquetId::Row,
            IdRule::ImagePath => ParquetId::ImagePath,
        };
        Self::open(files, "image", id, None, plan, true)
    }

    /// A parquet manifest: an image column (path or bytes) and attribute columns.
    pub fn open_manifest(
        path: &Path,
        root: ImageRoot,
        image_column: &str,
        id_column: Option<&str>,
        plan: &Plan,
    ) -> Result<ParquetTable, DatasetError> {
        let id = match id_column {
            Some(c) => ParquetId::Column(c.to_string()),
            None => ParquetId::ImagePath,
        };
        Self::open(
            vec![ParquetFile::local(path.to_path_buf())],
            image_column,
            id,
            Some(root),
            plan,
            false,
        )
    }

    fn open(
        files: Vec<ParquetFile>,
        image_column: &str,
        id: ParquetId,
        root: Option<ImageRoot>,
        plan: &Plan,
        embedded_only: bool,
    ) -> Result<ParquetTable, DatasetError> {
        let mut opened = Vec::new();
        let mut kind = None;
        for file in &files {
            let (o, schema) = open_parquet(file)?;
            let k = image_kind(&file.path, &schema, image_column)?;
            check_image_kind(&file.path, image_column, k, kind, embedded_only)?;
            kind = Some(k);
            require_columns(&file.path, &schema, plan, &id)?;
            opened.push(o);
        }
        let Some(image_kind) = kind else {
            return Err(DatasetError::Format {
                file: PathBuf::from("<parquet>"),
                message: "the source lists no parquet files".into(),
            });
        };
        let id = id_for_images(id, image_kind, embedded_only, &files[0].path, image_column)?;
        let projection = projection(image_column, &id, plan);
        Ok(ParquetTable {
            files: opened,
            image_column: image_column.to_string(),
            image_kind,
            id,
            root,
            projection,
        })
    }

    /// `<file>: row N` (0-based within its file) for the record at `index` of the stream.
    pub fn describe_row(&self, index: u64) -> String {
        let mut rest = index as usize;
        for file in &self.files {
            let rows = file.metadata.num_rows;
            if rest < rows {
                return format!("{}: row {rest}", file.file.path.display());
            }
            rest -= rows;
        }
        format!("record {index}")
    }

    /// Streams rows file by file, in row order.
    pub fn records<'a>(&'a self, plan: &'a Plan) -> ParquetRecords<'a> {
        ParquetRecords {
            table: self,
            plan,
            file: 0,
            batch: 0,
            queue: VecDeque::new(),
            done: false,
        }
    }

    /// Decodes one slice into record items (fatal problems become one trailing `Err`).
    fn read_batch(
        &self,
        plan: &Plan,
        file: &OpenedFile,
        batch: Batch,
    ) -> Vec<Result<RecordItem, DatasetError>> {
        let path = &file.file.path;
        let to_err = polars_err(path);
        let df = (|| -> Result<DataFrame, DatasetError> {
            let group = &file.metadata.row_groups[batch.group];
            let metadata = FileMetadata {
                num_rows: group.num_rows(),
                row_groups: vec![group.clone()],
                ..file.base.clone()
            };
            let handle = crate::input_file::open_regular_file(path).map_err(io_err(path))?;
            let mut reader = ParquetReader::new(handle)
                .with_columns(Some(self.projection.clone()))
                .with_slice(Some((batch.start, batch.len)))
                .read_parallel(ParallelStrategy::None);
            reader.set_metadata(Arc::new(metadata));
            reader.finish().map_err(&to_err)
        })();
        let df = match df {
            Ok(df) => df,
            Err(e) => return vec![Err(e)],
        };
        match self.batch_items(plan, file, batch.row, &df) {
            Ok(items) => items,
            Err(e) => vec![Err(e)],
        }
    }

    fn batch_items(
        &self,
        plan: &Plan,
        file: &OpenedFile,
        offset: usize,
        df: &DataFrame,
    ) -> Result<Vec<Result<RecordItem, DatasetError>>, DatasetError> {
        let columns = self.batch_columns(plan, file, offset, df)?;
        let mut items = Vec::with_capacity(df.height());
        for i in 0..df.height() {
            let item = self.row_item(plan, &columns, i);
            let stop = item.is_err();
            items.push(item);
            if stop {
                break;
            }
        }
        Ok(items)
    }

    /// The columns of a decoded slice that rows are read from.
    fn batch_columns<'a>(
        &self,
        plan: &Plan,
        file: &'a OpenedFile,
        offset: usize,
        df: &DataFrame,
    ) -> Result<BatchColumns<'a>, DatasetError> {
        let path = &file.file.path;
        let to_err = polars_err(path);
        let series = |name: &str| -> Result<Series, DatasetError> {
            Ok(df
                .column(name)
                .map_err(&to_err)?
                .as_materialized_series()
                .clone())
        };
        let image = series(&self.image_column)?;
        let (image_bytes, image_path) = self.image_parts(&image, path)?;
        let id_column = match &self.id {
            ParquetId::Column(c) => Some(cast_str(&series(c)?, path, c)?),
            _ => None,
        };
        let raw_columns = plan
            .columns
            .iter()
            .map(|c| cast_str(&series(c)?, path, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BatchColumns {
            file,
            offset,
            image_null: image.is_null(),
            image_bytes,
            image_path,
            id_column,
            raw_columns,
        })
    }

    /// The image column's bytes and stored paths, as far as its kind has them.
    fn image_parts(
        &self,
        image: &Series,
        path: &Path,
    ) -> Result<(Option<BinaryChunked>, Option<StringChunked>), DatasetError> {
        let to_err = polars_err(path);
        Ok(match self.image_kind {
            ImageKind::Path => (None, Some(image.str().map_err(&to_err)?.clone())),
            ImageKind::Bytes => (Some(image.binary().map_err(&to_err)?.clone()), None),
            ImageKind::Struct { has_path } => {
                let fields = image.struct_().map_err(&to_err)?.fields_as_series();
                let field = |n: &str| fields.iter().find(|f| f.name().as_str() == n);
                let bytes = field("bytes")
                    .map(|f| f.binary().cloned())
                    .transpose()
                    .map_err(&to_err)?;
                let paths = if has_path {
                    field("path")
                        .map(|f| f.str().cloned())
                        .transpose()
                        .map_err(&to_err)?
                } else {
                    None
                };
                (bytes, paths)
            }
        })
    }

    /// Row `i` of a slice: a record, a skip (no image bytes), or an error naming the row.
    fn row_item(
        &self,
        plan: &Plan,
        columns: &BatchColumns<'_>,
        i: usize,
    ) -> Result<RecordItem, DatasetError> {
        let row = columns.offset + i;
        let path = &columns.file.file.path;
        let row_err = |message: String| DatasetError::Row {
            file: path.clone(),
            row: format!("row {row}"),
            message,
        };
        let name = format!("{}#{row}", columns.file.file.name);
        let stored_path = columns.stored_path(i);
        let id = self
            .row_id(columns, i, stored_path, &name)
            .map_err(row_err)?;
        let raw: Vec<Option<&str>> = columns
            .raw_columns
            .iter()
            .map(|s| s.get(i).map(str::trim))
            .collect();
        let values = plan.resolve(&raw).map_err(|p| row_err(p.message))?;
        let image = match self.image_kind {
            ImageKind::Path => {
                let raw_path = stored_path.unwrap_or("").trim();
                let root = self.root.as_ref().map_or_else(
                    || super::image_path_in_root(Path::new(""), raw_path),
                    |root| root.image(raw_path),
                );
                ImageSource::File(root.map_err(row_err)?)
            }
            ImageKind::Bytes | ImageKind::Struct { .. } => match columns.stored_bytes(i) {
                Some(b) if !b.is_empty() => ImageSource::Embedded {
                    name,
                    bytes: b.to_vec(),
                },
                _ => {
                    return Ok(RecordItem::Skipped(SkippedRecord {
                        id,
                        image: name,
                        reason: format!("column {}: no image bytes", self.image_column),
                    }));
                }
            },
        };
        Ok(RecordItem::Record(Record { id, image, values }))
    }

    /// Row `i`'s id by the id rule (`stored_path`: the row's image path, `name`: its
    /// `<file>#<row>` name), or why it has none.
    fn row_id(
        &self,
        columns: &BatchColumns<'_>,
        i: usize,
        stored_path: Option<&str>,
        name: &str,
    ) -> Result<String, String> {
        match &self.id {
            ParquetId::Row => Ok(name.to_string()),
            ParquetId::ImagePath => match stored_path {
                Some(p) if !p.trim().is_empty() => Ok(p.trim().to_string()),
                _ => Err(format!(
                    "column {}: the image path (the id) is empty",
                    self.image_column
                )),
            },
            ParquetId::Column(c) => match columns.id_column.as_ref().and_then(|s| s.get(i)) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                _ => Err(format!("the id column {c} is empty")),
            },
        }
    }
}

/// The columns of one decoded slice of a parquet file, as strings and binaries.
struct BatchColumns<'a> {
    file: &'a OpenedFile,
    /// Index in the file of the slice's first row.
    offset: usize,
    /// Rows whose image cell is null.
    image_null: BooleanChunked,
    image_bytes: Option<BinaryChunked>,
    image_path: Option<StringChunked>,
    id_column: Option<StringChunked>,
    /// The plan's raw columns, in [`Plan::columns`] order.
    raw_columns: Vec<StringChunked>,
}

impl BatchColumns<'_> {
    /// Row `i`'s stored image path (none when its image cell is null).
    fn stored_path(&self, i: usize) -> Option<&str> {
        if self.image_null.get(i).unwrap_or(false) {
            None
        } else {
            self.image_path.as_ref().and_then(|p| p.get(i))
        }
    }

    /// Row `i`'s embedded image bytes (none when its image cell is null).
    fn stored_bytes(&self, i: usize) -> Option<&[u8]> {
        if self.image_null.get(i).unwrap_or(false) {
            None
        } else {
            self.image_bytes.as_ref().and_then(|b| b.get(i))
        }
    }
}

/// A column as strings (integers as decimals, booleans as `true`/`false`).
fn cast_str(series: &Series, file: &Path, column: &str) -> Result<StringChunked, DatasetError> {
    let cast = series
        .cast(&DataType::String)
        .map_err(|e| DatasetError::Format {
            file: file.to_path_buf(),
            message: format!(
                "column {column:?} of type {} cannot be read as text: {e}",
                series.dtype()
            ),
        })?;
    cast.str().cloned().map_err(polars_err(file))
}

/// Iterator over a [`ParquetTable`]'s records.
pub(crate) struct ParquetRecords<'a> {
    table: &'a ParquetTable,
    plan: &'a Plan,
    file: usize,
    batch: usize,
    queue: VecDeque<Result<RecordItem, DatasetError>>,
    done: bool,
}

impl Iterator for ParquetRecords<'_> {
    type Item = Result<RecordItem, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                if item.is_err() {
                    self.done = true;
                    self.queue.clear();
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            let Some(file) = self.table.files.get(self.file) else {
                self.done = true;
                return None;
            };
            match file.batches.get(self.batch) {
                Some(&batch) => {
                    self.batch += 1;
                    self.queue
                        .extend(self.table.read_batch(self.plan, file, batch));
                }
                None => {
                    self.file += 1;
                    self.batch = 0;
                }
            }
        }
    }
}
