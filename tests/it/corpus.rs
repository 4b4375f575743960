//! The bad-input corpus: every case is dropped into ONE landing directory and ingested by ONE
//! run of the real `shopstream-watch --once`, which must keep going after each. Every case
//! states its exact outcome: rows loaded / duplicate and each rejected row's line, column and
//! reason, or the file-level error; the ledger, `streaming.rejected_rows`, the file moves,
//! `<file>.error.txt` and `<file>.rejected.csv` are all checked against it.

use std::path::Path;

use crate::support::*;

const MAX_LINE_BYTES: usize = 2048;
const MAX_FILE_BYTES: usize = 200_000;

const HEADER: &str = "event_id,event_time,user_id,session_id,event_type,product_id,product_category,product_price,quantity,total_amount,device,country";

/// What is dropped into the landing directory.
enum Input {
    Bytes(Vec<u8>),
    Dir,
    /// A link to a CSV file outside the landing directory.
    Symlink,
    DanglingSymlink,
    Fifo,
    /// Written, then chmod 000.
    Unreadable(Vec<u8>),
}

/// The exact outcome of a case.
enum Expect {
    /// Ledger status `loaded`, file in `processed/`; rejects as (line, column, reason). A reason
    /// ending in `…` is compared as a prefix (for messages quoted from the CSV parser).
    Loaded {
        loaded: i64,
        duplicate: i64,
        rejects: Vec<(i64, Option<&'static str>, String)>,
        /// Damaged optional values loaded as NULL: (line, column, raw value).
        warnings: Vec<(i64, &'static str, &'static str)>,
    },
    /// More than --max-reject-fraction bad rows: ledger status `rejected` with this error, its
    /// rows counted (the good ones as quarantined) and its bad rows in `rejected_rows`.
    Quarantined {
        total: i64,
        rejects: Vec<(i64, Option<&'static str>, String)>,
        error: String,
    },
    /// Ledger status `rejected` with exactly this error; the entry moved to `rejected/` with
    /// `<name>.error.txt`; nothing loaded.
    Rejected(String),
    /// Not a candidate (a dot-name): left in place, untouched, no ledger row.
    Ignored,
}

struct Case {
    name: String,
    input: Input,
    expect: Expect,
}

/// A valid row of the native contract, unique per (case, row).
fn row(case: usize, n: usize) -> Vec<String> {
    vec![
        format!("{case:08x}-0000-4000-8000-{n:012x}"),
        "2026-11-01T10:30:00.123456Z".into(),
        format!("u{case}"),
        format!("s{case}"),
        "view".into(),
        "p1".into(),
        "books".into(),
        "9.99".into(),
        "1".into(),
        "".into(),
        "mobile".into(),
        "DE".into(),
    ]
}

fn index(column: &str) -> usize {
    HEADER.split(',').position(|c| c == column).unwrap()
}

fn with(mut row: Vec<String>, column: &str, value: &str) -> Vec<String> {
    row[index(column)] = value.to_string();
    row
}

fn purchase(case: usize, n: usize, total: &str) -> Vec<String> {
    with(
        with(row(case, n), "event_type", "purchase"),
        "total_amount",
        total,
    )
}

fn csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut text = format!("{HEADER}\n");
    for r in rows {
        text.push_str(&r.join(","));
        text.push('\n');
    }
    text.into_bytes()
}

fn loaded(loaded: i64) -> Expect {
    Expect::Loaded {
        loaded,
        duplicate: 0,
        rejects: vec![],
        warnings: vec![],
    }
}

fn loaded_with(loaded: i64, rejects: Vec<(i64, Option<&'static str>, String)>) -> Expect {
    Expect::Loaded {
        loaded,
        duplicate: 0,
        rejects,
        warnings: vec![],
    }
}

fn repaired(loaded: i64, warnings: Vec<(i64, &'static str, &'static str)>) -> Expect {
    Expect::Loaded {
        loaded,
        duplicate: 0,
        rejects: vec![],
        warnings,
    }
}

const REES46: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

/// A first line that is no profile's header: each built-in profile named with what it lacks.
fn no_profile(first_line: &str) -> Expect {
    let names: Vec<String> = first_line
        .split(',')
        .map(|n| n.trim().to_lowercase())
        .collect();
    let lacks = |expected: &str| {
        let missing: Vec<&str> = expected
            .split(',')
            .filter(|c| !names.iter().any(|n| n == c))
            .collect();
        missing.join(", ")
    };
    Expect::Rejected(format!(
        "the first line is not the header of any source profile (a file needs a header line \
         naming its columns); profiles tried: native (lacks {}; expects {HEADER} in any order); \
         rees46 (lacks {}; expects {REES46} in any order)",
        lacks(HEADER),
        lacks(REES46)
    ))
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &str, input: Input, expect: Expect| {
        cases.push(Case {
            name: name.to_string(),
            input,
            expect,
        })
    };

    // Row rules of the contract: one good row (line 2) and one bad row (line 3) each.
    let rules: [(&str, &str, &str, &str); 21] = [
        ("r01_event_id_missing", "event_id", "", "required"),
        (
            "r02_event_id_not_uuid",
            "event_id",
            "not-a-uuid",
            "not a UUID (got \"not-a-uuid\")",
        ),
        ("r03_event_time_missing", "event_time", "", "required"),
        (
            "r04_event_time_not_rfc3339",
            "event_time",
            "2026-11-01 10:30:00",
            "not an RFC 3339 UTC timestamp like 2026-11-01T10:30:00.123456Z (got \"2026-11-01 10:30:00\")",
        ),
        (
            "r05_event_time_not_utc",
            "event_time",
            "2026-11-01T10:30:00+02:00",
            "not an RFC 3339 UTC timestamp like 2026-11-01T10:30:00.123456Z (got \"2026-11-01T10:30:00+02:00\")",
        ),
        ("r06_user_id_missing", "user_id", "", "required"),
        ("r07_session_id_missing", "session_id", "  ", "required"),
        ("r08_event_type_missing", "event_type", "", "required"),
        (
            "r09_event_type_unknown",
            "event_type",
            "wishlist",
            "unknown event type (expected view, add_to_cart, remove_from_cart, purchase or search) (got \"wishlist\")",
        ),
        ("r10_product_id_missing", "product_id", "", "required"),
        ("r11_product_price_missing", "product_price", "", "required"),
        (
            "r12_product_price_negative",
            "product_price",
            "-5.00",
            "not a decimal number ≥ 0 like 19.99 (got \"-5.00\")",
        ),
        (
            "r13_product_price_exponent",
            "product_price",
            "1e3",
            "not a decimal number ≥ 0 like 19.99 (got \"1e3\")",
        ),
        ("r14_quantity_missing", "quantity", "", "required"),
        (
            "r15_quantity_not_integer",
            "quantity",
            "1.5",
            "not a whole number between 1 and 999999999 (got \"1.5\")",
        ),
        (
            "r16_quantity_zero",
            "quantity",
            "0",
            "must be at least 1 (got \"0\")",
        ),
        (
            "r17_total_amount_on_a_view",
            "total_amount",
            "9.99",
            "must be empty unless event_type is purchase (got \"9.99\")",
        ),
        (
            "r18_event_time_year_0011",
            "event_time",
            "0011-02-20T11:39:00Z",
            "outside the plausible event_time window 1990-01-01..now+2d (a profile's \
             event_time_window or --event-time-window) (got \"0011-02-20T11:39:00Z\")",
        ),
        // A minus sign is refused on prices and totals alike, also on 0 (r28 for totals).
        (
            "r33_product_price_minus_zero",
            "product_price",
            "-0",
            "not a decimal number ≥ 0 like 19.99 (got \"-0\")",
        ),
        (
            "r32_event_time_leap_second",
            "event_time",
            "2026-12-31T23:59:60Z",
            "a leap second (:60) is not supported; it would be stored as the next second \
             (got \"2026-12-31T23:59:60Z\")",
        ),
        (
            "r31_event_time_nanoseconds",
            "event_time",
            "2026-11-01T10:30:00.1234567891Z",
            "has a fraction of a second finer than microseconds, which would be cut (at most 6 \
             digits are stored) (got \"2026-11-01T10:30:00.1234567891Z\")",
        ),
    ];
    // A damaged optional value costs its row nothing: loaded with it NULL and a warning.
    for (name, column, value) in [
        ("r25_device_unknown", "device", "phone"),
        ("r26_country_not_alpha2", "country", "Germany"),
        ("r27_country_lowercase", "country", "de"),
    ] {
        let case = 100 + name[1..3].parse::<usize>().unwrap();
        add(
            &format!("{name}.csv"),
            Input::Bytes(csv(&[row(case, 1), with(row(case, 2), column, value)])),
            repaired(2, vec![(3, column, value)]),
        );
    }
    for (i, (name, column, value, reason)) in rules.into_iter().enumerate() {
        let case = 100 + i;
        add(
            &format!("{name}.csv"),
            Input::Bytes(csv(&[row(case, 1), with(row(case, 2), column, value)])),
            loaded_with(1, vec![(3, Some(column), reason.to_string())]),
        );
    }
    add(
        "r21_purchase_without_total.csv",
        Input::Bytes(csv(&[purchase(121, 1, "9.99"), purchase(121, 2, "")])),
        loaded_with(
            1,
            vec![(3, Some("total_amount"), "required for a purchase".into())],
        ),
    );
    add(
        "r22_total_amount_not_a_number.csv",
        Input::Bytes(csv(&[purchase(122, 1, "9.99"), purchase(122, 2, "abc")])),
        loaded_with(
            1,
            vec![(
                3,
                Some("total_amount"),
                "not a decimal number ≥ 0 like 39.98 (got \"abc\")".into(),
            )],
        ),
    );
    add(
        "r28_total_amount_negative.csv",
        Input::Bytes(csv(&[
            purchase(128, 1, "9.99"),
            purchase(128, 2, "-5"),
            purchase(128, 3, "-0"),
            purchase(128, 4, "0"),
            // Trailing zeros past the sixth digit lose nothing.
            with(
                purchase(128, 5, "9.99"),
                "event_time",
                "2026-11-01T10:30:00.123456000Z",
            ),
        ])),
        loaded_with(
            3,
            vec![
                (
                    3,
                    Some("total_amount"),
                    "not a decimal number ≥ 0 like 39.98 (got \"-5\")".into(),
                ),
                (
                    4,
                    Some("total_amount"),
                    "not a decimal number ≥ 0 like 39.98 (got \"-0\")".into(),
                ),
            ],
        ),
    );
    // A lone CR inside a line: one row rejected naming it, the rows around it load.
    let mut lone_cr = csv(&[row(130, 1)]);
    lone_cr.extend(format!("{}\r{}\n", row(130, 2).join(","), row(130, 3).join(",")).bytes());
    lone_cr.extend(format!("{}\n", row(130, 4).join(",")).bytes());
    add(
        "r30_lone_carriage_return.csv",
        Input::Bytes(lone_cr),
        loaded_with(
            2,
            vec![(
                3,
                None,
                "holds a carriage return (CR) without a line feed: a lone CR does not end a \
                 line here (old Mac line endings?); write the file with LF or CRLF line ends"
                    .into(),
            )],
        ),
    );
    let mut short = row(123, 2);
    short.pop();
    let mut long = row(123, 3);
    long.push("surplus".into());
    add(
        "r23_wrong_field_counts.csv",
        Input::Bytes(csv(&[row(123, 1), short, long, row(123, 4)])),
        loaded_with(
            2,
            vec![
                (3, None, "has 11 fields where the header has 12".into()),
                (4, None, "has 13 fields where the header has 12".into()),
            ],
        ),
    );
    // A row with several problems: the first broken rule in contract order is reported.
    add(
        "r24_first_broken_rule_wins.csv",
        Input::Bytes(csv(&[
            row(124, 1),
            with(with(row(124, 2), "country", "Germany"), "quantity", "0"),
        ])),
        loaded_with(
            1,
            vec![(3, Some("quantity"), "must be at least 1 (got \"0\")".into())],
        ),
    );

    // Whole-file problems.
    add(
        "f01_empty.csv",
        Input::Bytes(vec![]),
        Expect::Rejected("the file is empty (no header, no rows)".into()),
    );
    // The corpus runs without marker mode.
    add(
        "f01_orders.csv.done",
        Input::Bytes(vec![]),
        Expect::Rejected(
            "looks like a completion marker (empty, named *.done), but marker mode is off: \
             start the watcher with --marker-suffix .done (MARKER_SUFFIX) to read x.csv only \
             once x.csv.done exists"
                .into(),
        ),
    );
    add(
        "f02_only_blank_and_comma_lines.csv",
        Input::Bytes(b"\n \n,,,,\r\n".to_vec()),
        Expect::Rejected("the file is empty (no header, no rows)".into()),
    );
    add(
        "f03_bom_only.csv",
        Input::Bytes(b"\xEF\xBB\xBF".to_vec()),
        Expect::Rejected("the file is empty (no header, no rows)".into()),
    );
    add(
        "f04_header_only.csv",
        Input::Bytes(format!("{HEADER}\n").into_bytes()),
        Expect::Rejected("the file has a header but no rows".into()),
    );
    add(
        "f05_header_and_blank_lines.csv",
        Input::Bytes(format!("{HEADER}\r\n\r\n,,,,,,,,,,,\r\n").into_bytes()),
        Expect::Rejected("the file has a header but no rows".into()),
    );
    add(
        "f06_rees46_layout.csv",
        Input::Bytes(
            b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n\
              2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
                .to_vec(),
        ),
        // Read by the built-in rees46 source profile (tests/it/profiles.rs has the details).
        loaded(1),
    );
    add(
        "f07_no_header_line.csv",
        Input::Bytes(csv(&[row(207, 1)])[HEADER.len() + 1..].to_vec()),
        no_profile(&row(207, 1).join(",")),
    );
    let unknown = "Date,Page,Views,user_id,price";
    add(
        "f07b_unknown_layout.csv",
        Input::Bytes(format!("{unknown}\n2026-11-01,/home,3,u1,9.99\n").into_bytes()),
        no_profile(unknown),
    );
    add(
        "f08_duplicate_column.csv",
        Input::Bytes(format!("{HEADER},user_id\n").into_bytes()),
        Expect::Rejected("the header names column \"user_id\" twice".into()),
    );
    let mut nul = csv(&[row(209, 1)]);
    nul.extend_from_slice(b"\x00\x00\x00\x01binary\n");
    add(
        "f09_nul_bytes.csv",
        Input::Bytes(nul),
        Expect::Rejected("the file holds binary data (a NUL byte at line 3), not CSV text".into()),
    );
    add(
        "f10_png_image.csv",
        Input::Bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10".to_vec()),
        Expect::Rejected(
            "the file is not UTF-8 text: invalid byte at line 1, byte offset 0; save it as UTF-8 \
             (in Excel: \"CSV UTF-8\")"
                .into(),
        ),
    );
    // Re-encode the one non-ASCII character as Latin-1 (0xFC), as an old Excel would.
    let text = csv(&[
        row(211, 1),
        with(row(211, 2), "product_category", "K\u{fc}che"),
    ]);
    let latin1: Vec<u8> = String::from_utf8(text)
        .unwrap()
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
    let offset = latin1.iter().position(|&b| b == 0xFC).unwrap();
    add(
        "f11_latin1.csv",
        Input::Bytes(latin1),
        Expect::Rejected(format!(
            "the file is not UTF-8 text: invalid byte at line 3, byte offset {offset}; save it \
             as UTF-8 (in Excel: \"CSV UTF-8\")"
        )),
    );
    add(
        "f12_line_too_long.csv",
        Input::Bytes(csv(&[
            row(212, 1),
            with(row(212, 2), "product_category", &"x".repeat(3000)),
        ])),
        Expect::Rejected(format!(
            "line 3 is longer than the limit of {MAX_LINE_BYTES} bytes (--max-line-bytes); is \
             this really a CSV file?"
        )),
    );
    let rows: Vec<Vec<String>> = (1..=2000).map(|n| row(213, n)).collect();
    let big = csv(&rows);
    assert!(big.len() > MAX_FILE_BYTES);
    add(
        "f13_too_large.csv",
        Input::Bytes(big.clone()),
        Expect::Rejected(format!(
            "it is {} bytes, larger than the limit of {MAX_FILE_BYTES} bytes (--max-file-bytes)",
            big.len()
        )),
    );
    add(
        "f14_a_directory",
        Input::Dir,
        Expect::Rejected("it is not a regular file (a directory, socket or device?)".into()),
    );
    add(
        "f15_symlink.csv",
        Input::Symlink,
        Expect::Rejected(
            "it is a symbolic link; shopstream never follows links out of the landing directory"
                .into(),
        ),
    );
    add(
        "f16_dangling_symlink.csv",
        Input::DanglingSymlink,
        Expect::Rejected(
            "it is a symbolic link; shopstream never follows links out of the landing directory"
                .into(),
        ),
    );
    add(
        "f17_named_pipe.csv",
        Input::Fifo,
        Expect::Rejected("it is not a regular file (a directory, socket or device?)".into()),
    );
    // chmod 000 stops every user but root. CI runs as root, where the read succeeds and the file
    // loads; as any other user it is rejected as unreadable. Both are asserted, honestly.
    add(
        "f18_unreadable.csv",
        Input::Unreadable(csv(&[row(218, 1)])),
        if running_as_root() {
            loaded(1)
        } else {
            Expect::Rejected("it cannot be read: Permission denied (os error 13)".into())
        },
    );
    add(
        "f19_too_many_bad_rows.csv",
        Input::Bytes(csv(&[
            row(219, 1),
            with(row(219, 2), "quantity", "0"),
            with(row(219, 3), "quantity", "two"),
            with(row(219, 4), "event_id", ""),
        ])),
        Expect::Quarantined {
            total: 4,
            rejects: vec![
                (3, Some("quantity"), "must be at least 1 (got \"0\")".into()),
                (
                    4,
                    Some("quantity"),
                    "not a whole number between 1 and 999999999 (got \"two\")".into(),
                ),
                (5, Some("event_id"), "required".into()),
            ],
            error: "3 of 4 rows (75.0%) broke the contract, more than --max-reject-fraction 0.5; \
                    nothing of the file was loaded. The bad rows and their reasons are in \
                    streaming.rejected_rows and rejected/f19_too_many_bad_rows.csv.rejected.csv."
                .into(),
        },
    );

    // What real exports contain, tolerated.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(csv(&[row(301, 1), row(301, 2)]));
    add("t01_utf8_bom.csv", Input::Bytes(bom), loaded(2));
    let crlf = String::from_utf8(csv(&[
        row(302, 1),
        row(302, 2),
        with(row(302, 3), "country", "XXX"),
    ]))
    .unwrap()
    .replace('\n', "\r\n");
    add(
        "t02_crlf.csv",
        Input::Bytes(crlf.into_bytes()),
        repaired(3, vec![(4, "country", "XXX")]),
    );
    add(
        "t03_quoted_fields.csv",
        Input::Bytes(csv(&[
            with(row(303, 1), "product_category", "\"Books, Comics\""),
            with(row(303, 2), "product_category", "\"12\"\" Pizza\""),
            with(row(303, 3), "product_category", "\"two\nlines\""),
            with(row(303, 4), "device", "\"phone, old\""),
        ])),
        repaired(4, vec![(6, "device", "phone, old")]),
    );
    let mut excel = csv(&[row(304, 1), row(304, 2)]);
    excel.extend_from_slice(b"\n\n,,,,,,,,,,,\r\n,,,,,,,,,,,\n \n");
    add(
        "t04_excel_trailing_lines.csv",
        Input::Bytes(excel),
        loaded(2),
    );
    let mut cut = csv(&[row(305, 1), row(305, 2)]);
    cut.extend_from_slice(b"00000131-0000-4000-8000-000000000003,2026-11-01T10:30:00Z,u1,s");
    add(
        "t05_last_line_cut_off.csv",
        Input::Bytes(cut),
        loaded_with(
            2,
            vec![(4, None, "has 4 fields where the header has 12".into())],
        ),
    );
    let mut cut = csv(&[row(306, 1), row(306, 2)]);
    let mut tail = row(306, 3).join(",");
    tail = tail.replace(",books,", ",\"Books, and");
    tail.truncate(tail.find("and").unwrap() + 3);
    cut.extend_from_slice(tail.as_bytes());
    add(
        "t06_last_line_cut_inside_quotes.csv",
        Input::Bytes(cut),
        loaded_with(
            2,
            vec![(
                4,
                None,
                "the row ends inside a quoted field (a cut-off last line?)".into(),
            )],
        ),
    );
    let mut no_newline = csv(&[row(307, 1), row(307, 2)]);
    no_newline.pop();
    add(
        "t07_no_final_newline.csv",
        Input::Bytes(no_newline),
        loaded(2),
    );
    let reversed: Vec<&str> = HEADER.split(',').rev().collect();
    let mut text = reversed.join(",") + "\n";
    for n in 1..=2 {
        let mut r = row(308, n);
        r.reverse();
        text += &(r.join(",") + "\n");
    }
    add(
        "t08_columns_reordered.csv",
        Input::Bytes(text.into_bytes()),
        loaded(2),
    );
    let text = format!(
        "{HEADER},campaign,Note\n{},spring-sale,\"first, visit\"\n{},,\n",
        row(309, 1).join(","),
        row(309, 2).join(",")
    );
    add(
        "t09_extra_columns.csv",
        Input::Bytes(text.into_bytes()),
        loaded(2),
    );
    let padded_header = HEADER
        .split(',')
        .map(|c| format!(" {} ", c.to_uppercase()))
        .collect::<Vec<_>>()
        .join(",");
    let mut text = padded_header + "\n";
    for n in 1..=2 {
        let r: Vec<String> = row(310, n).iter().map(|v| format!("  {v}\t")).collect();
        text += &(r.join(",") + "\n");
    }
    add(
        "t10_surrounding_whitespace.csv",
        Input::Bytes(text.into_bytes()),
        loaded(2),
    );
    add(
        "t11_purchases_with_and_without_total.csv",
        Input::Bytes(csv(&[
            purchase(311, 1, "19.98"),
            purchase(311, 2, ""),
            row(311, 3),
            purchase(311, 4, " 5.00 "),
        ])),
        loaded_with(
            3,
            vec![(3, Some("total_amount"), "required for a purchase".into())],
        ),
    );
    add(
        "t12_duplicate_event_ids.csv",
        Input::Bytes(csv(&[
            row(312, 1),
            row(312, 2),
            with(row(312, 1), "user_id", "second-copy"),
        ])),
        Expect::Loaded {
            loaded: 2,
            duplicate: 1,
            rejects: vec![],
            warnings: vec![],
        },
    );
    let semicolons = String::from_utf8(csv(&[row(313, 1), row(313, 2)]))
        .unwrap()
        .replace(',', ";");
    add(
        "t13_semicolon_delimiter.csv",
        Input::Bytes(semicolons.into_bytes()),
        loaded(2),
    );
    let text = format!(
        "{HEADER},,\n{},,\n{},,\n",
        row(314, 1).join(","),
        row(314, 2).join(",")
    );
    add(
        "t14_excel_unnamed_trailing_columns.csv",
        Input::Bytes(text.into_bytes()),
        loaded(2),
    );
    add(
        "t15_quote_inside_unquoted_field.csv",
        Input::Bytes(csv(&[
            row(315, 1),
            row(315, 2),
            with(row(315, 3), "product_category", "ab\"c,d\"e"),
            row(315, 4),
        ])),
        loaded_with(3, vec![(4, None, "cannot be parsed as CSV (…".into())]),
    );

    // File names that must be handled as data, never as paths or code.
    let names = [
        "n01 name with spaces.csv",
        "n02 it's \"quoted\".csv",
        "n03 new\nline.csv",
        "n04 événements 東京 🛒.csv",
        "n05 a..b..csv",
        "n06 -rf --once $(id) `id`;.csv",
        "n07 back\\slash ..\\..\\x.csv",
    ];
    for (i, name) in names.into_iter().enumerate() {
        add(name, Input::Bytes(csv(&[row(400 + i, 1)])), loaded(1));
    }
    add(
        "n08 bad rows 'x'.csv",
        Input::Bytes(csv(&[row(408, 1), with(row(408, 2), "quantity", "0")])),
        loaded_with(
            1,
            vec![(3, Some("quantity"), "must be at least 1 (got \"0\")".into())],
        ),
    );
    add(
        "..n09 hidden, dot-dot name.csv",
        Input::Bytes(csv(&[row(409, 1)])),
        Expect::Ignored,
    );
    cases
}

fn running_as_root() -> bool {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn drop_into(landing: &Path, outside: &Path, case: &Case) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let path = landing.join(&case.name);
    match &case.input {
        Input::Bytes(bytes) => std::fs::write(&path, bytes).unwrap(),
        Input::Dir => {
            std::fs::create_dir(&path).unwrap();
            std::fs::write(path.join("inside.csv"), HEADER).unwrap();
        }
        Input::Symlink => symlink(outside.join("target.csv"), &path).unwrap(),
        Input::DanglingSymlink => symlink(outside.join("no-such-file.csv"), &path).unwrap(),
        Input::Fifo => {
            let status = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
        }
        Input::Unreadable(bytes) => {
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_case_ends_exactly_as_stated() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = csv(&[row(999, 1)]);
    std::fs::write(outside.path().join("target.csv"), &target).unwrap();
    for case in &cases {
        drop_into(landing.path(), outside.path(), case);
    }

    let out = watch_once_with(
        landing.path(),
        &db,
        None,
        &[
            "--max-line-bytes",
            &MAX_LINE_BYTES.to_string(),
            "--max-file-bytes",
            &MAX_FILE_BYTES.to_string(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture: what a user of the watcher sees for each case.
    eprintln!("{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let pg = db.client().await;
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = check(&pg, landing.path(), case).await {
            failures.push(format!("{:?}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The symlink's target was never read, moved or changed.
    assert_eq!(
        std::fs::read(outside.path().join("target.csv")).unwrap(),
        target
    );
    // Nothing of a rejected file loaded; every row of the others is accounted for.
    let expected_loaded: i64 = cases
        .iter()
        .map(|c| match c.expect {
            Expect::Loaded { loaded, .. } => loaded,
            _ => 0,
        })
        .sum();
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        expected_loaded
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.rejected_rows WHERE line < 2 OR raw_line = ''"
        )
        .await,
        0
    );
    // Landing holds only the archive folders and the ignored dot-name.
    let mut left: Vec<String> = std::fs::read_dir(landing.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["..n09 hidden, dot-dot name.csv", "processed", "rejected"]
    );

    // Tolerated layouts load the values as meant.
    let value = |sql: &'static str| {
        let pg = &pg;
        async move {
            pg.query_one(sql, &[])
                .await
                .expect(sql)
                .get::<_, Option<String>>(0)
        }
    };
    assert_eq!(
        value("SELECT string_agg(product_category, '|' ORDER BY event_id) FROM streaming.events WHERE source_file = 't03_quoted_fields.csv'").await.as_deref(),
        Some("Books, Comics|12\" Pizza|two\nlines|books")
    );
    assert_eq!(
        value("SELECT coalesce(device, 'NULL') || ' ' || (extra->>'device_raw') FROM streaming.events WHERE source_file = 't03_quoted_fields.csv' AND extra ? 'device_raw'").await.as_deref(),
        Some("NULL phone, old"),
        "a repaired value is NULL, its raw text kept"
    );
    assert_eq!(
        value("SELECT string_agg(user_id || '/' || country || '/' || product_price::text, '|') FROM streaming.events WHERE source_file = 't08_columns_reordered.csv'").await.as_deref(),
        Some("u308/DE/9.99|u308/DE/9.99")
    );
    assert_eq!(
        value("SELECT string_agg(coalesce(extra::text, 'NULL'), '|' ORDER BY event_id) FROM streaming.events WHERE source_file = 't09_extra_columns.csv'").await.as_deref(),
        Some(r#"{"Note": "first, visit", "campaign": "spring-sale"}|NULL"#)
    );
    assert_eq!(
        value("SELECT notes FROM streaming.ingest_files WHERE file_name = 't09_extra_columns.csv'")
            .await
            .as_deref(),
        Some("extra columns kept in events.extra: campaign, Note")
    );
    assert_eq!(
        value("SELECT string_agg(user_id || '/' || event_type || '/' || device, '|') FROM streaming.events WHERE source_file = 't10_surrounding_whitespace.csv'").await.as_deref(),
        Some("u310/view/mobile|u310/view/mobile")
    );
    assert_eq!(
        value("SELECT string_agg(total_amount::text, '|' ORDER BY event_id) FROM streaming.purchases WHERE event_id::text LIKE '00000137-%'").await.as_deref(),
        Some("19.98|5.00")
    );
    assert_eq!(
        value("SELECT user_id FROM streaming.events WHERE event_id = '00000138-0000-4000-8000-000000000001'").await.as_deref(),
        Some("u312"),
        "the first copy of a duplicated event id wins"
    );
    assert_eq!(
        value("SELECT count(*)::text FROM streaming.events WHERE source_file = 't14_excel_unnamed_trailing_columns.csv' AND extra IS NULL").await.as_deref(),
        Some("2"),
        "empty unnamed columns add nothing"
    );
    db.cleanup().await;
}

async fn check(pg: &tokio_postgres::Client, landing: &Path, case: &Case) -> Result<(), String> {
    let name = case.name.as_str();
    let processed = landing.join("processed").join(name);
    let rejected = landing.join("rejected").join(name);
    let ledger = pg
        .query(
            "SELECT file_id, status, rows_total, rows_loaded, rows_rejected, rows_duplicate, error, \
             rows_quarantined, values_repaired FROM streaming.ingest_files WHERE file_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    if let Expect::Ignored = case.expect {
        if !ledger.is_empty() || std::fs::symlink_metadata(landing.join(name)).is_err() {
            return Err("an ignored name was touched".into());
        }
        return Ok(());
    }
    let [row] = ledger.as_slice() else {
        return Err(format!("{} ledger rows", ledger.len()));
    };
    let file_id: i64 = row.get(0);
    let status: String = row.get(1);
    let counts: (i64, i64, i64, i64) = (row.get(2), row.get(3), row.get(4), row.get(5));
    let error: Option<String> = row.get(6);
    let quarantined: i64 = row.get(7);
    let values_repaired: i64 = row.get(8);
    if std::fs::symlink_metadata(landing.join(name)).is_ok() {
        return Err("still in the landing directory".into());
    }
    let events = count_file(
        pg,
        "SELECT count(*) FROM streaming.events WHERE file_id = $1",
        file_id,
    )
    .await;
    match &case.expect {
        Expect::Loaded {
            loaded,
            duplicate,
            rejects,
            warnings,
        } => {
            let stored: Vec<(i64, String, String)> = pg
                .query(
                    "SELECT line, column_name, raw_value FROM streaming.row_warnings WHERE file_id = $1 ORDER BY line",
                    &[&file_id],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let want: Vec<(i64, String, String)> = warnings
                .iter()
                .map(|(l, c, v)| (*l, c.to_string(), v.to_string()))
                .collect();
            if stored != want || values_repaired != want.len() as i64 || quarantined != 0 {
                return Err(format!(
                    "row warnings {stored:?} (values_repaired {values_repaired}, quarantined \
                     {quarantined}), expected {want:?}"
                ));
            }
            let total = loaded + duplicate + rejects.len() as i64;
            let want = (total, *loaded, rejects.len() as i64, *duplicate);
            if (status.as_str(), counts, events) != ("loaded", want, *loaded) {
                return Err(format!(
                    "status {status} counts {counts:?} events {events} error {error:?}; expected loaded {want:?}"
                ));
            }
            if !processed.exists() {
                return Err("not in processed/".into());
            }
            let stored: Vec<(i64, Option<String>, String)> = pg
                .query(
                    "SELECT line, column_name, reason FROM streaming.rejected_rows WHERE file_id = $1 ORDER BY line",
                    &[&file_id],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let matches = stored.len() == rejects.len()
                && stored.iter().zip(rejects).all(|(got, want)| {
                    got.0 == want.0
                        && got.1.as_deref() == want.1
                        && match want.2.strip_suffix('…') {
                            Some(prefix) => got.2.starts_with(prefix),
                            None => got.2 == want.2,
                        }
                });
            if !matches {
                return Err(format!("rejected rows {stored:?}, expected {rejects:?}"));
            }
            check_rejects_beside(landing, name, rejects)?;
        }
        Expect::Quarantined {
            total,
            rejects,
            error: want,
        } => {
            let bad = rejects.len() as i64;
            if (
                status.as_str(),
                counts,
                quarantined,
                events,
                error.as_deref(),
            ) != (
                "rejected",
                (*total, 0, bad, 0),
                total - bad,
                0,
                Some(want.as_str()),
            ) {
                return Err(format!("status {status} counts {counts:?} quarantined {quarantined} events {events} error {error:?}; expected quarantined with {want:?}"));
            }
            let stored: Vec<(i64, Option<String>, String)> = pg
                .query(
                    "SELECT line, column_name, reason FROM streaming.rejected_rows WHERE file_id = $1 ORDER BY line",
                    &[&file_id],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let want: Vec<(i64, Option<String>, String)> = rejects
                .iter()
                .map(|(l, c, r)| (*l, c.map(str::to_string), r.clone()))
                .collect();
            if stored != want {
                return Err(format!("rejected rows {stored:?}, expected {want:?}"));
            }
            if std::fs::symlink_metadata(&rejected).is_err() {
                return Err("not in rejected/".into());
            }
            check_rejects_beside(landing, name, rejects)?;
        }
        Expect::Rejected(want) => {
            if (status.as_str(), counts, events, error.as_deref())
                != ("rejected", (0, 0, 0, 0), 0, Some(want.as_str()))
            {
                return Err(format!("status {status} counts {counts:?} events {events} error {error:?}; expected rejected with {want:?}"));
            }
            if std::fs::symlink_metadata(&rejected).is_err() {
                return Err("not in rejected/".into());
            }
            let note = landing.join("rejected").join(format!("{name}.error.txt"));
            let text = std::fs::read_to_string(&note).map_err(|e| format!("{note:?}: {e}"))?;
            let expected = format!(
                "{name}: {want}\n\nNothing of this file was loaded (ledger file_id {file_id}). Fix it and drop it \
                 into the landing directory again.\n"
            );
            if text != expected {
                return Err(format!("error file says {text:?}, expected {expected:?}"));
            }
        }
        Expect::Ignored => unreachable!(),
    }
    Ok(())
}

async fn count_file(pg: &tokio_postgres::Client, sql: &str, file_id: i64) -> i64 {
    pg.query_one(sql, &[&file_id]).await.unwrap().get(0)
}

/// `rejected/<name>.rejected.csv` lists exactly when there are rejects, each line of them.
fn check_rejects_beside(
    landing: &Path,
    name: &str,
    rejects: &[(i64, Option<&'static str>, String)],
) -> Result<(), String> {
    let beside = landing
        .join("rejected")
        .join(format!("{name}.rejected.csv"));
    if rejects.is_empty() {
        if beside.exists() {
            return Err("a .rejected.csv without rejects".into());
        }
    } else {
        let text = std::fs::read_to_string(&beside).map_err(|e| format!("{beside:?}: {e}"))?;
        for (line, _, _) in rejects {
            if !text.contains(&format!(",{line},\"")) && !text.contains(&format!(";{line};\"")) {
                return Err(format!("line {line} missing from .rejected.csv:\n{text}"));
            }
        }
        if !text
            .lines()
            .next()
            .is_some_and(|h| h.ends_with("line,reason") || h.ends_with("line;reason"))
        {
            return Err(format!("bad .rejected.csv header:\n{text}"));
        }
    }
    Ok(())
}
