//! Where a checkpoint's files come from: a local folder, or a Hub repository pinned to a revision
//! and kept in the standard Hugging Face cache (so files other tools fetched are reused).

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ModelError;
use crate::digest::hex;

/// What the user named as the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A local folder in Hugging Face layout.
    Local(PathBuf),
    /// A Hub repository id (`owner/name`) at a revision (branch, tag or commit).
    Hub {
        /// `owner/name`.
        repo: String,
        /// Branch, tag or commit hash.
        revision: String,
    },
}

impl ModelSpec {
    /// An existing folder is local; otherwise `owner/name` is a Hub id (at `revision`, default `main`).
    pub fn parse(text: &str, revision: Option<&str>) -> Result<Self, ModelError> {
        let path = Path::new(text);
        if path.is_dir() {
            if let Some(rev) = revision {
                return Err(ModelError::BadSpec(format!(
                    "{text} is a local folder, so --revision {rev} does not apply"
                )));
            }
            return Ok(Self::Local(path.to_path_buf()));
        }
        let parts: Vec<&str> = text.split('/').collect();
        let valid_part = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !p.starts_with('.')
        };
        if parts.len() == 2 && parts.iter().all(valid_part) {
            return Ok(Self::Hub {
                repo: text.to_string(),
                revision: revision.unwrap_or("main").to_string(),
            });
        }
        Err(ModelError::BadSpec(text.to_string()))
    }
}

/// How Hub files may be obtained.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Use only the local cache; never touch the network.
    pub offline: bool,
    /// Cache folder instead of the Hugging Face default (`HF_HUB_CACHE`, `HF_HOME/hub`, …).
    pub cache_dir: Option<PathBuf>,
}

/// Where a loaded checkpoint came from, for provenance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelOrigin {
    /// A local folder.
    Local {
        /// The folder as given.
        dir: PathBuf,
    },
    /// A Hub repository.
    Hub {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The commit the revision resolved to.
        commit: String,
    },
}

/// The files of one checkpoint on local disk.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// Where they came from.
    pub origin: ModelOrigin,
    /// `config.json` (`open_clip_config.json` for an OpenCLIP checkpoint).
    pub config: PathBuf,
    /// `model.safetensors` (`open_clip_model.safetensors` for an OpenCLIP checkpoint).
    pub weights: PathBuf,
    /// `tokenizer.json`, or else SentencePiece's `spiece.model` (SigLIP); `None` for an
    /// OpenCLIP checkpoint without one, which uses OpenAI's built-in CLIP tokenizer.
    pub tokenizer: Option<PathBuf>,
    /// `preprocessor_config.json`, when the checkpoint has one.
    pub preprocessor: Option<PathBuf>,
}

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.safetensors";
const PICKLE: &str = "pytorch_model.bin";
const TOKENIZER: &str = "tokenizer.json";
const SPIECE: &str = super::siglip_tokenizer::SPIECE_FILE;
/// How a missing tokenizer is named: either file will do.
const EITHER_TOKENIZER: &str = "tokenizer.json` or `spiece.model";
const PREPROCESSOR: &str = "preprocessor_config.json";
use super::openclip::{CONFIG_FILE as OPENCLIP_CONFIG, WEIGHTS_FILE as OPENCLIP_WEIGHTS};
/// OpenCLIP's pickled weights, refused like `pytorch_model.bin`.
const OPENCLIP_PICKLE: &str = "open_clip_pytorch_model.bin";

impl ModelFiles {
    /// Finds (or downloads) every file of the checkpoint `spec` names.
    pub fn resolve(spec: &ModelSpec, options: &SourceOptions) -> Result<Self, ModelError> {
        match spec {
            ModelSpec::Local(dir) => Self::from_dir(dir),
            ModelSpec::Hub { repo, revision } => Self::from_hub(repo, revision, options),
        }
    }

