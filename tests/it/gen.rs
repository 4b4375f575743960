use std::collections::{HashMap, HashSet};

use crate::support::*;

#[test]
fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(
        a.path(),
        3,
        500,
        42,
        &["--duplicate-fraction", "0.1", "--late-fraction", "0.1"],
    );
    generate(
        b.path(),
        3,
        500,
        42,
        &["--duplicate-fraction", "0.1", "--late-fraction", "0.1"],
    );
    generate(
        c.path(),
        3,
        500,
        43,
        &["--duplicate-fraction", "0.1", "--late-fraction", "0.1"],
    );
    let read = |dir: &std::path::Path| {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<_>>()
    };
    let (fa, fb, fc) = (read(a.path()), read(b.path()), read(c.path()));
    assert_eq!(fa.len(), 3, "three files, no temporary file left behind");
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
}

#[test]
fn rows_follow_the_contract_and_the_funnel() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 2, 5_000, 7, &[]);
    let rows = csv_rows(dir.path());
    assert_eq!(rows.len(), 10_000);
    let header = std::fs::read_to_string(
        std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap()
    .lines()
    .next()
    .unwrap()
    .to_string();
    assert_eq!(header, shopstream::schema::header_line());
    let mut sessions: HashMap<&str, bool> = HashMap::new();
    let mut users_country: HashMap<&str, &str> = HashMap::new();
    for (_, _, f) in &rows {
        assert_eq!(f.len(), 12);
        assert!(uuid::Uuid::parse_str(&f[0]).is_ok());
        assert!(
            chrono::DateTime::parse_from_rfc3339(&f[1]).is_ok(),
            "{}",
            f[1]
        );
        let purchase = f[4] == "purchase";
        *sessions.entry(&f[3]).or_default() |= purchase;
        // A user always shops from the same country.
        assert_eq!(
            *users_country.entry(&f[2]).or_insert(&f[11]),
            f[11].as_str()
        );
        if purchase {
            let cents = |s: &str| (s.parse::<f64>().unwrap() * 100.0).round() as i64;
            let quantity: i64 = f[8].parse().unwrap();
            assert_eq!(
                cents(&f[9]),
                cents(&f[7]) * quantity,
                "total = price x quantity"
            );
        } else {
            assert_eq!(f[9], "");
        }
    }
    let buying = sessions.values().filter(|b| **b).count() as f64 / sessions.len() as f64;
    assert!(
        (0.005..0.2).contains(&buying),
        "share of sessions that buy: {buying}"
    );
    let types: HashSet<&str> = rows.iter().map(|(_, _, f)| f[4].as_str()).collect();
    assert_eq!(types.len(), 4, "{types:?}");
}

/// (rows, events per session, purchase share, cart share, distinct users) of native files.
fn shape_of(dir: &std::path::Path) -> (usize, f64, f64, f64, usize) {
    let rows = csv_rows(dir);
    let sessions = distinct(rows.iter().map(|(_, _, f)| f[3].as_str())).len();
    let users = distinct(rows.iter().map(|(_, _, f)| f[2].as_str())).len();
    let share =
        |t: &str| rows.iter().filter(|(_, _, f)| f[4] == t).count() as f64 / rows.len() as f64;
    (
        rows.len(),
        rows.len() as f64 / sessions as f64,
        share("purchase"),
        share("add_to_cart"),
        users,
    )
}

/// The three shapes scripts/bench runs, as it asks for them, over 20,000 rows each.
#[test]
fn the_bench_shapes_come_out_as_asked() {
    let shapes: [(&str, &[&str]); 3] = [
        (
            "oneper",
            &[
                "--events-per-session",
                "1",
                "--purchase-share",
                "0.1",
                "--users",
                "20000",
            ],
        ),
        ("gen", &[]),
        (
            "rees46",
            &[
                "--events-per-session",
                "4.6",
                "--purchase-share",
                "0.015",
                "--cart-share",
                "0.03",
            ],
        ),
    ];
    for (name, flags) in shapes {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), 2, 10_000, 1, flags);
        let (rows, mean, purchases, carts, users) = shape_of(dir.path());
        eprintln!("{name}: {rows} rows, {mean:.2} events/session, purchases {purchases:.4}, carts {carts:.4}, {users} users");
        assert_eq!(rows, 20_000);
        let near = |got: f64, want: f64, tolerance: f64| (got / want - 1.0).abs() < tolerance;
        match name {
            "oneper" => {
                assert_eq!(mean, 1.0);
                assert!(near(purchases, 0.1, 0.1), "{purchases}");
                // 20,000 sessions over 20,000 users: most users come once or twice.
                assert!(users > 10_000, "{users}");
            }
            "gen" => {
                assert!(near(mean, 5.19, 0.15), "{mean}");
                assert!(near(carts, 0.105, 0.2), "{carts}");
            }
            _ => {
                assert!(near(mean, 4.6, 0.15), "{mean}");
                assert!(near(purchases, 0.015, 0.2), "{purchases}");
                assert!(near(carts, 0.03, 0.2), "{carts}");
            }
        }
    }
}

