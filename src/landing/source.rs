//! The landing source the watch loop reads from: a local directory or a bucket. Each landing
//! path is a file's path or an object's key (`PREFIX/x.csv`), and every question the loop
//! asks about it (is it there, complete, what is it, move it) is answered here by the one or
//! the other. Owns the choice of source; the answers are [`LandingDir`]'s and [`Bucket`]'s.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::bucket::{self, Bucket};
use super::{identify, ArchiveError, Identity, IdentityError, LandingDir, Readiness, RejectsFile};

/// Where landing files come from.
#[derive(Debug, Clone)]
pub enum Landing {
    Dir(LandingDir),
    Bucket(Bucket),
}

/// True when `location` (`--landing-dir`) names a bucket (`s3://BUCKET/PREFIX`).
pub fn is_bucket_url(location: &Path) -> bool {
    location
        .to_str()
        .is_some_and(|l| l.starts_with(bucket::SCHEME))
}

impl Landing {
    /// Opens the directory (creating it and its archive folders) or the bucket client.
    ///
    /// # Errors
    /// The directory cannot be made; the bucket URL or the `AWS_*` settings are refused.
    pub fn open(location: &Path, marker_suffix: Option<String>) -> io::Result<Landing> {
        match location.to_str() {
            Some(url) if is_bucket_url(location) => {
                Ok(Landing::Bucket(Bucket::open(url, marker_suffix)?))
            }
            _ => Ok(Landing::Dir(LandingDir::open(location, marker_suffix)?)),
        }
    }

    /// The directory or the `s3://` URL, as the log shows it.
    pub fn describe(&self) -> String {
        match self {
            Landing::Dir(dir) => dir.root.display().to_string(),
            Landing::Bucket(bucket) => bucket.url(),
        }
    }

    /// The local directory, which alone has file-system events to watch.
    pub fn local(&self) -> Option<&LandingDir> {
        match self {
            Landing::Dir(dir) => Some(dir),
            Landing::Bucket(_) => None,
        }
    }

    /// Candidates now in the landing, by path or key.
    ///
    /// # Errors
    /// The directory cannot be read, or the bucket listed.
    pub async fn scan(&self) -> io::Result<Vec<PathBuf>> {
        match self {
            Landing::Dir(dir) => dir.scan(),
            Landing::Bucket(bucket) => bucket.scan().await,
        }
    }

    /// Whether `path` may be read now (`settle`: the quiet time of a file in a directory).
    pub async fn readiness(&self, path: &Path, settle: Duration) -> Readiness {
        match self {
            Landing::Dir(dir) => dir.readiness(path, settle),
            Landing::Bucket(bucket) => bucket.readiness(path).await,
        }
    }

    /// Its identity by content, read in bounded blocks. An object is fetched once here and kept
    /// on local disk for [`Landing::reader`] until [`Landing::done_with`].
    ///
    /// # Errors
    /// As [`identify`]; `Io` of kind `NotFound` once it is gone.
    pub async fn identify(&self, path: &Path, max_bytes: u64) -> Result<Identity, IdentityError> {
        match self {
            Landing::Dir(_) => {
                let owned = path.to_path_buf();
                tokio::task::spawn_blocking(move || identify(&owned, max_bytes))
                    .await
                    .map_err(|e| IdentityError::Io(io::Error::other(e)))?
            }
            Landing::Bucket(bucket) => bucket.identify(path, max_bytes).await,
        }
    }

    /// A blocking reader of its bytes, for the reader thread (never on the runtime's workers).
    ///
    /// # Errors
    /// It cannot be opened.
    pub fn reader(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Landing::Dir(_) => Ok(Box::new(std::fs::File::open(path)?)),
            Landing::Bucket(bucket) => bucket.reader(path),
        }
    }

    /// The watcher is done with `path` for now: an object's spooled copy is dropped.
    pub fn done_with(&self, path: &Path) {
        if let Landing::Bucket(bucket) = self {
            bucket.done_with(path);
        }
    }

    /// True when nobody wrote to it since it was identified.
    pub async fn unchanged_since(&self, path: &Path, identity: &Identity) -> bool {
        match self {
            Landing::Dir(_) => super::unchanged_since(path, identity),
            Landing::Bucket(bucket) => bucket.unchanged_since(path, identity).await,
        }
    }

    /// Its size and modification time, if it is there.
    pub async fn stat(&self, path: &Path) -> Option<(u64, Option<SystemTime>)> {
        match self {
            Landing::Dir(_) => std::fs::symlink_metadata(path)
                .ok()
                .map(|m| (m.len(), m.modified().ok())),
            Landing::Bucket(bucket) => bucket.stat(path).await,
        }
    }

    /// Moves it (and its marker) to `processed/`.
    ///
    /// # Errors
    /// `NotFound` when it is gone; other errors leave it in place.
    pub async fn archive_processed(&self, path: &Path) -> io::Result<PathBuf> {
        match self {
            Landing::Dir(dir) => dir.archive_processed(path),
            Landing::Bucket(bucket) => bucket.archive_processed(path).await,
        }
    }

    /// Moves it (and its marker) to `rejected/` with `<name>.error.txt` beside it.
    pub async fn archive_rejected(
        &self,
        path: &Path,
        reason: &str,
    ) -> Result<PathBuf, ArchiveError> {
        match self {
            Landing::Dir(dir) => dir.archive_rejected(path, reason),
            Landing::Bucket(bucket) => bucket.archive_rejected(path, reason).await,
        }
    }

    /// The writer of the file's `<name>.rejected.csv`.
    pub fn rejects_file(&self, file_name: &str, header: &str, delimiter: u8) -> RejectsFile {
        match self {
            Landing::Dir(dir) => dir.rejects_file(file_name, header, delimiter),
            Landing::Bucket(bucket) => bucket.rejects_file(file_name, header, delimiter),
        }
    }

    /// Puts the rejects file in `rejected/` if any row was written; returns where it is.
    ///
    /// # Errors
    /// It could not be written or uploaded; nothing is left behind.
    pub async fn place_rejects(&self, rejects: RejectsFile) -> io::Result<Option<PathBuf>> {
        match self {
            Landing::Dir(_) => rejects.finish(),
            Landing::Bucket(bucket) => bucket.place_rejects(rejects).await,
        }
    }
}
