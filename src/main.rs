//! The docpulse binary: reads the configuration, starts the server, stops on a signal.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use docpulse::config::{self, Config};
use docpulse::startup::Application;
use docpulse::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        print!("{}", config::help());
        return Ok(());
    }
    telemetry::init();
    let config = Config::from_env().context("invalid configuration")?;
    let application = Application::build(config)
        .await
        .context("failed to start the server")?;
    tracing::info!(
        "docpulse is listening on http://{}",
        application.local_addr()
    );
    stop_on_signal(application.shutdown_token());
    application.run_until_stopped().await
}

/// Cancels `shutdown` on the first SIGINT (Ctrl-C) or SIGTERM.
fn stop_on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => tracing::info!("received SIGINT, shutting down"),
            () = terminate => tracing::info!("received SIGTERM, shutting down"),
        }
        shutdown.cancel();
    });
}
