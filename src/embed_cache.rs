//! Embedding cache: image embeddings on disk, keyed by model identity and image content, so re-runs skip encoding.
//!
//! Layout: `<root>/embeddings/v1/<model key hex>/` holds `model.json` (the key parts, for humans)
//! and one file per image at `<first 2 hex chars of the image hash>/<remaining 62>.emb`.
//!
//! An entry is, little-endian: the magic `b"CLIPAEMB"`, the format version (u32), the dimension
//! (u32), `dim` f32 values, then the SHA-256 of all preceding bytes. Entries are written to a
//! uniquely named temporary file in the entry's folder and renamed into place, so readers never
//! see a partial entry and concurrent writers of one key both succeed. The trailing checksum
//! catches whatever a crash or a full disk leaves behind; such entries read as misses and are
//! removed. No `fsync` is done: after a power loss an entry may be lost or fail its checksum, never
//! read back wrong.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::digest::hex;

/// Version of the on-disk layout and entry format; part of every path and of every model key.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// Magic bytes that start every entry file.
const MAGIC: &[u8; 8] = b"CLIPAEMB";
/// Prefix of temporary files; such files are never read as entries.
const TEMP_PREFIX: &str = ".tmp-";
/// Extension of entry files.
const ENTRY_EXT: &str = "emb";
/// Temporary files older than this are considered left over by an interrupted run.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);
/// Bytes of an entry besides the payload: magic, version, dim, checksum.
const ENTRY_OVERHEAD: usize = 8 + 4 + 4 + 32;

/// Process-wide counter that makes temporary file names unique across threads and cache instances.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Errors of the embedding cache; each names the path or the numbers involved.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file-system operation on `path` failed.
    #[error("{}", path.display())]
    Io {
        /// The file or folder the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No cache folder could be derived from the environment.
    #[error(
        "no cache folder: set $CLIP_AUDIT_CACHE or $XDG_CACHE_HOME or $HOME, or pass --cache-dir / --no-cache"
    )]
    NoCacheFolder,
    /// An embedding to store does not have the cache's dimension.
    #[error("embedding has {found} dimensions, but this cache stores {expected}")]
    WrongDimension {
        /// The cache's dimension.
        expected: usize,
        /// The embedding's length.
        found: usize,
    },
}

impl CacheError {
    fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}

/// SHA-256 of an image file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ImageKey(pub [u8; 32]);

impl ImageKey {
    /// Hashes an image file's raw bytes (not the decoded pixels).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        ImageKey(Sha256::digest(bytes).into())
    }

    /// Lower-case hex of the hash, 64 characters.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// Identity of everything that determines an embedding besides the image: built from named parts
/// (model file hashes, preprocessing config hash, compute dtype, ...).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ModelKey {
    hex: String,
    /// The parts, sorted by name (then value).
    parts: Vec<(String, String)>,
}

