//! Property fuzzing of the read → validate path (test-only): arbitrary bytes and mutated valid
//! files go through `FileReader` with tiny and normal chunk sizes and short reads. It must never
//! panic, every row must be accounted for (rows_total = good + rejects), rejects sit on line ≥ 2,
//! good rows carry what the loader needs, and the outcome must not depend on chunking.
//! Bounded by case counts so it runs in seconds in the normal suite; prints the cases run.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;
use crate::schema;

/// Cases per property; two properties, each input read twice (two chunkings). About 15 s in
/// release mode on one core.
const CASES: u32 = 3_000;

/// A reader that hands out at most `step` bytes per call, like a slow pipe.
struct ShortReads<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What a file came to, in a form that can be compared across chunkings.
#[derive(Debug, PartialEq)]
enum Summary {
    Rows {
        total: u64,
        good_lines: Vec<u64>,
        rejects: Vec<(u64, Option<String>, String)>,
    },
    Error(String),
}

/// Reads `bytes` completely, checking the per-batch invariants on the way.
fn read(bytes: &[u8], chunk_bytes: Option<usize>, step: usize) -> Summary {
    let source = ShortReads { data: bytes, step };
    let reader = FileReader::open(source, Limits::default());
    let mut reader = match (reader, chunk_bytes) {
        (Ok(r), Some(n)) => r.with_chunk_bytes(n),
        (Ok(r), None) => r,
        (Err(e), _) => return Summary::Error(e.to_string()),
    };
    let (mut total, mut good_lines, mut rejects) = (0, Vec::new(), Vec::new());
    loop {
        let batch = match reader.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => return Summary::Error(e.to_string()),
        };
        assert_eq!(
            batch.rows_total,
            (batch.good.height() + batch.rejects.len()) as u64,
            "every row of a batch is good or rejected"
        );
        let good = &batch.good;
        let lines = good.column(LINE).unwrap().u64().unwrap();
        assert_eq!(lines.null_count(), 0);
        good_lines.extend(lines.iter().flatten());
        // The loader's NOT NULL columns are present in every good row.
        for name in [
            TIME,
            QUANTITY,
            "event_id",
            "user_id",
            "session_id",
            "product_id",
        ] {
            assert_eq!(good.column(name).unwrap().null_count(), 0, "{name}");
        }
        let quantities = good.column(QUANTITY).unwrap().i64().unwrap();
        assert!(quantities
            .iter()
            .flatten()
            .all(|q| (1..=i32::MAX as i64).contains(&q)));
        good.column(EXTRA).unwrap();
        for r in &batch.rejects {
            assert!(r.line >= 2, "a reject on line {}", r.line);
            assert!(!r.reason.is_empty());
            rejects.push((r.line, r.column.clone(), r.reason.clone()));
        }
        total += batch.rows_total;
    }
    let mut seen = BTreeSet::new();
    for line in good_lines.iter().chain(rejects.iter().map(|r| &r.0)) {
        assert!(*line >= 2 && seen.insert(*line), "line {line} twice or < 2");
    }
    good_lines.sort_unstable();
    rejects.sort();
    Summary::Rows {
        total,
        good_lines,
        rejects,
    }
}

/// Checks one input under two chunkings: the whole file at once and `chunk` bytes at a time.
fn check(bytes: &[u8], chunk: usize, step: usize) {
    let whole = read(bytes, None, 64 << 10);
    let chunked = read(bytes, Some(chunk), step);
    assert_eq!(whole, chunked, "the outcome depends on chunking");
}

const GOOD: &str = "4f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T10:30:00.123456Z,u1,s1,view,p1,books,9.99,1,,mobile,DE";
const PURCHASE: &str = "0f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T11:00:00Z,u2,s2,purchase,p2,\"Toys, \"\"big\"\"\",5,2,10.00,,";
const MULTILINE: &str = "1f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T12:00:00Z,u3,s3,add_to_cart,p3,\"two\nlines\",0.5,3,,tablet,FR";
const INTERESTING: [u8; 14] = [
    b'"', b',', b'\n', b'\r', b' ', b';', 0, 0xFF, 0xC3, b'\t', b'a', b'0', b'-', 0xEF,
];

