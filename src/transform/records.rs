//! Record splitting: raw CSV bytes → whole records, each with its first line number, its byte
//! range and its field count. Quote-aware (a quoted field may hold commas, quotes and newlines),
//! so a chunk handed to Polars never ends inside a record. Knows nothing of the contract's columns.
//! Invariant: every byte of the input belongs to exactly one record, one skipped blank line, or
//! the unterminated tail kept for the next call.

/// One record: `bytes[start..end]` without its line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number of the record's first line in the file.
    pub line: u64,
    pub start: usize,
    pub end: usize,
    /// Fields found outside quotes (delimiters + 1).
    pub fields: usize,
    /// The record ended inside an open quote (only possible for the file's last record).
    pub open_quote: bool,
    /// A CR outside quotes not followed by LF: old Mac line ends, or a stray CR. Not taken as a
    /// line end (a CR alone ends no line in any CSV dialect Polars reads), so the row is rejected
    /// as such rather than as two rows merged into one with a puzzling field count.
    pub lone_cr: bool,
}

/// Splits records incrementally; feed it buffers, it reports complete records.
#[derive(Debug)]
pub struct RecordSplitter {
    delimiter: u8,
    /// Line number the next record starts on.
    next_line: u64,
}

impl RecordSplitter {
    pub fn new(delimiter: u8, first_line: u64) -> RecordSplitter {
        RecordSplitter {
            delimiter,
            next_line: first_line,
        }
    }

    /// Line number the next record will start on.
    pub fn next_line(&self) -> u64 {
        self.next_line
    }

    /// Appends the complete records of `bytes` to `out` and returns how many bytes they used; the
    /// rest is an unfinished record to be passed again with more bytes. With `at_eof`, the rest
    /// is the last record (without its newline) and is reported too. Blank records and records
    /// made only of delimiters and whitespace (Excel's trailing rows) are consumed silently.
    pub fn split(&mut self, bytes: &[u8], at_eof: bool, out: &mut Vec<Record>) -> usize {
        let mut start = 0;
        let mut line = self.next_line;
        let mut record_line = line;
        let mut in_quotes = false;
        let mut fields = 1;
        // Only quotes, newlines and delimiters change the state: memchr jumps between them
        // (a byte-by-byte loop was the watcher's busiest function).
        for i in memchr::memchr3_iter(b'"', b'\n', self.delimiter, bytes) {
            match bytes[i] {
                b'"' => in_quotes = !in_quotes,
                b'\n' => {
                    line += 1;
                    if !in_quotes {
                        let end = if i > start && bytes[i - 1] == b'\r' {
                            i - 1
                        } else {
                            i
                        };
                        self.push(bytes, record_line, start, end, fields, false, out);
                        start = i + 1;
                        record_line = line;
                        fields = 1;
                    }
                }
                _ => {
                    if !in_quotes {
                        fields += 1;
                    }
                }
            }
        }
        if at_eof && start < bytes.len() {
            self.push(
                bytes,
                record_line,
                start,
                bytes.len(),
                fields,
                in_quotes,
                out,
            );
            self.next_line = line;
            return bytes.len();
        }
        self.next_line = record_line;
        start
    }

    /// Reports `bytes[start..end]` as a record unless it is blank: only spaces, tabs, CRs and
    /// delimiters (Excel's trailing rows).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        bytes: &[u8],
        line: u64,
        start: usize,
        end: usize,
        fields: usize,
        open_quote: bool,
        out: &mut Vec<Record>,
    ) {
        let body = &bytes[start..end];
        let blank = body
            .iter()
            .all(|&b| matches!(b, b' ' | b'\t' | b'\r') || b == self.delimiter);
        if blank {
            return;
        }
        out.push(Record {
            line,
            start,
            end,
            fields,
            open_quote,
            lone_cr: memchr::memchr(b'\r', body).is_some() && has_lone_cr(bytes, start, end),
        });
    }
}

/// A CR outside quotes in `bytes[start..end]` (a record starts outside quotes) that a byte
/// other than LF follows. At the buffer's end the LF may come with the next one; at the file's
/// end a CR ends the last line.
fn has_lone_cr(bytes: &[u8], start: usize, end: usize) -> bool {
    let mut in_quotes = false;
    (start..end).any(|i| match bytes[i] {
        b'"' => {
            in_quotes = !in_quotes;
            false
        }
        b'\r' => !in_quotes && bytes.get(i + 1).is_some_and(|&next| next != b'\n'),
        _ => false,
    })
}

