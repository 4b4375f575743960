use super::*;

fn event(
    time: i64,
    kind: &str,
    user: &str,
    session: &str,
    product: &str,
    total: Option<&str>,
) -> EventFacts {
    EventFacts {
        time,
        kind: EventKind::parse(kind).unwrap(),
        user_id: user.into(),
        session_id: session.into(),
        product_id: product.into(),
        category: None,
        quantity: 2,
        unit_price: 1.5,
        price: Some("1.50".into()),
        total: total.map(String::from),
        total_sum: total.map(|t| ExactSum::parse(t).unwrap()),
    }
}

#[test]
fn a_session_merges_least_user_first_and_last_time_and_summed_counts() {
    let mut d = FileDerive::default();
    d.fold(&event(5_000_000, "view", "u2", "s", "p", None))
        .unwrap();
    d.fold(&event(1_000_000, "add_to_cart", "u10", "s", "p", None))
        .unwrap();
    d.fold(&event(9_000_000, "purchase", "u3", "s", "p", Some("3.00")))
        .unwrap();
    d.fold(&event(9_000_000, "purchase", "u3", "s", "q", Some("0.125")))
        .unwrap();
    let s = &d.sessions[&0]["s"];
    assert_eq!(s.user_id, "u10", "byte order, as COLLATE \"C\"");
    assert_eq!((s.started, s.ended, s.events), (1_000_000, 9_000_000, 4));
    assert_eq!(s.kinds, KindCounts([1, 1, 0, 2]));
    assert_eq!(s.revenue.to_string(), "3.125");
    let p = &d.products["p"][""];
    assert_eq!((p.kinds, p.units_sold), (KindCounts([1, 1, 0, 1]), 2));
}

#[test]
fn a_session_ends_at_midnight_utc() {
    let mut d = FileDerive::default();
    let midnight = 86_400_000_000;
    d.fold(&event(midnight - 1, "view", "u", "s", "p", None))
        .unwrap();
    d.fold(&event(midnight, "add_to_cart", "u", "s", "p", None))
        .unwrap();
    d.fold(&event(midnight + 5, "view", "u", "s", "p", None))
        .unwrap();
    let before = &d.sessions[&0]["s"];
    assert_eq!(
        (before.started, before.ended, before.events),
        (midnight - 1, midnight - 1, 1)
    );
    let after = &d.sessions[&1]["s"];
    assert_eq!(
        (after.started, after.ended, after.events),
        (midnight, midnight + 5, 2)
    );
    assert_eq!(after.kinds, KindCounts([1, 1, 0, 0]));
}

#[test]
fn hours_are_utc_floors_and_users_are_counted_once_per_hour() {
    let mut d = FileDerive::default();
    let hour = HOUR_MICROS;
    d.fold(&event(hour + 1, "view", "u", "a", "p", None))
        .unwrap();
    d.fold(&event(2 * hour - 1, "view", "u", "b", "p", None))
        .unwrap();
    d.fold(&event(2 * hour, "view", "u", "b", "p", None))
        .unwrap();
    d.fold(&event(-1, "view", "u", "c", "p", None)).unwrap();
    let mut hours: Vec<_> = d.users.keys().copied().collect();
    hours.sort();
    assert_eq!(hours, [-hour, hour, 2 * hour]);
    assert_eq!(d.users[&hour].len(), 1);
    assert_eq!(d.hours[&(hour, EventKind::View)][""].events, 2);
    assert_eq!(d.hours[&(hour, EventKind::View)][""].quantity, 4);
    assert_eq!(d.keys(), 3 + 1 + 3 + 3);
}
