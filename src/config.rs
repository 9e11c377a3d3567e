//! The server's configuration: every environment variable, parsed and validated once at start.
//!
//! **Invariant:** a bad value fails the start with an error that names the variable and the
//! expected form; nothing deeper in the server re-reads the environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::storage::Backend;

/// Address served when `LEPTOS_SITE_ADDR` is unset (the same as the cargo-leptos metadata).
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// Heartbeat interval of event streams when `HEARTBEAT_SECS` is unset, as API.md says.
pub const DEFAULT_HEARTBEAT_SECS: u64 = 30;
/// Coalescing window when `COALESCE_MS` is unset, as API.md says.
pub const DEFAULT_COALESCE_MS: u64 = 100;
/// Events kept per project for resuming streams when `RETAIN_EVENTS` is unset.
pub const DEFAULT_RETAIN_EVENTS: usize = 1024;
/// Frames a stream may fall behind before it is resynced, when `SUBSCRIBER_BACKLOG` is unset.
pub const DEFAULT_SUBSCRIBER_BACKLOG: usize = 256;
/// Data folder when `DATA_DIR` is unset, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";
/// File name of the SQLite database inside the data folder.
pub const DEFAULT_DATABASE_FILE: &str = "docpulse.db";
/// Background workers processing jobs when `WORKERS` is unset.
pub const DEFAULT_WORKERS: usize = 2;
/// Pause before each chunk is embedded when `EMBED_DELAY_MS` is unset, so that progress is
/// visible: a page of text (a few 800-character chunks) takes a few seconds.
pub const DEFAULT_EMBED_DELAY_MS: u64 = 750;
/// Seconds a claimed job stays its worker's without news when `JOB_LEASE_SECS` is unset:
/// the longest a job of a crashed instance waits before another takes it over.
pub const DEFAULT_JOB_LEASE_SECS: usize = 30;
/// Largest document text (one upload file or JSON `content`) when `MAX_DOCUMENT_BYTES` is
/// unset.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Shortest accepted `JWT_SECRET`: HS256 wants at least 256 bits of key.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// The text printed by `docpulse --help`: every variable, its meaning and its default.
///
/// Defaults are formatted from the constants above, so the help cannot drift from them.
pub fn help() -> String {
    let variables: [(&str, String, String); 16] = [
        (
            "LEPTOS_SITE_ADDR",
            "address and port to listen on (port 0 picks a free one)".to_owned(),
            DEFAULT_ADDR.to_owned(),
        ),
        (
            "DOCPULSE_ENV",
            "`development` or `production`; production requires JWT_SECRET".to_owned(),
            "development".to_owned(),
        ),
        (
            "JWT_SECRET",
            format!("HS256 key of the access tokens, at least {MIN_JWT_SECRET_LEN} characters"),
            "none; development generates one and keeps it in DATA_DIR".to_owned(),
        ),
        (
            "HEARTBEAT_SECS",
            "seconds between heartbeats on an event stream (1 or more)".to_owned(),
            DEFAULT_HEARTBEAT_SECS.to_string(),
        ),
        (
            "COALESCE_MS",
            "window in which updates of one entity are merged (0 turns it off)".to_owned(),
            DEFAULT_COALESCE_MS.to_string(),
        ),
        (
            "RETAIN_EVENTS",
            "events kept per project so a stream can resume after them (1 or more)".to_owned(),
            DEFAULT_RETAIN_EVENTS.to_string(),
        ),
        (
            "SUBSCRIBER_BACKLOG",
            "frames a slow stream may fall behind before it gets `resync` (1 or more)".to_owned(),
            DEFAULT_SUBSCRIBER_BACKLOG.to_string(),
        ),
        (
            "DATA_DIR",
            "folder of the SQLite database and other local state".to_owned(),
            DEFAULT_DATA_DIR.to_owned(),
        ),
        (
            "DATABASE_URL",
            "database to use: a sqlite:// file, or postgres:// shared by several instances"
                .to_owned(),
            format!("sqlite://$DATA_DIR/{DEFAULT_DATABASE_FILE}"),
        ),
        (
            "REDIS_URL",
            "redis:// URL of the event bus shared by several instances".to_owned(),
            "none (the in-memory event bus)".to_owned(),
        ),
        (
            "WORKERS",
            "background workers that chunk, embed and extract documents (1 or more)".to_owned(),
            DEFAULT_WORKERS.to_string(),
        ),
        (
            "EMBED_DELAY_MS",
            "pause after each embedded chunk, so progress is visible (0 for full speed)".to_owned(),
            DEFAULT_EMBED_DELAY_MS.to_string(),
        ),
        (
            "JOB_LEASE_SECS",
            "seconds before a job of a crashed worker is taken over (1 or more)".to_owned(),
            DEFAULT_JOB_LEASE_SECS.to_string(),
        ),
        (
            "MAX_DOCUMENT_BYTES",
            "largest document text accepted, per file (1 or more)".to_owned(),
            DEFAULT_MAX_DOCUMENT_BYTES.to_string(),
        ),
        (
            "DEMO_USER",
            "`true` seeds demo@docpulse.local (password demo) and two projects on first start"
                .to_owned(),
            "true with SQLite, false with PostgreSQL".to_owned(),
        ),
        (
            "RUST_LOG",
            "log filter, e.g. `debug` or `docpulse=debug,tower_http=warn`".to_owned(),
            crate::telemetry::DEFAULT_FILTER.to_owned(),
        ),
    ];
    let mut text = String::from(
        "docpulse: document processing whose every change reaches the browser live\n\n\
         Usage: docpulse [--help]\n       docpulse admin <command> (see `docpulse admin help`)\n\n\
         Configuration comes from environment variables:\n\n",
    );
    for (name, meaning, default) in variables {
        text.push_str(&format!(
            "  {name:<18} {meaning}\n  {:<18} default: {default}\n",
            ""
        ));
    }
    text
}

