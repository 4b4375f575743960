//! Sessions: one user's events in time order, drawn either by the shopping funnel ([`walk`]:
//! view → add_to_cart → (remove_from_cart) → purchase, a few percent of sessions buy) or to a
//! shape asked for on the command line ([`walk_shaped`]: mean length and shares of event
//! types). Owns no I/O. Invariant: [`walk`] draws exactly what it drew before shapes existed,
//! so default runs stay byte-identical for a seed.

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
    /// Set for searches only (`super::search`); their product columns are written empty.
    pub search_query: Option<String>,
}

/// Chance that a viewed product goes into the cart.
const P_ADD_TO_CART: f64 = 0.12;
/// Chance that a carted product is taken out again.
const P_REMOVE: f64 = 0.15;
/// Chance that a session with something in its cart checks out.
const P_CHECKOUT: f64 = 0.12;

/// How a session looks on average: what `--events-per-session`, `--purchase-share` and
/// `--cart-share` ask for. remove_from_cart events are `P_REMOVE` of the cart events, as in
/// the funnel; every other event is a view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Mean events per session, at least 1.
    pub events_per_session: f64,
    /// Fraction of events that are purchases.
    pub purchase_share: f64,
    /// Fraction of events that are add_to_cart.
    pub cart_share: f64,
}

impl Shape {
    /// What [`walk`] gives on average (measured over 1,000,000 rows of seed 1): the values of
    /// the knobs that are not given when another one is.
    pub const FUNNEL: Shape = Shape {
        events_per_session: 5.19,
        purchase_share: 0.0106,
        cart_share: 0.105,
    };

    /// Fraction of events that are remove_from_cart.
    pub fn remove_share(&self) -> f64 {
        self.cart_share * P_REMOVE
    }
}

/// Gaps between a session's events, in microseconds, by funnel step. Never under a second, so
/// that two events of one session never share a whole-second REES46 timestamp.
const VIEW_GAP: std::ops::Range<i64> = 2_000_000..90_000_000;
const CART_GAP: std::ops::Range<i64> = 1_000_000..30_000_000;
const OTHER_GAP: std::ops::Range<i64> = 1_000_000..20_000_000;

