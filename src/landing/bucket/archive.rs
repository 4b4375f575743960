//! Archive in a bucket: an object whose fate is committed is copied to `PREFIX/processed/` or
//! `PREFIX/rejected/` (with `<name>.error.txt`, and `<name>.rejected.csv` uploaded beside it),
//! then deleted from the prefix. A watcher that died between copy and delete left a copy of the
//! same size in place: it is recognised, and only the delete is done. Never overwrites.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};

use super::{io_error, key, Bucket};
use crate::landing::{ArchiveError, RejectsFile, PROCESSED, REJECTED};

/// Part size of the upload of a large `.rejected.csv` (S3 wants at least 5 MiB per part).
const PART_BYTES: usize = 8 << 20;

impl Bucket {
    /// Moves a finished object (and its marker) to `processed/`; returns its new key.
    ///
    /// # Errors
    /// `NotFound` when it is gone (another watcher moved it); other errors leave it in place.
    pub async fn archive_processed(&self, path: &Path) -> io::Result<PathBuf> {
        self.archive(path, PROCESSED).await
    }

    /// Moves an object (and its marker) to `rejected/` and puts `<name>.error.txt` beside it.
    pub async fn archive_rejected(
        &self,
        path: &Path,
        reason: &str,
    ) -> Result<PathBuf, ArchiveError> {
        let target = self
            .archive(path, REJECTED)
            .await
            .map_err(ArchiveError::NotMoved)?;
        let mut note = target.clone().into_os_string();
        note.push(".error.txt");
        let note = PathBuf::from(note);
        let put = match key(&note) {
            Ok(location) => self
                .store
                .put(&location, PutPayload::from(format!("{reason}\n")))
                .await
                .map_err(io_error),
            Err(e) => Err(e),
        };
        match put {
            Ok(_) => Ok(target),
            Err(source) => Err(ArchiveError::NoNote { target, source }),
        }
    }

    /// The writer of `<name>.rejected.csv`, staged on local disk until [`Bucket::place_rejects`].
    pub fn rejects_file(&self, file_name: &str, header: &str, delimiter: u8) -> RejectsFile {
        RejectsFile::in_dir(&self.staging, file_name, header, delimiter)
    }

    /// Finishes the staged rejects file and uploads it to `rejected/`; returns its key.
    ///
    /// # Errors
    /// The staged file or its upload failed; the staged file is removed either way.
    pub async fn place_rejects(&self, rejects: RejectsFile) -> io::Result<Option<PathBuf>> {
        let Some(staged) = rejects.finish()? else {
            return Ok(None);
        };
        let name = staged
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = PathBuf::from(self.key_in(REJECTED, &name));
        let uploaded = self.upload(&staged, &target).await;
        let _ = std::fs::remove_file(&staged);
        uploaded.map(|()| Some(target))
    }

    async fn upload(&self, from: &Path, to: &Path) -> io::Result<()> {
        let location = key(to)?;
        let mut file = std::fs::File::open(from)?;
        let first = read_part(&mut file)?;
        if first.len() < PART_BYTES {
            self.store
                .put(&location, PutPayload::from(first))
                .await
                .map_err(io_error)?;
            return Ok(());
        }
        let mut upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(io_error)?;
        let mut part = first;
        while !part.is_empty() {
            if let Err(e) = upload.put_part(PutPayload::from(part)).await {
                let _ = upload.abort().await;
                return Err(io_error(e));
            }
            part = read_part(&mut file)?;
        }
        upload.complete().await.map_err(io_error)?;
        Ok(())
    }

    async fn archive(&self, path: &Path, folder: &str) -> io::Result<PathBuf> {
        let target = self.move_into(path, folder).await?;
        if let Some(marker) = self.marker(path) {
            if self.exists(&marker).await? {
                self.move_into(&marker, folder).await?;
            }
        }
        Ok(target)
    }

    /// Copies `path` into `folder` under its name (`.1`, `.2`, … before the extension when a
    /// different object has the name), then deletes it.
    async fn move_into(&self, path: &Path, folder: &str) -> io::Result<PathBuf> {
        let from = key(path)?;
        let source = self.store.head(&from).await.map_err(io_error)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut n = 0;
        let target = loop {
            let candidate = PathBuf::from(self.key_in(folder, &numbered(&name, n)));
            match self.store.head(&key(&candidate)?).await {
                Err(object_store::Error::NotFound { .. }) => {
                    self.store
                        .copy(&from, &key(&candidate)?)
                        .await
                        .map_err(io_error)?;
                    break candidate;
                }
                // The copy of a watcher that died before its delete.
                Ok(meta) if same_object(&meta, &source) => break candidate,
                Ok(_) => n += 1,
                Err(e) => return Err(io_error(e)),
            }
        };
        self.store.delete(&from).await.map_err(io_error)?;
        Ok(target)
    }
}

/// A copy of `source`: same size and, where the server gives both, the same entity tag.
fn same_object(copy: &object_store::ObjectMeta, source: &object_store::ObjectMeta) -> bool {
    copy.size == source.size
        && match (&copy.e_tag, &source.e_tag) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

/// `x.csv` numbered `n`: `x.1.csv`, `x.2.csv`; `x.csv` itself for 0 (as a directory archive).
fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{n}.{ext}"),
        _ => format!("{name}.{n}"),
    }
}

fn read_part(file: &mut std::fs::File) -> io::Result<Vec<u8>> {
    let mut part = Vec::with_capacity(PART_BYTES);
    file.by_ref()
        .take(PART_BYTES as u64)
        .read_to_end(&mut part)?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_before_the_extension() {
        assert_eq!(numbered("a.csv", 0), "a.csv");
        assert_eq!(numbered("a.csv", 2), "a.2.csv");
        assert_eq!(numbered("a.csv.gz", 1), "a.csv.1.gz");
        assert_eq!(numbered("noext", 1), "noext.1");
    }
}
