//! Unit tests of the mapping: REES46 rows, formats, zones, Excel damage, ids.

use super::*;
use crate::transform::{transform_all, transform_all_with, Batch, Profiles, TIME};

const REES46: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

fn rees46(rows: &[&str]) -> String {
    let mut text = format!("{REES46}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    text
}

fn one(text: &str) -> Batch {
    let (header, mut batches) = transform_all(text.as_bytes()).unwrap();
    assert_eq!(header.profile, "rees46");
    assert_eq!(batches.len(), 1);
    batches.remove(0)
}

fn strings(batch: &Batch, column: &str) -> Vec<Option<String>> {
    let c = batch.good.column(column).unwrap().str().unwrap();
    c.iter().map(|v| v.map(str::to_string)).collect()
}

fn micros(batch: &Batch) -> Vec<Option<i64>> {
    let c = batch.good.column(TIME).unwrap().datetime().unwrap();
    c.phys.iter().collect()
}

fn utc(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

const VIEW: &str = "2019-10-01 00:00:04 UTC,view,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,535871217,c6bd7419-2748-4c56-95b4-8cec9ff8b80d";
const CART_NO_CODE: &str = "2019-10-01 00:01:10 UTC,cart,44600062,2103807459595387724,,,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c";
const PURCHASE_ROW: &str = "2019-10-01 00:02:14 UTC,purchase,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,535871217,c6bd7419-2748-4c56-95b4-8cec9ff8b80d";

#[test]
fn rees46_rows_map_onto_the_contract() {
    let batch = one(&rees46(&[VIEW, CART_NO_CODE, PURCHASE_ROW]));
    assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
    let s = |c| strings(&batch, c);
    assert_eq!(
        s("event_type"),
        [
            Some("view".into()),
            Some("add_to_cart".into()),
            Some("purchase".into())
        ]
    );
    assert_eq!(
        s("product_category"),
        [Some("electronics".into()), None, Some("electronics".into())]
    );
    assert_eq!(
        s("category_code")[0].as_deref(),
        Some("electronics.smartphone")
    );
    assert_eq!(
        s("brand"),
        [Some("apple".into()), None, Some("apple".into())]
    );
    assert_eq!(s("category_id")[1].as_deref(), Some("2103807459595387724"));
    assert_eq!(
        s("quantity"),
        [Some("1".into()), Some("1".into()), Some("1".into())]
    );
    assert_eq!(s("total_amount"), [None, None, Some("1081.98".into())]);
    assert_eq!(s("product_price")[0].as_deref(), Some("1081.98"));
    assert_eq!(
        s("session_id")[0].as_deref(),
        Some("c6bd7419-2748-4c56-95b4-8cec9ff8b80d")
    );
    assert_eq!(micros(&batch)[0], Some(utc("2019-10-01T00:00:04Z")));
    let ids = s("event_id");
    assert!(ids.iter().all(|id| Uuid::parse_str(id.as_deref().unwrap())
        .unwrap()
        .get_version_num()
        == 5));
}

#[test]
fn event_ids_are_the_same_for_the_same_row_in_any_file_and_any_position() {
    let a = one(&rees46(&[VIEW, CART_NO_CODE]));
    // Another file: rows in another order, columns in another order, padded, `;`-delimited.
    let reordered = "user_session;price;brand;category_code;category_id;product_id;event_type;event_time;user_id";
    let flip = |row: &str| {
        let f: Vec<&str> = row.split(',').collect();
        [f[8], f[6], f[5], f[4], f[3], f[2], f[1], f[0], f[7]]
            .map(|v| format!(" {v} "))
            .join(";")
    };
    let text = format!("{reordered}\n{}\n{}\n", flip(CART_NO_CODE), flip(VIEW));
    let (_, b) = transform_all(text.as_bytes()).unwrap();
    let ids_a = strings(&a, "event_id");
    let ids_b = strings(&b[0], "event_id");
    assert_eq!(ids_a, [ids_b[1].clone(), ids_b[0].clone()]);
    assert_ne!(ids_a[0], ids_a[1]);
    // The same instant written another way is the same event.
    let rfc = VIEW.replace("2019-10-01 00:00:04 UTC", "2019-10-01T02:00:04+02:00");
    assert_eq!(strings(&one(&rees46(&[&rfc])), "event_id")[0], ids_a[0]);
}

#[test]
fn each_timestamp_format_reads_as_its_instant() {
    let rows: Vec<String> = [
        "2019-10-01 00:00:04 UTC",
        "2019-10-01T00:00:04.250Z",
        "2019-10-01T02:00:04+02:00",
        "2019-10-01 00:00:04",
        "10/1/2019 0:00",
        "1/15/2020 13:05",
        "10/01/2019 00:00:04",
    ]
    .iter()
    .map(|t| VIEW.replace("2019-10-01 00:00:04 UTC", t))
    .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let batch = one(&rees46(&refs));
    assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
    assert_eq!(
        micros(&batch),
        [
            "2019-10-01T00:00:04Z",
            "2019-10-01T00:00:04.250Z",
            "2019-10-01T00:00:04Z",
            "2019-10-01T00:00:04Z",
            "2019-10-01T00:00:00Z",
            "2020-01-15T13:05:00Z",
            "2019-10-01T00:00:04Z",
        ]
        .map(|t| Some(utc(t)))
    );
}

#[test]
fn a_timestamp_in_no_format_is_rejected_naming_the_source_column_and_the_formats() {
    let bad = VIEW.replace("2019-10-01 00:00:04 UTC", "01.10.2019 00:00");
    let batch = one(&rees46(&[VIEW, &bad]));
    assert_eq!(batch.rejects.len(), 1);
    let r = &batch.rejects[0];
    assert_eq!((r.line, r.column.as_deref()), (3, Some("event_time")));
    assert_eq!(
        r.reason,
        "not a timestamp like 2019-10-01 10:30:00 UTC, 2019-10-01T10:30:00Z, \
         2019-10-01 10:30:00, 10/01/2019 10:30:00 or 10/01/2019 10:30 (got \"01.10.2019 00:00\")"
    );
    assert_eq!(r.raw, bad);
}

#[test]
fn excel_damage_in_an_optional_id_loads_the_row_with_it_null_and_in_a_required_one_rejects() {
    let excel = VIEW.replace("2053013555631882655", "2.05301E+18");
    let too_big = VIEW
        .replace("2053013555631882655", "92233720368547758070")
        .replace(",view,", ",cart,");
    let user = VIEW.replace("535871217", "5.35871E+08");
    let product = VIEW.replace("1004237", "100-4237");
    let batch = one(&rees46(&[VIEW, &excel, &too_big, &user, &product]));
    assert_eq!(batch.good.height(), 3);
    assert_eq!(
        strings(&batch, "category_id"),
        [Some("2053013555631882655".to_string()), None, None]
    );
    // Nothing else of the row is lost or changed.
    assert_eq!(
        strings(&batch, "category_code"),
        vec![Some("electronics.smartphone".to_string()); 3]
    );
    let warned: Vec<(u64, &str, &str, &str)> = batch
        .warnings
        .iter()
        .map(|w| {
            (
                w.line,
                w.column.as_str(),
                w.reason.as_str(),
                w.raw_value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        warned,
        [
            (
                3,
                "category_id",
                "looks like a number Excel rounded to scientific notation",
                "2.05301E+18"
            ),
            (
                4,
                "category_id",
                "a whole number too large for BIGINT (at most 9223372036854775807)",
                "92233720368547758070"
            ),
        ]
    );
    assert_eq!(
        strings(&batch, crate::transform::EXTRA),
        [
            None,
            Some(r#"{"category_id_raw":"2.05301E+18"}"#.to_string()),
            Some(r#"{"category_id_raw":"92233720368547758070"}"#.to_string()),
        ]
    );
    let got: Vec<(u64, &str, &str)> = batch
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref().unwrap(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                5,
                "user_id",
                "looks like a number Excel rounded to scientific notation (got \"5.35871E+08\")"
            ),
            (6, "product_id", "not a whole number (got \"100-4237\")"),
        ]
    );
}

#[test]
fn unknown_event_types_name_the_source_values_and_contract_rules_name_source_columns() {
    let odd = VIEW.replace(",view,", ",add_to_cart,");
    let no_price = VIEW.replace(",1081.98,", ",,");
    let no_session = VIEW.replace(",c6bd7419-2748-4c56-95b4-8cec9ff8b80d", ",");
    let batch = one(&rees46(&[&odd, &no_price, &no_session]));
    let got: Vec<(&str, &str)> = batch
        .rejects
        .iter()
        .map(|r| (r.column.as_deref().unwrap(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("event_type", "unknown event type (expected view, cart, remove_from_cart or purchase) (got \"add_to_cart\")"),
            ("price", "required"),
            ("user_session", "required"),
        ]
    );
}

#[test]
fn mapping_works_per_chunk_and_does_not_depend_on_chunking() {
    let rows: Vec<String> = (0..3_000)
        .map(|i| VIEW.replace("535871217", &format!("{}", 500_000_000 + i)))
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    let text = rees46(&refs);
    let read = |chunk: usize| {
        let reader = crate::transform::FileReader::open(text.as_bytes(), Default::default());
        let mut reader = reader.unwrap().with_chunk_bytes(chunk);
        let mut ids = Vec::new();
        let mut batches = 0;
        while let Some(batch) = reader.next_batch().unwrap() {
            batches += 1;
            ids.extend(strings(&batch, "event_id"));
        }
        (batches, ids)
    };
    let (one_batch, whole) = read(1 << 20);
    let (many, chunked) = read(4096);
    assert_eq!(one_batch, 1);
    assert!(many > 1, "{many} batches");
    assert_eq!(whole.len(), 3_000);
    assert_eq!(whole, chunked);
}

#[test]
fn identical_rows_get_identical_ids() {
    let batch = one(&rees46(&[VIEW, VIEW]));
    let ids = strings(&batch, "event_id");
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn totals_are_exact_decimal_products() {
    assert_eq!(times("1081.98", "1").as_deref(), Some("1081.98"));
    assert_eq!(times("19.99", "3").as_deref(), Some("59.97"));
    assert_eq!(times("0.05", "2").as_deref(), Some("0.10"));
    assert_eq!(times("+7", "12").as_deref(), Some("84"));
    assert_eq!(times("0.001", "999999999").as_deref(), Some("999999.999"));
    assert_eq!(times("1e3", "2"), None);
    assert_eq!(times("1.", "2"), None);
    assert_eq!(times("1.5", "x"), None);
}

#[test]
fn a_user_profile_with_zone_decimal_comma_and_semicolons() {
    let toml = r#"
        name = "laden"
        delimiter = ";"
        timezone = "Europe/Berlin"
        time_formats = ["%d.%m.%Y %H:%M:%S"]
        decimal_comma = true
        purchase_total = "price_times_quantity"
        [columns]
        event_time = "Zeit"
        user_id = "Kunde"
        session_id = "Sitzung"
        event_type = "Aktion"
        product_id = "Artikel"
        product_price = "Preis"
        quantity = "Menge"
        country = { column = "Land", optional = true }
        [event_types]
        angesehen = "view"
        gekauft = "purchase"
    "#;
    let mut profiles = Profiles::default();
    profiles.add(crate::transform::Profile::from_toml(toml, "test").unwrap());
    let text = "Zeit;Kunde;Sitzung;Aktion;Artikel;Preis;Menge\n\
                31.03.2024 01:30:00;k1;s1;angesehen;a1;19,99;1\n\
                31.03.2024 03:30:00;k1;s1;gekauft;a1;19,99;3\n\
                27.10.2024 02:30:00;k1;s1;gekauft;a1;1,5;2\n\
                31.03.2024 02:30:00;k1;s1;angesehen;a1;19,99;1\n";
    let (header, batches) = transform_all_with(text.as_bytes(), &profiles).unwrap();
    assert_eq!(header.profile, "laden");
    let batch = &batches[0];
    assert_eq!(
        micros(batch),
        [
            "2024-03-31T00:30:00Z",
            "2024-03-31T01:30:00Z",
            // The repeated hour when summer time ends: the earlier instant.
            "2024-10-27T00:30:00Z",
        ]
        .map(|t| Some(utc(t)))
    );
    assert_eq!(
        strings(batch, "total_amount"),
        [None, Some("59.97".into()), Some("3.0".into())]
    );
    assert_eq!(strings(batch, "product_price")[0].as_deref(), Some("19.99"));
    let r = &batch.rejects[0];
    assert_eq!((r.line, r.column.as_deref()), (5, Some("Zeit")));
    assert_eq!(
        r.reason,
        "does not exist in time zone Europe/Berlin (skipped when daylight saving began) \
         (got \"31.03.2024 02:30:00\")"
    );
}

#[test]
fn derived_event_ids_are_the_ids_the_first_release_derived() {
    // The key as it was first written (`write!`, the `uuid` crate's own SHA-1). Ids must never
    // change: a re-dropped file would load again under new ones.
    fn as_first_written(out: &[Option<Cow<'_, str>>; N], micros: Option<i64>) -> String {
        let mut key = String::new();
        for (at, v) in out.iter().enumerate().skip(1) {
            if at == SEARCH_QUERY && v.is_none() {
                continue;
            }
            let time = micros.map(|m| m.to_string());
            let v = if at == EVENT_TIME {
                time.as_deref()
            } else {
                v.as_deref()
            };
            match v {
                Some(v) => key.push_str(&format!("{}:{v};", v.len())),
                None => key.push_str("-;"),
            }
        }
        Uuid::new_v5(&EVENT_ID_NAMESPACE, key.as_bytes())
            .hyphenated()
            .to_string()
    }
    let long = "x".repeat(300);
    let values = [
        "",
        "view",
        "2053013564600967044",
        "é€ ;:",
        "-",
        long.as_str(),
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2_000 {
        let mut out: [Option<Cow<'_, str>>; N] = Default::default();
        for slot in out.iter_mut() {
            let pick = next() as usize % (values.len() + 1);
            *slot = values.get(pick).map(|v| Cow::Borrowed(*v));
        }
        let micros = match next() % 4 {
            0 => None,
            1 => Some(-(next() as i64 >> 8)),
            _ => Some(next() as i64 >> 12),
        };
        assert_eq!(event_id(&out, micros), as_first_written(&out, micros));
    }
}