    /// The files of a local checkpoint folder.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        let need = |file: &'static str| {
            let path = dir.join(file);
            if path.is_file() {
                Ok(path)
            } else {
                Err(ModelError::MissingFile {
                    dir: dir.to_path_buf(),
                    file,
                })
            }
        };
        if !dir.join(CONFIG).is_file() && dir.join(OPENCLIP_CONFIG).is_file() {
            return Self::from_openclip_dir(dir);
        }
        let config = need(CONFIG)?;
        if !dir.join(WEIGHTS).is_file() && dir.join(PICKLE).is_file() {
            return Err(ModelError::PickleOnly {
                location: dir.display().to_string(),
            });
        }
        let weights = need(WEIGHTS)?;
        let tokenizer = Some(need(TOKENIZER).or_else(|_| need(SPIECE)).map_err(|_| {
            ModelError::MissingFile {
                dir: dir.to_path_buf(),
                file: EITHER_TOKENIZER,
            }
        })?);
        let preprocessor = Some(dir.join(PREPROCESSOR)).filter(|p| p.is_file());
        Ok(Self {
            origin: ModelOrigin::Local {
                dir: dir.to_path_buf(),
            },
            config,
            weights,
            tokenizer,
            preprocessor,
        })
    }

    /// The files of a local OpenCLIP checkpoint folder (`open_clip_config.json`,
    /// `open_clip_model.safetensors`, `tokenizer.json` if it has one).
    fn from_openclip_dir(dir: &Path) -> Result<Self, ModelError> {
        let weights = dir.join(OPENCLIP_WEIGHTS);
        if !weights.is_file() {
            if dir.join(OPENCLIP_PICKLE).is_file() {
                return Err(ModelError::PickleOnly {
                    location: dir.display().to_string(),
                });
            }
            return Err(ModelError::MissingFile {
                dir: dir.to_path_buf(),
                file: OPENCLIP_WEIGHTS,
            });
        }
        Ok(Self {
            origin: ModelOrigin::Local {
                dir: dir.to_path_buf(),
            },
            config: dir.join(OPENCLIP_CONFIG),
            weights,
            tokenizer: Some(dir.join(TOKENIZER)).filter(|p| p.is_file()),
            preprocessor: None,
        })
    }

    /// The files of a Hub checkpoint, fetched into (or, offline, found in) the cache.
    fn from_hub(repo: &str, revision: &str, options: &SourceOptions) -> Result<Self, ModelError> {
        let hub = HubRepo::connect(repo, revision, options)?;
        let config = match hub.fetch(CONFIG) {
            Ok(Some(config)) => config,
            // No config.json (or, offline, none cached): an OpenCLIP repository?
            Ok(None) | Err(ModelError::NotCached { .. })
                if matches!(hub.fetch(OPENCLIP_CONFIG), Ok(Some(_))) =>
            {
                return Self::from_openclip_hub(&hub);
            }
            Ok(None) => return Err(hub.err(CONFIG, "the repository has no such file".into())),
            Err(e) => return Err(e),
        };
        let weights = hub.weights()?;
        let tokenizer = Some(hub.tokenizer()?);
        let preprocessor = match hub.fetch(PREPROCESSOR) {
            Ok(found) => found,
            Err(ModelError::NotCached { .. }) => None,
            Err(e) => return Err(e),
        };
        let commit = snapshot_commit(&config).unwrap_or_else(|| revision.to_string());
        Ok(Self {
            origin: ModelOrigin::Hub {
                repo: repo.to_string(),
                revision: revision.to_string(),
                commit,
            },
            config,
            weights,
            tokenizer,
            preprocessor,
        })
    }

    /// The files of an OpenCLIP Hub checkpoint (its `open_clip_config.json` is there).
    fn from_openclip_hub(hub: &HubRepo) -> Result<Self, ModelError> {
        let config = hub.required(OPENCLIP_CONFIG)?;
        let weights = match hub.fetch(OPENCLIP_WEIGHTS)? {
            Some(path) => path,
            None => return Err(hub.missing_weights(OPENCLIP_WEIGHTS, OPENCLIP_PICKLE)),
        };
        let tokenizer = match hub.fetch(TOKENIZER) {
            Ok(found) => found,
            Err(ModelError::NotCached { .. }) => None,
            Err(e) => return Err(e),
        };
        let commit = snapshot_commit(&config).unwrap_or_else(|| hub.revision.to_string());
        Ok(Self {
            origin: ModelOrigin::Hub {
                repo: hub.repo.to_string(),
                revision: hub.revision.to_string(),
                commit,
            },
            config,
            weights,
            tokenizer,
            preprocessor: None,
        })
    }

    /// A short human-readable name: the folder, or `repo@commit`.
    pub fn display_name(&self) -> String {
        match &self.origin {
            ModelOrigin::Local { dir } => dir.display().to_string(),
            ModelOrigin::Hub { repo, commit, .. } => format!("{repo}@{commit}"),
        }
    }

    /// `spiece.model` when the tokenizer is SentencePiece's, else `tokenizer.json`.
    pub fn tokenizer_name(&self) -> &'static str {
        let name = self.tokenizer.as_deref().and_then(Path::file_name);
        if name == Some(std::ffi::OsStr::new(SPIECE)) {
            SPIECE
        } else {
            TOKENIZER
        }
    }

    /// SHA-256 of every file, as `(file name, hex digest)`, in a fixed order.
    pub fn sha256_hashes(&self) -> Result<Vec<(String, String)>, ModelError> {
        self.sha256_hashes_memo(None)
    }

    /// Like [`Self::sha256_hashes`], remembering each digest in `memo_dir` keyed by what an edit
    /// cannot keep (see [`sha256_file_memo`]), so an unchanged checkpoint is hashed only once.
    pub fn sha256_hashes_memo(
        &self,
        memo_dir: Option<&Path>,
    ) -> Result<Vec<(String, String)>, ModelError> {
        let openclip = super::openclip::is_openclip_config(&self.config);
        let (config, weights) = if openclip {
            (OPENCLIP_CONFIG, OPENCLIP_WEIGHTS)
        } else {
            (CONFIG, WEIGHTS)
        };
        let mut files = vec![(config, &self.config), (weights, &self.weights)];
        if let Some(p) = &self.tokenizer {
            files.push((self.tokenizer_name(), p));
        }
        if let Some(p) = &self.preprocessor {
            files.push((PREPROCESSOR, p));
        }
        let mut hashes = files
            .into_iter()
            .map(|(name, path)| {
                let hash = match memo_dir {
                    Some(dir) => sha256_file_memo(path, dir)?,
                    None => sha256_file(path)?,
                };
                Ok((name.to_string(), hash))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        if self.tokenizer.is_none() {
            let builtin = super::tokenizer::BUILTIN_CLIP_TOKENIZER;
            hashes.insert(
                2,
                (
                    super::tokenizer::BUILTIN_CLIP_TOKENIZER_NAME.to_string(),
                    hex(&Sha256::digest(builtin)),
                ),
            );
        }
        Ok(hashes)
    }
}

/// One Hub repository at one revision, with the client that fetches its files into the cache.
struct HubRepo<'a> {
    repo: &'a str,
    revision: &'a str,
    offline: bool,
    /// The cache folder the client uses (named when a file is not cached).
    cache: PathBuf,
    handle: hf_hub::HFRepositorySync<hf_hub::RepoTypeModel>,
}

