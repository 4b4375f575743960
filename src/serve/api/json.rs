//! A result row as a JSON object, keyed by the query's column names: integers, floats and
//! booleans as JSON numbers and booleans, timestamps as RFC 3339 UTC text, `jsonb` as JSON.
//! `numeric` is never decoded here: the queries cast money and rates to text (exact decimals,
//! documented in the OpenAPI description), so a float never rounds them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::Row;

use super::ApiError;

/// One row as an object, columns in query order.
///
/// # Errors
/// `Internal` when a column has a type the API does not map (a query bug, e.g. an uncast
/// `numeric`).
pub fn object(row: &Row) -> Result<Map<String, Value>, ApiError> {
    let mut map = Map::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        map.insert(column.name().to_string(), value(row, i, column.type_())?);
    }
    Ok(map)
}

/// Every row as an array of objects.
pub fn array(rows: &[Row]) -> Result<Value, ApiError> {
    rows.iter()
        .map(|r| object(r).map(Value::Object))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn value(row: &Row, i: usize, ty: &Type) -> Result<Value, ApiError> {
    let v = match *ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(Value::from),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(Value::from),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(Value::from),
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::from),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(Value::from),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::from),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(i)?.map(Value::from)
        }
        Type::UUID => row
            .try_get::<_, Option<uuid::Uuid>>(i)?
            .map(|u| Value::from(u.to_string())),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<DateTime<Utc>>>(i)?
            .map(|t| Value::from(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
        Type::JSONB | Type::JSON => row.try_get::<_, Option<Value>>(i)?,
        _ => {
            return Err(ApiError::Internal(format!(
                "column {} has type {ty}, which the API does not map",
                row.columns()[i].name()
            )))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}
