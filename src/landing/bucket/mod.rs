//! A bucket as the landing: `s3://BUCKET/PREFIX`, spoken to over the S3 protocol with the
//! endpoint and credentials of the standard `AWS_*` variables. [`list`] discovers objects,
//! [`spool`] fetches one once (hashing it on the way), [`read`] streams it from that copy (or
//! in ranges), [`archive`] moves it (copy, then delete) to
//! `PREFIX/processed/` or `PREFIX/rejected/`. An object is named by its key, held as a path
//! (`PREFIX/x.csv`), so the watch loop handles it as it handles a file. Never parses CSV.

mod archive;
mod list;
mod read;
mod spool;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;

use super::Orphans;

pub use read::RangeReader;
pub use spool::SpoolReader;

/// The URL scheme of a bucket landing.
pub const SCHEME: &str = "s3://";

/// A bucket and prefix holding landing objects, and the listing cursor of one worker.
#[derive(Debug)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    bucket: String,
    /// The prefix without its trailing `/`; empty for the whole bucket.
    prefix: String,
    marker_suffix: Option<String>,
    /// Where `<name>.rejected.csv` is written before it is uploaded beside the object.
    staging: PathBuf,
    cursor: Mutex<list::Cursor>,
    /// Objects fetched once when identified, read again from local disk by the parse.
    spools: spool::Spools,
    /// Markers listed without their data object, said once.
    orphans: Orphans,
}

impl Clone for Bucket {
    /// A clone lists on its own: each worker keeps its own cursor, as each scans a directory.
    /// The spooled objects are shared: the reader thread of a load reads what its worker fetched.
    fn clone(&self) -> Self {
        Bucket {
            store: self.store.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            marker_suffix: self.marker_suffix.clone(),
            staging: self.staging.clone(),
            cursor: Mutex::default(),
            spools: self.spools.clone(),
            orphans: self.orphans.clone(),
        }
    }
}

/// `s3://BUCKET/PREFIX` split into bucket and prefix (without slashes at either end).
///
/// # Errors
/// A message when there is no bucket name.
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| format!("{url:?} does not start with {SCHEME}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("{url:?} names no bucket (s3://BUCKET/PREFIX)"));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl Bucket {
    /// Builds the client from `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION` and `AWS_ALLOW_HTTP`. Does no request: an unreachable server shows at the
    /// first listing, and is retried there.
    ///
    /// # Errors
    /// A malformed URL or settings the client refuses; the staging folder cannot be made.
    pub fn open(url: &str, marker_suffix: Option<String>) -> io::Result<Bucket> {
        let (bucket, prefix) = parse_url(url).map_err(io::Error::other)?;
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .map_err(io::Error::other)?;
        let staging =
            std::env::temp_dir().join(format!("shopstream-bucket-rejects-{}", std::process::id()));
        std::fs::create_dir_all(&staging)?;
        Ok(Bucket {
            store: Arc::new(store),
            bucket,
            prefix,
            marker_suffix,
            staging,
            cursor: Mutex::default(),
            spools: spool::Spools::default(),
            orphans: Orphans::default(),
        })
    }

    /// `s3://BUCKET/PREFIX`, as the log shows it.
    pub fn url(&self) -> String {
        format!("{SCHEME}{}/{}", self.bucket, self.prefix)
    }

    /// The key of `name` in the folder `folder` (`processed`, `rejected`) under the prefix,
    /// or directly under the prefix when `folder` is empty.
    fn key_in(&self, folder: &str, name: &str) -> String {
        [self.prefix.as_str(), folder, name]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The marker key of `path` in marker mode.
    fn marker(&self, path: &Path) -> Option<PathBuf> {
        let suffix = self.marker_suffix.as_deref()?;
        let mut marker = path.as_os_str().to_owned();
        marker.push(suffix);
        Some(PathBuf::from(marker))
    }
}

/// The object key a landing path stands for.
fn key(path: &Path) -> io::Result<Key> {
    let text = path
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "key is not UTF-8"))?;
    Key::parse(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// An object-store error as the I/O error the landing's callers already handle: a missing
/// object is `NotFound` (another watcher moved it), anything else is other.
fn io_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_into_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://shop/in/drops/").unwrap(),
            ("shop".into(), "in/drops".into())
        );
        assert_eq!(parse_url("s3://shop").unwrap(), ("shop".into(), "".into()));
        assert!(parse_url("s3:///x")
            .unwrap_err()
            .contains("names no bucket"));
        assert!(parse_url("/data/landing").is_err());
    }
}
