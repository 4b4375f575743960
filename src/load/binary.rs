//! PostgreSQL binary formats that tokio-postgres has no type for, so that a file's rows can be
//! binary-COPYed straight into `streaming.events`: `numeric` from validated decimal text and
//! `jsonb` from JSON text. Pure encoding; knows nothing of tables or files.
//!
//! Why binary: with text COPY the server parses every timestamp, UUID and decimal again, and
//! the server is where a file's load spends its time.

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// A decimal such as `-12.50` or `+3`, already checked against the contract's pattern
/// `^[-+]?[0-9]+(\.[0-9]+)?$`, sent as `numeric` with its written scale (`12.50` stays `12.50`).
#[derive(Debug, Clone, Copy)]
pub struct Decimal<'a>(pub &'a str);

/// The digits of `numeric`'s wire format are base 10,000: four decimal digits each.
const DIGITS_PER_GROUP: usize = 4;
const NUMERIC_NEG: u16 = 0x4000;

/// Why a value could not be encoded; the rules should have refused it first.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a plain decimal number")]
pub struct NotADecimal(String);

impl Decimal<'_> {
    /// Encodes into `numeric`'s binary form: ndigits, weight, sign, dscale, then the digits.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), NotADecimal> {
        let text = self.0;
        let (negative, int, frac) = split_decimal(text).ok_or_else(|| NotADecimal(text.into()))?;
        let int = int.trim_start_matches('0');
        let dscale = u16::try_from(frac.len()).map_err(|_| NotADecimal(text.to_string()))?;

        // Groups of four digits aligned on the decimal point: the integer part is padded on
        // the left, the fraction on the right.
        let mut groups: Vec<i16> =
            Vec::with_capacity((int.len() + frac.len()) / DIGITS_PER_GROUP + 2);
        let int_pad = (DIGITS_PER_GROUP - int.len() % DIGITS_PER_GROUP) % DIGITS_PER_GROUP;
        push_groups(&mut groups, int.bytes(), int_pad, 0);
        let int_groups = groups.len();
        let frac_pad = (DIGITS_PER_GROUP - frac.len() % DIGITS_PER_GROUP) % DIGITS_PER_GROUP;
        push_groups(&mut groups, frac.bytes(), 0, frac_pad);

        // Leading zero groups of the fraction (0.00005) lower the weight; trailing zero groups
        // carry nothing (the scale keeps the written zeros).
        let leading = groups.iter().take_while(|g| **g == 0).count();
        let weight = int_groups as i64 - 1 - leading as i64;
        let trailing = groups[leading..]
            .iter()
            .rev()
            .take_while(|g| **g == 0)
            .count();
        let digits = &groups[leading..groups.len() - trailing];
        let weight = i16::try_from(weight).map_err(|_| NotADecimal(text.to_string()))?;
        let ndigits = i16::try_from(digits.len()).map_err(|_| NotADecimal(text.to_string()))?;

        out.put_i16(ndigits);
        out.put_i16(if digits.is_empty() { 0 } else { weight });
        out.put_u16(if negative && !digits.is_empty() {
            NUMERIC_NEG
        } else {
            0
        });
        out.put_u16(dscale);
        for d in digits {
            out.put_i16(*d);
        }
        Ok(())
    }
}

/// A plain decimal (`-12.50`, `+3`, `007.1`) as its sign (true when negative), integer digits
/// and fraction digits; `None` for anything else (`1.`, `.5`, `1e5`, `1,5`).
pub fn split_decimal(text: &str) -> Option<(bool, &str, &str)> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let plain = !int.is_empty()
        && all_digits(int)
        && all_digits(frac)
        && !(unsigned.contains('.') && frac.is_empty());
    plain.then_some((negative, int, frac))
}

/// Appends base-10,000 groups of `digits`, as if padded with zeros on either side.
fn push_groups(groups: &mut Vec<i16>, digits: impl Iterator<Item = u8>, left: usize, right: usize) {
    let padded = std::iter::repeat_n(b'0', left)
        .chain(digits)
        .chain(std::iter::repeat_n(b'0', right));
    let mut group = 0i16;
    for (i, d) in padded.enumerate() {
        group = group * 10 + i16::from(d - b'0');
        if i % DIGITS_PER_GROUP == DIGITS_PER_GROUP - 1 {
            groups.push(group);
            group = 0;
        }
    }
}

impl ToSql for Decimal<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.encode(out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

/// A JSON document as text (the transform wrote it), sent as `jsonb`: version 1, then the text.
#[derive(Debug, Clone, Copy)]
pub struct JsonText<'a>(pub &'a str);

const JSONB_VERSION: u8 = 1;

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(JSONB_VERSION);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ndigits, weight, sign, dscale, digits) of the encoding.
    fn fields(text: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let mut out = BytesMut::new();
        Decimal(text).encode(&mut out).unwrap();
        let b = &out[..];
        let word = |i: usize| [b[2 * i], b[2 * i + 1]];
        let digits = (4..b.len() / 2)
            .map(|i| i16::from_be_bytes(word(i)))
            .collect();
        (
            i16::from_be_bytes(word(0)),
            i16::from_be_bytes(word(1)),
            u16::from_be_bytes(word(2)),
            u16::from_be_bytes(word(3)),
            digits,
        )
    }

    #[test]
    fn decimals_encode_as_base_10000_groups_around_the_point() {
        assert_eq!(fields("123.45"), (2, 0, 0, 2, vec![123, 4500]));
        assert_eq!(
            fields("-12345.5"),
            (3, 1, NUMERIC_NEG, 1, vec![1, 2345, 5000])
        );
        assert_eq!(fields("0.00005"), (1, -2, 0, 5, vec![5000]));
        assert_eq!(fields("10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(fields("+7"), (1, 0, 0, 0, vec![7]));
        assert_eq!(fields("0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(fields("-0"), (0, 0, 0, 0, vec![]));
        assert_eq!(fields("007.10"), (2, 0, 0, 2, vec![7, 1000]));
    }

    #[test]
    fn anything_but_a_plain_decimal_is_refused() {
        for bad in ["", "-", "1.", ".5", "1e5", "1,5", "NaN", "1.2.3", " 1"] {
            assert!(
                Decimal(bad).encode(&mut BytesMut::new()).is_err(),
                "{bad:?}"
            );
        }
    }
}