impl<'a> HubRepo<'a> {
    /// A client for `repo` at `revision` on the cache `options` name.
    fn connect(
        repo: &'a str,
        revision: &'a str,
        options: &SourceOptions,
    ) -> Result<Self, ModelError> {
        let hub_err =
            |e: hf_hub::HFError| hub_error(repo, revision, CONFIG, crate::hub_error::describe(&e));
        let mut builder = hf_hub::HFClient::builder();
        if let Some(dir) = &options.cache_dir {
            builder = builder.cache_dir(dir.clone());
        }
        let inner = builder.build().map_err(hub_err)?;
        let cache = inner.cache_dir().to_path_buf();
        let client = hf_hub::HFClientSync::from_inner(inner).map_err(hub_err)?;
        let (owner, name) = repo.split_once('/').unwrap_or(("", repo));
        Ok(Self {
            repo,
            revision,
            offline: options.offline,
            cache,
            handle: client.model(owner, name),
        })
    }

    /// A [`ModelError::Hub`] for `file` of this repository.
    fn err(&self, file: &str, reason: String) -> ModelError {
        hub_error(self.repo, self.revision, file, reason)
    }

    /// The local path of `file`, downloading it unless offline; `None` when the repository has
    /// no such file.
    fn fetch(&self, file: &str) -> Result<Option<PathBuf>, ModelError> {
        let result = self
            .handle
            .download_file()
            .filename(file)
            .revision(self.revision.to_string())
            .local_files_only(self.offline)
            .send();
        match result {
            Ok(path) => Ok(Some(path)),
            Err(hf_hub::HFError::EntryNotFound { .. }) => Ok(None),
            Err(hf_hub::HFError::LocalEntryNotFound { .. }) => Err(ModelError::NotCached {
                repo: self.repo.to_string(),
                revision: self.revision.to_string(),
                file: file.to_string(),
                cache: self.cache.clone(),
            }),
            Err(e) => Err(self.err(file, crate::hub_error::describe(&e))),
        }
    }

    /// Like [`Self::fetch`], with a missing file an error.
    fn required(&self, file: &str) -> Result<PathBuf, ModelError> {
        self.fetch(file)?
            .ok_or_else(|| self.err(file, "the repository has no such file".into()))
    }

