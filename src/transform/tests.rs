//! Unit tests of the transform as a whole: good rows, explained rejects, whole-file errors.

use super::*;
use crate::schema;

const GOOD: &str = "4f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T10:30:00.123456Z,u1,s1,view,p1,books,9.99,1,,mobile,DE";

fn file(rows: &[&str]) -> String {
    let mut text = schema::header_line();
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    text.push('\n');
    text
}

fn one_batch(text: &str) -> Batch {
    let (_, mut batches) = transform_all(text.as_bytes()).unwrap();
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

#[test]
fn good_row_passes_with_typed_columns() {
    let batch = one_batch(&file(&[GOOD]));
    assert_eq!(batch.rows_total, 1);
    assert_eq!(batch.good.height(), 1);
    assert!(batch.rejects.is_empty());
    let micros = batch
        .good
        .column(TIME)
        .unwrap()
        .datetime()
        .unwrap()
        .phys
        .get(0);
    let expected = chrono::DateTime::parse_from_rfc3339("2026-11-01T10:30:00.123456Z").unwrap();
    assert_eq!(micros, Some(expected.timestamp_micros()));
}

#[test]
fn each_broken_rule_names_line_column_and_value() {
    let bad_time = GOOD.replace("2026-11-01T10:30:00.123456Z", "yesterday");
    let purchase_no_total = GOOD.replace(",view,", ",purchase,");
    let bad_qty = GOOD.replace(",9.99,1,", ",9.99,0,");
    let batch = one_batch(&file(&[GOOD, &bad_time, &purchase_no_total, &bad_qty]));
    assert_eq!(batch.rows_total, 4);
    assert_eq!(batch.good.height(), 1);
    let got: Vec<(u64, Option<&str>)> = batch
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, Some("event_time")),
            (4, Some("total_amount")),
            (5, Some("quantity"))
        ]
    );
    assert!(batch.rejects[0].reason.contains("\"yesterday\""));
    assert_eq!(batch.rejects[2].raw, bad_qty);
}

#[test]
fn whole_file_problems_are_errors() {
    assert!(matches!(transform_all(b""), Err(FileError::Empty)));
    assert!(matches!(
        transform_all(file(&[]).as_bytes()),
        Err(FileError::HeaderOnly)
    ));
    assert!(matches!(
        transform_all(b"a,b\n1,2\n"),
        Err(FileError::NoProfile { .. })
    ));
    assert!(matches!(
        transform_all(b"\xff\xfe"),
        Err(FileError::NotUtf8 { .. })
    ));
}