const CSV_BYTES: &[u8] = b"abcdefpuvwDEZT0123456789-:.,,,,;\"\"\n\r \t";

/// A valid file from row kinds, then byte-level mutations (op, position, byte).
fn mutated(rows: &[u8], header: u8, mutations: &[(u8, usize, u8)]) -> Vec<u8> {
    let header = match header % 4 {
        0 => schema::header_line(),
        1 => format!("\u{feff}{}", schema::header_line()),
        2 => format!("{},extra_note", schema::header_line()),
        _ => schema::COLUMNS
            .map(|c| format!(" {} ", c.to_uppercase()))
            .join(","),
    };
    let extra = header.ends_with("extra_note");
    let mut text = header + "\n";
    for kind in rows {
        text.push_str([GOOD, PURCHASE, MULTILINE][*kind as usize % 3]);
        if extra {
            text.push_str(",\"a, note\"");
        }
        text.push_str(if kind % 5 == 0 { "\r\n" } else { "\n" });
    }
    let mut bytes = text.into_bytes();
    for &(op, at, byte) in mutations {
        let at = at % (bytes.len() + 1);
        let byte = INTERESTING[byte as usize % INTERESTING.len()];
        match op % 5 {
            0 => bytes.insert(at, byte),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 if at < bytes.len() => bytes[at] = byte,
            3 => bytes.truncate(at.max(1)),
            _ => {
                let copy = bytes[at..].to_vec();
                let end = copy
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(copy.len(), |e| e + 1);
                bytes.splice(at..at, copy[..end].iter().copied());
            }
        }
    }
    bytes
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn arbitrary_bytes_never_panic_and_every_row_is_accounted_for() {
    let started = Instant::now();
    let ran = AtomicU64::new(0);
    let strategy = (
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            proptest::collection::vec(proptest::sample::select(INTERESTING.to_vec()), 0..512),
            // CSV-looking text, so that rows get past the text checks to the row rules.
            proptest::collection::vec(proptest::sample::select(CSV_BYTES.to_vec()), 0..512),
        ],
        1usize..64,
        1usize..16,
    );
    let header = schema::header_line().into_bytes();
    runner()
        .run(&strategy, |(tail, chunk, step)| {
            ran.fetch_add(1, Ordering::Relaxed);
            check(&tail, chunk, step);
            // The same bytes behind a valid header, so they reach the row rules.
            let mut file = header.clone();
            file.push(b'\n');
            file.extend_from_slice(&tail);
            check(&file, chunk, step);
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz: {} arbitrary-byte cases (x2 inputs, x2 chunkings) in {:.1?}",
        ran.load(Ordering::Relaxed),
        started.elapsed()
    );
}

#[test]
fn mutated_valid_files_never_panic_and_every_row_is_accounted_for() {
    let started = Instant::now();
    let ran = AtomicU64::new(0);
    let strategy = (
        proptest::collection::vec(any::<u8>(), 1..12),
        any::<u8>(),
        proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..6),
        1usize..128,
        1usize..32,
    );
    runner()
        .run(&strategy, |(rows, header, mutations, chunk, step)| {
            ran.fetch_add(1, Ordering::Relaxed);
            let bytes = mutated(&rows, header, &mutations);
            check(&bytes, chunk, step);
            if mutations.is_empty() {
                // Unmutated, every row is good.
                let Summary::Rows { good_lines, .. } = read(&bytes, None, 64 << 10) else {
                    panic!("a valid file was rejected");
                };
                assert_eq!(good_lines.len(), rows.len());
            }
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz: {} mutated-file cases (x2 chunkings) in {:.1?}",
        ran.load(Ordering::Relaxed),
        started.elapsed()
    );
}
