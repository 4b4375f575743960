//! Fault injection for tests and demos: bad rows of every kind the contract rejects, so that
//! `--invalid-fraction` shows each rule of the quarantine at work. Works on a formatted line;
//! never touches the funnel or the files. Invariant: a corrupted line always breaks a rule.

use rand::RngExt;

/// Field positions of the native contract (see `schema::COLUMNS`).
const EVENT_TYPE: usize = 4;
const TOTAL_AMOUNT: usize = 9;

/// One way a row can break the contract, with the field it breaks and the value put there.
/// Each row rule of the contract is hit by at least one entry (tested below); `total_amount`
/// depends on the event type and has its own faults in [`corrupt`].
const BAD_VALUES: [(usize, &str); 18] = [
    (0, ""),
    (0, "not-a-uuid"),
    (1, ""),
    (1, "yesterday at noon"),
    (2, ""),
    (3, ""),
    (4, ""),
    (4, "wishlist"),
    (5, ""),
    (7, ""),
    (7, "-5.00"),
    (8, ""),
    (8, "0"),
    // A leap second (it replaced a second non-integer quantity, "two", which hit the same rule
    // as "1.5").
    (1, "2026-12-31T23:59:60.000000Z"),
    // A bad device or country no longer rejects its row (it loads with the value NULL and a
    // warning), so these slots break rules that still reject (the year 0011: outside the
    // event-time window); the table keeps its length, so a seed picks the same rows as before.
    (1, "0011-02-20T11:39:00.000000Z"),
    (8, "1.5"),
    // Nanoseconds, which would be cut to microseconds.
    (1, "2026-11-01T10:30:00.123456789Z"),
    // More digits than the watcher sums exactly (checked before "empty unless a purchase").
    (TOTAL_AMOUNT, "123456789012345678901.50"),
];

/// Kinds of fault beyond `BAD_VALUES`: a wrong `total_amount`, and a missing field.
const OTHER_FAULTS: usize = 2;

/// Turns a formatted native-contract line into one the contract rejects.
pub fn corrupt<R: RngExt>(rng: &mut R, line: &str) -> String {
    let mut fields: Vec<&str> = line.split(',').collect();
    let pick = rng.random_range(0..BAD_VALUES.len() + OTHER_FAULTS);
    if let Some(&(index, value)) = BAD_VALUES.get(pick) {
        if let Some(field) = fields.get_mut(index) {
            *field = value;
        }
    } else if pick == BAD_VALUES.len() {
        let purchase = fields.get(EVENT_TYPE) == Some(&"purchase");
        let value = match (purchase, rng.random_bool(0.5)) {
            (true, true) => "",       // required for a purchase
            (true, false) => "12,50", // a decimal comma: not a number, and one field too many
            (false, true) => "19.99", // must be empty unless a purchase
            (false, false) => "abc",  // not a number
        };
        if let Some(field) = fields.get_mut(TOTAL_AMOUNT) {
            *field = value;
        }
    } else {
        // A row cut short: one field missing.
        fields.pop();
    }
    fields.join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::schema;
    use crate::transform::{all_reasons, transform_all};

    const VIEW: &str = "4f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T10:30:00.123456Z,u1,s1,view,p1,books,9.99,1,,mobile,DE";
    const PURCHASE: &str = "5f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T10:30:00.123456Z,u1,s1,purchase,p1,books,9.99,2,19.98,mobile,DE";

    #[test]
    fn every_corrupted_row_is_rejected_and_every_rule_is_hit() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut text = schema::header_line() + "\n";
        let rows = 2_000;
        for i in 0..rows {
            text += &corrupt(&mut rng, if i % 2 == 0 { VIEW } else { PURCHASE });
            text.push('\n');
        }
        let (_, batches) = transform_all(text.as_bytes()).unwrap();
        let good: usize = batches.iter().map(|b| b.good.height()).sum();
        assert_eq!(good, 0, "every corrupted row breaks a rule");
        let hit: BTreeSet<(Option<String>, String)> = batches
            .iter()
            .flat_map(|b| &b.rejects)
            .map(|r| {
                let reason = r.reason.split(" (got ").next().unwrap_or_default();
                (r.column.clone(), reason.to_string())
            })
            .collect();
        // The search rules need the search_query column, which faults (on 12-column rows)
        // never write: tests/it/search.rs hits each of them.
        let mut wanted: BTreeSet<(Option<String>, String)> = all_reasons()
            .into_iter()
            .filter(|(c, r)| *c != schema::SEARCH_QUERY && !r.contains("for a search"))
            .map(|(c, r)| (Some(c.to_string()), r.to_string()))
            .collect();
        wanted.insert((None, "has 11 fields where the header has 12".to_string()));
        wanted.insert((None, "has 13 fields where the header has 12".to_string()));
        let missed: Vec<_> = wanted.difference(&hit).collect();
        assert!(missed.is_empty(), "rules never hit: {missed:?}");
    }
}
