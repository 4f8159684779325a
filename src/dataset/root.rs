//! The dataset root that image paths from the data must stay inside: lexically (no absolute
//! paths, no `..` climbing out; see [`super::image_path_in_root`]) and once symbolic links are
//! resolved, so a link inside the root cannot hand the audit a file from elsewhere.
//!
//! A spec may allow links that resolve outside the root with `allow_outside_root = true` in its
//! `[source]` table (e.g. a folder of links into a shared image store); the paths written in
//! the data must still be relative and stay inside lexically. A missing file is not checked
//! here: the loader counts it as a skipped image.

use std::path::{Path, PathBuf};

use super::image_path_in_root;

/// A dataset root with its containment rule.
#[derive(Debug, Clone)]
pub(crate) struct ImageRoot {
    path: PathBuf,
    /// The root with links resolved; `None` when links may leave it, or the root does not exist.
    resolved: Option<PathBuf>,
}

impl ImageRoot {
    /// The root `path`; links resolving outside it are errors unless `allow_outside`.
    pub fn new(path: &Path, allow_outside: bool) -> ImageRoot {
        let resolved = if allow_outside {
            None
        } else {
            path.canonicalize().ok()
        };
        ImageRoot {
            path: path.to_path_buf(),
            resolved,
        }
    }

    /// The root as the spec names it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `raw` (an image path from the data) joined to the root, once it is known to stay inside.
    pub fn image(&self, raw: &str) -> Result<PathBuf, String> {
        let path = image_path_in_root(&self.path, raw)?;
        self.check_resolved(&path, raw)?;
        Ok(path)
    }

    /// Fails when `path` exists and, links followed, lies outside the root.
    pub fn check_resolved(&self, path: &Path, raw: &str) -> Result<(), String> {
        let Some(root) = &self.resolved else {
            return Ok(());
        };
        match path.canonicalize() {
            Ok(real) if !real.starts_with(root) => Err(format!(
                "image path {raw:?} resolves through a symbolic link to {}, outside the dataset \
                 root {}; expected a file inside the root (set `allow_outside_root = true` in the \
                 spec's [source] table to allow links out of it)",
                real.display(),
                root.display()
            )),
            // missing or unreadable: the loader reports it as a skipped image
            _ => Ok(()),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_root_are_refused_unless_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(tmp.path().join("secret.jpg"), b"x").unwrap();
        std::fs::write(root.join("inside.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.jpg"), root.join("out.jpg")).unwrap();
        std::os::unix::fs::symlink(root.join("inside.jpg"), root.join("in.jpg")).unwrap();
        let strict = ImageRoot::new(&root, false);
        let err = strict.image("out.jpg").unwrap_err();
        assert!(
            err.contains("\"out.jpg\"") && err.contains("allow_outside_root"),
            "{err}"
        );
        assert_eq!(strict.image("in.jpg").unwrap(), root.join("in.jpg"));
        assert_eq!(strict.image("inside.jpg").unwrap(), root.join("inside.jpg"));
        // a missing file is the loader's business
        assert!(strict.image("missing.jpg").is_ok());
        let relaxed = ImageRoot::new(&root, true);
        assert_eq!(relaxed.image("out.jpg").unwrap(), root.join("out.jpg"));
        // lexical escapes stay errors either way
        assert!(relaxed.image("../secret.jpg").is_err());
    }
}
