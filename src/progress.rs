//! Progress of a long run for a person watching: an indicatif bar when stderr is a terminal,
//! otherwise a plain `tracing` line at most every [`LOG_EVERY`] (logs and CI stay readable).
//! Owns nothing of the pipeline; dropping it ends the bar.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// Interval between two progress log lines when not on a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Counts `done` out of `total` units (rows, files) of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
    total: u64,
    done: u64,
    last_log: Instant,
}

impl Progress {
    /// A bar on a terminal, periodic log lines otherwise.
    pub fn new(what: &'static str, total: u64) -> Progress {
        Self::with_terminal(what, total, std::io::stderr().is_terminal())
    }

    /// As [`Progress::new`], deciding explicitly whether a terminal is there.
    pub fn with_terminal(what: &'static str, total: u64, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{bar:40.cyan/blue}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what);
            bar
        });
        Progress {
            bar,
            what,
            total,
            done: 0,
            last_log: Instant::now(),
        }
    }

    /// Sets the units done so far.
    pub fn set(&mut self, done: u64) {
        self.done = done;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                info!(what = self.what, done, total = self.total, "Progress.");
            }
            None => {}
        }
    }

    /// One more unit done.
    pub fn inc(&mut self) {
        self.set(self.done + 1);
    }

    /// Ends the bar (left on screen) or logs the final count.
    pub fn finish(&mut self) {
        match self.bar.take() {
            Some(bar) => bar.finish(),
            None => info!(
                what = self.what,
                done = self.done,
                total = self.total,
                "Done."
            ),
        }
    }

    /// Whether a bar is drawn (false: log lines).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_there_is_no_bar_and_counts_still_move() {
        let mut p = Progress::with_terminal("rows", 10, false);
        assert!(!p.is_bar());
        p.inc();
        p.set(7);
        assert_eq!(p.done, 7);
        p.finish();
    }
}
