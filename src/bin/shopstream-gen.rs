//! shopstream-gen: parse flags → generator::run → print what was written.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use shopstream::config::GenArgs;
use shopstream::progress::Progress;
use shopstream::{generator, telemetry};
use tracing::info;

fn main() -> ExitCode {
    telemetry::init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            telemetry::eprint_line(&format!("shopstream-gen: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let settings = GenArgs::parse().validate()?;
    info!(
        seed = settings.seed,
        files = settings.files,
        rows_per_file = settings.rows_per_file,
        layout = ?settings.layout,
        shape = ?settings.shape,
        out = %settings.out_dir.display(),
        "Generating."
    );
    let total = (settings.files * settings.rows_per_file) as u64;
    let mut progress = Progress::new("rows", total);
    let report =
        generator::run(&settings, |rows| progress.set(rows)).context("generation failed")?;
    progress.finish();
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    telemetry::print_line(&format!(
        "shopstream-gen: wrote {} rows in {} files to {} in {:.2}s ({:.0} rows/s); seed {}, duplicates {}, late {}, invalid {}",
        report.rows,
        report.files.len(),
        settings.out_dir.display(),
        secs,
        report.rows as f64 / secs,
        settings.seed,
        report.duplicates,
        report.late,
        report.invalid
    ));
    if !report.stream_files.is_empty() {
        telemetry::print_line(&format!(
            "shopstream-gen: wrote {} transaction lines and {} inventory updates in {} files",
            report.transaction_lines,
            report.inventory_updates,
            report.stream_files.len()
        ));
    }
    Ok(())
}
