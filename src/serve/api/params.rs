//! The query string of an API request, checked: known names only, each at most once, values
//! parsed into what the endpoint needs. A bad value is an [`ApiError::BadParameter`] naming the
//! parameter (HTTP 400); a limit above its cap is lowered to the cap, not refused.

use super::ApiError;

/// The raw `name=value` pairs of a request, checked against the endpoint's known names.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Refuses a name not in `known` and a name given twice.
    ///
    /// # Errors
    /// `BadParameter` naming the first unknown or repeated parameter.
    pub fn new(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Params, ApiError> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad(
                    name,
                    format!(
                        "unknown parameter; this endpoint takes: {}",
                        known.join(", ")
                    ),
                ));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad(name, "given more than once"));
            }
        }
        Ok(Params(pairs))
    }

    /// Whether `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A whole number of at least 1: `default` when absent, `cap` when larger than it.
    ///
    /// # Errors
    /// `BadParameter` when the value is not an integer or is below 1.
    pub fn limit(&self, name: &str, default: i64, cap: i64) -> Result<i64, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        match text.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n.min(cap)),
            Ok(_) => Err(ApiError::bad(name, "must be at least 1")),
            Err(_) => Err(ApiError::bad(
                name,
                format!("{text:?} is not a whole number"),
            )),
        }
    }

    /// An optional whole number of at least 1, capped like [`Params::limit`].
    pub fn count(&self, name: &str, cap: i64) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.limit(name, 1, cap).map(Some),
        }
    }

    /// One of `choices` (the first is the default when absent).
    ///
    /// # Errors
    /// `BadParameter` listing the choices.
    pub fn choice(&self, name: &str, choices: &[&'static str]) -> Result<&'static str, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(choices[0]);
        };
        choices.iter().copied().find(|c| *c == text).ok_or_else(|| {
            ApiError::bad(
                name,
                format!("{text:?} is not one of: {}", choices.join(", ")),
            )
        })
    }

    /// `true` or `false`; `None` when absent.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(text) => Err(ApiError::bad(
                name,
                format!("{text:?} is not true or false"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)], known: &[&str]) -> Result<Params, ApiError> {
        let pairs = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Params::new(pairs, known)
    }

    fn parameter(e: ApiError) -> String {
        match e {
            ApiError::BadParameter { parameter, .. } => parameter,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_default_cap_and_refuse_what_is_not_a_positive_integer() {
        let p = params(&[], &["limit"]).unwrap();
        assert_eq!(p.limit("limit", 10, 100).unwrap(), 10);
        let p = params(&[("limit", "5000")], &["limit"]).unwrap();
        assert_eq!(p.limit("limit", 10, 100).unwrap(), 100);
        for bad in ["0", "-3", "ten", "1.5", ""] {
            let p = params(&[("limit", bad)], &["limit"]).unwrap();
            assert_eq!(parameter(p.limit("limit", 10, 100).unwrap_err()), "limit");
        }
    }

    #[test]
    fn unknown_repeated_and_wrong_choices_name_the_parameter() {
        assert_eq!(
            parameter(params(&[("lmit", "1")], &["limit"]).err().unwrap()),
            "lmit"
        );
        let twice = params(&[("limit", "1"), ("limit", "2")], &["limit"]);
        assert_eq!(parameter(twice.err().unwrap()), "limit");
        let p = params(&[("by", "price")], &["by"]).unwrap();
        assert_eq!(
            parameter(p.choice("by", &["revenue", "views"]).unwrap_err()),
            "by"
        );
        let p = params(&[("by", "views")], &["by"]).unwrap();
        assert_eq!(p.choice("by", &["revenue", "views"]).unwrap(), "views");
        let p = params(&[("open", "yes")], &["open"]).unwrap();
        assert_eq!(parameter(p.flag("open").unwrap_err()), "open");
    }
}
