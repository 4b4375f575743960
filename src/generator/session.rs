//! The shopping funnel: one session walks view → add_to_cart → (remove_from_cart) → purchase.
//! Produces events in time order for one user; owns no I/O. A few percent of sessions buy.

use rand::RngExt;
use uuid::Uuid;

use super::world::World;

/// One generated event, before faults are applied and before it is written.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_id: Uuid,
    /// Microseconds since the Unix epoch, UTC.
    pub time_micros: i64,
    pub user: usize,
    pub session_id: Uuid,
    pub event_type: &'static str,
    pub product: usize,
    pub quantity: i64,
    /// Set for purchases only: price × quantity.
    pub total_cents: Option<i64>,
}

/// Chance that a viewed product goes into the cart.
const P_ADD_TO_CART: f64 = 0.12;
/// Chance that a carted product is taken out again.
const P_REMOVE: f64 = 0.15;
/// Chance that a session with something in its cart checks out.
const P_CHECKOUT: f64 = 0.12;

/// Draws a random v4-shaped UUID from the seeded generator (never from the OS), so runs repeat.
pub fn seeded_uuid<R: RngExt>(rng: &mut R) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Appends one session's events, starting at `start_micros`, to `out`; returns when it ended.
pub fn walk<R: RngExt>(rng: &mut R, world: &World, start_micros: i64, out: &mut Vec<Event>) -> i64 {
    let user = rng.random_range(0..world.users.len());
    let session_id = seeded_uuid(rng);
    let mut now = start_micros;
    let mut cart: Vec<(usize, i64)> = Vec::new();
    let views = 1 + rng.random_range(0..8);
    let mut push = |rng: &mut R, now: i64, event_type, product, quantity, total_cents| {
        out.push(Event {
            event_id: seeded_uuid(rng),
            time_micros: now,
            user,
            session_id,
            event_type,
            product,
            quantity,
            total_cents,
        })
    };
    for _ in 0..views {
        let product = rng.random_range(0..world.products.len());
        push(rng, now, "view", product, 1, None);
        now += rng.random_range(2_000_000..90_000_000);
        if rng.random_bool(P_ADD_TO_CART) {
            let quantity = if rng.random_bool(0.8) {
                1
            } else {
                rng.random_range(2..=4)
            };
            push(rng, now, "add_to_cart", product, quantity, None);
            now += rng.random_range(1_000_000..30_000_000);
            if rng.random_bool(P_REMOVE) {
                push(rng, now, "remove_from_cart", product, quantity, None);
                now += rng.random_range(1_000_000..20_000_000);
            } else {
                cart.push((product, quantity));
            }
        }
    }
    if !cart.is_empty() && rng.random_bool(P_CHECKOUT) {
        for (product, quantity) in cart {
            let total = world.products[product].price_cents * quantity;
            push(rng, now, "purchase", product, quantity, Some(total));
            now += rng.random_range(100_000..2_000_000);
        }
    }
    now
}