/// Draws a random v4-shaped UUID from the seeded generator (never from the OS), so runs repeat.
pub fn seeded_uuid<R: RngExt>(rng: &mut R) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Items per cart line: mostly one, sometimes a few.
fn cart_quantity<R: RngExt>(rng: &mut R) -> i64 {
    if rng.random_bool(0.8) {
        1
    } else {
        rng.random_range(2..=4)
    }
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
            search_query: None,
        })
    };
    for _ in 0..views {
        let product = rng.random_range(0..world.products.len());
        push(rng, now, "view", product, 1, None);
        now += rng.random_range(VIEW_GAP);
        if rng.random_bool(P_ADD_TO_CART) {
            let quantity = cart_quantity(rng);
            push(rng, now, "add_to_cart", product, quantity, None);
            now += rng.random_range(CART_GAP);
            if rng.random_bool(P_REMOVE) {
                push(rng, now, "remove_from_cart", product, quantity, None);
                now += rng.random_range(OTHER_GAP);
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

/// Funnel steps in the order a shaped session emits them.
const STEPS: [&str; 4] = ["view", "add_to_cart", "remove_from_cart", "purchase"];

/// Appends one session of `shape`, starting at `start_micros`, to `out`; returns when it ended.
/// Its length is geometric with the shape's mean (many short sessions, a long tail, as in shop
/// logs) and each event's type is drawn with the shape's shares, so both hold on average over
/// any number of sessions. The events come in funnel order, and a cart, removal or purchase
/// takes a product the session viewed or carted before where it has one.
pub fn walk_shaped<R: RngExt>(
    rng: &mut R,
    world: &World,
    shape: &Shape,
    start_micros: i64,
    out: &mut Vec<Event>,
) -> i64 {
    let user = rng.random_range(0..world.users.len());
    let session_id = seeded_uuid(rng);
    let length = session_length(rng, shape.events_per_session);
    let counts = step_counts(rng, shape, length);
    let mut now = start_micros;
    let mut viewed: Vec<usize> = Vec::new();
    let mut cart: Vec<(usize, i64)> = Vec::new();
    for (&step, &count) in STEPS.iter().zip(&counts) {
        for _ in 0..count {
            let (product, quantity) = match step {
                "view" => {
                    let product = rng.random_range(0..world.products.len());
                    viewed.push(product);
                    (product, 1)
                }
                "add_to_cart" => {
                    let line = (seen(rng, world, &viewed), cart_quantity(rng));
                    cart.push(line);
                    line
                }
                _ => take(rng, &mut cart)
                    .unwrap_or_else(|| (seen(rng, world, &viewed), cart_quantity(rng))),
            };
            let total_cents =
                (step == "purchase").then(|| world.products[product].price_cents * quantity);
            out.push(Event {
                event_id: seeded_uuid(rng),
                time_micros: now,
                user,
                session_id,
                event_type: step,
                product,
                quantity,
                total_cents,
                search_query: None,
            });
            now += rng.random_range(match step {
                "view" => VIEW_GAP,
                "add_to_cart" => CART_GAP,
                _ => OTHER_GAP,
            });
        }
    }
    now
}

/// A session length with mean `mean` (at least 1): geometric on 1, 2, 3, …, i.e. after each
/// event the session ends with chance 1/mean. Drawn by inversion from one uniform number.
fn session_length<R: RngExt>(rng: &mut R, mean: f64) -> usize {
    if mean <= 1.0 {
        return 1;
    }
    let u: f64 = rng.random();
    let extra = ((1.0 - u).ln() / (1.0 - 1.0 / mean).ln()).floor();
    1 + extra as usize
}

/// How many of `length` events are of each step (`STEPS` order), drawn one by one.
fn step_counts<R: RngExt>(rng: &mut R, shape: &Shape, length: usize) -> [usize; 4] {
    let purchase = shape.purchase_share;
    let cart = purchase + shape.cart_share;
    let remove = cart + shape.remove_share();
    let mut counts = [0; 4];
    for _ in 0..length {
        let u: f64 = rng.random();
        let step = if u < purchase {
            3
        } else if u < cart {
            1
        } else if u < remove {
            2
        } else {
            0
        };
        counts[step] += 1;
    }
    counts
}

/// A product the session viewed, or any product when it viewed none (a session may start at
/// the cart, like one that comes back from a saved basket).
fn seen<R: RngExt>(rng: &mut R, world: &World, viewed: &[usize]) -> usize {
    if viewed.is_empty() {
        rng.random_range(0..world.products.len())
    } else {
        viewed[rng.random_range(0..viewed.len())]
    }
}

/// Takes one line out of the cart, if it holds any.
fn take<R: RngExt>(rng: &mut R, cart: &mut Vec<(usize, i64)>) -> Option<(usize, i64)> {
    (!cart.is_empty()).then(|| cart.swap_remove(rng.random_range(0..cart.len())))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn session_lengths_have_the_asked_mean_and_one_means_one() {
        let mut rng = StdRng::seed_from_u64(3);
        for mean in [1.0, 4.6, 20.0] {
            let n = 50_000;
            let total: usize = (0..n).map(|_| session_length(&mut rng, mean)).sum();
            let got = total as f64 / n as f64;
            assert!((got / mean - 1.0).abs() < 0.03, "mean {mean}: got {got}");
        }
        assert!((0..1000).all(|_| session_length(&mut rng, 1.0) == 1));
    }

    #[test]
    fn shaped_sessions_keep_funnel_order_and_buy_what_they_carted() {
        let mut rng = StdRng::seed_from_u64(4);
        let world = World::generate(&mut rng, 50, 200);
        let shape = Shape {
            events_per_session: 8.0,
            purchase_share: 0.1,
            cart_share: 0.2,
        };
        for start in 0..500 {
            let mut out = Vec::new();
            let end = walk_shaped(&mut rng, &world, &shape, start, &mut out);
            let steps: Vec<usize> = out
                .iter()
                .map(|e| STEPS.iter().position(|s| *s == e.event_type).unwrap())
                .collect();
            assert!(steps.is_sorted(), "{steps:?}");
            assert!(out
                .windows(2)
                .all(|w| w[1].time_micros - w[0].time_micros >= 1_000_000));
            assert!(out.iter().all(|e| e.session_id == out[0].session_id));
            assert!(end >= out.last().unwrap().time_micros);
            for e in &out {
                let price = world.products[e.product].price_cents;
                let want = (e.event_type == "purchase").then_some(price * e.quantity);
                assert_eq!(e.total_cents, want);
            }
        }
    }
}
