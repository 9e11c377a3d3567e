//! The docpulse binary: reads the configuration, starts the server, stops on a signal.

use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use docpulse::admin;
use docpulse::config::{self, Config};
use docpulse::startup::Application;
use docpulse::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole chain: what failed, then why.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if let Some(argument) = arguments.first() {
        if argument == "--help" || argument == "-h" {
            print!("{}", config::help());
            return Ok(());
        }
        if argument == "admin" {
            let config = Config::from_env().context("invalid configuration")?;
            print!("{}", admin::run(&config, &arguments[1..]).await?);
            return Ok(());
        }
        anyhow::bail!(
            "unknown argument {argument:?}: docpulse takes its settings from environment \
             variables, listed by `docpulse --help`"
        );
    }
    telemetry::init();
    let config = Config::from_env().context("invalid configuration")?;
    let application = Application::build(config)
        .await
        .context("failed to start the server")?;
    stop_on_signal(application.shutdown_token())?;
    tracing::info!(
        "docpulse is listening on http://{}",
        application.local_addr()
    );
    application.run_until_stopped().await
}

/// Cancels `shutdown` on the first SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are registered before this returns, so a signal sent as soon as the server
/// says it listens is already a graceful stop, never the default abrupt exit.
#[cfg(unix)]
fn stop_on_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("received {name}, shutting down");
        shutdown.cancel();
    });
    Ok(())
}

/// Cancels `shutdown` on the first Ctrl-C.
#[cfg(not(unix))]
fn stop_on_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("received Ctrl-C, shutting down");
            shutdown.cancel();
        }
    });
    Ok(())
}
