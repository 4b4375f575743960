//! The landing directory: which files are candidates, when a file is complete, what its content
//! identity is, and where it goes when done (`processed/` or `rejected/` with a reason beside it).
//! Owns every file-system move; never parses CSV and never talks to a database. Nothing is deleted.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

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
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Renamed => "renamed",
            Admission::Settled => "settled",
        }
    }
}

/// The landing directory and its two archive folders.
#[derive(Debug, Clone)]
pub struct LandingDir {
    pub root: PathBuf,
}

impl LandingDir {
    /// Opens `root`, creating it and its archive folders if missing.
    pub fn open(root: &Path) -> io::Result<LandingDir> {
        fs::create_dir_all(root.join(PROCESSED))?;
        fs::create_dir_all(root.join(REJECTED))?;
        Ok(LandingDir {
            root: root.to_path_buf(),
        })
    }

    /// True for a path directly in the landing directory whose name marks a finished file.
    pub fn is_candidate(&self, path: &Path) -> bool {
        path.parent() == Some(self.root.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_candidate_name)
    }

    /// Candidate files now in the directory, oldest name first.
    pub fn scan(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_file() && self.is_candidate(&path) {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Moves a finished file to `processed/`; returns where it went.
    pub fn archive_processed(&self, path: &Path) -> io::Result<PathBuf> {
        move_into(path, &self.root.join(PROCESSED))
    }

    /// Moves a file to `rejected/` and writes `<name>.error.txt` beside it saying why.
    pub fn archive_rejected(&self, path: &Path, reason: &str) -> io::Result<PathBuf> {
        let target = move_into(path, &self.root.join(REJECTED))?;
        let mut note = target.clone().into_os_string();
        note.push(".error.txt");
        fs::write(&note, format!("{reason}\n"))?;
        Ok(target)
    }

    /// Writes the rejected rows of a partly loaded file as `rejected/<name>.rejected.csv`.
    pub fn write_rejected_rows(&self, file_name: &str, csv: &str) -> io::Result<PathBuf> {
        let path = self
            .root
            .join(REJECTED)
            .join(format!("{file_name}.rejected.csv"));
        fs::write(&path, csv)?;
        Ok(path)
    }
}

pub fn is_candidate_name(name: &str) -> bool {
    !name.starts_with('.') && !TEMPORARY_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// When a file not known to be renamed in may be read: `None` if now, or how long to wait.
/// A file counts as complete once nothing has written to it for `settle`.
pub fn settle_wait(path: &Path, settle: Duration) -> io::Result<Option<Duration>> {
    let modified = fs::metadata(path)?.modified()?;
    let quiet_for = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    Ok(settle.checked_sub(quiet_for).filter(|d| !d.is_zero()))
}

/// Content identity of a file: lowercase hex sha256. Paired with the size in the ledger.
pub fn fingerprint(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Renames `path` into `dir`, adding `.1`, `.2`, … before the extension if the name is taken.
fn move_into(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut target = dir.join(name);
    let mut n = 1;
    while target.exists() {
        let stem = Path::new(name)
            .file_stem()
            .unwrap_or(name)
            .to_string_lossy();
        let ext = Path::new(name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        target = dir.join(format!("{stem}.{n}{ext}"));
        n += 1;
    }
    fs::rename(path, &target)?;
    Ok(target)
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
    fn archive_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let landing = LandingDir::open(dir.path()).unwrap();
        for _ in 0..2 {
            fs::write(dir.path().join("a.csv"), "x").unwrap();
            landing
                .archive_processed(&dir.path().join("a.csv"))
                .unwrap();
        }
        assert!(dir.path().join("processed/a.csv").exists());
        assert!(dir.path().join("processed/a.1.csv").exists());
    }
}
