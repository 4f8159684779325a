//! Where a checkpoint's files come from: a local folder, or a Hub repository pinned to a revision
//! and kept in the standard Hugging Face cache (so files other tools fetched are reused).

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ModelError;

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
    /// `config.json`.
    pub config: PathBuf,
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `preprocessor_config.json`, when the checkpoint has one.
    pub preprocessor: Option<PathBuf>,
}

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.safetensors";
const PICKLE: &str = "pytorch_model.bin";
const TOKENIZER: &str = "tokenizer.json";
const PREPROCESSOR: &str = "preprocessor_config.json";

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
        let config = need(CONFIG)?;
        if !dir.join(WEIGHTS).is_file() && dir.join(PICKLE).is_file() {
            return Err(ModelError::PickleOnly {
                location: dir.display().to_string(),
            });
        }
        let weights = need(WEIGHTS)?;
        let tokenizer = need(TOKENIZER)?;
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

    fn from_hub(repo: &str, revision: &str, options: &SourceOptions) -> Result<Self, ModelError> {
        let hub_err = |file: &str, reason: String| ModelError::Hub {
            repo: repo.to_string(),
            revision: revision.to_string(),
            file: file.to_string(),
            reason,
        };
        let mut builder = hf_hub::HFClient::builder();
        if let Some(dir) = &options.cache_dir {
            builder = builder.cache_dir(dir.clone());
        }
        let inner = builder
            .build()
            .map_err(|e| hub_err(CONFIG, e.to_string()))?;
        let cache = inner.cache_dir().to_path_buf();
        let client =
            hf_hub::HFClientSync::from_inner(inner).map_err(|e| hub_err(CONFIG, e.to_string()))?;
        let (owner, name) = repo.split_once('/').unwrap_or(("", repo));
        let handle = client.model(owner, name);
        let fetch = |file: &str| -> Result<Option<PathBuf>, ModelError> {
            let result = handle
                .download_file()
                .filename(file)
                .revision(revision.to_string())
                .local_files_only(options.offline)
                .send();
            match result {
                Ok(path) => Ok(Some(path)),
                Err(hf_hub::HFError::EntryNotFound { .. }) => Ok(None),
                Err(hf_hub::HFError::LocalEntryNotFound { .. }) => Err(ModelError::NotCached {
                    repo: repo.to_string(),
                    revision: revision.to_string(),
                    file: file.to_string(),
                    cache: cache.clone(),
                }),
                Err(e) => Err(hub_err(file, e.to_string())),
            }
        };
        let required = |file: &str| {
            fetch(file)?.ok_or_else(|| hub_err(file, "the repository has no such file".into()))
        };
        let config = required(CONFIG)?;
        let weights = match fetch(WEIGHTS)? {
            Some(path) => path,
            None => {
                let pickle = if options.offline {
                    false
                } else {
                    matches!(
                        handle
                            .file_exists()
                            .filename(PICKLE)
                            .revision(revision)
                            .send(),
                        Ok(true)
                    )
                };
                return Err(if pickle {
                    ModelError::PickleOnly {
                        location: format!("{repo}@{revision}"),
                    }
                } else {
                    hub_err(WEIGHTS, "the repository has no such file".into())
                });
            }
        };
        let tokenizer = required(TOKENIZER)?;
        let preprocessor = match fetch(PREPROCESSOR) {
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

    /// A short human-readable name: the folder, or `repo@commit`.
    pub fn display_name(&self) -> String {
        match &self.origin {
            ModelOrigin::Local { dir } => dir.display().to_string(),
            ModelOrigin::Hub { repo, commit, .. } => format!("{repo}@{commit}"),
        }
    }

    /// SHA-256 of every file, as `(file name, hex digest)`, in a fixed order.
    pub fn sha256_hashes(&self) -> Result<Vec<(String, String)>, ModelError> {
        self.sha256_hashes_memo(None)
    }

    /// Like [`Self::sha256_hashes`], remembering each digest in `memo_dir` keyed by the file's
    /// path, size, modification time and inode, so an unchanged checkpoint is hashed only once.
    pub fn sha256_hashes_memo(
        &self,
        memo_dir: Option<&Path>,
    ) -> Result<Vec<(String, String)>, ModelError> {
        let mut files = vec![
            (CONFIG, &self.config),
            (WEIGHTS, &self.weights),
            (TOKENIZER, &self.tokenizer),
        ];
        if let Some(p) = &self.preprocessor {
            files.push((PREPROCESSOR, p));
        }
        files
            .into_iter()
            .map(|(name, path)| {
                let hash = match memo_dir {
                    Some(dir) => sha256_file_memo(path, dir)?,
                    None => sha256_file(path)?,
                };
                Ok((name.to_string(), hash))
            })
            .collect()
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
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// [`sha256_file`] through a memo in `dir`: one small file per path holding the size,
/// modification time (ns) and inode it was computed for. A memo that does not match, or cannot be
/// read or written, just means hashing the file again.
pub fn sha256_file_memo(path: &Path, dir: &Path) -> Result<String, ModelError> {
    let stamp = std::fs::metadata(path)
        .ok()
        .and_then(|m| file_stamp(&m))
        .map(|(len, mtime, inode)| format!("v1 {len} {mtime} {inode}"));
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
    if let Some(stamp) = stamp {
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

/// Size, modification time in nanoseconds since the epoch, and inode (0 where unknown).
fn file_stamp(meta: &std::fs::Metadata) -> Option<(u64, u128, u64)> {
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), mtime, inode))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
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

    #[test]
    fn reads_commit_from_snapshot_path() {
        let p = Path::new("/c/models--a--b/snapshots/0123abcd/config.json");
        assert_eq!(snapshot_commit(p).as_deref(), Some("0123abcd"));
        assert_eq!(snapshot_commit(Path::new("/x/config.json")), None);
    }
}
