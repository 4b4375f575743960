//! shopstream-watch: parse flags → watch::run → print what was done. SIGINT and SIGTERM
//! request a graceful stop: the current file commits or rolls back, the mirror flushes, exit 0.

use std::process::ExitCode;

use clap::Parser;
use shopstream::config::WatchArgs;
use shopstream::{telemetry, watch};
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    telemetry::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shopstream-watch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shopstream-watch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = WatchArgs::parse().validate()?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        let _ = stop.send(true);
    });
    let stats = watch::run(settings, shutdown).await?;
    let secs = stats.elapsed.as_secs_f64().max(1e-9);
    println!(
        "shopstream-watch: files loaded {}, duplicate {}, rejected {}; rows {} = loaded {} + rejected {} + duplicate {}; {:.2}s ({:.0} rows/s); files awaiting Kafka mirror {}",
        stats.files_loaded,
        stats.files_duplicate,
        stats.files_rejected,
        stats.rows_total,
        stats.rows_loaded,
        stats.rows_rejected,
        stats.rows_duplicate,
        secs,
        stats.rows_total as f64 / secs,
        stats.unmirrored_files
    );
    Ok(())
}
