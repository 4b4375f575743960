//! The watcher's alert flags (README: Alerts), flattened into `WatchArgs`: each threshold of
//! the data-quality checks, defaulting to the named consts in `load::alerts`. No I/O.

use crate::load::alerts::{
    AlertRules, DUPLICATE_SHARE, LOW_STOCK, PRICE_FACTOR, RATE_FACTOR, REJECT_SHARE, VOLUME_FACTOR,
    VOLUME_MIN_EVENTS,
};

use super::ConfigError;

#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    /// Data-quality checks at each file's commit (README: Alerts): `on` or `off`.
    #[arg(long = "alerts", env = "ALERTS", default_value = "on", value_parser = ["on", "off"])]
    pub alerts: String,
    /// price_outlier: a product's price in a file above its typical price times this, or below
    /// it divided by this.
    #[arg(long, env = "ALERT_PRICE_FACTOR", default_value_t = PRICE_FACTOR)]
    pub alert_price_factor: f64,
    /// volume_spike / volume_drop: events in an hour above (below) the same hour's mean over
    /// the days before times (divided by) this.
    #[arg(long, env = "ALERT_VOLUME_FACTOR", default_value_t = VOLUME_FACTOR)]
    pub alert_volume_factor: f64,
    /// volume_spike / volume_drop: hours whose baseline is fewer events than this are not judged.
    #[arg(long, env = "ALERT_VOLUME_MIN_EVENTS", default_value_t = VOLUME_MIN_EVENTS)]
    pub alert_volume_min_events: f64,
    /// reject_rate: a file's share of rejected rows above max(this, baseline × --alert-rate-factor).
    #[arg(long, env = "ALERT_REJECT_SHARE", default_value_t = REJECT_SHARE)]
    pub alert_reject_share: f64,
    /// duplicate_rate: a file's share of duplicate rows above max(this, baseline × --alert-rate-factor).
    #[arg(long, env = "ALERT_DUPLICATE_SHARE", default_value_t = DUPLICATE_SHARE)]
    pub alert_duplicate_share: f64,
    /// reject_rate / duplicate_rate: how many times its recent files' share a file's may reach.
    #[arg(long, env = "ALERT_RATE_FACTOR", default_value_t = RATE_FACTOR)]
    pub alert_rate_factor: f64,
    /// low_stock: a product's current stock in a warehouse below this many units (inventory
    /// files).
    #[arg(long, env = "ALERT_LOW_STOCK", default_value_t = LOW_STOCK)]
    pub alert_low_stock: i32,
}

impl AlertArgs {
    /// Factors must exceed 1, shares lie in 0..=1, the volume floor is not negative.
    pub fn validate(&self) -> Result<AlertRules, ConfigError> {
        for (name, value) in [
            ("alert-price-factor", self.alert_price_factor),
            ("alert-volume-factor", self.alert_volume_factor),
            ("alert-rate-factor", self.alert_rate_factor),
        ] {
            if !(value > 1.0 && value.is_finite()) {
                return Err(ConfigError::Factor { name, value });
            }
        }
        for (name, value) in [
            ("alert-reject-share", self.alert_reject_share),
            ("alert-duplicate-share", self.alert_duplicate_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Fraction { name, value });
            }
        }
        if !(self.alert_volume_min_events >= 0.0 && self.alert_volume_min_events.is_finite()) {
            return Err(ConfigError::Factor {
                name: "alert-volume-min-events",
                value: self.alert_volume_min_events,
            });
        }
        Ok(AlertRules {
            enabled: self.alerts == "on",
            price_factor: self.alert_price_factor,
            volume_factor: self.alert_volume_factor,
            volume_min_events: self.alert_volume_min_events,
            reject_share: self.alert_reject_share,
            duplicate_share: self.alert_duplicate_share,
            rate_factor: self.alert_rate_factor,
            low_stock: self.alert_low_stock,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{ConfigError, WatchArgs};

    #[test]
    fn alert_thresholds_default_to_the_consts_and_are_checked() {
        let s = WatchArgs::parse_from(["watch"]).validate().unwrap();
        assert_eq!(s.alerts, crate::load::AlertRules::default());
        let off = WatchArgs::parse_from(["watch", "--alerts", "off"])
            .validate()
            .unwrap();
        assert!(!off.alerts.enabled);
        let bad = WatchArgs::parse_from(["watch", "--alert-price-factor", "0.5"]).validate();
        assert!(matches!(bad, Err(ConfigError::Factor { .. })));
        let bad = WatchArgs::parse_from(["watch", "--alert-reject-share", "2"]).validate();
        assert!(matches!(bad, Err(ConfigError::Fraction { .. })));
    }
}
