//! Service mode's per-file state: files seen but not finished, when each is looked at next and
//! why it may be complete. Kept apart from the claims in Postgres, which decide who reads it.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::landing::Admission;

/// A file waiting to be read.
pub(super) struct Pending {
    /// Why it may be complete before it settled (renamed into place).
    pub hint: Option<Admission>,
    pub due: Instant,
    pub backoff: Backoff,
}

impl Pending {
    pub fn new(hint: Option<Admission>) -> Pending {
        Pending {
            hint,
            due: Instant::now(),
            backoff: super::retry_backoff(),
        }
    }

    /// Look again after `wait`.
    pub fn later(&mut self, wait: Duration) {
        self.due = Instant::now() + wait;
    }

    /// A failed try: look again after the next backoff delay, which is returned.
    pub fn retry_later(&mut self) -> Duration {
        let delay = self.backoff.next_delay();
        self.later(delay);
        delay
    }
}