impl ModelKey {
    /// Parts are (name, value); order-independent (sort by name), and CACHE_FORMAT_VERSION is mixed in.
    pub fn new(parts: &[(&str, &str)]) -> Self {
        let mut parts: Vec<(String, String)> = parts
            .iter()
            .map(|&(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        parts.sort();
        let mut h = Sha256::new();
        h.update(b"clip-audit model key\0");
        h.update(CACHE_FORMAT_VERSION.to_le_bytes());
        h.update((parts.len() as u64).to_le_bytes());
        // Length-prefixed fields, so no two different part lists hash the same input.
        for (name, value) in &parts {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        }
        ModelKey {
            hex: hex(&h.finalize()),
            parts,
        }
    }

    /// Lower-case hex SHA-256 of the version and the sorted parts; names the model's cache folder.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

/// Hit/miss counters (atomics inside so `get`/`put` take &self and can be called from several threads).
///
/// `corrupt` lookups are also counted in `misses`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that returned an embedding.
    pub hits: u64,
    /// Lookups that returned nothing (absent, unreadable or corrupt entries).
    pub misses: u64,
    /// Lookups that found an invalid or unreadable entry.
    pub corrupt: u64,
    /// Entries stored.
    pub written: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    written: AtomicU64,
}

/// The on-disk embedding cache of one model; `Send + Sync`, share it by reference across threads.
#[derive(Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
    dim: usize,
    /// Exact byte length of a valid entry (saturated; a real file can never match `usize::MAX`).
    entry_len: usize,
    counters: Counters,
}

impl EmbeddingCache {
    /// The default root: $CLIP_AUDIT_CACHE, else $XDG_CACHE_HOME/clip-audit, else (macOS) ~/Library/Caches/clip-audit, (Windows) %LOCALAPPDATA%\clip-audit, else ~/.cache/clip-audit.
    ///
    /// Empty variables count as unset; a relative `$XDG_CACHE_HOME` is ignored, as the XDG spec says.
    pub fn default_root() -> Result<PathBuf, CacheError> {
        if let Some(p) = env_path("CLIP_AUDIT_CACHE") {
            return Ok(p);
        }
        if let Some(p) = env_path("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
            return Ok(p.join("clip-audit"));
        }
        if cfg!(windows)
            && let Some(p) = env_path("LOCALAPPDATA")
        {
            return Ok(p.join("clip-audit"));
        }
        let home = env_path("HOME").or_else(|| {
            if cfg!(windows) {
                env_path("USERPROFILE")
            } else {
                None
            }
        });
        match home {
            Some(h) if cfg!(target_os = "macos") => Ok(h.join("Library/Caches/clip-audit")),
            Some(h) => Ok(h.join(".cache").join("clip-audit")),
            None => Err(CacheError::NoCacheFolder),
        }
    }

