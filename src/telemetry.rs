//! Logging set-up shared by both binaries: `tracing` to stderr, filtered by `RUST_LOG`
//! (default `info`). Owns no pipeline state.

use tracing_subscriber::EnvFilter;

pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // A closed stderr (a log pipe whose reader died) must not stop ingesting: the line is
        // dropped. tracing-subscriber would otherwise report it with eprintln!, which panics.
        .log_internal_errors(false)
        .try_init();
}

/// Writes a line to stdout, dropping it when stdout is closed (`| head -1`): a summary that
/// cannot be shown is no reason to fail a run that did its work.
pub fn print_line(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// As [`print_line`], for stderr.
pub fn eprint_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
