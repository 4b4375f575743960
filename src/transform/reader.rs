//! The chunked reader: the bytes of one file, header first, then whole records in chunks of
//! about `CHUNK_BYTES`, each turned into a `Batch` by [`super::chunk`]. Owns buffering and
//! line accounting; never decides whether a row is good.

use std::io::Read;

use super::chunk::transform_chunk;
use super::header::{parse_header, Header};
use super::records::RecordSplitter;
use super::text::check_text;
use super::{Batch, FileError, Limits, Profiles, CHUNK_BYTES};

/// Reads one file chunk by chunk. Construct with [`FileReader::open`], then call
/// [`FileReader::next_batch`] until it returns `None`.
pub struct FileReader<R> {
    source: R,
    limits: Limits,
    header: Header,
    splitter: RecordSplitter,
    /// Bytes read but not yet split into records (an unfinished record).
    pending: Vec<u8>,
    /// File offset of `pending[0]`, for error messages.
    offset: u64,
    at_eof: bool,
    rows_seen: u64,
    /// Bytes read ahead per chunk; `CHUNK_BYTES` unless a test shrinks it.
    chunk_bytes: usize,
}

impl<R: Read> FileReader<R> {
    /// [`FileReader::open_with`] the built-in source profiles.
    ///
    /// # Errors
    /// As [`FileReader::open_with`].
    pub fn open(source: R, limits: Limits) -> Result<FileReader<R>, FileError> {
        FileReader::open_with(source, limits, &Profiles::default())
    }

    /// Reads up to and including the header and chooses the source profile that fits it.
    ///
    /// # Errors
    /// `Empty`, `NoProfile`, `AmbiguousProfile`, `DuplicateColumn`, `NotUtf8`, `Binary`,
    /// `LineTooLong` or `Io`.
    pub fn open_with(
        mut source: R,
        limits: Limits,
        profiles: &Profiles,
    ) -> Result<FileReader<R>, FileError> {
        let mut pending = Vec::new();
        let mut at_eof = false;
        let mut found = Vec::new();
        let mut bom = 0;
        loop {
            at_eof = at_eof || fill(&mut source, &mut pending, 64 << 10)?;
            if bom == 0 && pending.starts_with(b"\xEF\xBB\xBF") {
                // A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the header.
                pending.drain(..3);
                bom = 3;
            }
            found.clear();
            // The header is the first record that is not blank.
            RecordSplitter::new(b',', 1).split(&pending, at_eof, &mut found);
            if let Some(first) = found.first().copied() {
                let header = parse_header(&pending, first, profiles)?;
                let rest = skip_line_ending(&pending, first.end);
                let lines_used = pending[..rest].iter().filter(|&&b| b == b'\n').count() as u64;
                pending.drain(..rest);
                return Ok(FileReader {
                    source,
                    limits,
                    splitter: RecordSplitter::new(header.delimiter, 1 + lines_used),
                    header,
                    pending,
                    offset: (bom + rest) as u64,
                    at_eof,
                    rows_seen: 0,
                    chunk_bytes: CHUNK_BYTES,
                });
            }
            if at_eof {
                return Err(FileError::Empty);
            }
            if pending.len() > limits.max_line_bytes {
                return Err(FileError::LineTooLong {
                    line: 1,
                    limit: limits.max_line_bytes,
                });
            }
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads ahead `bytes` at a time instead of `CHUNK_BYTES`: tests use tiny chunks to put
    /// chunk boundaries everywhere.
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// The next chunk of rows, or `None` after the last one.
    ///
    /// # Errors
    /// A `FileError` when the file turns out to be unusable as a whole (`HeaderOnly` when it has
    /// no rows at all); batches returned before stay valid, but the file should not be loaded.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, FileError> {
        let mut records = Vec::new();
        let used = loop {
            if !self.at_eof && self.pending.len() < self.chunk_bytes {
                self.at_eof = fill(&mut self.source, &mut self.pending, self.chunk_bytes)?;
            }
            records.clear();
            let used = self
                .splitter
                .split(&self.pending, self.at_eof, &mut records);
            if !records.is_empty() || self.at_eof {
                break used;
            }
            if self.pending.len() > self.limits.max_line_bytes {
                return Err(FileError::LineTooLong {
                    line: self.splitter.next_line(),
                    limit: self.limits.max_line_bytes,
                });
            }
            // One record longer than a chunk: read on until it ends.
            self.at_eof = fill(&mut self.source, &mut self.pending, self.chunk_bytes)?;
        };
        if records.is_empty() {
            return if self.rows_seen == 0 {
                Err(FileError::HeaderOnly)
            } else {
                Ok(None)
            };
        }
        let chunk = &self.pending[..used];
        check_text(chunk, &records, self.offset)?;
        if let Some(r) = records
            .iter()
            .find(|r| r.end - r.start > self.limits.max_line_bytes)
        {
            return Err(FileError::LineTooLong {
                line: r.line,
                limit: self.limits.max_line_bytes,
            });
        }
        let batch = transform_chunk(&self.header, chunk, &records)?;
        self.rows_seen += batch.rows_total;
        self.pending.drain(..used);
        self.offset += used as u64;
        Ok(Some(batch))
    }
}

/// Reads until `buf` grew by `want` bytes or the source ended; returns true at end of file.
fn fill(source: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let target = buf.len() + want;
    let mut block = [0u8; 64 << 10];
    while buf.len() < target {
        match source.read(&mut block) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&block[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn skip_line_ending(bytes: &[u8], mut at: usize) -> usize {
    if bytes.get(at) == Some(&b'\r') {
        at += 1;
    }
    if bytes.get(at) == Some(&b'\n') {
        at += 1;
    }
    at
}
