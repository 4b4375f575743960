//! Reading an object: a blocking reader of its spooled copy ([`super::spool`]: fetched once,
//! when it was identified) or, when this process holds none, one that fetches it in ranges of
//! `RANGE_BYTES`, so memory stays bounded whatever its size, as a file is read in chunks. Owns
//! no decision about the object.

use std::io::{self, Read};
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::ObjectStoreExt;

use super::{io_error, key, Bucket};
use crate::landing::Identity;

/// Bytes fetched per range request: the transform's chunk size, so one range feeds one chunk.
const RANGE_BYTES: u64 = crate::transform::CHUNK_BYTES as u64;

impl Bucket {
    /// True when the object still has the size and modification time it had when identified:
    /// nobody put another object under its key meanwhile.
    pub async fn unchanged_since(&self, path: &Path, identity: &Identity) -> bool {
        match self.stat(path).await {
            Some((size, modified)) => size == identity.size && modified == Some(identity.modified),
            None => false,
        }
    }

    /// The object's size and modification time, if it is there.
    pub async fn stat(&self, path: &Path) -> Option<(u64, Option<SystemTime>)> {
        let meta = self.store.head(&key(path).ok()?).await.ok()?;
        Some((meta.size, Some(meta.last_modified.into())))
    }

    /// A blocking reader of the object at `path`, for the reader thread: its spooled copy when
    /// it was identified here, else ranged requests.
    ///
    /// # Errors
    /// The key is not valid, or the object is not there.
    pub fn reader(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        if let Some(spooled) = self.spooled(path) {
            return Ok(Box::new(spooled));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let location = key(path)?;
        let size = runtime
            .block_on(self.store.head(&location))
            .map_err(io_error)?
            .size;
        Ok(Box::new(RangeReader {
            store: self.store.clone(),
            location,
            runtime,
            size,
            at: 0,
            block: Bytes::new(),
        }))
    }
}

/// The bytes of one object, fetched a range at a time. Must be used from a thread that may
/// block (the reader thread of `spawn_blocking`), never on the runtime's own workers.
pub struct RangeReader {
    store: std::sync::Arc<object_store::aws::AmazonS3>,
    location: Key,
    runtime: tokio::runtime::Handle,
    size: u64,
    /// Object offset of the end of `block`.
    at: u64,
    block: Bytes,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.block.is_empty() {
            if self.at >= self.size {
                return Ok(0);
            }
            let end = (self.at + RANGE_BYTES).min(self.size);
            self.block = self
                .runtime
                .block_on(self.store.get_range(&self.location, self.at..end))
                .map_err(io_error)?;
            if self.block.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the object became shorter while it was read",
                ));
            }
            self.at += self.block.len() as u64;
        }
        let n = buf.len().min(self.block.len());
        buf[..n].copy_from_slice(&self.block[..n]);
        let _ = self.block.split_to(n);
        Ok(n)
    }
}