#[test]
fn shape_flags_out_of_range_are_refused_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    for (flags, wanted) in [
        (&["--events-per-session", "0"][..], "--events-per-session"),
        (&["--purchase-share", "1.5"][..], "--purchase-share"),
        (
            &["--purchase-share", "0.6", "--cart-share", "0.5"][..],
            "--cart-share",
        ),
        (
            &["--layout", "rees46", "--invalid-fraction", "0.1"][..],
            "--layout native",
        ),
    ] {
        let out = std::process::Command::new(bin("gen"))
            .arg("--out")
            .arg(dir.path())
            .args(flags)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(wanted), "{flags:?}: {err}");
    }
}

/// Generated REES46-layout files through the library's transform, as the watcher reads them:
/// the header picks the rees46 profile, no row is rejected, and the mapped columns hold what
/// the generator meant (contract event types, integer ids, categories, totals = price).
#[test]
fn rees46_layout_files_map_through_the_rees46_profile_without_a_reject() {
    use polars::prelude::*;

    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        2,
        3_000,
        11,
        &[
            "--layout",
            "rees46",
            "--events-per-session",
            "4.6",
            "--purchase-share",
            "0.05",
            "--cart-share",
            "0.1",
            "--duplicate-fraction",
            "0.02",
            "--late-fraction",
            "0.02",
        ],
    );
    let mut good = 0;
    let mut types = HashSet::new();
    for path in std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        let bytes = std::fs::read(&path).unwrap();
        let header = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            header,
            "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
        );
        let (header, batches) = shopstream::transform::transform_all(&bytes).unwrap();
        assert_eq!(header.profile, "rees46");
        assert!(
            header.extra.is_empty(),
            "every column is read by the profile"
        );
        for batch in &batches {
            assert!(batch.rejects.is_empty(), "{:?}", &batch.rejects[..1]);
            let frame = &batch.good;
            good += frame.height();
            let text = |name: &str| -> Vec<Option<String>> {
                let column = frame.column(name).unwrap().str().unwrap();
                column.iter().map(|v| v.map(str::to_string)).collect()
            };
            let digits = |v: &Option<String>| {
                v.as_deref()
                    .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            };
            let (kinds, prices, totals) = (
                text("event_type"),
                text("product_price"),
                text("total_amount"),
            );
            for (i, kind) in kinds.iter().enumerate() {
                let kind = kind.as_deref().unwrap();
                types.insert(kind.to_string());
                let want = (kind == "purchase").then(|| prices[i].clone().unwrap());
                assert_eq!(
                    totals[i], want,
                    "a purchase's total is its price, quantity 1"
                );
            }
            assert!(text("product_id").iter().all(digits));
            assert!(text("user_id").iter().all(digits));
            assert!(text("category_id")
                .iter()
                .all(|v| digits(v) && v.as_ref().unwrap().len() == 19));
            assert!(text("quantity").iter().all(|q| q.as_deref() == Some("1")));
            assert!(text("brand")
                .iter()
                .all(|b| b.as_deref().is_some_and(|b| !b.is_empty())));
            for (code, category) in text("category_code").iter().zip(text("product_category")) {
                let code = code.as_deref().unwrap();
                assert_eq!(Some(code.split('.').next().unwrap()), category.as_deref());
                assert!(code.contains('.'), "{code}");
            }
            assert!(text("session_id")
                .iter()
                .all(|s| uuid::Uuid::parse_str(s.as_deref().unwrap()).is_ok()));
            assert!(text("event_id")
                .iter()
                .all(|s| uuid::Uuid::parse_str(s.as_deref().unwrap()).is_ok()));
            let times = frame.column(shopstream::transform::TIME).unwrap();
            assert_eq!(times.null_count(), 0);
            assert!(matches!(times.dtype(), DataType::Datetime(..)));
        }
    }
    assert_eq!(good, 6_000, "every row is good");
    assert_eq!(types.len(), 4, "{types:?}");
}