/// A configuration value that must never be logged; its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// A fresh secret of 32 random bytes, hex-encoded (64 characters).
    ///
    /// # Errors
    ///
    /// The operating system cannot supply randomness.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(
            bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }

    /// The secret itself, for the one place that needs it (key construction).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret([redacted])")
    }
}

/// Where the server runs: development tolerates missing secrets, production does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local use: a missing `JWT_SECRET` is generated and kept in the data folder.
    Development,
    /// Deployed: every secret must come from the environment.
    Production,
}

/// The whole configuration; each component takes its own sub-config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Development or production.
    pub environment: Environment,
    /// Listening socket.
    pub http: HttpConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Event stream timing.
    pub stream: StreamConfig,
    /// Event history, coalescing and backlog bounds.
    pub events: EventsConfig,
    /// Database location.
    pub storage: StorageConfig,
    /// Which event bus carries events between publishers and streams.
    pub bus: BusConfig,
    /// Background job processing.
    pub workers: WorkerConfig,
    /// Limits on documents.
    pub documents: DocumentsConfig,
    /// Whether to seed the demo user and projects on first start (`DEMO_USER`).
    pub demo_user: bool,
}

/// Background job processing.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How many jobs run at once (`WORKERS`).
    pub workers: usize,
    /// Pause after each embedded chunk (`EMBED_DELAY_MS`).
    pub embed_delay: Duration,
    /// Shortest lease of a claimed job (`JOB_LEASE_SECS`); renewed after each chunk.
    pub job_lease: Duration,
}

/// Limits on documents.
#[derive(Debug, Clone)]
pub struct DocumentsConfig {
    /// Largest accepted text of one document, in bytes (`MAX_DOCUMENT_BYTES`).
    pub max_document_bytes: usize,
}

/// Listening socket.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to bind; port 0 binds a free port (tests).
    pub addr: SocketAddr,
}

/// Token verification settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The HS256 key from `JWT_SECRET`; `None` only in development, where one is generated.
    pub jwt_secret: Option<Secret>,
}

/// Event stream timing.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Interval between heartbeat frames (`HEARTBEAT_SECS`).
    pub heartbeat: Duration,
}

/// What the event bus keeps and merges; both bounds keep memory finite.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Window in which updates of one entity are merged (`COALESCE_MS`); zero turns it off.
    pub coalesce_window: Duration,
    /// Events kept per project for `Last-Event-ID` resumes (`RETAIN_EVENTS`).
    pub retain_events: usize,
    /// Frames one stream may fall behind before its backlog is dropped (`SUBSCRIBER_BACKLOG`).
    pub subscriber_backlog: usize,
}

/// Database location.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Folder of local state: the SQLite file, the development secret.
    pub data_dir: PathBuf,
    /// A `sqlite:` or `postgres:` URL.
    pub database_url: String,
}

/// The event bus implementation to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusConfig {
    /// One process: events stay in memory (the default).
    InMemory,
    /// Several instances share events through Redis.
    Redis {
        /// A `redis://` URL (the server is built without TLS, so not `rediss://`).
        url: String,
    },
}

/// A configuration error: which variable, and what it should look like.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is set to something unusable.
    #[error("{variable} must be {expected}{}", got(.value))]
    Invalid {
        /// The environment variable.
        variable: &'static str,
        /// The accepted form, in words.
        expected: &'static str,
        /// The rejected value, `None` for secrets.
        value: Option<String>,
    },
    /// A variable required in this environment is not set.
    #[error("{variable} must be set {reason}")]
    Missing {
        /// The environment variable.
        variable: &'static str,
        /// When it is required.
        reason: &'static str,
    },
}

