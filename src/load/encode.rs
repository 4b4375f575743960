//! COPY encoding: a chunk's good rows as binary COPY tuples for `streaming.events`, encoded on
//! the reader's thread, off the connection's path, so that loading only looks up ids and moves
//! bytes. Owns the column order of the events COPY; sends nothing.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use polars::prelude::*;
use tokio_postgres::types::{IsNull, ToSql, Type};
use uuid::Uuid;

use super::binary::{Decimal, JsonText};
use super::derive::{EventFacts, EventKind, ExactSum};
use super::LoadError;
use crate::schema::KEPT_COLUMNS;
use crate::transform::{EXTRA, QUANTITY, TIME};

/// Good rows go straight into `streaming.events` (binary COPY: the server's fastest insert path):
/// typed columns first, then every text column in `TEXT_COLUMNS` order, then the attributes a
/// source profile keeps (`KEPT_COLUMNS`), then `file_id`.
pub(super) const COPY_EVENTS: &str = "COPY streaming.events (event_id, event_time, quantity, \
    product_price, total_amount, extra, source_file, user_id, session_id, event_type, \
    product_id, product_category, device, country, brand, category_id, category_code, \
    search_query, file_id) FROM STDIN (FORMAT binary)";

/// Fields of every COPY_EVENTS tuple; `encode_events` writes them in its column order, each
/// with its type beside it.
const COPY_EVENTS_FIELDS: i16 = 19;

/// Text columns of the COPY, in order after the typed ones.
const TEXT_COLUMNS: [&str; 7] = [
    "user_id",
    "session_id",
    "event_type",
    "product_id",
    "product_category",
    "device",
    "country",
];

/// A chunk's good rows as binary COPY tuples for `streaming.events`. Encoded on the reader's
/// thread, off the connection's path, so that loading only looks up ids and moves bytes.
pub struct EncodedEvents {
    pub(super) ids: Vec<Uuid>,
    /// What the derive needs of each row, in the same order.
    pub(super) facts: Vec<EventFacts>,
    /// Every row's tuple but its last field, `file_id`, which exists once the ledger row does.
    pub(super) tuples: Bytes,
    pub(super) ends: Vec<usize>,
}

