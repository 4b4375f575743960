//! The generator's fixed world: a population of users and a product catalogue, both drawn once
//! from the seed so that user ids, home countries, devices and prices stay stable for a run.
//! Owns no I/O and no clock.

use fake::faker::address::en::CountryCode;
use fake::Fake;
use rand::seq::IndexedRandom;
use rand::RngExt;

/// A shopper with a stable id and the country and device they usually shop from.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub country: String,
    pub device: &'static str,
}

/// A catalogue entry; prices are in cents so totals are exact.
#[derive(Debug, Clone)]
pub struct Product {
    pub id: String,
    pub category: &'static str,
    pub price_cents: i64,
}

/// Categories with a plausible price range in cents, low to high.
const CATEGORIES: [(&str, i64, i64); 10] = [
    ("electronics", 1_999, 149_999),
    ("computers", 29_999, 299_999),
    ("appliances", 4_999, 89_999),
    ("apparel", 999, 14_999),
    ("shoes", 2_999, 24_999),
    ("home", 499, 29_999),
    ("beauty", 399, 9_999),
    ("sports", 1_499, 59_999),
    ("books", 499, 4_999),
    ("toys", 799, 12_999),
];

/// Devices weighted towards mobile, as shop traffic is.
const DEVICES: [&str; 5] = ["mobile", "mobile", "mobile", "desktop", "tablet"];

pub struct World {
    pub users: Vec<User>,
    pub products: Vec<Product>,
}

impl World {
    /// Draws `users` shoppers and `products` catalogue entries from `rng`.
    pub fn generate<R: RngExt>(rng: &mut R, users: usize, products: usize) -> World {
        let users = (0..users)
            .map(|n| User {
                id: format!("u{:07}", n + 1),
                country: CountryCode().fake_with_rng(rng),
                device: DEVICES.choose(rng).copied().unwrap_or("mobile"),
            })
            .collect();
        let products = (0..products)
            .map(|n| {
                let (category, low, high) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
                // Round to .99 endings like real price tags.
                let price_cents = (rng.random_range(low..=high) / 100) * 100 + 99;
                Product {
                    id: format!("p{:06}", n + 1),
                    category,
                    price_cents,
                }
            })
            .collect();
        World { users, products }
    }
}
