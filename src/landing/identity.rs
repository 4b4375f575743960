//! Identity: what a file is, by content (size and sha256), the key of exactly-once loading.
//! Hashing never follows a symlink and reads in bounded blocks.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// What a file is, by content: size and lowercase hex sha256, plus the mtime seen while hashing
/// (to notice a writer that was still at work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub size: u64,
    pub sha256: String,
    pub modified: SystemTime,
}

/// Why a path cannot be read as a landing file at all.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("it is a symbolic link; shopstream never follows links out of the landing directory")]
    Symlink,
    #[error("it is not a regular file (a directory, socket or device?)")]
    NotAFile,
    #[error("it is {size} bytes, larger than the limit of {limit} bytes (--max-file-bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("it cannot be read: {0}")]
    Io(#[from] io::Error),
}

/// Hashes the file at `path` without following a symlink, reading it in bounded blocks.
pub fn identify(path: &Path, max_bytes: u64) -> Result<Identity, IdentityError> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(IdentityError::Symlink);
    }
    if !meta.is_file() {
        return Err(IdentityError::NotAFile);
    }
    if meta.len() > max_bytes {
        return Err(IdentityError::TooLarge {
            size: meta.len(),
            limit: max_bytes,
        });
    }
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = io::Read::read(&mut file, &mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
        size += n as u64;
    }
    Ok(Identity {
        size,
        sha256: hex::encode(hasher.finalize()),
        modified: file.metadata()?.modified()?,
    })
}