impl EncodedEvents {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Each row's event time in microseconds: with the id, what makes an event (sql/V11).
    pub(super) fn times(&self) -> impl Iterator<Item = i64> + '_ {
        self.facts.iter().map(|f| f.time)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Encodes the good rows of one chunk (the frame the transform produced) for COPY_EVENTS.
pub fn encode_events(good: &DataFrame, source_file: &str) -> Result<EncodedEvents, LoadError> {
    let times = good.column(TIME)?.datetime()?.phys.clone();
    let quantities = good.column(QUANTITY)?.i64()?.clone();
    let prices = good.column("product_price")?.str()?.clone();
    let totals = good.column("total_amount")?.str()?.clone();
    let extras = good.column(EXTRA)?.str()?.clone();
    let ids = good.column("event_id")?.str()?.clone();
    let mut texts = Vec::with_capacity(TEXT_COLUMNS.len());
    for name in TEXT_COLUMNS {
        texts.push(good.column(name)?.str()?.clone());
    }
    let mut text_iters: Vec<_> = texts.iter().map(|c| c.iter()).collect();
    let [brand, category_id, category_code, search_query] = KEPT_COLUMNS;
    let brands = good.column(brand)?.str()?.clone();
    let category_ids = good.column(category_id)?.str()?.clone();
    let category_codes = good.column(category_code)?.str()?.clone();
    let search_queries = good.column(search_query)?.str()?.clone();
    let kept = brands
        .iter()
        .zip(category_ids.iter())
        .zip(category_codes.iter())
        .zip(search_queries.iter());
    let rows = ids
        .iter()
        .zip(times.iter())
        .zip(quantities.iter())
        .zip(prices.iter())
        .zip(totals.iter())
        .zip(extras.iter())
        .zip(kept);

    let mut encoded = EncodedEvents {
        ids: Vec::with_capacity(good.height()),
        facts: Vec::with_capacity(good.height()),
        tuples: Bytes::new(),
        ends: Vec::with_capacity(good.height()),
    };
    let mut out = BytesMut::with_capacity(good.height() * 200);
    for (
        (((((id, time), quantity), price), total), extra),
        (((brand, category_id), category_code), search_query),
    ) in rows
    {
        // The rules admitted only UUIDs; anything else here is a bug, not a duplicate.
        let id = id.and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(
            || polars_err!(ComputeError: "an event id is not a UUID after validation"),
        )?;
        // The rules admitted only rows with a time in range; anything else here is a bug.
        let micros = time.ok_or_else(
            || polars_err!(ComputeError: "an event has no event_time after validation"),
        )?;
        let time: Option<DateTime<Utc>> = DateTime::from_timestamp_micros(micros);
        // The rules checked the range; an out-of-range value would meet NOT NULL and fail loudly.
        let quantity = quantity.and_then(|q| i32::try_from(q).ok());
        out.put_i16(COPY_EVENTS_FIELDS);
        put_field(&mut out, &id, &Type::UUID)?;
        put_field(&mut out, &time, &Type::TIMESTAMPTZ)?;
        put_field(&mut out, &quantity, &Type::INT4)?;
        put_field(&mut out, &price.map(Decimal), &Type::NUMERIC)?;
        put_field(&mut out, &total.map(Decimal), &Type::NUMERIC)?;
        put_field(&mut out, &extra.map(JsonText), &Type::JSONB)?;
        put_field(&mut out, &source_file, &Type::TEXT)?;
        let mut text: [Option<&str>; TEXT_COLUMNS.len()] = [None; TEXT_COLUMNS.len()];
        for (value, it) in text.iter_mut().zip(text_iters.iter_mut()) {
            *value = it.next().flatten();
            put_field(&mut out, value, &Type::TEXT)?;
        }
        // The profile's mapping admitted only digits that fit a bigint.
        let category_id: Option<i64> = category_id.map(|v| v.parse()).transpose().map_err(
            |e| polars_err!(ComputeError: "category_id is not a bigint after mapping: {e}"),
        )?;
        put_field(&mut out, &brand, &Type::TEXT)?;
        put_field(&mut out, &category_id, &Type::INT8)?;
        put_field(&mut out, &category_code, &Type::TEXT)?;
        put_field(&mut out, &search_query, &Type::TEXT)?;
        encoded.ids.push(id);
        encoded
            .facts
            .push(facts(&text, time, quantity, price, total)?);
        encoded.ends.push(out.len());
    }
    encoded.tuples = out.freeze();
    Ok(encoded)
}

/// The derive's view of one row (`text` in `TEXT_COLUMNS` order).
fn facts(
    text: &[Option<&str>; TEXT_COLUMNS.len()],
    time: Option<DateTime<Utc>>,
    quantity: Option<i32>,
    price: Option<&str>,
    total: Option<&str>,
) -> Result<EventFacts, LoadError> {
    let [user_id, session_id, event_type, product_id, category, ..] = *text;
    let required = |v: Option<&str>, what: &str| {
        v.map(String::from)
            .ok_or_else(|| polars_err!(ComputeError: "{what} is missing after validation"))
    };
    let kind = event_type
        .and_then(EventKind::parse)
        .ok_or_else(|| polars_err!(ComputeError: "an event type is unknown after validation"))?;
    // A search names no product (the rules kept its product columns empty): the derive counts
    // it in its session, hour and user, never as a product's.
    let search = kind == EventKind::Search;
    let total_sum = total.map(ExactSum::parse).transpose().map_err(
        |e| polars_err!(ComputeError: "total_amount cannot be summed after validation: {e}"),
    )?;
    Ok(EventFacts {
        time: time
            .ok_or_else(|| polars_err!(ComputeError: "an event time is missing after validation"))?
            .timestamp_micros(),
        kind,
        user_id: required(user_id, "user_id")?,
        session_id: required(session_id, "session_id")?,
        product_id: if search {
            String::new()
        } else {
            required(product_id, "product_id")?
        },
        category: category.map(String::from),
        quantity: match quantity {
            Some(q) => q,
            None if search => 0,
            None => {
                return Err(
                    polars_err!(ComputeError: "a quantity is missing after validation").into(),
                )
            }
        },
        unit_price: price.and_then(|p| p.parse().ok()).unwrap_or(f64::NAN),
        price: (kind == EventKind::Purchase)
            .then(|| price.map(String::from))
            .flatten(),
        total: total.map(String::from),
        total_sum,
    })
}

/// One field of a binary COPY tuple: its length (-1 for NULL), then its bytes.
fn put_field(out: &mut BytesMut, value: &(dyn ToSql + Sync), ty: &Type) -> Result<(), LoadError> {
    let at = out.len();
    out.put_i32(0);
    let written = value
        .to_sql_checked(ty, out)
        .map_err(|e| polars_err!(ComputeError: "cannot encode a {ty} value: {e}"))?;
    let len = match written {
        IsNull::Yes => -1,
        IsNull::No => (out.len() - at - 4) as i32,
    };
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Binary COPY's fixed header: signature, flags, header extension length.
pub(super) const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_tuple_has_one_field_per_column_of_the_copy() {
        let columns = COPY_EVENTS
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list.split(',').count())
            .unwrap();
        assert_eq!(columns, COPY_EVENTS_FIELDS as usize);
    }
}
