//! `volume_spike` and `volume_drop`: events per hour (all types and categories, from
//! `streaming.event_stats_hourly`, this file's events included) against the mean of the same
//! hour on the [`VOLUME_DAYS`] days before. A spike is judged on every hour the file touched
//! (counts only grow, so it shows at once); a drop only on the hour before the file's newest,
//! taken as complete once events of a later hour arrive. Subjects are hours
//! (`YYYY-MM-DDTHH:00Z`); an alert resolves when a later hour is back in range.
//! Owns the file's hours and volume.sql; reads no events.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;

use super::{AlertRules, Change, VOLUME_DAYS, VOLUME_MIN_DAYS};

/// Hours of a file judged for a spike, the newest ones: a late file may touch many.
pub const MAX_HOURS: usize = 24;
const HOUR_MICROS: i64 = 3_600_000_000;

const VOLUME: &str = include_str!("volume.sql");

/// The hours (UTC, as microseconds since the epoch) a file's new events fall in.
#[derive(Debug, Default)]
pub struct FileHours(BTreeSet<i64>);

impl FileHours {
    pub fn fold(&mut self, time: i64) {
        self.0.insert(time.div_euclid(HOUR_MICROS) * HOUR_MICROS);
    }

    /// The newest [`MAX_HOURS`] hours, and the hour before the newest.
    fn checked(&self) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let spikes = self
            .0
            .iter()
            .rev()
            .take(MAX_HOURS)
            .map(|&h| hour(h))
            .collect();
        let drop_hour = self.0.last().map(|&h| hour(h - HOUR_MICROS));
        (spikes, drop_hour)
    }
}

fn hour(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::UNIX_EPOCH)
}

pub(super) async fn check(
    tx: &Transaction<'_>,
    file_id: i64,
    hours: &FileHours,
    rules: &AlertRules,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    let (spikes, drop_hour) = hours.checked();
    if spikes.is_empty() {
        return Ok(Vec::new());
    }
    let parameters = serde_json::json!({
        "factor": rules.volume_factor,
        "days": VOLUME_DAYS,
        "min_days": VOLUME_MIN_DAYS,
        "min_events": rules.volume_min_events,
    });
    let rows = tx
        .query(
            VOLUME,
            &[
                &file_id,
                &spikes,
                &drop_hour,
                &rules.volume_factor,
                &VOLUME_DAYS,
                &VOLUME_MIN_DAYS,
                &rules.volume_min_events,
                &parameters,
            ],
        )
        .await?;
    Ok(rows.iter().map(Change::from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_look_at_the_newest_hours_drops_at_the_one_before_the_newest() {
        let mut h = FileHours::default();
        assert_eq!(h.checked(), (vec![], None));
        for i in 0..30 {
            h.fold(i * HOUR_MICROS + 5);
        }
        let (spikes, drop_hour) = h.checked();
        assert_eq!(spikes.len(), MAX_HOURS);
        assert_eq!(spikes[0], hour(29 * HOUR_MICROS));
        assert_eq!(drop_hour, Some(hour(28 * HOUR_MICROS)));
    }
}
