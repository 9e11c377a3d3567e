//! Tracing subscriber set-up: human-readable logs on stderr, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is not set (also shown by `--help`).
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// Installs the global tracing subscriber.
///
/// Calling it again (several tests in one process) keeps the first subscriber.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // A second call fails because a subscriber is already set; that one stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
