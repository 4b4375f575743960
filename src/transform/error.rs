//! Whole-file problems: a file that breaks one is rejected as a whole and nothing of it loads.
//! Each names the line (and byte offset where it helps) and what to do about it.

use super::compression::CorruptArchive;
use super::profile::Miss;

/// Problems with a file as a whole; the file is rejected and nothing of it is loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty (no header, no rows)")]
    Empty,
    #[error("the file has a header but no rows")]
    HeaderOnly,
    #[error(
        "the file is not UTF-8 text: invalid byte at line {line}, byte offset {offset}; \
         save it as UTF-8 (in Excel: \"CSV UTF-8\")"
    )]
    NotUtf8 { line: u64, offset: u64 },
    #[error("the file holds binary data (a NUL byte at line {line}), not CSV text")]
    Binary { line: u64 },
    #[error(
        "line {line} is longer than the limit of {limit} bytes (--max-line-bytes); \
         is this really a CSV file?"
    )]
    LineTooLong { line: u64, limit: usize },
    #[error(
        "the first line is not the header of any source profile (a file needs a header line \
         naming its columns); profiles tried: {}",
        .misses.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NoProfile { misses: Vec<Miss> },
    #[error(
        "the header fits source profiles {} equally well; make one of them name more of \
         the file's columns",
        .names.join(" and ")
    )]
    AmbiguousProfile { names: Vec<String> },
    #[error(
        "the header is of the {stream} contract (README) but lacks its required column(s) {}",
        .missing.join(", ")
    )]
    MissingColumns {
        stream: &'static str,
        missing: Vec<String>,
    },
    #[error("the header names column {0:?} twice")]
    DuplicateColumn(String),
    /// A `.gz` or `.zst` file whose decoder gave up part-way (cut short, damaged bytes).
    #[error(transparent)]
    Corrupt(CorruptArchive),
    /// A file read whole (a transactions or inventory file) whose text is over the limit.
    #[error(
        "the file's text is larger than {limit} bytes (--max-file-bytes) once decompressed; a \
         transactions or inventory file is read whole: split it"
    )]
    TooLargeToReadWhole { limit: u64 },
    #[error("cannot read the file: {0}")]
    Io(std::io::Error),
    #[error("the CSV cannot be parsed near line {line}: {message}")]
    Parse { line: u64, message: String },
}

impl From<std::io::Error> for FileError {
    /// A damaged archive travels through `Read` as an I/O error; it is named for what it is.
    fn from(e: std::io::Error) -> Self {
        if !e.get_ref().is_some_and(|i| i.is::<CorruptArchive>()) {
            return FileError::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|i| i.downcast::<CorruptArchive>()) {
            Some(Ok(corrupt)) => FileError::Corrupt(*corrupt),
            Some(Err(other)) => FileError::Io(std::io::Error::new(kind, other)),
            None => FileError::Io(kind.into()),
        }
    }
}
