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
    /// Its marker file (`<name><marker suffix>`) exists.
    Marker,
}

impl Admission {
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Renamed => "renamed",
            Admission::Settled => "settled",
            Admission::Marker => "marker",
        }
    }
}

/// The landing directory and its two archive folders.
#[derive(Debug, Clone)]
pub struct LandingDir {
    pub root: PathBuf,
    /// Marker mode: `x.csv` is complete once `x.csv<suffix>` exists.
    marker_suffix: Option<String>,
}

impl LandingDir {
    /// Opens `root`, creating it and its archive folders if missing.
    pub fn open(root: &Path, marker_suffix: Option<String>) -> io::Result<LandingDir> {
        fs::create_dir_all(root.join(PROCESSED))?;
        fs::create_dir_all(root.join(REJECTED))?;
        Ok(LandingDir {
            root: root.to_path_buf(),
            marker_suffix,
        })
    }

    /// True for a path directly in the landing directory whose name marks a finished file
    /// (not a temporary name, not a marker, not one of the archive folders).
    pub fn is_candidate(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
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
        for entry in fs::read_dir(&self.root)? {
            let path = entry?.path();
            if self.is_candidate(&path) {
                found.push(path);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Moves a finished file (and its marker) to `processed/`; returns where it went.
    pub fn archive_processed(&self, path: &Path) -> io::Result<PathBuf> {
        self.archive(path, PROCESSED)
    }

    /// Moves a file (and its marker) to `rejected/` and writes `<name>.error.txt` beside it.
    pub fn archive_rejected(&self, path: &Path, reason: &str) -> io::Result<PathBuf> {
        let target = self.archive(path, REJECTED)?;
        let mut note = target.clone().into_os_string();
        note.push(".error.txt");
        fs::write(&note, format!("{reason}\n"))?;
        Ok(target)
    }

    /// The writer of `rejected/<name>.rejected.csv`: the file's header plus `line,reason`.
    pub fn rejects_file(&self, file_name: &str, header: &str, delimiter: u8) -> RejectsFile {
        let dir = self.root.join(REJECTED);
        let d = delimiter as char;
        RejectsFile {
            tmp: dir.join(format!(".{file_name}.rejected.csv.tmp")),
            target: dir.join(format!("{file_name}.rejected.csv")),
            out: None,
            header: format!("{header}{d}line{d}reason\n"),
        }
    }
}

pub fn is_candidate_name(name: &str) -> bool {
    !name.starts_with('.') && !TEMPORARY_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// When a file not known to be renamed in may be read: `None` if now, or how long to wait.
/// A file counts as complete once nothing has written to it for `settle`.
/// A symlink is judged by the link itself (never followed), so a dangling one is still rejected.
pub fn settle_wait(path: &Path, settle: Duration) -> io::Result<Option<Duration>> {
    let modified = fs::symlink_metadata(path)?.modified()?;
    let quiet_for = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    Ok(settle.checked_sub(quiet_for).filter(|d| !d.is_zero()))
}

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

/// True when the file still has the size and mtime it had when identified: nobody wrote to it.
pub fn unchanged_since(path: &Path, identity: &Identity) -> bool {
    fs::metadata(path)
        .and_then(|m| Ok(m.len() == identity.size && m.modified()? == identity.modified))
        .unwrap_or(false)
}

/// `rejected/<file>.rejected.csv`, written under a temporary name and renamed into place by
/// `finish`, so a load rolled back by a crash leaves no half-written reject file behind.
pub struct RejectsFile {
    tmp: PathBuf,
    target: PathBuf,
    out: Option<io::BufWriter<fs::File>>,
    header: String,
}

impl RejectsFile {
    /// Appends CSV text; the file (with `header`) is created on the first call.
    pub fn append(&mut self, text: &str) -> io::Result<()> {
        use io::Write;
        if text.is_empty() {
            return Ok(());
        }
        if self.out.is_none() {
            let mut out = io::BufWriter::new(fs::File::create(&self.tmp)?);
            out.write_all(self.header.as_bytes())?;
            self.out = Some(out);
        }
        match &mut self.out {
            Some(out) => out.write_all(text.as_bytes()),
            None => Ok(()),
        }
    }

    /// Puts the file in place if any row was written; returns its path.
    pub fn finish(self) -> io::Result<Option<PathBuf>> {
        let Some(out) = self.out else { return Ok(None) };
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&self.tmp, &self.target)?;
        Ok(Some(self.target))
    }
}

impl LandingDir {
    fn archive(&self, path: &Path, folder: &str) -> io::Result<PathBuf> {
        let dir = self.root.join(folder);
        let target = move_into(path, &dir)?;
        if let Some(marker) = self.marker(path) {
            if fs::symlink_metadata(&marker).is_ok() {
                move_into(&marker, &dir)?;
            }
        }
        Ok(target)
    }
}

/// Renames `path` into `dir`, adding `.1`, `.2`, … before the extension if the name is taken.
fn move_into(path: &Path, dir: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut target = dir.join(name);
    let mut n = 1;
    while fs::symlink_metadata(&target).is_ok() {
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
        let landing = LandingDir::open(dir.path(), None).unwrap();
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
