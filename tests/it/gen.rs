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