    /// Opens (creating folders) the cache of one model under `root`: `<root>/embeddings/v1/<model key hex>/`,
    /// and writes (atomically, once) `<that>/model.json` listing the key parts for humans.
    pub fn open(root: &Path, model: &ModelKey, dim: usize) -> Result<Self, CacheError> {
        let dir = root
            .join("embeddings")
            .join(format!("v{CACHE_FORMAT_VERSION}"))
            .join(model.hex());
        if u32::try_from(dim).is_err() {
            return Err(CacheError::io(
                dir,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("embedding dimension {dim} does not fit the entry format (u32)"),
                ),
            ));
        }
        fs::create_dir_all(&dir).map_err(|e| CacheError::io(&dir, e))?;
        let info = dir.join("model.json");
        match fs::symlink_metadata(&info) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomically(&dir, &info, model_json(model).as_bytes())?;
            }
            Err(e) => return Err(CacheError::io(&info, e)),
        }
        let entry_len = dim
            .checked_mul(4)
            .and_then(|n| n.checked_add(ENTRY_OVERHEAD))
            .unwrap_or(usize::MAX);
        Ok(EmbeddingCache {
            dir,
            dim,
            entry_len,
            counters: Counters::default(),
        })
    }

    /// The model's cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The embedding stored for this image, or None (miss). An entry that is truncated, has a bad magic,
    /// wrong version, wrong dimension or a bad checksum counts as `corrupt`, is treated as a miss, and is
    /// removed. Other I/O errors than NotFound are treated as a miss too but counted as corrupt.
    pub fn get(&self, key: &ImageKey) -> Option<Vec<f32>> {
        let path = self.entry_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        match self.decode(&bytes) {
            Some(v) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            None => {
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                // Best effort. A concurrent writer may have just renamed a good entry into place,
                // in which case this costs one re-encode later, never a wrong read.
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an embedding atomically: write a uniquely named temp file in the entry's folder
    /// (`.tmp-<pid>-<counter>-<nanos>`), write all bytes, then rename over the final name. Readers never
    /// see partial files; concurrent writers of the same key both succeed (last rename wins, identical content).
    /// `embedding.len() != dim` → WrongDimension.
    pub fn put(&self, key: &ImageKey, embedding: &[f32]) -> Result<(), CacheError> {
        if embedding.len() != self.dim {
            return Err(CacheError::WrongDimension {
                expected: self.dim,
                found: embedding.len(),
            });
        }
        let path = self.entry_path(key);
        let folder = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(folder).map_err(|e| CacheError::io(folder, e))?;
        write_atomically(folder, &path, &self.encode(embedding))?;
        self.counters.written.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            corrupt: self.counters.corrupt.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
        }
    }

    /// Removes temp files older than one hour left by interrupted runs (best effort, returns how many).
    pub fn sweep_stale_temp_files(&self) -> usize {
        let mut removed = sweep_folder(&self.dir);
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    removed += sweep_folder(&entry.path());
                }
            }
        }
        removed
    }

    fn entry_path(&self, key: &ImageKey) -> PathBuf {
        let hex = key.hex();
        let (head, tail) = hex.split_at(2);
        self.dir.join(head).join(format!("{tail}.{ENTRY_EXT}"))
    }

    fn encode(&self, embedding: &[f32]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.entry_len);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
        // `open` checked that dim fits in u32.
        buf.extend_from_slice(&(embedding.len() as u32).to_le_bytes());
        for x in embedding {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        let sum = Sha256::digest(&buf);
        buf.extend_from_slice(&sum);
        buf
    }

    /// The payload of a valid entry, or None for anything else.
    fn decode(&self, bytes: &[u8]) -> Option<Vec<f32>> {
        if bytes.len() != self.entry_len {
            return None;
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        let (magic, rest) = body.split_at(8);
        let (version, rest) = rest.split_at(4);
        let (dim, payload) = rest.split_at(4);
        if magic != MAGIC
            || u32::from_le_bytes(version.try_into().ok()?) != CACHE_FORMAT_VERSION
            || u32::from_le_bytes(dim.try_into().ok()?) as usize != self.dim
            || Sha256::digest(body).as_slice() != sum
        {
            return None;
        }
        Some(
            payload
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

/// Writes `bytes` to a unique temp file in `folder`, then renames it to `dest`.
fn write_atomically(folder: &Path, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = folder.join(format!("{TEMP_PREFIX}{}-{n}-{nanos}", std::process::id()));
    let written = fs::File::create_new(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(CacheError::io(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, dest) {
        let _ = fs::remove_file(&tmp);
        // On Windows, replacing a file another process is renaming or reading at the same moment
        // can fail; the other writer's entry (same key, same content) is then in place.
        if cfg!(windows) && e.kind() == io::ErrorKind::PermissionDenied && dest.exists() {
            return Ok(());
        }
        return Err(CacheError::io(dest, e));
    }
    Ok(())
}

/// Removes `.tmp-*` files in `folder` (not below) older than [`STALE_TEMP_AGE`]; returns how many.
fn sweep_folder(folder: &Path) -> usize {
    let Ok(entries) = fs::read_dir(folder) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta.is_file()
            && meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
        if old && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `model.json`: the format version, the key and its parts, for humans browsing the cache.
fn model_json(model: &ModelKey) -> String {
    /// The parts as a JSON object, in the key's (sorted) order.
    struct Parts<'a>(&'a [(String, String)]);
    impl serde::Serialize for Parts<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
        }
    }
    #[derive(serde::Serialize)]
    struct ModelJson<'a> {
        format_version: u32,
        model_key: &'a str,
        parts: Parts<'a>,
    }
    let json = ModelJson {
        format_version: CACHE_FORMAT_VERSION,
        model_key: model.hex(),
        parts: Parts(&model.parts),
    };
    // serialising strings into a String cannot fail
    serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
}

/// A non-empty environment variable as a path.
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const DIM: usize = 8;

    fn model(dtype: &str) -> ModelKey {
        ModelKey::new(&[
            ("vision_weights", "abc123"),
            ("preprocess", "def456"),
            ("dtype", dtype),
        ])
    }

    fn key(i: u32) -> ImageKey {
        ImageKey::of_bytes(&i.to_le_bytes())
    }

    fn embedding(i: u32) -> Vec<f32> {
        (0..DIM as u32)
            .map(|j| ((i * 31 + j) as f32).sin() / 3.0)
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// All `.tmp-*` files anywhere below `dir`.
    fn temp_files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    out.push(p);
                }
            }
        }
        out
    }

    #[test]
    fn cache_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddingCache>();
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &model("f32"), DIM).unwrap();
        let v = vec![
            -0.0,
            0.0,
            1e-30,
            f32::MAX,
            f32::MIN_POSITIVE,
            -f32::MAX,
            1.0e-45, // smallest subnormal
            0.1,
        ];
        let k = ImageKey::of_bytes(b"some image bytes");
        cache.put(&k, &v).unwrap();
        let back = cache.get(&k).unwrap();
        assert_eq!(bits(&back), bits(&v));
        // Entry path layout and size.
        let hex = k.hex();
        let path = cache
            .dir()
            .join(&hex[..2])
            .join(format!("{}.emb", &hex[2..]));
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, 48 + 4 * DIM);
        assert!(
            cache
                .dir()
                .ends_with(Path::new("embeddings/v1").join(model("f32").hex()))
        );
    }

    #[test]
    fn miss_and_stats() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &model("f32"), DIM).unwrap();
        assert_eq!(cache.get(&key(1)), None);
        cache.put(&key(1), &embedding(1)).unwrap();
        cache.put(&key(2), &embedding(2)).unwrap();
        assert_eq!(cache.get(&key(1)), Some(embedding(1)));
        assert_eq!(cache.get(&key(2)), Some(embedding(2)));
        assert_eq!(cache.get(&key(3)), None);
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 2,
                misses: 2,
                corrupt: 0,
                written: 2
            }
        );
    }

    #[test]
    fn image_key_hex() {
        // SHA-256 of the empty string.
        assert_eq!(
            ImageKey::of_bytes(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn model_keys_separate_caches_and_ignore_part_order() {
        let a = ModelKey::new(&[("weights", "w1"), ("dtype", "f32")]);
        let b = ModelKey::new(&[("dtype", "f32"), ("weights", "w1")]);
        let c = ModelKey::new(&[("dtype", "f16"), ("weights", "w1")]);
        assert_eq!(a.hex(), b.hex());
        assert_ne!(a.hex(), c.hex());
        assert_eq!(a.hex().len(), 64);
        // Field boundaries matter: ("ab","c") is not ("a","bc").
        assert_ne!(
            ModelKey::new(&[("ab", "c")]).hex(),
            ModelKey::new(&[("a", "bc")]).hex()
        );

        let root = tempfile::tempdir().unwrap();
        let ca = EmbeddingCache::open(root.path(), &a, DIM).unwrap();
        let cc = EmbeddingCache::open(root.path(), &c, DIM).unwrap();
        assert_ne!(ca.dir(), cc.dir());
        ca.put(&key(7), &embedding(7)).unwrap();
        assert_eq!(cc.get(&key(7)), None);
        assert_eq!(ca.get(&key(7)), Some(embedding(7)));

        let json = fs::read_to_string(ca.dir().join("model.json")).unwrap();
        assert!(json.contains("\"dtype\": \"f32\""), "{json}");
        assert!(json.contains(a.hex()), "{json}");
    }

    #[test]
    fn model_json_escapes_and_is_written_once() {
        let m = ModelKey::new(&[("path", "C:\\models\\\"x\"\n")]);
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &m, DIM).unwrap();
        let info = cache.dir().join("model.json");
        let json = fs::read_to_string(&info).unwrap();
        assert!(json.contains(r#""path": "C:\\models\\\"x\"\n""#), "{json}");
        // A second open leaves an existing model.json alone.
        fs::write(&info, "edited").unwrap();
        EmbeddingCache::open(root.path(), &m, DIM).unwrap();
        assert_eq!(fs::read_to_string(&info).unwrap(), "edited");
        assert!(temp_files(cache.dir()).is_empty());
        // Empty part list gives valid-looking JSON too.
        let empty = model_json(&ModelKey::new(&[]));
        assert!(empty.ends_with("\"parts\": {}\n}\n"), "{empty}");
    }

    /// Writes `bytes` as key's entry, checks `get` reports it corrupt and removes it, and that a
    /// `put` afterwards repairs it.
    fn assert_corrupt_entry_is_dropped(cache: &EmbeddingCache, k: &ImageKey, bytes: &[u8]) {
        let path = cache.entry_path(k);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        let before = cache.stats();
        assert_eq!(cache.get(k), None);
        let after = cache.stats();
        assert_eq!(after.corrupt, before.corrupt + 1);
        assert_eq!(after.misses, before.misses + 1);
        assert!(!path.exists(), "corrupt entry not removed");
        cache.put(k, &embedding(5)).unwrap();
        assert_eq!(cache.get(k), Some(embedding(5)));
    }

    #[test]
    fn corrupt_entries_are_misses_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &model("f32"), DIM).unwrap();
        let k = key(5);
        let good = cache.encode(&embedding(5));

        // Truncated.
        assert_corrupt_entry_is_dropped(&cache, &k, &good[..good.len() - 1]);
        assert_corrupt_entry_is_dropped(&cache, &k, &good[..10]);
        assert_corrupt_entry_is_dropped(&cache, &k, &[]);
        // Too long.
        let mut long = good.clone();
        long.push(0);
        assert_corrupt_entry_is_dropped(&cache, &k, &long);
        // A flipped payload byte.
        let mut flipped = good.clone();
        flipped[16 + 3] ^= 0x01;
        assert_corrupt_entry_is_dropped(&cache, &k, &flipped);
        // Flipped checksum byte.
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x80;
        assert_corrupt_entry_is_dropped(&cache, &k, &flipped);

        // Bad magic, wrong version, wrong dim field: each with a valid checksum, so the field
        // check itself is exercised.
        let resum = |mut b: Vec<u8>| {
            let n = b.len() - 32;
            let sum = Sha256::digest(&b[..n]);
            b[n..].copy_from_slice(&sum);
            b
        };
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert_corrupt_entry_is_dropped(&cache, &k, &resum(bad_magic));
        let mut bad_version = good.clone();
        bad_version[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_corrupt_entry_is_dropped(&cache, &k, &resum(bad_version));
        let mut bad_dim = good.clone();
        bad_dim[12..16].copy_from_slice(&(DIM as u32 + 1).to_le_bytes());
        assert_corrupt_entry_is_dropped(&cache, &k, &resum(bad_dim));
        assert_eq!(cache.stats().corrupt, 9);
    }

    #[test]
    fn entry_of_other_dimension_is_corrupt() {
        let root = tempfile::tempdir().unwrap();
        let m = model("f32");
        let small = EmbeddingCache::open(root.path(), &m, 3).unwrap();
        small.put(&key(5), &[1.0, 2.0, 3.0]).unwrap();
        let cache = EmbeddingCache::open(root.path(), &m, DIM).unwrap();
        assert_eq!(cache.get(&key(5)), None);
        assert_eq!(cache.stats().corrupt, 1);
        assert!(!cache.entry_path(&key(5)).exists());
        cache.put(&key(5), &embedding(5)).unwrap();
        assert_eq!(cache.get(&key(5)), Some(embedding(5)));
    }

    #[test]
    fn unreadable_entry_is_corrupt_miss() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &model("f32"), DIM).unwrap();
        // A folder where the entry should be: reading fails with something other than NotFound.
        fs::create_dir_all(cache.entry_path(&key(9))).unwrap();
        assert_eq!(cache.get(&key(9)), None);
        assert_eq!(cache.stats().corrupt, 1);
        assert_eq!(cache.stats().misses, 1);
    }

    #[test]
    fn temp_files_are_not_entries_and_sweep_removes_only_old_ones() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &model("f32"), DIM).unwrap();
        cache.put(&key(1), &embedding(1)).unwrap();
        assert!(temp_files(cache.dir()).is_empty(), "put left a temp file");

        // A complete, valid entry under a temp name (as if killed just before the rename).
        let k = key(2);
        let folder = cache.entry_path(&k).parent().unwrap().to_path_buf();
        fs::create_dir_all(&folder).unwrap();
        let old = folder.join(".tmp-1-0-0");
        let new = folder.join(".tmp-1-1-1");
        let top_old = cache.dir().join(".tmp-1-2-2");
        for p in [&old, &new, &top_old] {
            fs::write(p, cache.encode(&embedding(2))).unwrap();
        }
        assert_eq!(cache.get(&k), None);
        assert_eq!(cache.stats().corrupt, 0);

        let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
        for p in [&old, &top_old] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        // An old real entry must survive the sweep.
        let entry = cache.entry_path(&key(1));
        fs::File::options()
            .write(true)
            .open(&entry)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();

        assert_eq!(cache.sweep_stale_temp_files(), 2);
        assert!(!old.exists() && !top_old.exists());
        assert!(new.exists());
        assert!(entry.exists());
        assert!(cache.dir().join("model.json").exists());
        assert_eq!(cache.get(&key(1)), Some(embedding(1)));
        assert_eq!(cache.sweep_stale_temp_files(), 0);
    }

    #[test]
    fn concurrent_writers_and_readers() {
        const THREADS: u32 = 8;
        const OPS: u32 = 200;
        const KEYS: u32 = 37;
        let root = tempfile::tempdir().unwrap();
        let m = model("f32");
        // Two instances on one folder stand in for two processes.
        let a = Arc::new(EmbeddingCache::open(root.path(), &m, DIM).unwrap());
        let b = Arc::new(EmbeddingCache::open(root.path(), &m, DIM).unwrap());
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let cache = Arc::clone(if t % 2 == 0 { &a } else { &b });
                std::thread::spawn(move || {
                    for i in 0..OPS {
                        let k = (i * 7 + t) % KEYS;
                        if let Some(v) = cache.get(&key(k)) {
                            assert_eq!(bits(&v), bits(&embedding(k)));
                        }
                        cache.put(&key(k), &embedding(k)).unwrap();
                        let v = cache.get(&key(k)).expect("entry missing right after put");
                        assert_eq!(bits(&v), bits(&embedding(k)));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!(sa.corrupt + sb.corrupt, 0);
        assert_eq!(sa.written + sb.written, u64::from(THREADS * OPS));
        assert!(sa.hits + sb.hits >= u64::from(THREADS * OPS));
        for k in 0..KEYS {
            assert_eq!(bits(&a.get(&key(k)).unwrap()), bits(&embedding(k)));
            assert_eq!(bits(&b.get(&key(k)).unwrap()), bits(&embedding(k)));
        }
        assert!(temp_files(a.dir()).is_empty());
    }

    #[test]
    fn wrong_dimension_error_names_both_numbers() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), &model("f32"), DIM).unwrap();
        let err = cache.put(&key(1), &[0.5; 5]).unwrap_err();
        assert!(matches!(
            err,
            CacheError::WrongDimension {
                expected: DIM,
                found: 5
            }
        ));
        let msg = err.to_string();
        assert!(msg.contains('8') && msg.contains('5'), "{msg}");
        assert!(
            cache
                .entry_path(&key(1))
                .parent()
                .unwrap()
                .read_dir()
                .is_err()
        );
    }

    #[test]
    fn io_error_names_the_path() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-folder");
        fs::write(&file, "x").unwrap();
        let err = EmbeddingCache::open(&file, &model("f32"), DIM).unwrap_err();
        assert!(matches!(err, CacheError::Io { .. }));
        assert!(err.to_string().contains("not-a-folder"), "{err}");
    }

    #[test]
    fn default_root_honours_environment() {
        // The only test that touches the environment; restores what it changes.
        let saved: Vec<_> = ["CLIP_AUDIT_CACHE", "XDG_CACHE_HOME"]
            .into_iter()
            .map(|n| (n, std::env::var_os(n)))
            .collect();
        let restore = |saved: &[(&str, Option<std::ffi::OsString>)]| {
            for (n, v) in saved {
                // SAFETY: no other test reads or writes these variables.
                unsafe {
                    match v {
                        Some(v) => std::env::set_var(n, v),
                        None => std::env::remove_var(n),
                    }
                }
            }
        };
        let result = std::panic::catch_unwind(|| {
            // SAFETY: as above.
            unsafe {
                std::env::set_var("CLIP_AUDIT_CACHE", "/some/where/cache");
                std::env::set_var("XDG_CACHE_HOME", "/xdg");
            }
            assert_eq!(
                EmbeddingCache::default_root().unwrap(),
                PathBuf::from("/some/where/cache")
            );
            // SAFETY: as above.
            unsafe {
                std::env::set_var("CLIP_AUDIT_CACHE", "");
            }
            if cfg!(unix) {
                assert_eq!(
                    EmbeddingCache::default_root().unwrap(),
                    PathBuf::from("/xdg/clip-audit")
                );
            }
        });
        restore(&saved);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}
