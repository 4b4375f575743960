//! Search events for `--search-share`: before some views of a session, the shopper typed a
//! query naming the viewed product's brand or kind (`samsung smartphone`, `sneakers`); some
//! searches end a session with nothing viewed after them. Drawn from a generator of their own
//! (seeded from the run's seed), so a share of 0 draws nothing and leaves the files as before.
//! Owns no I/O; the row format is [`super::writer`]'s.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::rees46;
use super::session::{seeded_uuid, Event};
use super::world::World;

/// Mixed into the seed so that searches are not drawn from the events' sequence.
const SEED_SALT: u64 = 0x5ea2_c4e5_0000_0016;
/// Chance that a search is one the shopper gave up on: it ends the session, no view follows.
const P_NO_VIEW: f64 = 0.2;

/// The search generator of one run.
pub struct Searches {
    rng: StdRng,
    /// Chance that a view is preceded by a search for it.
    share: f64,
}

impl Searches {
    pub fn new(seed: u64, share: f64) -> Searches {
        Searches {
            rng: StdRng::seed_from_u64(seed ^ SEED_SALT),
            share,
        }
    }

    /// Puts searches into one session's events (time order kept): before a view, a search
    /// for its product, half a second or less earlier (events of a session are at least a
    /// second apart, so it stays after the event before); with chance [`P_NO_VIEW`] instead a
    /// search for any product after the session's last event, which no view follows.
    pub fn add(&mut self, world: &World, session: &mut Vec<Event>) {
        let mut out = Vec::with_capacity(session.len() + 2);
        let mut last: Option<Event> = None;
        for event in session.drain(..) {
            if event.event_type == "view" && self.rng.random_bool(self.share) {
                let product = if self.rng.random_bool(P_NO_VIEW) {
                    None
                } else {
                    Some(event.product)
                };
                if let Some(product) = product {
                    let time = event.time_micros - self.rng.random_range(100_000..500_000);
                    out.push(self.search(world, &event, product, time));
                } else if last.is_none() {
                    last = Some(event.clone());
                }
            }
            out.push(event);
        }
        if let (Some(view), Some(end)) = (last, out.last()) {
            let product = self.rng.random_range(0..world.products.len());
            let time = end.time_micros + self.rng.random_range(1_000_000..20_000_000);
            out.push(self.search(world, &view, product, time));
        }
        *session = out;
    }

    fn search(&mut self, world: &World, of: &Event, product: usize, time: i64) -> Event {
        let p = &world.products[product];
        let (_, code, brand) = rees46::category(p.category, product);
        // The last segment of the code, as a shopper would type it: `vacuum`, `skin care`.
        let kind = code.rsplit('.').next().unwrap_or(code).replace('_', " ");
        let query = match self.rng.random_range(0..4) {
            0 => format!("{brand} {kind}"),
            1 => kind,
            2 => brand.to_string(),
            _ => p.category.to_string(),
        };
        Event {
            event_id: seeded_uuid(&mut self.rng),
            time_micros: time,
            user: of.user,
            session_id: of.session_id,
            event_type: "search",
            product,
            quantity: 0,
            total_cents: None,
            search_query: Some(query),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::session::walk;

    #[test]
    fn searches_precede_views_of_their_product_or_end_the_session_in_time_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let world = World::generate(&mut rng, 20, 100);
        let mut searches = Searches::new(1, 0.5);
        let (mut seen, mut trailing) = (0, 0);
        for start in 0..300 {
            let mut session = Vec::new();
            walk(&mut rng, &world, start * 1_000_000_000, &mut session);
            searches.add(&world, &mut session);
            assert!(session
                .windows(2)
                .all(|w| w[0].time_micros < w[1].time_micros));
            for (i, e) in session.iter().enumerate() {
                if e.event_type != "search" {
                    assert!(e.search_query.is_none());
                    continue;
                }
                seen += 1;
                assert!(!e.search_query.as_deref().unwrap_or("").is_empty());
                match session.get(i + 1) {
                    Some(next) => {
                        assert_eq!(next.event_type, "view");
                        assert_eq!(next.product, e.product);
                    }
                    None => trailing += 1,
                }
            }
        }
        assert!(
            seen > 100 && trailing > 5,
            "{seen} searches, {trailing} trailing"
        );
    }
}