fn got(value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|value| format!(", got {value:?}"))
        .unwrap_or_default()
}

impl Config {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable that is missing or malformed.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which maps a variable name to its value.
    ///
    /// An empty value counts as unset, as shells make `VAR=` easy to write by accident.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable that is missing or malformed.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let environment = match var("DOCPULSE_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(invalid(
                    "DOCPULSE_ENV",
                    "`development` or `production`",
                    other,
                ));
            }
        };

        let addr_text = var("LEPTOS_SITE_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = addr_text.parse().map_err(|_| {
            invalid(
                "LEPTOS_SITE_ADDR",
                "an IP address and port such as 127.0.0.1:3000",
                &addr_text,
            )
        })?;

        let jwt_secret = match var("JWT_SECRET") {
            Some(secret) if secret.len() < MIN_JWT_SECRET_LEN => {
                return Err(ConfigError::Invalid {
                    variable: "JWT_SECRET",
                    expected: "at least 32 characters long",
                    value: None,
                });
            }
            Some(secret) => Some(Secret::new(secret)),
            None if environment == Environment::Production => {
                return Err(ConfigError::Missing {
                    variable: "JWT_SECRET",
                    reason: "when DOCPULSE_ENV=production",
                });
            }
            None => None,
        };

        let heartbeat_secs = parse_u64(&var, "HEARTBEAT_SECS", DEFAULT_HEARTBEAT_SECS)?;
        if heartbeat_secs == 0 {
            return Err(invalid(
                "HEARTBEAT_SECS",
                "a whole number of seconds, 1 or more",
                "0",
            ));
        }
        let coalesce_ms = parse_u64(&var, "COALESCE_MS", DEFAULT_COALESCE_MS)?;
        let retain_events = parse_count(&var, "RETAIN_EVENTS", DEFAULT_RETAIN_EVENTS)?;
        let subscriber_backlog =
            parse_count(&var, "SUBSCRIBER_BACKLOG", DEFAULT_SUBSCRIBER_BACKLOG)?;

        let data_dir =
            PathBuf::from(var("DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()));
        let database_url = match var("DATABASE_URL") {
            Some(url) if Backend::of_url(&url).is_some() => url,
            Some(url) => {
                return Err(invalid(
                    "DATABASE_URL",
                    "a sqlite: URL such as sqlite://data/docpulse.db or a postgres:// URL",
                    &url,
                ));
            }
            None => format!(
                "sqlite://{}",
                data_dir.join(DEFAULT_DATABASE_FILE).display()
            ),
        };

        let bus = match var("REDIS_URL") {
            None => BusConfig::InMemory,
            Some(url) if url.starts_with("redis://") => BusConfig::Redis { url },
            Some(url) => {
                return Err(invalid(
                    "REDIS_URL",
                    "a redis:// URL (this build has no TLS for rediss://)",
                    &url,
                ));
            }
        };

        let workers = parse_count(&var, "WORKERS", DEFAULT_WORKERS)?;
        let embed_delay_ms = parse_u64(&var, "EMBED_DELAY_MS", DEFAULT_EMBED_DELAY_MS)?;
        let job_lease_secs = parse_count(&var, "JOB_LEASE_SECS", DEFAULT_JOB_LEASE_SECS)?;
        let max_document_bytes =
            parse_count(&var, "MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES)?;
        // A shared PostgreSQL database is a deployment: no account with a known password
        // unless asked for.
        let demo_user = match var("DEMO_USER").as_deref() {
            None => Backend::of_url(&database_url) == Some(Backend::Sqlite),
            Some("true") => true,
            Some("false") => false,
            Some(other) => return Err(invalid("DEMO_USER", "`true` or `false`", other)),
        };

        Ok(Self {
            environment,
            http: HttpConfig { addr },
            auth: AuthConfig { jwt_secret },
            stream: StreamConfig {
                heartbeat: Duration::from_secs(heartbeat_secs),
            },
            events: EventsConfig {
                coalesce_window: Duration::from_millis(coalesce_ms),
                retain_events,
                subscriber_backlog,
            },
            storage: StorageConfig {
                data_dir,
                database_url,
            },
            bus,
            workers: WorkerConfig {
                workers,
                embed_delay: Duration::from_millis(embed_delay_ms),
                job_lease: Duration::from_secs(u64::try_from(job_lease_secs).unwrap_or(u64::MAX)),
            },
            documents: DocumentsConfig { max_document_bytes },
            demo_user,
        })
    }
}

fn invalid(variable: &'static str, expected: &'static str, value: &str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        expected,
        value: Some(value.to_owned()),
    }
}

fn parse_u64(
    var: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match var(variable) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| invalid(variable, "a whole number", &text)),
    }
}

