//! Discovery in a bucket: one level of the prefix listed with the `/` delimiter (so
//! `processed/` and `rejected/` are one entry each, never listed object by object), and a
//! start-after cursor, so a rescan lists only the keys past the last one seen; every
//! `FULL_LISTING_EVERY` rescans the whole level is listed again for keys put below the cursor.
//! An object is complete once it is listed (a PUT is atomic); marker mode as in a directory.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::ObjectStoreExt;

use super::{io_error, key, Bucket};
use crate::landing::{is_candidate_name, Admission, Readiness};

/// Rescans that list past the cursor only, between two listings of the whole level.
const FULL_LISTING_EVERY: u32 = 10;

/// Keys asked for per list request (S3's own maximum).
const PAGE_KEYS: usize = 1000;

/// How long an object whose state could not be asked (the server unreachable) waits.
const UNREACHABLE_RECHECK: Duration = Duration::from_secs(2);

/// Where the next listing of one worker starts.
#[derive(Debug, Default)]
pub(super) struct Cursor {
    /// The greatest key listed so far.
    after: Option<String>,
    /// Listings from the cursor since the last full one.
    since_full: u32,
}

impl Bucket {
    /// Candidate objects directly under the prefix, by key: the first call and every
    /// `FULL_LISTING_EVERY`th lists the whole level, the others only past the last key seen.
    /// A marker listed in marker mode stands for its data object.
    ///
    /// # Errors
    /// The listing failed (server unreachable, bucket missing, credentials refused).
    pub async fn scan(&self) -> io::Result<Vec<PathBuf>> {
        let start_after = {
            let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
            if cursor.after.is_none() || cursor.since_full + 1 >= FULL_LISTING_EVERY {
                cursor.since_full = 0;
                None
            } else {
                cursor.since_full += 1;
                cursor.after.clone()
            }
        };
        let level = match self.prefix.as_str() {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        let mut found = Vec::new();
        let mut last = start_after.clone();
        let mut page_token = None;
        loop {
            let options = PaginatedListOptions {
                offset: start_after.clone(),
                delimiter: Some("/".into()),
                max_keys: Some(PAGE_KEYS),
                page_token: page_token.take(),
                ..PaginatedListOptions::default()
            };
            let page = self
                .store
                .list_paginated(Some(&level), options)
                .await
                .map_err(io_error)?;
            for meta in page.result.objects {
                let key = meta.location.as_ref();
                if last.as_deref().is_none_or(|l| key > l) {
                    last = Some(key.to_string());
                }
                let name = key.rsplit('/').next().unwrap_or_default();
                if let Some(data) = self.data_of_marker(name) {
                    found.push(self.key_in("", data));
                } else if is_candidate_name(name) {
                    found.push(key.to_string());
                }
            }
            match page.page_token {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        if last.is_some() {
            self.cursor.lock().unwrap_or_else(|e| e.into_inner()).after = last;
        }
        found.sort();
        found.dedup();
        Ok(found.into_iter().map(PathBuf::from).collect())
    }

    /// The data object's name a marker's name stands for, in marker mode.
    fn data_of_marker<'a>(&self, name: &'a str) -> Option<&'a str> {
        let suffix = self.marker_suffix.as_deref()?;
        name.strip_suffix(suffix).filter(|d| !d.is_empty())
    }

    /// Whether the object at `path` may be read now: listed is complete, unless marker mode
    /// waits for its marker; `Gone` once another watcher moved it.
    pub async fn readiness(&self, path: &Path) -> Readiness {
        if let Some(marker) = self.marker(path) {
            return match self.exists(&marker).await {
                Ok(true) => Readiness::Ready(Admission::Marker),
                Ok(false) => Readiness::AwaitingMarker,
                Err(_) => Readiness::SettlesIn(UNREACHABLE_RECHECK),
            };
        }
        match self.exists(path).await {
            Ok(true) => Readiness::Ready(Admission::Listed),
            Ok(false) => Readiness::Gone,
            Err(e) => {
                tracing::warn!(key = %path.display(), error = %e, "Cannot ask the bucket about the object; trying again.");
                Readiness::SettlesIn(UNREACHABLE_RECHECK)
            }
        }
    }

    pub(super) async fn exists(&self, path: &Path) -> io::Result<bool> {
        match self.store.head(&key(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error(e)),
        }
    }
}
