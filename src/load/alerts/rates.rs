//! `reject_rate` and `duplicate_rate`: a file's share of rejected (or duplicate) rows against
//! the same share over the last [`RATE_WINDOW`] loaded files of the same source profile (from
//! the ledger, this file excluded). A file breaches when its share is above
//! max(floor, baseline × factor). The subject is the profile (`native`, `rees46`, ...): one
//! open alert per source, resolved by its next file in range. Owns rates.sql; reads the ledger.

use tokio_postgres::Transaction;

use super::{AlertRules, Change, RATE_MIN_FILES, RATE_MIN_ROWS, RATE_WINDOW};

const RATES: &str = include_str!("rates.sql");

pub(super) async fn check(
    tx: &Transaction<'_>,
    file_id: i64,
    rules: &AlertRules,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    let parameters = serde_json::json!({
        "factor": rules.rate_factor,
        "reject_share": rules.reject_share,
        "duplicate_share": rules.duplicate_share,
        "window_files": RATE_WINDOW,
        "min_files": RATE_MIN_FILES,
        "min_rows": RATE_MIN_ROWS,
    });
    let rows = tx
        .query(
            RATES,
            &[
                &file_id,
                &RATE_WINDOW,
                &RATE_MIN_FILES,
                &RATE_MIN_ROWS,
                &rules.rate_factor,
                &rules.reject_share,
                &rules.duplicate_share,
                &parameters,
            ],
        )
        .await?;
    Ok(rows.iter().map(Change::from_row).collect())
}
