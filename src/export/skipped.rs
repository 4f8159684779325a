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
}