    /// `tokenizer.json`, else `spiece.model`; an error naming both when the repository has neither.
    /// Offline, a `tokenizer.json` that is not cached is the error only when `spiece.model` is not
    /// cached either.
    fn tokenizer(&self) -> Result<PathBuf, ModelError> {
        let uncached_json = match self.fetch(TOKENIZER) {
            Ok(Some(path)) => return Ok(path),
            Ok(None) => None,
            Err(e @ ModelError::NotCached { .. }) => Some(e),
            Err(e) => return Err(e),
        };
        match self.fetch(SPIECE) {
            Ok(Some(path)) => Ok(path),
            Ok(None) => Err(uncached_json.unwrap_or_else(|| {
                self.err(
                    TOKENIZER,
                    format!("the repository has neither {TOKENIZER} nor {SPIECE}"),
                )
            })),
            Err(e) => Err(uncached_json.unwrap_or(e)),
        }
    }

    /// `model.safetensors`; when it is missing, a repository with only `pytorch_model.bin` is
    /// told apart (online) so the error can say how to convert it.
    fn weights(&self) -> Result<PathBuf, ModelError> {
        match self.fetch(WEIGHTS)? {
            Some(path) => Ok(path),
            None => Err(self.missing_weights(WEIGHTS, PICKLE)),
        }
    }

    /// The error for a missing safetensors file `weights`: [`ModelError::PickleOnly`] when
    /// (online) the repository has the pickle `pickle_name` instead.
    fn missing_weights(&self, weights: &str, pickle_name: &str) -> ModelError {
        let pickle = if self.offline {
            false
        } else {
            matches!(
                self.handle
                    .file_exists()
                    .filename(pickle_name)
                    .revision(self.revision)
                    .send(),
                Ok(true)
            )
        };
        if pickle {
            ModelError::PickleOnly {
                location: format!("{}@{}", self.repo, self.revision),
            }
        } else {
            self.err(weights, "the repository has no such file".into())
        }
    }
}

/// A [`ModelError::Hub`]: `file` of `repo` at `revision` could not be had.
fn hub_error(repo: &str, revision: &str, file: &str, reason: String) -> ModelError {
    ModelError::Hub {
        repo: repo.to_string(),
        revision: revision.to_string(),
        file: file.to_string(),
        reason,
    }
}

/// The commit hash in a cache path `…/snapshots/<commit>/<file>`.
fn snapshot_commit(path: &Path) -> Option<String> {
    let mut parts = path.components().rev();
    parts.next()?;
    let commit = parts.next()?.as_os_str().to_str()?.to_string();
    let parent = parts.next()?.as_os_str().to_str()?;
    (parent == "snapshots").then_some(commit)
}

/// Hex SHA-256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    crate::digest::sha256_file(path)
        .map(|(digest, _)| digest)
        .map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// [`sha256_file`] through a memo in `dir`: one small file per path holding the [`FileStamp`] the
/// digest was computed for. A memo that does not match, or cannot be read or written, just means
/// hashing the file again; a file that changes while it is hashed is not memoised.
pub fn sha256_file_memo(path: &Path, dir: &Path) -> Result<String, ModelError> {
    let stamp = FileStamp::of(path).map(|s| s.to_string());
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let memo = dir.join(format!(
        "{}.txt",
        hex(&Sha256::digest(canonical.display().to_string().as_bytes()))
    ));
    if let Some(stamp) = &stamp
        && let Ok(text) = std::fs::read_to_string(&memo)
        && let Some((memo_stamp, hash)) = text.trim_end().rsplit_once(' ')
        && memo_stamp == stamp
        && hash.len() == 64
    {
        return Ok(hash.to_string());
    }
    let hash = sha256_file(path)?;
    let unchanged = FileStamp::of(path).map(|s| s.to_string()) == stamp;
    if let Some(stamp) = stamp.filter(|_| unchanged) {
        // best effort, written atomically so a concurrent reader never sees half a line
        let tmp = dir.join(format!(".tmp-memo-{}-{}", std::process::id(), hash));
        let written = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&tmp, format!("{stamp} {hash}\n")))
            .and_then(|_| std::fs::rename(&tmp, &memo));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(hash)
}

/// What a memoised digest is keyed on: size, modification time, inode, status-change time
/// (`st_ctime`, updated by every write and not settable by users, so an in-place edit that
/// restores the modification time still shows), and a content fingerprint (SHA-256 of the first
/// and last 64 KiB and of evenly spaced 4 KiB blocks), for file systems without a reliable ctime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    mtime_ns: u128,
    ctime_ns: i128,
    inode: u64,
    fingerprint: String,
}