/// A count of 1 or more, such as a buffer size.
fn parse_count(
    var: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: usize,
) -> Result<usize, ConfigError> {
    match var(variable) {
        None => Ok(default),
        Some(text) => match text.trim().parse() {
            Ok(count) if count >= 1 => Ok(count),
            _ => Err(invalid(variable, "a whole number, 1 or more", &text)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[track_caller]
    fn check_error(pairs: &[(&str, &str)], expected_message: &str) {
        let error = config_from(pairs).expect_err("the configuration should be refused");
        assert_eq!(error.to_string(), expected_message);
    }

    #[test]
    fn defaults_need_no_variables() {
        let config = config_from(&[]).expect("defaults are valid");
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(
            config.http.addr,
            DEFAULT_ADDR.parse().expect("valid address")
        );
        assert!(config.auth.jwt_secret.is_none());
        assert_eq!(config.stream.heartbeat, Duration::from_secs(30));
        assert_eq!(config.events.coalesce_window, Duration::from_millis(100));
        assert_eq!(config.events.retain_events, 1024);
        assert_eq!(config.events.subscriber_backlog, 256);
        assert_eq!(config.storage.data_dir, PathBuf::from("data"));
        assert_eq!(config.storage.database_url, "sqlite://data/docpulse.db");
        assert_eq!(config.bus, BusConfig::InMemory);
    }

    #[test]
    fn variables_override_defaults() {
        let config = config_from(&[
            ("LEPTOS_SITE_ADDR", "0.0.0.0:8080"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("HEARTBEAT_SECS", "1"),
            ("COALESCE_MS", "0"),
            ("RETAIN_EVENTS", "16"),
            ("SUBSCRIBER_BACKLOG", "8"),
            ("DATA_DIR", "/var/lib/docpulse"),
            ("REDIS_URL", "redis://127.0.0.1:6390"),
        ])
        .expect("valid configuration");
        assert_eq!(config.http.addr.port(), 8080);
        assert_eq!(
            config.auth.jwt_secret.as_ref().map(Secret::expose),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(config.stream.heartbeat, Duration::from_secs(1));
        assert_eq!(config.events.coalesce_window, Duration::ZERO);
        assert_eq!(config.events.retain_events, 16);
        assert_eq!(config.events.subscriber_backlog, 8);
        assert_eq!(
            config.storage.database_url,
            "sqlite:///var/lib/docpulse/docpulse.db"
        );
        assert_eq!(
            config.bus,
            BusConfig::Redis {
                url: "redis://127.0.0.1:6390".to_owned()
            }
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = config_from(&[("HEARTBEAT_SECS", ""), ("REDIS_URL", " ")])
            .expect("empty values fall back to defaults");
        assert_eq!(config.stream.heartbeat, Duration::from_secs(30));
        assert_eq!(config.bus, BusConfig::InMemory);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_expected_form() {
        check_error(
            &[("HEARTBEAT_SECS", "soon")],
            "HEARTBEAT_SECS must be a whole number, got \"soon\"",
        );
        check_error(
            &[("HEARTBEAT_SECS", "0")],
            "HEARTBEAT_SECS must be a whole number of seconds, 1 or more, got \"0\"",
        );
        check_error(
            &[("COALESCE_MS", "-5")],
            "COALESCE_MS must be a whole number, got \"-5\"",
        );
        check_error(
            &[("RETAIN_EVENTS", "0")],
            "RETAIN_EVENTS must be a whole number, 1 or more, got \"0\"",
        );
        check_error(
            &[("LEPTOS_SITE_ADDR", "localhost")],
            "LEPTOS_SITE_ADDR must be an IP address and port such as 127.0.0.1:3000, got \"localhost\"",
        );
        check_error(
            &[("DATABASE_URL", "mysql://db")],
            "DATABASE_URL must be a sqlite: URL such as sqlite://data/docpulse.db or a postgres:// URL, got \"mysql://db\"",
        );
        check_error(
            &[("REDIS_URL", "127.0.0.1:6379")],
            "REDIS_URL must be a redis:// URL (this build has no TLS for rediss://), got \"127.0.0.1:6379\"",
        );
        check_error(
            &[("DOCPULSE_ENV", "prod")],
            "DOCPULSE_ENV must be `development` or `production`, got \"prod\"",
        );
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        check_error(
            &[("DOCPULSE_ENV", "production")],
            "JWT_SECRET must be set when DOCPULSE_ENV=production",
        );
    }

    #[test]
    fn a_short_jwt_secret_is_refused_without_echoing_it() {
        let error = config_from(&[("JWT_SECRET", "hunter2")]).expect_err("too short");
        let message = error.to_string();
        assert_eq!(message, "JWT_SECRET must be at least 32 characters long");
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }
}
