//! `price_outlier`: each product of a file against its typical price: the median of its last
//! [`PRICE_HISTORY`] recorded samples (`streaming.product_prices`, one row per product). A file
//! is an outlier for a product when one of its prices is above typical × factor or below
//! typical / factor. The file's median price of the product is recorded as a sample while the
//! product has fewer than [`PRICE_MIN_FILES`], or when it is more than [`PRICE_MOVED`] away from
//! the typical price: a steady price is one indexed read per product and file and no write,
//! and a real price change becomes the typical price after a few files.
//! Owns the per-file price sample and price_outlier.sql; reads no events.

use foldhash::HashMap;

use tokio_postgres::Transaction;

use super::{AlertRules, Change, PRICE_HISTORY, PRICE_MIN_FILES};

/// A file's median is recorded when it is this far from the typical price (a share of it).
pub const PRICE_MOVED: f64 = 0.01;

/// Prices of a product kept per file for its median: enough for a typical price, bounded.
const SAMPLES: usize = 15;
/// Products a file's check looks at; a file with more checks the first this many (bounded memory).
pub const MAX_PRODUCTS: usize = 100_000;

const PRICE_OUTLIER: &str = include_str!("price_outlier.sql");

#[derive(Debug, Clone, Default)]
struct Sample {
    low: f64,
    high: f64,
    first: Vec<f64>,
}

/// Per product of a file: its lowest and highest price and its first [`SAMPLES`] prices.
#[derive(Debug, Default)]
pub struct FilePrices {
    products: HashMap<String, Sample>,
}

impl FilePrices {
    /// Adds one event's price (a NaN, which validated rows never carry, is skipped).
    pub fn fold(&mut self, product_id: &str, price: f64) {
        if price.is_nan() {
            return;
        }
        let full = self.products.len() >= MAX_PRODUCTS;
        match self.products.get_mut(product_id) {
            Some(s) => {
                s.low = s.low.min(price);
                s.high = s.high.max(price);
                if s.first.len() < SAMPLES {
                    s.first.push(price);
                }
            }
            None if !full => {
                let mut first = Vec::with_capacity(SAMPLES);
                first.push(price);
                let sample = Sample {
                    low: price,
                    high: price,
                    first,
                };
                self.products.insert(product_id.to_string(), sample);
            }
            None => {}
        }
    }

    /// (products, medians, lows, highs), sorted by product id in byte order: the order in
    /// which the check locks the products' history rows, so concurrent loads cannot deadlock.
    fn arrays(&self) -> (Vec<&str>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut rows: Vec<(&str, &Sample)> =
            self.products.iter().map(|(p, s)| (p.as_str(), s)).collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = (
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
        );
        for (product, s) in rows {
            out.0.push(product);
            out.1.push(median(&s.first));
            out.2.push(s.low);
            out.3.push(s.high);
        }
        out
    }
}

/// The median of a non-empty sample (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Judges the file's products, raises and resolves `price_outlier`, and adds the file's
/// medians to the history.
pub(super) async fn check(
    tx: &Transaction<'_>,
    file_id: i64,
    prices: &FilePrices,
    rules: &AlertRules,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    if prices.products.is_empty() {
        return Ok(Vec::new());
    }
    let (products, medians, lows, highs) = prices.arrays();
    let parameters = serde_json::json!({
        "factor": rules.price_factor,
        "samples_kept": PRICE_HISTORY,
        "min_samples": PRICE_MIN_FILES,
        "sample_when_moved": PRICE_MOVED,
    });
    let rows = tx
        .query(
            PRICE_OUTLIER,
            &[
                &file_id,
                &products,
                &medians,
                &lows,
                &highs,
                &rules.price_factor,
                &PRICE_MIN_FILES,
                &PRICE_HISTORY,
                &parameters,
                &PRICE_MOVED,
            ],
        )
        .await?;
    Ok(rows.iter().map(Change::from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_keeps_extremes_and_a_bounded_median() {
        let mut p = FilePrices::default();
        for price in [10.0, 12.0, 1000.0, 11.0, f64::NAN] {
            p.fold("a", price);
        }
        for i in 0..100 {
            p.fold("b", f64::from(i));
        }
        let (products, medians, lows, highs) = p.arrays();
        assert_eq!(products, ["a", "b"]);
        assert_eq!(medians, [11.5, 7.0]);
        assert_eq!(lows, [10.0, 0.0]);
        assert_eq!(highs, [1000.0, 99.0]);
    }
}
