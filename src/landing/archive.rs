//! Archive: where a file goes when its fate is committed (`processed/`, or `rejected/` with its
//! reason in `<name>.error.txt`) and the `<name>.rejected.csv` of its bad rows. Moves, never
//! deletes, never overwrites; a file it fails to write (a full disk) is removed rather than
//! left empty or half-written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{LandingDir, PROCESSED, REJECTED};

impl LandingDir {
    /// Moves a finished file (and its marker) to `processed/`; returns where it went.
    pub fn archive_processed(&self, path: &Path) -> io::Result<PathBuf> {
        self.archive(path, PROCESSED)
    }

    /// Moves a file (and its marker) to `rejected/` and writes `<name>.error.txt` beside it.
    /// The move comes first: it needs no space, so a full disk still gets the file out of the
    /// way, and the reason is in the ledger whatever happens to the note.
    pub fn archive_rejected(&self, path: &Path, reason: &str) -> Result<PathBuf, ArchiveError> {
        let target = self
            .archive(path, REJECTED)
            .map_err(ArchiveError::NotMoved)?;
        let mut note = target.clone().into_os_string();
        note.push(".error.txt");
        if let Err(source) = fs::write(&note, format!("{reason}\n")) {
            // An empty or cut note would pass for the whole reason.
            let _ = fs::remove_file(&note);
            return Err(ArchiveError::NoNote { target, source });
        }
        Ok(target)
    }

    /// The writer of `rejected/<name>.rejected.csv`: the file's header plus `line,reason`.
    pub fn rejects_file(&self, file_name: &str, header: &str, delimiter: u8) -> RejectsFile {
        RejectsFile::in_dir(&self.root.join(REJECTED), file_name, header, delimiter)
    }

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

/// Why a file could not be archived as asked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file is still in the landing directory (read-only file system, permissions, …).
    #[error("cannot move it out of the landing directory: {0}")]
    NotMoved(io::Error),
    /// The file was moved, but its `.error.txt` could not be written (a full disk, a name too
    /// long for the file system); the reason is only in the ledger.
    #[error("moved to {}, but cannot write its .error.txt beside it: {source}", target.display())]
    NoNote { target: PathBuf, source: io::Error },
}

impl From<io::Error> for ArchiveError {
    fn from(e: io::Error) -> Self {
        ArchiveError::NotMoved(e)
    }
}

/// `rejected/<file>.rejected.csv`, written under a temporary name and renamed into place by
/// `finish`, so a load rolled back by a crash leaves no half-written reject file behind.
pub struct RejectsFile {
    tmp: PathBuf,
    target: PathBuf,
    out: Option<io::BufWriter<fs::File>>,
    /// Given up after a failed write, or already placed.
    failed: bool,
    header: String,
}

impl RejectsFile {
    /// The writer of `dir/<file_name>.rejected.csv`.
    pub(super) fn in_dir(dir: &Path, file_name: &str, header: &str, delimiter: u8) -> RejectsFile {
        let d = delimiter as char;
        RejectsFile {
            tmp: dir.join(format!(".{file_name}.rejected.csv.tmp")),
            target: dir.join(format!("{file_name}.rejected.csv")),
            out: None,
            failed: false,
            header: format!("{header}{d}line{d}reason\n"),
        }
    }

    /// Appends CSV text; the file (with `header`) is created on the first call. After a failed
    /// write the file is given up (removed) and later calls write nothing: a rejects file with
    /// rows missing would look complete.
    pub fn append(&mut self, text: &str) -> io::Result<()> {
        if text.is_empty() || self.failed {
            return Ok(());
        }
        let written = self.write(text);
        if written.is_err() {
            self.give_up();
        }
        written
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        use io::Write;
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

    fn give_up(&mut self) {
        self.failed = true;
        self.out = None;
        let _ = fs::remove_file(&self.tmp);
    }

    /// Puts the file in place if any row was written; returns its path. On failure nothing is
    /// left behind, not even the temporary file.
    pub fn finish(mut self) -> io::Result<Option<PathBuf>> {
        let Some(out) = self.out.take() else {
            return Ok(None);
        };
        let placed = out
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .and_then(|()| fs::rename(&self.tmp, &self.target));
        match placed {
            Ok(()) => {
                self.failed = true; // placed: nothing for Drop to clean up
                Ok(Some(self.target.clone()))
            }
            Err(e) => {
                self.give_up();
                Err(e)
            }
        }
    }
}

impl Drop for RejectsFile {
    /// A load that ends without `finish` (rolled back, quarantined, failed) leaves no
    /// temporary file behind.
    fn drop(&mut self) {
        if self.out.is_some() {
            self.give_up();
        }
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

    /// Names this long fit the file system, but not with `.error.txt` or `.….rejected.csv.tmp`
    /// added (ENAMETOOLONG), as a full disk refuses them (ENOSPC).
    fn long_name() -> String {
        format!("{}.csv", "n".repeat(246))
    }

    #[test]
    fn a_rejected_file_whose_note_cannot_be_written_is_moved_and_no_empty_note_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let landing = LandingDir::open(dir.path(), None).unwrap();
        let path = dir.path().join(long_name());
        fs::write(&path, "").unwrap();
        let err = landing.archive_rejected(&path, "empty").unwrap_err();
        let ArchiveError::NoNote { target, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(target.exists() && !path.exists(), "{err}");
        assert!(
            err.to_string().contains("cannot write its .error.txt"),
            "{err}"
        );
        let left: Vec<_> = fs::read_dir(dir.path().join(REJECTED)).unwrap().collect();
        assert_eq!(left.len(), 1, "only the file itself: {left:?}");
    }

    #[test]
    fn a_rejects_file_that_cannot_be_written_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let landing = LandingDir::open(dir.path(), None).unwrap();
        let mut rejects = landing.rejects_file(&long_name(), "a,b", b',');
        assert!(rejects.append("1,2,3,bad\n").is_err());
        assert!(
            rejects.append("1,2,4,bad\n").is_ok(),
            "given up, not retried per chunk"
        );
        assert_eq!(rejects.finish().unwrap(), None);
        // A load that ends without `finish` removes what it started.
        let mut dropped = landing.rejects_file("b.csv", "a,b", b',');
        dropped.append("1,2,3,bad\n").unwrap();
        drop(dropped);
        assert_eq!(fs::read_dir(dir.path().join(REJECTED)).unwrap().count(), 0);
    }
}
