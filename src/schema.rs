//! The native CSV contract of DESIGN.md: column names and order, event types, devices.
//! Every other module asks this one what a column is called; none spells a column name itself.
//! Invariant: `COLUMNS` is the header shopstream-gen writes, in order. `KEPT_COLUMNS` are not
//! part of the native header: source profiles may fill them, native files leave them empty.

/// The native header, in the order shopstream-gen writes it.
pub const COLUMNS: [&str; 12] = [
    "event_id",
    "event_time",
    "user_id",
    "session_id",
    "event_type",
    "product_id",
    "product_category",
    "product_price",
    "quantity",
    "total_amount",
    "device",
    "country",
];

/// Source attributes beyond the native contract that a source profile may keep (nullable
/// columns of `streaming.events`); `category_id` must be a whole number fitting BIGINT.
pub const KEPT_COLUMNS: [&str; 3] = ["brand", "category_id", "category_code"];

/// The header line, without a line ending.
pub fn header_line() -> String {
    COLUMNS.join(",")
}

/// The funnel steps a row may name.
pub const EVENT_TYPES: [&str; 4] = ["view", "add_to_cart", "remove_from_cart", "purchase"];

/// The only event type that carries a `total_amount` and lands in `streaming.purchases`.
pub const PURCHASE: &str = "purchase";

/// Devices a row may name; the column may also be empty.
pub const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];

/// The timestamp format of `event_time` (RFC 3339, UTC, microseconds).
pub const EVENT_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_every_column_once_in_contract_order() {
        assert_eq!(
            header_line(),
            "event_id,event_time,user_id,session_id,event_type,product_id,product_category,\
             product_price,quantity,total_amount,device,country"
        );
    }
}
