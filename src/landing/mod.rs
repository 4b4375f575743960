//! Landing: where files arrive and leave. This file discovers candidates in the landing
//! directory; [`settle`] says when one is complete, [`identity`] what it is by content,
//! [`claim`] which watcher reads it, and [`archive`] where it goes when done (`processed/`, or
//! `rejected/` with a reason beside it). [`bucket`] does the same for objects under an
//! `s3://` prefix, and [`source`] is the one of the two a run reads. Owns every move; never
//! parses CSV, and talks to Postgres only for claims. Nothing is deleted (an object is deleted
//! only once its copy is in `processed/` or `rejected/`).

mod archive;
pub mod bucket;
mod claim;
mod identity;
mod settle;
mod source;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use archive::{ArchiveError, RejectsFile};
pub use claim::{release_claim, try_claim};
pub use identity::{identify, Identity, IdentityError};
pub use settle::{settle_wait, unchanged_since, Readiness};
pub use source::{is_bucket_url, Landing};

pub const PROCESSED: &str = "processed";
pub const REJECTED: &str = "rejected";

/// Name endings of files that are still being written by some other program.
const TEMPORARY_SUFFIXES: [&str; 6] = [".tmp", ".part", ".partial", ".crdownload", ".swp", "~"];

/// Why a file was judged complete; recorded in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It was renamed into place (rename is atomic, so it was whole when it appeared).
    Renamed,
    /// Its size and mtime did not change for the settle interval.
    Settled,
    /// Its marker file (`<name><marker suffix>`) exists.
    Marker,
    /// An object listed in a bucket (a PUT is atomic: a listed object is whole).
    Listed,
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Renamed => "renamed",
            Admission::Settled => "settled",
            Admission::Marker => "marker",
            Admission::Listed => "listed",
        }
    }
}

/// The landing directory and its two archive folders.
#[derive(Debug, Clone)]
pub struct LandingDir {
    pub root: PathBuf,
    /// Marker mode: `x.csv` is complete once `x.csv<suffix>` exists.
    marker_suffix: Option<String>,
    future_mtimes: settle::FutureMtimes,
    orphans: Orphans,
}

/// Markers seen without their data file (or object), each said once; kept to those still
/// there, so bounded by the landing. Shared by a process's workers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Orphans(Arc<Mutex<HashSet<PathBuf>>>);

impl Orphans {
    /// Says once per marker (each mapped to the data path it stands for) that its data file is
    /// missing (a marker dropped without it, or with a name that does not match); the marker
    /// is left where it is. Markers no longer orphaned are forgotten.
    pub(crate) fn note(&self, orphans: HashMap<PathBuf, PathBuf>) {
        let mut said = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (marker, data) in &orphans {
            if said.contains(marker) {
                continue;
            }
            tracing::warn!(
                marker = %marker.display(),
                "A marker without its data file: {} does not exist, so nothing is read for it; \
                 the marker is left in place.",
                data.display()
            );
        }
        *said = orphans.into_keys().collect();
    }
}

/// Suffixes completion markers are commonly given. Without marker mode an empty `x.csv.done`
/// is a candidate like any file; it is rejected as a marker, not as an empty CSV file.
const MARKER_SUFFIXES: [&str; 5] = [".done", ".ok", ".ready", ".complete", ".marker"];

/// The marker suffix `name` ends with, if it is named like a completion marker (`x.csv.done`).
pub fn marker_suffix_of(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    MARKER_SUFFIXES
        .into_iter()
        .find(|s| lower.len() > s.len() && lower.ends_with(s))
}

impl LandingDir {
    /// Opens `root`, creating it and its archive folders if missing (and saying so). The root
    /// is made absolute once, here: notify reports absolute paths, and a relative root would
    /// match none of them.
    pub fn open(root: &Path, marker_suffix: Option<String>) -> io::Result<LandingDir> {
        if fs::symlink_metadata(root).is_err() {
            tracing::warn!(landing = %root.display(), "The landing directory did not exist; created it.");
        }
        fs::create_dir_all(root.join(PROCESSED))?;
        fs::create_dir_all(root.join(REJECTED))?;
        Ok(LandingDir {
            root: fs::canonicalize(root)?,
            marker_suffix,
            future_mtimes: settle::FutureMtimes::default(),
            orphans: Orphans::default(),
        })
    }

    /// True for a path directly in the landing directory whose name marks a finished file
    /// (not a temporary name, not a marker, not one of the archive folders).
    pub fn is_candidate(&self, path: &Path) -> bool {
        // A name that is not UTF-8 is a candidate too: it is rejected with a reason, not
        // left lying there unexplained.
        let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
            return false;
        };
        let name = name.as_ref();
        path.parent() == Some(self.root.as_path())
            && is_candidate_name(name)
            && name != PROCESSED
            && name != REJECTED
            && !self.marker_of(name)
    }

    fn marker_of(&self, name: &str) -> bool {
        self.marker_suffix
            .as_deref()
            .is_some_and(|suffix| name.ends_with(suffix))
    }

    /// The marker path of `path` in marker mode.
    pub fn marker(&self, path: &Path) -> Option<PathBuf> {
        let suffix = self.marker_suffix.as_deref()?;
        let mut marker = path.as_os_str().to_owned();
        marker.push(suffix);
        Some(PathBuf::from(marker))
    }

    /// The data file a marker stands for, when `path` is a marker.
    pub fn data_file_of_marker(&self, path: &Path) -> Option<PathBuf> {
        let suffix = self.marker_suffix.as_deref()?;
        let name = path.file_name()?.to_str()?;
        let data = name.strip_suffix(suffix).filter(|d| !d.is_empty())?;
        Some(path.with_file_name(data))
    }

    /// Candidate entries now in the directory, by name. Directories and symlinks are included
    /// so that they can be rejected with a reason instead of lying there unexplained.
    pub fn scan(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        let mut orphans = HashMap::new();
        for entry in fs::read_dir(&self.root)? {
            let path = entry?.path();
            if self.is_candidate(&path) {
                found.push(path);
            } else if let Some(data) = self.data_file_of_marker(&path) {
                if fs::symlink_metadata(&data).is_err() {
                    orphans.insert(path, data);
                }
            }
        }
        self.orphans.note(orphans);
        found.sort();
        Ok(found)
    }
}

/// A file name as the ledger and the log show it: UTF-8 as it is, any other byte as `\xNN`
/// (so two names that differ only in such bytes stay distinct).
pub fn escaped_name(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.file_name().unwrap_or_default().as_bytes();
    let mut name = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        name.push_str(chunk.valid());
        for b in chunk.invalid() {
            name.push_str(&format!("\\x{b:02X}"));
        }
    }
    name
}

pub fn is_candidate_name(name: &str) -> bool {
    !name.starts_with('.') && !TEMPORARY_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_not_candidates() {
        for name in [
            ".x.csv",
            "x.csv.tmp",
            "x.part",
            "x.partial",
            "x.crdownload",
            "x.swp",
        ] {
            assert!(!is_candidate_name(name), "{name}");
        }
        assert!(is_candidate_name("events-1.csv"));
    }

    #[test]
    fn a_name_that_is_not_utf8_is_a_candidate_shown_with_its_bytes_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let landing = LandingDir::open(dir.path(), None).unwrap();
        let path = landing
            .root
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.csv"));
        assert!(landing.is_candidate(&path));
        assert_eq!(escaped_name(&path), "caf\\xE9-\\xFF.csv");
        assert_eq!(escaped_name(&landing.root.join("ok.csv")), "ok.csv");
    }
}
