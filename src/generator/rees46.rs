//! The REES46 layout (`--layout rees46`): rows as in REES46's "eCommerce behavior data from
//! multi category store" (2019-Oct.csv, …), written so that the built-in source profile
//! `transform/profiles/rees46.toml` reads every one of them: no event id (the watcher derives
//! one), whole-second UTC times, REES46's event-type names, integer product and user ids,
//! 19-digit category ids, `top.sub` category codes, brands. Every attribute here is a pure
//! function of the world's indices, never drawn from the seed, so a seed gives the same events
//! in either layout. No quantity column: REES46 has none, and the profile takes 1.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike};

use super::session::Event;
use super::world::World;

/// The REES46 header, as in the published files.
pub const HEADER: &str =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";

/// Where REES46-style product and user ids start (theirs are 7–9 and 9 digits).
const FIRST_PRODUCT_ID: u64 = 1_000_978;
const FIRST_USER_ID: u64 = 512_000_000;

/// Category ids are 19-digit numbers within BIGINT, like REES46's 2053013555631882655.
const FIRST_CATEGORY_ID: u64 = 2_053_013_552_259_347_891;
/// Step between the category ids of two codes; keeps them 19 digits for every code.
const CATEGORY_ID_STEP: u64 = 1_371_291_017;

/// Per native category (the top level of the code, so the watcher maps it back to the same
/// `product_category`): the rest of its codes, and its brands.
const CATALOGUE: [(&str, [&str; 3], [&str; 4]); 10] = [
    (
        "electronics",
        ["smartphone", "audio.headphone", "video.tv"],
        ["samsung", "apple", "xiaomi", "huawei"],
    ),
    (
        "computers",
        ["notebook", "desktop", "peripherals.printer"],
        ["lenovo", "hp", "asus", "acer"],
    ),
    (
        "appliances",
        [
            "kitchen.refrigerators",
            "environment.vacuum",
            "kitchen.washer",
        ],
        ["bosch", "lg", "indesit", "beko"],
    ),
    (
        "apparel",
        ["shirt", "jeans", "costume"],
        ["nike", "adidas", "levis", "zara"],
    ),
    (
        "shoes",
        ["sneakers", "boots", "sandals"],
        ["puma", "reebok", "ecco", "skechers"],
    ),
    (
        "home",
        ["kitchen.utensils", "bedroom.bed", "living_room.sofa"],
        ["ikea", "tefal", "brabantia", "joseph"],
    ),
    (
        "beauty",
        ["skin_care", "fragrance", "makeup"],
        ["shiseido", "loreal", "nivea", "maybelline"],
    ),
    (
        "sports",
        ["bicycle", "fitness.trainer", "tennis"],
        ["decathlon", "wilson", "stels", "torneo"],
    ),
    (
        "books",
        ["fiction", "children", "cooking"],
        ["eksmo", "penguin", "harper", "ast"],
    ),
    (
        "toys",
        ["puzzle", "construction_set", "doll"],
        ["lego", "hasbro", "mattel", "ravensburger"],
    ),
];

/// REES46's name of a contract event type (the profile's `[event_types]` read backwards).
fn event_type(contract: &str) -> &str {
    match contract {
        "add_to_cart" => "cart",
        other => other,
    }
}

/// The REES46 category of product `index` in native category `category`: its id, the rest of
/// its code after the top level, and its brand. Spread over the product indices.
pub(super) fn category(category: &str, index: usize) -> (u64, &'static str, &'static str) {
    let at = CATALOGUE
        .iter()
        .position(|(name, _, _)| *name == category)
        .unwrap_or(0);
    let (_, codes, brands) = &CATALOGUE[at];
    let code = index % codes.len();
    let brand = (index / codes.len()) % brands.len();
    let id = FIRST_CATEGORY_ID + (at * codes.len() + code) as u64 * CATEGORY_ID_STEP;
    (id, codes[code], brands[brand])
}

/// Writes `time` as REES46 does: `2019-10-01 00:00:00 UTC` (whole seconds, truncated).
fn write_time(line: &mut String, micros: i64) {
    let time = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    let _ = write!(
        line,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
}

/// Formats one event as a REES46 line (no line ending). Generated values never need quoting.
pub fn format_event(line: &mut String, world: &World, event: &Event) {
    let product = &world.products[event.product];
    let (category_id, code, brand) = category(product.category, event.product);
    write_time(line, event.time_micros);
    let _ = write!(
        line,
        ",{},{},{},{}.{},{},{}.{:02},{},{}",
        event_type(event.event_type),
        FIRST_PRODUCT_ID + event.product as u64,
        category_id,
        product.category,
        code,
        brand,
        product.price_cents / 100,
        product.price_cents % 100,
        FIRST_USER_ID + event.user as u64,
        event.session_id,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_ids_are_19_digits_within_bigint_and_distinct_per_code() {
        let mut ids = std::collections::BTreeSet::new();
        for (name, codes, _) in CATALOGUE {
            for index in 0..codes.len() {
                let (id, _, _) = category(name, index);
                assert_eq!(id.to_string().len(), 19, "{id}");
                assert!(i64::try_from(id).is_ok(), "{id}");
                ids.insert(id);
            }
        }
        assert_eq!(ids.len(), CATALOGUE.len() * 3);
    }

    #[test]
    fn times_are_whole_seconds_in_utc() {
        let mut line = String::new();
        write_time(&mut line, 1_569_888_004_999_999);
        assert_eq!(line, "2019-10-01 00:00:04 UTC");
    }
}
