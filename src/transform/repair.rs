//! Repairs: a damaged value of an optional target (one the contract lets be empty) does not cost
//! its row. The row loads with that target NULL, the raw text is kept in `events.extra` under
//! `<target>_raw`, and a [`RowWarning`] reports it (`streaming.row_warnings`). Owns which targets
//! are optional and the `_raw` key; deciding that a value is damaged is the mapping's and the
//! rules'; storing warnings is load's.

use super::profile::REQUIRED_TARGETS;

/// A value that could not be used; its row loaded with the target NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct RowWarning {
    /// 1-based line in the file.
    pub line: u64,
    /// The column as the file names it (`category_id`, `Geraet`).
    pub column: String,
    /// The contract's target the value was meant for.
    pub target: &'static str,
    pub reason: String,
    /// The value as written (trimmed).
    pub raw_value: String,
}

/// Whether a damaged value of `target` is dropped instead of rejecting its row. Not the ids,
/// the time or the required columns, and not `total_amount`: a purchase needs it, and a NULL
/// total would be revenue silently lost; not `search_query`, which a search needs.
pub(crate) fn is_optional(target: &str) -> bool {
    !REQUIRED_TARGETS.contains(&target)
        && !matches!(target, "event_id" | "total_amount" | "search_query")
}

/// Key of `events.extra` holding the raw text of a repaired target.
pub(crate) fn raw_key(target: &str) -> String {
    format!("{target}_raw")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::profile::TARGETS;

    #[test]
    fn only_attributes_the_contract_lets_be_empty_are_repaired() {
        let optional: Vec<&str> = TARGETS.into_iter().filter(|t| is_optional(t)).collect();
        assert_eq!(
            optional,
            [
                "product_category",
                "device",
                "country",
                "brand",
                "category_id",
                "category_code"
            ]
        );
    }
}