/// Bytes fingerprinted at each end of a file.
const FINGERPRINT_END: u64 = 64 << 10;
/// Size and number of the blocks fingerprinted between the ends.
const FINGERPRINT_BLOCK: u64 = 4 << 10;
const FINGERPRINT_BLOCKS: u64 = 16;

impl FileStamp {
    /// The stamp of the file at `path`, or `None` where the platform or file system cannot say.
    fn of(path: &Path) -> Option<Self> {
        let mut file = crate::input_file::open_regular_file(path).ok()?;
        let meta = file.metadata().ok()?;
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        #[cfg(unix)]
        let (ctime_ns, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                meta.ino(),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode) = (0, 0);
        let fingerprint = fingerprint(&mut file, meta.len()).ok()?;
        Some(Self {
            len: meta.len(),
            mtime_ns,
            ctime_ns,
            inode,
            fingerprint,
        })
    }
}

impl std::fmt::Display for FileStamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "v2 {} {} {} {} {}",
            self.len, self.mtime_ns, self.ctime_ns, self.inode, self.fingerprint
        )
    }
}

/// SHA-256 (hex, first 16 bytes) of the file's length, its first and last [`FINGERPRINT_END`]
/// bytes, and [`FINGERPRINT_BLOCKS`] blocks spread evenly between them.
fn fingerprint(file: &mut std::fs::File, len: u64) -> std::io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut hasher = Sha256::new();
    hasher.update(len.to_le_bytes());
    let mut spans = vec![(0, FINGERPRINT_END.min(len))];
    let inner = len.saturating_sub(2 * FINGERPRINT_END);
    for i in 0..FINGERPRINT_BLOCKS {
        let start = FINGERPRINT_END + inner * i / FINGERPRINT_BLOCKS;
        spans.push((start, FINGERPRINT_BLOCK.min(inner)));
    }
    spans.push((
        len.saturating_sub(FINGERPRINT_END),
        FINGERPRINT_END.min(len),
    ));
    let mut buf = Vec::new();
    for (start, n) in spans {
        buf.clear();
        file.seek(SeekFrom::Start(start))?;
        (&mut *file).take(n).read_to_end(&mut buf)?;
        hasher.update(&buf);
    }
    Ok(hex(&hasher.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_ids_and_rejects_garbage() {
        assert_eq!(
            ModelSpec::parse("openai/clip-vit-base-patch32", None).unwrap(),
            ModelSpec::Hub {
                repo: "openai/clip-vit-base-patch32".into(),
                revision: "main".into()
            }
        );
        assert!(ModelSpec::parse("no-such-folder", None).is_err());
        assert!(ModelSpec::parse("a/b/c", None).is_err());
        assert!(ModelSpec::parse("../no-such-folder-for-clip-audit", None).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn memo_misses_after_an_in_place_edit_that_keeps_the_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let (file, memo) = (
            dir.path().join("model.safetensors"),
            dir.path().join("memo"),
        );
        let mut bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &bytes).unwrap();
        let first = sha256_file_memo(&file, &memo).unwrap();
        assert_eq!(sha256_file_memo(&file, &memo).unwrap(), first, "memo hit");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        // one byte changed in place (same size, same inode), then the old mtime put back
        bytes[150_000] ^= 0xFF;
        let handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&handle, &bytes[150_000..150_001], 150_000)
            .unwrap();
        handle.set_modified(mtime).unwrap();
        drop(handle);
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
        let after = sha256_file_memo(&file, &memo).unwrap();
        assert_ne!(after, first);
        assert_eq!(after, sha256_file(&file).unwrap());
    }

    #[test]
    fn fingerprint_sees_edits_at_the_ends_and_in_sampled_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let bytes = vec![7u8; 1 << 20];
        let print = |bytes: &[u8]| {
            std::fs::write(&file, bytes).unwrap();
            let mut f = std::fs::File::open(&file).unwrap();
            fingerprint(&mut f, bytes.len() as u64).unwrap()
        };
        let base = print(&bytes);
        for at in [0, 65_535, (1 << 20) - 1, FINGERPRINT_END + 10] {
            let mut edited = bytes.clone();
            edited[at as usize] = 8;
            assert_ne!(print(&edited), base, "edit at {at}");
        }
        assert_ne!(print(&bytes[..100]), print(&bytes[..101]));
    }

    #[test]
    fn reads_commit_from_snapshot_path() {
        let p = Path::new("/c/models--a--b/snapshots/0123abcd/config.json");
        assert_eq!(snapshot_commit(p).as_deref(), Some("0123abcd"));
        assert_eq!(snapshot_commit(Path::new("/x/config.json")), None);
    }
}