#[test]
fn extra_columns_are_kept_as_json_and_unnamed_empty_ones_add_nothing() {
    let text = format!(
        "{},Campaign,,__line\n{GOOD}, spring ,,7\n{GOOD},,,\n",
        schema::header_line()
    );
    let (header, batches) = transform_all(text.as_bytes()).unwrap();
    let keys: Vec<&str> = header.extra.iter().map(|x| x.key.as_str()).collect();
    assert_eq!(keys, ["Campaign", "column_14", "__line"]);
    let good = &batches[0].good;
    let extra: Vec<Option<&str>> = good.column(EXTRA).unwrap().str().unwrap().iter().collect();
    assert_eq!(extra, [Some(r#"{"Campaign":"spring","__line":"7"}"#), None]);
    // A header column named like an internal one does not disturb the line numbers.
    let lines: Vec<Option<u64>> = good.column(LINE).unwrap().u64().unwrap().iter().collect();
    assert_eq!(lines, [Some(2), Some(3)]);
}

#[test]
fn a_bom_is_not_part_of_the_header_and_a_bom_alone_is_an_empty_file() {
    let text = format!("\u{feff}{}", file(&[GOOD]));
    assert_eq!(one_batch(&text).good.height(), 1);
    assert!(matches!(
        transform_all(b"\xEF\xBB\xBF"),
        Err(FileError::Empty)
    ));
}

#[test]
fn a_record_polars_reads_differently_is_rejected_alone() {
    let odd = GOOD.replace(",books,", ",ab\"c,d\"e,");
    let batch = one_batch(&file(&[GOOD, &odd, GOOD]));
    assert_eq!(batch.rows_total, 3);
    assert_eq!(batch.good.height(), 2);
    assert_eq!(batch.rejects.len(), 1);
    assert_eq!(batch.rejects[0].line, 3);
    assert!(
        batch.rejects[0]
            .reason
            .starts_with("cannot be parsed as CSV"),
        "{}",
        batch.rejects[0].reason
    );
}

#[test]
fn a_cut_off_quoted_raw_line_is_closed_in_the_rejects_file() {
    let cut = RejectedRow {
        line: 4,
        column: None,
        reason: "the row ends inside a quoted field".into(),
        raw: "a,\"Books, and".into(),
    };
    assert_eq!(
        rejects_csv_lines(&[cut], b','),
        "a,\"Books, and\",4,\"the row ends inside a quoted field\"\n"
    );
}

#[test]
fn the_first_problem_of_a_file_is_reported_however_it_is_chunked() {
    let text = format!("{}\n{GOOD}\n\u{fc}\n\0\n", schema::header_line());
    let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    assert!(matches!(
        transform_all(&latin1),
        Err(FileError::NotUtf8 { line: 3, .. })
    ));
}

#[test]
fn a_file_larger_than_a_chunk_arrives_in_several_batches_with_every_row() {
    let rows: Vec<String> = (0..100_000)
        .map(|i| GOOD.replace("0a1b2c3d4e5f", &format!("{i:012}")))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (_, batches) = transform_all(file(&refs).as_bytes()).unwrap();
    assert!(batches.len() > 1, "{} batches", batches.len());
    let total: u64 = batches.iter().map(|b| b.rows_total).sum();
    let good: usize = batches.iter().map(|b| b.good.height()).sum();
    assert_eq!((total, good), (100_000, 100_000));
    let last = batches.last().unwrap();
    let lines = last.good.column(LINE).unwrap().u64().unwrap();
    assert_eq!(lines.get(last.good.height() - 1), Some(100_001));
}

/// (line, column, reason, raw value) of a batch's warnings.
fn warnings(batch: &Batch) -> Vec<(u64, &str, &str, &str)> {
    batch
        .warnings
        .iter()
        .map(|w| {
            let (c, r, v) = (w.column.as_str(), w.reason.as_str(), w.raw_value.as_str());
            (w.line, c, r, v)
        })
        .collect()
}

fn texts(batch: &Batch, column: &str) -> Vec<Option<String>> {
    let c = batch.good.column(column).unwrap().str().unwrap();
    c.iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn a_damaged_device_or_country_loads_its_row_with_the_value_null_and_the_raw_text_kept() {
    let phone = GOOD.replace(",mobile,", ",phone,");
    let both = GOOD
        .replace("4f9c", "5f9c")
        .replace(",mobile,DE", ",Smart TV,de");
    // Another rule rejects the row: its damaged device is no warning, nothing of it loads.
    let rejected = phone
        .replace("4f9c", "6f9c")
        .replace(",9.99,1,", ",9.99,0,");
    let batch = one_batch(&file(&[&phone, &both, &rejected]));
    assert_eq!(batch.good.height(), 2);
    assert_eq!(texts(&batch, "device"), [None, None]);
    assert_eq!(texts(&batch, "country"), [Some("DE".to_string()), None]);
    let device = "unknown device (expected mobile, desktop or tablet, or empty)";
    let country = "not an ISO 3166 alpha-2 code like DE";
    let mut got = warnings(&batch);
    got.sort();
    assert_eq!(
        got,
        [
            (2, "device", device, "phone"),
            (3, "country", country, "de"),
            (3, "device", device, "Smart TV"),
        ]
    );
    assert_eq!(
        texts(&batch, EXTRA),
        [
            Some(r#"{"device_raw":"phone"}"#.to_string()),
            Some(r#"{"country_raw":"de","device_raw":"Smart TV"}"#.to_string()),
        ]
    );
    let rejects: Vec<(u64, Option<&str>)> = batch
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref()))
        .collect();
    assert_eq!(rejects, [(4, Some("quantity"))]);
}

#[test]
fn an_event_time_outside_the_plausible_window_rejects_its_row_naming_value_and_window() {
    let ancient = GOOD.replace("2026-11-01T10:30:00.123456Z", "0011-02-20T11:39:00.000000Z");
    let future = GOOD
        .replace("4f9c", "5f9c")
        .replace("2026-11-01T10:30:00.123456Z", "2999-01-01T00:00:00Z");
    let edge = GOOD
        .replace("4f9c", "6f9c")
        .replace("2026-11-01T10:30:00.123456Z", "1990-01-01T00:00:00Z");
    let batch = one_batch(&file(&[&ancient, &future, &edge]));
    assert_eq!(batch.good.height(), 1, "1990-01-01 itself is inside");
    let window = "outside the plausible event_time window 1990-01-01..now+2d (a profile's \
                  event_time_window or --event-time-window)";
    let got: Vec<(u64, Option<&str>, &str)> = batch
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                2,
                Some("event_time"),
                &*format!("{window} (got \"0011-02-20T11:39:00.000000Z\")")
            ),
            (
                3,
                Some("event_time"),
                &*format!("{window} (got \"2999-01-01T00:00:00Z\")")
            ),
        ]
    );
}

#[test]
fn the_watchers_window_applies_to_profiles_that_set_none() {
    let old = GOOD.replace("2026-11-01T10:30:00.123456Z", "2019-10-01T00:00:00Z");
    let profiles = Profiles::default().with_event_time_window("2020-01-01..now".parse().unwrap());
    let (_, batches) = transform_all_with(file(&[&old]).as_bytes(), &profiles).unwrap();
    assert_eq!(batches[0].good.height(), 0);
    assert!(batches[0].rejects[0]
        .reason
        .contains("window 2020-01-01..now "));
}
