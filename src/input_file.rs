//! Opening user-named input files safely: regular files only (never a FIFO, device or folder,
//! which could block forever or never end), opened without blocking, and read with a size cap.
//!
//! Failures are `std::io::Error`s, so every reader keeps its own error type; those this module
//! raises carry an [`InputFileError`] (reach it with [`InputFileError::of`]).

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

/// Largest text input (probe, dataset spec, rules, labels list, JSON configs) read whole.
pub const MAX_TEXT_INPUT_BYTES: u64 = 64 << 20;

/// Why an input file was refused before being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputFileError {
    /// The path names something other than a regular file (after following links).
    #[error("is {kind}, expected a regular file")]
    NotRegular {
        /// What it is, e.g. "a FIFO (named pipe)".
        kind: &'static str,
    },
    /// The file holds more bytes than the reader accepts.
    #[error("file is {size} bytes, over the {what} of {limit} bytes")]
    TooLarge {
        /// Bytes in the file (at least; reading stops just past the limit).
        size: u64,
        /// The limit.
        limit: u64,
        /// The limit's name, e.g. "per-image limit".
        what: &'static str,
    },
}

impl InputFileError {
    /// The [`InputFileError`] inside an I/O error raised by this module, if any.
    pub fn of(error: &std::io::Error) -> Option<&InputFileError> {
        error.get_ref()?.downcast_ref::<InputFileError>()
    }

    fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, self)
    }
}

/// What a file's metadata says it is, in words ("a directory", "a FIFO (named pipe)", ...).
pub fn describe_kind(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens `path` for reading if, after following links, it is a regular file. The check is made
/// on the opened handle (no race with a swap of the path), and on unix the open itself does not
/// block (`O_NONBLOCK`: a FIFO without a writer would otherwise wait forever).
pub fn open_regular_file(path: &Path) -> std::io::Result<File> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(InputFileError::NotRegular {
            kind: describe_kind(&meta),
        }
        .into_io());
    }
    Ok(file)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK only matters for the open of a FIFO or device; reads of regular files ignore it.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    // No O_NONBLOCK here: refuse what is not a regular file before opening it.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(InputFileError::NotRegular {
            kind: describe_kind(&meta),
        }
        .into_io());
    }
    File::open(path)
}

/// Reads a whole regular file of at most `max_bytes` bytes; `what` names the limit in the error
/// (e.g. "per-image limit"). Reads at most `max_bytes + 1` bytes whatever the file claims.
pub fn read_regular_file(
    path: &Path,
    max_bytes: u64,
    what: &'static str,
) -> std::io::Result<Vec<u8>> {
    let file = open_regular_file(path)?;
    let claimed = file.metadata()?.len();
    let too_large = |size| InputFileError::TooLarge {
        size,
        limit: max_bytes,
        what,
    };
    if claimed > max_bytes {
        return Err(too_large(claimed).into_io());
    }
    // The claimed size is only a hint (the file may grow, or be a /proc file claiming 0 bytes).
    let mut bytes = Vec::with_capacity(usize::try_from(claimed).unwrap_or(0).saturating_add(1));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64).into_io());
    }
    Ok(bytes)
}

/// Reads a whole regular text file of at most [`MAX_TEXT_INPUT_BYTES`] bytes as UTF-8.
pub fn read_regular_text(path: &Path) -> std::io::Result<String> {
    let bytes = read_regular_file(path, MAX_TEXT_INPUT_BYTES, "limit for text inputs")?;
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_others_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(read_regular_text(&file).unwrap(), "hello");
        let err = read_regular_file(dir.path(), 10, "limit").unwrap_err();
        assert_eq!(err.to_string(), "is a directory, expected a regular file");
        assert!(InputFileError::of(&err).is_some());
        let missing = read_regular_file(&dir.path().join("nope"), 10, "limit").unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert!(InputFileError::of(&missing).is_none());
    }

    #[test]
    fn over_the_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, [0u8; 100]).unwrap();
        assert_eq!(read_regular_file(&file, 100, "cap").unwrap().len(), 100);
        let err = read_regular_file(&file, 99, "per-image limit").unwrap_err();
        assert_eq!(
            err.to_string(),
            "file is 100 bytes, over the per-image limit of 99 bytes"
        );
    }

    #[cfg(unix)]
    #[test]
    fn fifo_and_device_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular_text(&fifo).unwrap_err();
        assert_eq!(
            err.to_string(),
            "is a FIFO (named pipe), expected a regular file"
        );
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = open_regular_file(&link).unwrap_err();
        assert_eq!(
            err.to_string(),
            "is a character device, expected a regular file"
        );
    }
}
