//! Why a load failed, and whether trying again can help: transient server states are retried,
//! everything else is reported. Owns the classification of Postgres errors; no I/O.

use polars::prelude::PolarsError;
use tokio_postgres::error::SqlState;

/// Why a load failed, and whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database is unreachable or the transaction was aborted by it; retry later.
    #[error("database unavailable: {}", describe(.0))]
    Unavailable(#[source] tokio_postgres::Error),
    /// Concurrent loads kept colliding on the file's event ids, chunk after chunk; the file is
    /// read again (those rows then count as duplicates).
    #[error("another watcher loaded some of these event ids at the same moment: {}", describe(.0))]
    Conflict(#[source] tokio_postgres::Error),
    /// A statement waited [`super::LOCK_TIMEOUT`] for a lock another session holds (SQLSTATE
    /// 55P03); nothing was written, and the file is retried with backoff. `held` names the
    /// lock when it could be found (`load::lock_holder`).
    #[error(
        "waited {}s for {} and gave up; the file is tried again later",
        super::LOCK_TIMEOUT.as_secs(),
        .held.as_deref().unwrap_or("a lock held by another session")
    )]
    LockTimeout {
        #[source]
        source: tokio_postgres::Error,
        held: Option<String>,
    },
    /// The database refused the data itself; retrying the same file cannot help.
    #[error("database refused the file: {}", describe(.0))]
    Refused(#[source] tokio_postgres::Error),
    #[error("the file's rows could not be read back from the frame: {0}")]
    Frame(#[from] PolarsError),
    /// An amount beyond what the rules admit reached the derive's exact sums.
    #[error("the file's amounts cannot be summed exactly: {0}")]
    Sum(#[from] super::derive::SumError),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A setting is wrong (the URL's syntax, a password, a database or role that does not
    /// exist, no permission): retrying cannot fix it, so the watcher stops at once.
    #[error("{setting} {url} is wrong: {reason}")]
    Setting {
        setting: &'static str,
        /// Redacted: never with its password.
        url: String,
        reason: String,
    },
}

impl From<tokio_postgres::Error> for LoadError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            LoadError::LockTimeout {
                source: e,
                held: None,
            }
        } else if is_transient(&e) {
            LoadError::Unavailable(e)
        } else {
            LoadError::Refused(e)
        }
    }
}

impl LoadError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LoadError::Unavailable(_) | LoadError::Conflict(_) | LoadError::LockTimeout { .. }
        )
    }

    /// Connecting failed for a reason that retrying cannot fix: a wrong password, an unknown
    /// database or role, no permission to connect.
    pub(super) fn from_connect(e: tokio_postgres::Error, url: &str) -> LoadError {
        let wrong_setting = e.code().is_some_and(|code| {
            [
                SqlState::INVALID_PASSWORD,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                SqlState::INVALID_CATALOG_NAME,
                SqlState::INSUFFICIENT_PRIVILEGE,
            ]
            .contains(code)
        });
        if wrong_setting {
            LoadError::setting(url, describe(&e))
        } else {
            LoadError::Unavailable(e)
        }
    }

    /// The URL does not parse as a Postgres connection string.
    pub(super) fn from_url(e: tokio_postgres::Error, url: &str) -> LoadError {
        LoadError::setting(url, describe(&e))
    }

    fn setting(url: &str, reason: String) -> LoadError {
        LoadError::Setting {
            setting: "DATABASE_URL (--database-url)",
            url: crate::config::redact_url(url),
            reason,
        }
    }

    /// True for [`LoadError::Setting`]: the run should stop with a configuration error.
    pub fn is_wrong_setting(&self) -> bool {
        matches!(self, LoadError::Setting { .. })
    }
}

/// The server's own words when it sent any ("db error" alone says nothing), else the client's.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
            format!("{}: {}{detail}", db.code().code(), db.message())
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Connection loss, server shutdown, serialization failure and deadlock are worth a retry.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("08")
                || code.code().starts_with("57P")
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
    }
}