/// Splits one record into its fields (quotes removed, `""` unescaped, surrounding spaces trimmed).
/// Used for the header and for explaining rejected rows, never on the hot path.
pub fn fields(record: &str, delimiter: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            c if c == delimiter && !in_quotes => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(text: &str) -> Vec<(u64, String, usize)> {
        let mut out = Vec::new();
        let used = RecordSplitter::new(b',', 1).split(text.as_bytes(), true, &mut out);
        assert_eq!(used, text.len());
        out.iter()
            .map(|r| (r.line, text[r.start..r.end].to_string(), r.fields))
            .collect()
    }

    /// The byte-by-byte splitter `split` replaced: what it must equal.
    fn split_slowly(
        splitter: &mut RecordSplitter,
        bytes: &[u8],
        at_eof: bool,
        out: &mut Vec<Record>,
    ) -> usize {
        let mut start = 0;
        let mut line = splitter.next_line;
        let mut record_line = line;
        let mut in_quotes = false;
        let mut fields = 1;
        let mut blank = true;
        let mut lone_cr = false;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'"' => {
                    in_quotes = !in_quotes;
                    blank = false;
                }
                b'\n' => {
                    line += 1;
                    if !in_quotes {
                        let end = if i > start && bytes[i - 1] == b'\r' {
                            i - 1
                        } else {
                            i
                        };
                        if !blank {
                            out.push(Record {
                                line: record_line,
                                start,
                                end,
                                fields,
                                open_quote: false,
                                lone_cr,
                            });
                        }
                        start = i + 1;
                        record_line = line;
                        fields = 1;
                        blank = true;
                        lone_cr = false;
                    }
                }
                _ if b == splitter.delimiter => {
                    if !in_quotes {
                        fields += 1;
                    }
                }
                // At the buffer's end the LF may come with the next one; at the file's end a CR
                // ends the last line.
                b'\r' => {
                    if !in_quotes && bytes.get(i + 1).is_some_and(|&next| next != b'\n') {
                        lone_cr = true;
                    }
                }
                b' ' | b'\t' => {}
                _ => blank = false,
            }
        }
        if at_eof && start < bytes.len() {
            if !blank {
                out.push(Record {
                    line: record_line,
                    start,
                    end: bytes.len(),
                    fields,
                    open_quote: in_quotes,
                    lone_cr,
                });
            }
            splitter.next_line = line;
            return bytes.len();
        }
        splitter.next_line = record_line;
        start
    }

    /// `split` or `split_slowly`.
    type SplitFn = dyn Fn(&mut RecordSplitter, &[u8], bool, &mut Vec<Record>) -> usize;

    proptest::proptest! {
        #[test]
        fn memchr_splitting_equals_the_byte_by_byte_splitter(
            text in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'1', b' ', b'\t', b',', b';', b'"', b'\n', b'\r']),
                0..200,
            ),
            cut in 0usize..200,
            delimiter in proptest::sample::select(vec![b',', b';', b'\t']),
        ) {
            let cut = cut.min(text.len());
            let run = |split: &SplitFn| {
                let mut splitter = RecordSplitter::new(delimiter, 1);
                let mut out = Vec::new();
                let used = split(&mut splitter, &text[..cut], false, &mut out);
                let mut rest = text[used..cut].to_vec();
                rest.extend_from_slice(&text[cut..]);
                let mut tail = Vec::new();
                let used_tail = split(&mut splitter, &rest, true, &mut tail);
                (used, out, used_tail, tail, splitter.next_line())
            };
            let fast = run(&|s, b, eof, o| s.split(b, eof, o));
            let slow = run(&|s, b, eof, o| split_slowly(s, b, eof, o));
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn quoted_newlines_commas_and_crlf_stay_in_one_record() {
        let got = split_all("a,b\r\n\"x\ny\",\"1,2\"\r\n\n,,\n3,\"q\"\"\"\n");
        assert_eq!(
            got,
            vec![
                (1, "a,b".to_string(), 2),
                (2, "\"x\ny\",\"1,2\"".to_string(), 2),
                (6, "3,\"q\"\"\"".to_string(), 2),
            ]
        );
    }

    #[test]
    fn an_unfinished_record_waits_for_more_bytes_and_keeps_its_line() {
        let mut splitter = RecordSplitter::new(b',', 1);
        let mut out = Vec::new();
        let used = splitter.split(b"a,b\nc,\"d\n", false, &mut out);
        assert_eq!((used, out.len()), (4, 1));
        out.clear();
        let used = splitter.split(b"c,\"d\ne\"\nf", true, &mut out);
        assert_eq!(used, 9);
        assert_eq!(out[0].line, 2);
        assert_eq!((out[1].line, out[1].fields), (4, 1));
    }

    #[test]
    fn a_cut_off_last_record_is_reported_with_its_open_quote() {
        let mut out = Vec::new();
        RecordSplitter::new(b',', 1).split(b"a,b\n1,\"unfinished", true, &mut out);
        assert!(out[1].open_quote);
    }

    #[test]
    fn fields_unquote_and_trim() {
        assert_eq!(
            fields(" a , \"b,c\" ,\"d\"\"e\"", ','),
            vec!["a", "b,c", "d\"e"]
        );
    }
}
