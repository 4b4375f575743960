//! Text checks of a chunk: UTF-8 throughout and no NUL bytes (binary files). The first problem
//! in the file is reported, whichever kind, however the file is chunked.

use super::records::Record;
use super::FileError;

/// Text checks of a chunk: UTF-8 throughout and no NUL bytes (binary files).
pub(super) fn check_text(chunk: &[u8], records: &[Record], offset: u64) -> Result<(), FileError> {
    // Every invalid byte is in a record (blank lines hold only spaces and delimiters).
    let first = records.first().map_or(0, |r| r.start);
    let line_at = |pos: usize| {
        let before = &chunk[first..pos.max(first)];
        records.first().map_or(1, |r| r.line)
            + before.iter().filter(|&&b| b == b'\n').count() as u64
    };
    // The first problem in the file is reported, whichever kind, however the file is chunked.
    let nul = chunk.iter().position(|&b| b == 0);
    let invalid = std::str::from_utf8(chunk).err().map(|e| e.valid_up_to());
    match (nul, invalid) {
        (Some(n), Some(i)) if i < n => Err(FileError::NotUtf8 {
            line: line_at(i),
            offset: offset + i as u64,
        }),
        (Some(n), _) => Err(FileError::Binary { line: line_at(n) }),
        (None, Some(i)) => Err(FileError::NotUtf8 {
            line: line_at(i),
            offset: offset + i as u64,
        }),
        (None, None) => Ok(()),
    }
}
