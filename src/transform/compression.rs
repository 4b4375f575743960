//! Compressed files: `x.csv.gz` and `x.csv.zst` are read through a streaming decoder, so the
//! reader sees the CSV text (its line numbers are those of the decompressed text) in bounded
//! memory. Owns only the choice of decoder by name and the naming of a damaged archive; the
//! file's identity stays that of its compressed bytes (landing's business).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a landing file's bytes are stored, by its name's ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// By name: `.gz` is gzip, `.zst` is Zstandard (any case), anything else is plain text.
    pub fn of_name(name: &str) -> Compression {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".gz") {
            Compression::Gzip
        } else if lower.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn format(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip (.gz)",
            Compression::Zstd => "Zstandard (.zst)",
        }
    }
}

/// A damaged archive: where in the decompressed text the decoder gave up, and why.
#[derive(Debug, thiserror::Error)]
#[error(
    "the {format} archive is truncated or corrupt after {decompressed} bytes of decompressed \
     text: {message}; nothing of it was loaded. Compress the whole file again and drop it again"
)]
pub struct CorruptArchive {
    pub format: &'static str,
    pub decompressed: u64,
    pub message: String,
}

/// `source` as CSV text: decompressed on the fly when `compression` says so.
pub fn decompressed<R: Read + Send + 'static>(
    source: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send>> {
    if compression == Compression::None {
        return Ok(Box::new(source));
    }
    let source_failed = Arc::new(AtomicBool::new(false));
    let source = Watched {
        inner: source,
        failed: source_failed.clone(),
    };
    let inner: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(source),
        // Multi-member: `cat a.gz b.gz` is a valid gzip file of both texts, as gunzip reads it.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(source)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(source)
                .map_err(|e| corrupt(compression, 0, e.to_string()))?,
        ),
    };
    Ok(Box::new(Decoding {
        inner,
        compression,
        decompressed: 0,
        source_failed,
    }))
}

/// The compressed bytes' reader, noting when it failed itself (a disk, a network), so that
/// its error is not taken for a damaged archive.
struct Watched<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf);
        if read
            .as_ref()
            .is_err_and(|e| e.kind() != io::ErrorKind::Interrupted)
        {
            self.failed.store(true, Ordering::Relaxed);
        }
        read
    }
}

/// A decoder whose every failure other than its source's says the archive is damaged, and
/// where.
struct Decoding {
    inner: Box<dyn Read + Send>,
    compression: Compression,
    decompressed: u64,
    source_failed: Arc<AtomicBool>,
}

impl Read for Decoding {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.decompressed += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) if self.source_failed.load(Ordering::Relaxed) => Err(e),
            // Not the source's: the decoder found the stream damaged or cut short.
            Err(e) => {
                let message = match e.kind() {
                    io::ErrorKind::UnexpectedEof => format!("the archive ends early ({e})"),
                    _ => e.to_string(),
                };
                Err(corrupt(self.compression, self.decompressed, message))
            }
        }
    }
}

fn corrupt(compression: Compression, decompressed: u64, message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        CorruptArchive {
            format: compression.format(),
            decompressed,
            message,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"a,b\n1,2\n3,4\n";

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(bytes: Vec<u8>, c: Compression) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompressed(io::Cursor::new(bytes), c)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn compression_is_chosen_by_the_name_ending() {
        assert_eq!(Compression::of_name("x.csv.gz"), Compression::Gzip);
        assert_eq!(Compression::of_name("X.CSV.GZ"), Compression::Gzip);
        assert_eq!(Compression::of_name("x.csv.zst"), Compression::Zstd);
        assert_eq!(Compression::of_name("x.csv"), Compression::None);
        assert_eq!(Compression::of_name("gz.csv"), Compression::None);
    }

    #[test]
    fn gzip_and_zstd_decompress_to_the_text() {
        assert_eq!(read_all(gzip(TEXT), Compression::Gzip).unwrap(), TEXT);
        let zst = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(read_all(zst, Compression::Zstd).unwrap(), TEXT);
        let mut two = gzip(b"a,b\n");
        two.extend(gzip(b"1,2\n"));
        assert_eq!(read_all(two, Compression::Gzip).unwrap(), b"a,b\n1,2\n");
    }

    #[test]
    fn a_truncated_or_corrupt_archive_is_named_as_such() {
        let whole = gzip(&TEXT.repeat(1000));
        let cut = whole[..whole.len() / 2].to_vec();
        let mut flipped = whole.clone();
        flipped[whole.len() / 2] ^= 0xFF;
        let zst = zstd::encode_all(&TEXT.repeat(1000)[..], 3).unwrap();
        let zst_cut = zst[..zst.len() - 5].to_vec();
        for (bytes, c) in [
            (cut, Compression::Gzip),
            (flipped, Compression::Gzip),
            (b"not gzip at all".to_vec(), Compression::Gzip),
            (zst_cut, Compression::Zstd),
        ] {
            let e = read_all(bytes, c).unwrap_err();
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<CorruptArchive>());
            assert!(inner.is_some(), "{c:?}: {e:?}");
            assert!(e.to_string().contains("truncated or corrupt"), "{e}");
        }
    }
}
