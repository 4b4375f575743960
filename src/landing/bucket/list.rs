//! Discovery in a bucket: one level of the prefix listed with the `/` delimiter (so
//! `processed/` and `rejected/` are one entry each, never listed object by object). While the
//! level fits in one page (`PAGE_KEYS`: done objects leave it, so it holds only what waits),
//! every rescan lists it whole: one request, the price of a cursor listing, and a key put
//! anywhere is found by the next rescan. A larger level is listed from a start-after cursor
//! (only the keys past the last one seen), and whole again every `FULL_LISTING_EVERY` rescans,
//! so a key put below the cursor waits at most that many. An object is complete once it is
//! listed (a PUT is atomic); marker mode as in a directory, orphan markers said once.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::ObjectStoreExt;

use super::{io_error, key, Bucket};
use crate::landing::{is_candidate_name, Admission, Readiness};

/// Rescans of a level larger than one page that list past the cursor only, between two
/// listings of the whole level: the longest a key put below the cursor waits, in rescans.
pub const FULL_LISTING_EVERY: u32 = 10;

/// Keys asked for per list request (S3's own maximum).
const PAGE_KEYS: usize = 1000;

/// How long an object whose state could not be asked (the server unreachable) waits.
const UNREACHABLE_RECHECK: Duration = Duration::from_secs(2);

/// Where the next listing of one worker starts.
#[derive(Debug, Default)]
pub(super) struct Cursor {
    /// The greatest key listed so far.
    after: Option<String>,
    /// Listings from the cursor since the last whole one.
    since_full: u32,
    /// The last whole listing took more than one page: only then is a cursor worth its wait.
    large: bool,
}

impl Cursor {
    /// Where the next listing starts: `None` for the whole level.
    fn next_start(&mut self) -> Option<String> {
        if self.after.is_none() || !self.large || self.since_full + 1 >= FULL_LISTING_EVERY {
            self.since_full = 0;
            None
        } else {
            self.since_full += 1;
            self.after.clone()
        }
    }
}

/// What one listing saw.
#[derive(Default)]
struct Listing {
    /// Candidate data keys.
    found: Vec<String>,
    /// Names of every object listed.
    names: HashSet<String>,
    /// Marker key → its data object's name, in marker mode.
    markers: Vec<(String, String)>,
    last: Option<String>,
    pages: usize,
}

impl Bucket {
    /// Candidate objects directly under the prefix, by key (see the module's doc for which
    /// keys a rescan lists). A marker listed in marker mode stands for its data object.
    ///
    /// # Errors
    /// The listing failed (server unreachable, bucket missing, credentials refused).
    pub async fn scan(&self) -> io::Result<Vec<PathBuf>> {
        let start_after = self
            .cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_start();
        let whole = start_after.is_none();
        let listing = self.list_level(start_after).await?;
        {
            let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
            if listing.last.is_some() {
                cursor.after = listing.last.clone();
            }
            if whole {
                cursor.large = listing.pages > 1;
            }
        }
        let mut found = listing.found;
        let mut orphans = HashMap::new();
        for (marker, data) in listing.markers {
            // A whole listing knows every object: a marker without its data is an orphan.
            if whole && !listing.names.contains(&data) {
                orphans.insert(PathBuf::from(marker), PathBuf::from(self.key_in("", &data)));
            } else {
                found.push(self.key_in("", &data));
            }
        }
        if whole {
            self.orphans.note(orphans);
            if let Some(suffix) = self.marker_suffix.as_deref() {
                // A data object waits for its marker, whose listing brings it back: nothing
                // is asked about it until then.
                found.retain(|k| {
                    let name = k.rsplit('/').next().unwrap_or_default();
                    listing.names.contains(&format!("{name}{suffix}"))
                });
            }
        }
        found.sort();
        found.dedup();
        Ok(found.into_iter().map(PathBuf::from).collect())
    }

    /// One listing of the prefix's level, from `start_after` (`None`: the whole level).
    async fn list_level(&self, start_after: Option<String>) -> io::Result<Listing> {
        let level = match self.prefix.as_str() {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        let mut listing = Listing {
            last: start_after.clone(),
            ..Listing::default()
        };
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
            listing.pages += 1;
            for meta in page.result.objects {
                let key = meta.location.as_ref();
                if listing.last.as_deref().is_none_or(|l| key > l) {
                    listing.last = Some(key.to_string());
                }
                let name = key.rsplit('/').next().unwrap_or_default();
                listing.names.insert(name.to_string());
                if let Some(data) = self.data_of_marker(name) {
                    listing.markers.push((key.to_string(), data.to_string()));
                } else if is_candidate_name(name) {
                    listing.found.push(key.to_string());
                }
            }
            match page.page_token {
                Some(token) => page_token = Some(token),
                None => return Ok(listing),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_of_one_page_is_listed_whole_every_time_a_larger_one_every_tenth_time() {
        let mut cursor = Cursor::default();
        assert_eq!(cursor.next_start(), None, "the first listing is whole");
        cursor.after = Some("p/m.csv".into());
        for _ in 0..25 {
            assert_eq!(cursor.next_start(), None, "one page: whole every time");
        }
        cursor.large = true;
        let starts: Vec<Option<String>> = (0..2 * FULL_LISTING_EVERY)
            .map(|_| cursor.next_start())
            .collect();
        let whole: Vec<usize> = (0..starts.len()).filter(|&i| starts[i].is_none()).collect();
        assert_eq!(whole, [9, 19], "{starts:?}");
        assert!(starts[..9].iter().all(|s| s.as_deref() == Some("p/m.csv")));
    }
}
