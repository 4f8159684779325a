//! `skipped.csv` streamed while a run goes: each skipped record is written as it happens, and
//! only the count and the first [`SKIPPED_SHOWN`] are kept for the report pages, so memory stays
//! flat however many records are skipped.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::csv::SKIPPED_HEADER;
use super::html::SKIPPED_SHOWN;
use super::{ExportError, SkippedRecord};

/// Writes `skipped.csv` row by row (cells neutralised, see [`crate::csv_cell`]).
pub struct SkippedWriter {
    writer: ::csv::Writer<BufWriter<File>>,
    path: PathBuf,
    total: u64,
    first: Vec<SkippedRecord>,
}

impl SkippedWriter {
    /// Creates `dir/skipped.csv` with its header.
    pub fn create(dir: &Path) -> Result<SkippedWriter, ExportError> {
        let path = dir.join("skipped.csv");
        let file = File::create(&path).map_err(|source| ExportError::Io {
            path: path.clone(),
            source,
        })?;
        let mut writer = ::csv::Writer::from_writer(BufWriter::new(file));
        crate::csv_cell::write_record(&mut writer, SKIPPED_HEADER).map_err(|source| {
            ExportError::Csv {
                path: path.clone(),
                source,
            }
        })?;
        Ok(SkippedWriter {
            writer,
            path,
            total: 0,
            first: Vec::new(),
        })
    }

    /// Appends one skipped record.
    pub fn push(&mut self, skipped: SkippedRecord) -> Result<(), ExportError> {
        crate::csv_cell::write_record(
            &mut self.writer,
            [&skipped.id, &skipped.image, &skipped.reason],
        )
        .map_err(|source| ExportError::Csv {
            path: self.path.clone(),
            source,
        })?;
        self.total += 1;
        if self.first.len() < SKIPPED_SHOWN {
            self.first.push(skipped);
        }
        Ok(())
    }

    /// Appends every row of another `skipped.csv` (a shard's), checking its header; returns how
    /// many rows it had. Cells are read back through [`crate::csv_cell::restore`], so they are
    /// written exactly as they were.
    pub fn append_file(&mut self, path: &Path) -> Result<u64, ExportError> {
        let bad = |reason: String| ExportError::Read {
            path: path.to_path_buf(),
            reason,
        };
        let file = crate::input_file::open_regular_file(path).map_err(|e| bad(e.to_string()))?;
        let mut reader = ::csv::Reader::from_reader(std::io::BufReader::new(file));
        let header = reader.headers().map_err(|e| bad(e.to_string()))?;
        if !header.iter().eq(SKIPPED_HEADER) {
            return Err(bad(format!(
                "header {:?}, expected {SKIPPED_HEADER:?}",
                header.iter().collect::<Vec<_>>()
            )));
        }
        let mut rows = 0u64;
        for record in reader.records() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let cell =
                |i: usize| crate::csv_cell::restore(record.get(i).unwrap_or_default()).to_string();
            self.push(SkippedRecord {
                id: cell(0),
                image: cell(1),
                reason: cell(2),
            })?;
            rows += 1;
        }
        Ok(rows)
    }

    /// Flushes the file; returns the count and the first records, for [`super::ReportContext`].
    pub fn finish(mut self) -> Result<(u64, Vec<SkippedRecord>), ExportError> {
        let io = |source| ExportError::Io {
            path: self.path.clone(),
            source,
        };
        self.writer.flush().map_err(io)?;
        Ok((self.total, self.first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_every_row_and_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SkippedWriter::create(dir.path()).unwrap();
        for i in 0..SKIPPED_SHOWN + 5 {
            writer
                .push(SkippedRecord {
                    id: format!("=id{i}"),
                    image: format!("img{i}.jpg"),
                    reason: "missing".into(),
                })
                .unwrap();
        }
        let (total, first) = writer.finish().unwrap();
        assert_eq!(total as usize, SKIPPED_SHOWN + 5);
        assert_eq!(first.len(), SKIPPED_SHOWN);
        let text = std::fs::read_to_string(dir.path().join("skipped.csv")).unwrap();
        assert!(
            text.starts_with("id,image,reason\n'=id0,img0.jpg,missing\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), SKIPPED_SHOWN + 6);
    }

    #[test]
    fn appended_files_come_out_byte_for_byte_and_a_bad_header_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut writer = SkippedWriter::create(a.path()).unwrap();
        for id in ["=cmd", "'quoted", "plain, with comma"] {
            let reason = "missing".to_string();
            let image = format!("{id}.jpg");
            let id = id.to_string();
            writer.push(SkippedRecord { id, image, reason }).unwrap();
        }
        writer.finish().unwrap();
        let mut merged = SkippedWriter::create(b.path()).unwrap();
        let first = a.path().join("skipped.csv");
        assert_eq!(merged.append_file(&first).unwrap(), 3);
        let (total, records) = merged.finish().unwrap();
        assert_eq!((total, records[0].id.as_str()), (3, "=cmd"));
        let read = |dir: &tempfile::TempDir| std::fs::read(dir.path().join("skipped.csv")).unwrap();
        assert_eq!(read(&a), read(&b));
        std::fs::write(&first, "id,path,why\nx,y,z\n").unwrap();
        let mut again = SkippedWriter::create(b.path()).unwrap();
        let error = again.append_file(&first).unwrap_err().to_string();
        assert!(
            error.contains("skipped.csv") && error.contains("expected"),
            "{error}"
        );
    }
}
