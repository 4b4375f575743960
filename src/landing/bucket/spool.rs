//! The spool: an object is fetched ONCE (one GET), hashed on the way and written to an unnamed
//! local file; the parse then reads that file instead of fetching the object again. Identity
//! must be known before the load begins (the ledger's content index serialises loads of the
//! same bytes at the first statement of their transaction, and a duplicate is skipped without
//! being parsed), so hashing cannot wait until the parse has read the last chunk. Owns the
//! spooled copies only; they live as long as the watcher holds the object's claim.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{io_error, key, Bucket};
use crate::landing::{Identity, IdentityError};

/// Spooled objects by key, shared by a process's workers: each object is spooled by the worker
/// that holds its claim, so no two write or drop the same entry.
pub(super) type Spools = Arc<Mutex<HashMap<PathBuf, Spooled>>>;

/// One object's bytes on local disk (an unlinked file: nothing is left behind, even by a kill).
#[derive(Debug)]
pub(super) struct Spooled {
    file: Arc<File>,
    size: u64,
}

/// Numbers the spool files of this process (their names live only for a moment).
static NEXT: AtomicU64 = AtomicU64::new(0);

impl Bucket {
    /// Fetches the object at `path` once, hashing it while it is written to the spool.
    ///
    /// # Errors
    /// `TooLarge` past `max_bytes` (nothing fetched beyond the response head); `Io` when it
    /// cannot be read (`NotFound` once it is gone) or the spool cannot be written.
    pub async fn identify(&self, path: &Path, max_bytes: u64) -> Result<Identity, IdentityError> {
        let location = key(path)?;
        let got = self.store.get(&location).await.map_err(io_error)?;
        let meta = got.meta.clone();
        if meta.size > max_bytes {
            return Err(IdentityError::TooLarge {
                size: meta.size,
                limit: max_bytes,
            });
        }
        let std_file = unnamed_file(&self.staging)?;
        let mut file = tokio::fs::File::from_std(std_file.try_clone()?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = got.into_stream();
        while let Some(block) = body.next().await {
            let block = block.map_err(io_error)?;
            hasher.update(&block);
            file.write_all(&block).await?;
            size += block.len() as u64;
        }
        file.flush().await?;
        let spooled = Spooled {
            file: Arc::new(std_file),
            size,
        };
        self.spools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), spooled);
        Ok(Identity {
            size,
            sha256: hex::encode(hasher.finalize()),
            modified: meta.last_modified.into(),
        })
    }

    /// A reader of the spooled copy of `path`, if this process fetched it.
    pub(super) fn spooled(&self, path: &Path) -> Option<SpoolReader> {
        let spools = self.spools.lock().unwrap_or_else(|e| e.into_inner());
        spools.get(path).map(|s| SpoolReader {
            file: s.file.clone(),
            size: s.size,
            at: 0,
        })
    }

    /// Drops the spooled copy of `path` (its disk space is freed once no reader holds it).
    pub fn done_with(&self, path: &Path) {
        self.spools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }
}

/// A file in `dir` that has no name: created, then unlinked while open.
fn unnamed_file(dir: &Path) -> io::Result<File> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("spool-{n}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The bytes of one spooled object, read at its own offset (readers never share a position).
pub struct SpoolReader {
    file: Arc<File>,
    size: u64,
    at: u64,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size.saturating_sub(self.at);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spooled copy of the object is shorter than the object",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unnamed_file_leaves_nothing_and_two_readers_keep_their_own_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = unnamed_file(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        file.write_all_at(b"hello, spool", 0).unwrap();
        let file = Arc::new(file);
        let reader = |size| SpoolReader {
            file: file.clone(),
            size,
            at: 0,
        };
        let (mut a, mut b) = (reader(12), reader(12));
        let mut first = [0u8; 5];
        a.read_exact(&mut first).unwrap();
        let mut whole = String::new();
        b.read_to_string(&mut whole).unwrap();
        let mut rest = String::new();
        a.read_to_string(&mut rest).unwrap();
        assert_eq!(
            (&first, whole.as_str(), rest.as_str()),
            (b"hello", "hello, spool", ", spool")
        );
        let mut short = reader(20);
        let err = short.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
