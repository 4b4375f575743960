//! Archive: where a file goes when its fate is committed (`processed/`, or `rejected/` with its
//! reason in `<name>.error.txt`) and the `<name>.rejected.csv` of its bad rows. Moves, never
//! deletes, never overwrites.

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
}
