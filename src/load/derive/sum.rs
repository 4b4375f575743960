//! Exact sums of the contract's decimal text (`12.50`, `-3`, `+0.125`), so revenue can be added
//! up on the watcher without ever rounding. Pure arithmetic; knows nothing of tables.

use std::fmt;

use crate::load::binary::split_decimal;

/// Digits a contract decimal may carry on either side of the point (the rules refuse more), so
/// that a sum of any realistic number of them fits an i128 exactly.
pub const MAX_INTEGER_DIGITS: usize = 20;
pub const MAX_FRACTION_DIGITS: usize = 12;

/// A decimal as an integer count of `10^-scale` units: `12.50` is 1250 at scale 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExactSum {
    units: i128,
    scale: u32,
}

/// Why a value or a sum cannot be held exactly.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SumError {
    #[error("{0:?} is not a decimal of at most {MAX_INTEGER_DIGITS} digits before and {MAX_FRACTION_DIGITS} after the point")]
    NotADecimal(String),
    #[error("a sum of amounts exceeds 38 significant digits")]
    Overflow,
}

impl ExactSum {
    /// Parses validated decimal text.
    pub fn parse(text: &str) -> Result<ExactSum, SumError> {
        let bad = || SumError::NotADecimal(text.to_string());
        let (negative, int, frac) = split_decimal(text).ok_or_else(bad)?;
        if int.trim_start_matches('0').len() > MAX_INTEGER_DIGITS
            || frac.len() > MAX_FRACTION_DIGITS
        {
            return Err(bad());
        }
        let mut units: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units * 10 + i128::from(b - b'0');
        }
        Ok(ExactSum {
            units: if negative { -units } else { units },
            scale: frac.len() as u32,
        })
    }

    /// Adds `other`, at the larger of the two scales (as Postgres' `sum(numeric)` does).
    pub fn add(&mut self, other: ExactSum) -> Result<(), SumError> {
        let scale = self.scale.max(other.scale);
        let a = rescale(self.units, self.scale, scale)?;
        let b = rescale(other.units, other.scale, scale)?;
        self.units = a.checked_add(b).ok_or(SumError::Overflow)?;
        self.scale = scale;
        Ok(())
    }
}

fn rescale(units: i128, from: u32, to: u32) -> Result<i128, SumError> {
    10i128
        .checked_pow(to - from)
        .and_then(|f| units.checked_mul(f))
        .ok_or(SumError::Overflow)
}

/// Decimal text at the sum's scale, e.g. `-0.05`; what [`crate::load::binary::Decimal`] sends.
impl fmt::Display for ExactSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let digits = self.units.unsigned_abs().to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(values: &[&str]) -> String {
        let mut total = ExactSum::default();
        for v in values {
            total.add(ExactSum::parse(v).unwrap()).unwrap();
        }
        total.to_string()
    }

    #[test]
    fn sums_are_exact_at_the_largest_scale() {
        assert_eq!(sum(&[]), "0");
        assert_eq!(sum(&["12.50", "0.125"]), "12.625");
        assert_eq!(sum(&["0.1", "0.2"]), "0.3");
        assert_eq!(sum(&["-5", "3.00"]), "-2.00");
        assert_eq!(sum(&["+7", "-0.07"]), "6.93");
        assert_eq!(sum(&["0.005", "-0.01"]), "-0.005");
        assert_eq!(sum(&["-0"]), "0");
        assert_eq!(
            sum(&["99999999999999999999.999999999999"; 3]),
            "299999999999999999999.999999999997"
        );
    }

    #[test]
    fn values_beyond_the_contracts_digits_are_refused() {
        for bad in [
            "",
            "1.",
            ".5",
            "1e5",
            "123456789012345678901",
            "0.1234567890123",
        ] {
            assert!(ExactSum::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ExactSum::parse("000000000000000000000001.5").is_ok());
    }

    #[test]
    fn an_overflowing_sum_is_an_error_not_a_wrong_number() {
        let big = ExactSum::parse("99999999999999999999.999999999999").unwrap();
        let mut total = ExactSum::default();
        let overflowed = (0..10_000_000).any(|_| total.add(big).is_err());
        assert!(overflowed);
    }
}
