//! The server's configuration: every environment variable, parsed and validated once at start.
//!
//! Each variable is declared once, as a [`Var`]: its name, its meaning, its default written as
//! a user would write it, and its parser. `--help` ([`help`]) lists [`VARIABLES`], and
//! [`Config::from_lookup`] reads through the same declarations, so the help, the defaults and
//! the parsing cannot drift apart (a test checks that both name the same variables, and that
//! the README's table lists each with its default).
//!
//! **Invariant:** a bad value fails the start with an error that names the variable and the
//! expected form; nothing deeper in the server re-reads the environment.
//! **Invariant:** a secret (the JWT key, a URL's password) never appears in an error message.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::storage::Backend;

/// Shortest accepted `JWT_SECRET`: HS256 wants at least 256 bits of key.
pub const MIN_JWT_SECRET_LEN: usize = 32;
/// File name of the SQLite database inside the data folder.
pub const DEFAULT_DATABASE_FILE: &str = "docpulse.db";

/// The documentation of one variable, as `--help` and the README list it.
#[derive(Debug, Clone, Copy)]
pub struct VarDoc {
    /// The environment variable.
    pub name: &'static str,
    /// What it sets, in words.
    pub meaning: &'static str,
    /// Its default: a value (parsed like a set one) or, for computed defaults, words.
    pub default: &'static str,
}

/// How an unset variable gets its value.
#[derive(Debug, Clone, Copy)]
enum Default {
    /// This text, parsed exactly as if the user had set it.
    Value(&'static str),
    /// No value: the caller computes one; the words say how.
    Computed(&'static str),
}

/// How an invalid value may be shown back in the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// As it was given.
    Plain,
    /// A URL with its password replaced by `***`.
    RedactedUrl,
    /// Not at all (a secret).
    Never,
}

/// One environment variable, declared once: name, meaning, default and parser.
pub struct Var<T> {
    doc: VarDoc,
    default: Default,
    echo: Echo,
    /// Parses a set, non-empty value; `Err` holds the expected form, in words.
    parse: fn(&str) -> Result<T, &'static str>,
}

impl<T> Var<T> {
    const fn new(
        name: &'static str,
        meaning: &'static str,
        default: Default,
        parse: fn(&str) -> Result<T, &'static str>,
    ) -> Self {
        let default_text = match default {
            Default::Value(text) | Default::Computed(text) => text,
        };
        Self {
            doc: VarDoc {
                name,
                meaning,
                default: default_text,
            },
            default,
            echo: Echo::Plain,
            parse,
        }
    }

    const fn echo(self, echo: Echo) -> Self {
        Self { echo, ..self }
    }

    /// The variable's documentation.
    pub const fn doc(&self) -> VarDoc {
        self.doc
    }

    /// The variable's name.
    pub const fn name(&self) -> &'static str {
        self.doc.name
    }

    /// The value set through `lookup`, `None` when unset and the default is computed.
    fn read_optional(&self, lookup: &Lookup<'_>) -> Result<Option<T>, ConfigError> {
        let given = lookup.get(self.doc.name);
        let text = match (&given, self.default) {
            (Some(text), _) => text.as_str(),
            (None, Default::Value(text)) => text,
            (None, Default::Computed(_)) => return Ok(None),
        };
        (self.parse)(text.trim())
            .map(Some)
            .map_err(|expected| ConfigError::Invalid {
                variable: self.doc.name,
                expected,
                value: match self.echo {
                    Echo::Plain => Some(text.to_owned()),
                    Echo::RedactedUrl => Some(redact_url(text)),
                    Echo::Never => None,
                },
            })
    }
}

impl<T> Var<T> {
    /// The value set through `lookup`, or the default.
    ///
    /// # Panics
    ///
    /// The variable's default is computed: such variables are read with `read_optional`
    /// (the defaults test reads every variable, so this cannot reach a release).
    fn read(&self, lookup: &Lookup<'_>) -> Result<T, ConfigError> {
        Ok(self
            .read_optional(lookup)?
            .expect("only variables with a default value are read with `read`"))
    }
}

/// Reads variables, treating an empty value as unset (shells make `VAR=` easy to write by
/// accident).
struct Lookup<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Lookup<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }
}

// The variables, in the order `--help` lists them.

/// `LEPTOS_SITE_ADDR`.
pub const LEPTOS_SITE_ADDR: Var<SocketAddr> = Var::new(
    "LEPTOS_SITE_ADDR",
    "address and port to listen on (port 0 picks a free one)",
    Default::Value("127.0.0.1:3000"),
    |text| {
        text.parse()
            .map_err(|_| "an IP address and port such as 127.0.0.1:3000")
    },
);
/// `DOCPULSE_ENV`.
pub const DOCPULSE_ENV: Var<Environment> = Var::new(
    "DOCPULSE_ENV",
    "`development` or `production`; production requires JWT_SECRET",
    Default::Value("development"),
    |text| match text {
        "development" => Ok(Environment::Development),
        "production" => Ok(Environment::Production),
        _ => Err("`development` or `production`"),
    },
);
/// `JWT_SECRET`.
pub const JWT_SECRET: Var<Secret> = Var::new(
    "JWT_SECRET",
    "HS256 key of the access tokens, at least 32 characters",
    Default::Computed("none; development generates one and keeps it in DATA_DIR"),
    |text| {
        if text.len() < MIN_JWT_SECRET_LEN {
            Err("at least 32 characters long")
        } else {
            Ok(Secret::new(text.to_owned()))
        }
    },
)
.echo(Echo::Never);
/// `HEARTBEAT_SECS`.
pub const HEARTBEAT_SECS: Var<Duration> = Var::new(
    "HEARTBEAT_SECS",
    "seconds between heartbeats on an event stream (1 or more)",
    Default::Value("30"),
    seconds,
);
/// `COALESCE_MS`.
pub const COALESCE_MS: Var<Duration> = Var::new(
    "COALESCE_MS",
    "window in which updates of one entity are merged (0 turns it off)",
    Default::Value("100"),
    |text| whole(text).map(Duration::from_millis),
);
/// `RETAIN_EVENTS`.
pub const RETAIN_EVENTS: Var<usize> = Var::new(
    "RETAIN_EVENTS",
    "events kept per project so a stream can resume after them (1 or more)",
    Default::Value("1024"),
    count,
);
/// `RETAIN_BYTES`.
pub const RETAIN_BYTES: Var<usize> = Var::new(
    "RETAIN_BYTES",
    "bytes of event frames kept per project in memory, whatever RETAIN_EVENTS says (1 or more)",
    Default::Value("4194304"),
    count,
);
/// `OUTBOX_LATE_SECS`.
pub const OUTBOX_LATE_SECS: Var<Duration> = Var::new(
    "OUTBOX_LATE_SECS",
    "seconds a committed change may wait for its announcement before its project's streams \
     get `resync` (1 or more)",
    Default::Value("10"),
    seconds,
);
/// `SUBSCRIBER_BACKLOG`.
pub const SUBSCRIBER_BACKLOG: Var<usize> = Var::new(
    "SUBSCRIBER_BACKLOG",
    "frames a slow stream may fall behind before it gets `resync` (1 or more)",
    Default::Value("256"),
    count,
);
/// `PROJECT_IDLE_SECS`.
pub const PROJECT_IDLE_SECS: Var<Duration> = Var::new(
    "PROJECT_IDLE_SECS",
    "seconds after which the in-memory bus forgets a project with no stream and no event \
     (a later resume gets `resync`)",
    Default::Value("600"),
    seconds,
);
/// `DATA_DIR`.
pub const DATA_DIR: Var<PathBuf> = Var::new(
    "DATA_DIR",
    "folder of the SQLite database and other local state",
    Default::Value("data"),
    |text| Ok(PathBuf::from(text)),
);
/// `DATABASE_URL`.
pub const DATABASE_URL: Var<String> = Var::new(
    "DATABASE_URL",
    "database to use: a sqlite:// file, or postgres:// shared by several instances",
    Default::Computed("sqlite://$DATA_DIR/docpulse.db"),
    |text| {
        Backend::of_url(text)
            .map(|_| text.to_owned())
            .ok_or("a sqlite: URL such as sqlite://data/docpulse.db or a postgres:// URL")
    },
)
.echo(Echo::RedactedUrl);
/// `REDIS_URL`.
pub const REDIS_URL: Var<String> = Var::new(
    "REDIS_URL",
    "redis:// URL of the event bus shared by several instances",
    Default::Computed("none (the in-memory event bus)"),
    |text| {
        if text.starts_with("redis://") {
            Ok(text.to_owned())
        } else {
            Err("a redis:// URL (this build has no TLS for rediss://)")
        }
    },
)
.echo(Echo::RedactedUrl);
/// `WORKERS`.
pub const WORKERS: Var<usize> = Var::new(
    "WORKERS",
    "background workers that chunk, embed and extract documents (1 or more)",
    Default::Value("2"),
    count,
);
/// `EMBED_DELAY_MS`.
pub const EMBED_DELAY_MS: Var<Duration> = Var::new(
    "EMBED_DELAY_MS",
    "pause before each embedded chunk, so progress is visible (0 for full speed)",
    Default::Value("750"),
    |text| whole(text).map(Duration::from_millis),
);
/// `JOB_LEASE_SECS`.
pub const JOB_LEASE_SECS: Var<Duration> = Var::new(
    "JOB_LEASE_SECS",
    "seconds before a job of a crashed worker is taken over (1 or more)",
    Default::Value("30"),
    seconds,
);
/// `EXTRACTION_BUDGET_MS`.
pub const EXTRACTION_BUDGET_MS: Var<Duration> = Var::new(
    "EXTRACTION_BUDGET_MS",
    "longest an extraction may compute; past it, the graph of the text read so far is kept \
     (1 or more)",
    Default::Value("5000"),
    |text| match text.parse() {
        Ok(ms) if ms >= 1 => Ok(Duration::from_millis(ms)),
        _ => Err("a whole number of milliseconds, 1 or more"),
    },
);
/// `EXTRACTION_MAX_SENTENCE_CHARS`.
pub const EXTRACTION_MAX_SENTENCE_CHARS: Var<usize> = Var::new(
    "EXTRACTION_MAX_SENTENCE_CHARS",
    "longest sentence extraction reads whole; a longer one is cut into pieces (1 or more)",
    Default::Value("2000"),
    count,
);
/// `EXTRACTION_MAX_NAMES_PER_SENTENCE`.
pub const EXTRACTION_MAX_NAMES_PER_SENTENCE: Var<usize> = Var::new(
    "EXTRACTION_MAX_NAMES_PER_SENTENCE",
    "names of one sentence that are related to each other; later ones are counted but not \
     paired (1 or more)",
    Default::Value("24"),
    count,
);
/// `EXTRACTION_MAX_PAIRS`.
pub const EXTRACTION_MAX_PAIRS: Var<usize> = Var::new(
    "EXTRACTION_MAX_PAIRS",
    "distinct related pairs (and distinct names) counted per document (1 or more)",
    Default::Value("20000"),
    count,
);
/// `MAX_DOCUMENT_BYTES`.
pub const MAX_DOCUMENT_BYTES: Var<usize> = Var::new(
    "MAX_DOCUMENT_BYTES",
    "largest document text accepted, per file or JSON content (1 or more)",
    Default::Value("1048576"),
    count,
);
/// `MAX_UPLOAD_FILES`.
pub const MAX_UPLOAD_FILES: Var<usize> = Var::new(
    "MAX_UPLOAD_FILES",
    "files one upload may carry; an upload body may be this many MAX_DOCUMENT_BYTES plus \
     4 KiB each and 64 KiB (1 or more)",
    Default::Value("20"),
    count,
);
/// `MAX_CONNECTIONS`.
pub const MAX_CONNECTIONS: Var<usize> = Var::new(
    "MAX_CONNECTIONS",
    "open connections (event streams included); more are answered `503 overloaded` \
     (1 or more)",
    Default::Computed("the open-file limit minus 512"),
    count,
);
/// `MAX_STREAMS_PER_USER`.
pub const MAX_STREAMS_PER_USER: Var<usize> = Var::new(
    "MAX_STREAMS_PER_USER",
    "event streams open at once per token subject (`sub`); more are answered \
     `429 rate_limited` (1 or more)",
    Default::Value("32"),
    count,
);
/// `STREAM_ADMISSION_RATE`.
pub const STREAM_ADMISSION_RATE: Var<usize> = Var::new(
    "STREAM_ADMISSION_RATE",
    "new event streams this instance admits in any one second (in bursts of a hundredth of \
     it); more are answered `503 overloaded` with a jittered Retry-After (1 or more)",
    Default::Value("2000"),
    count,
);
/// `SHUTDOWN_SPREAD_SECS`.
pub const SHUTDOWN_SPREAD_SECS: Var<Duration> = Var::new(
    "SHUTDOWN_SPREAD_SECS",
    "window over which a stopping server ends its event streams, each at a random moment \
     and told a random `retry:` within it, so clients do not come back at once (0: all \
     at once; less than SHUTDOWN_TIMEOUT_SECS)",
    Default::Value("2"),
    |text| whole(text).map(Duration::from_secs),
);
/// `HEADER_TIMEOUT_SECS`.
pub const HEADER_TIMEOUT_SECS: Var<Duration> = Var::new(
    "HEADER_TIMEOUT_SECS",
    "seconds a new connection has to send its first request head (1 or more)",
    Default::Value("10"),
    seconds,
);
/// `IDLE_TIMEOUT_SECS`.
pub const IDLE_TIMEOUT_SECS: Var<Duration> = Var::new(
    "IDLE_TIMEOUT_SECS",
    "seconds a kept-alive connection may wait for its next request head, sent whole \
     (1 or more)",
    Default::Value("60"),
    seconds,
);
/// `BODY_TIMEOUT_SECS`.
pub const BODY_TIMEOUT_SECS: Var<Duration> = Var::new(
    "BODY_TIMEOUT_SECS",
    "longest wait for the next piece of a request body (1 or more)",
    Default::Value("10"),
    seconds,
);
/// `REQUEST_TIMEOUT_SECS`.
pub const REQUEST_TIMEOUT_SECS: Var<Duration> = Var::new(
    "REQUEST_TIMEOUT_SECS",
    "longest a request other than an event stream may take, body included (1 or more)",
    Default::Value("300"),
    seconds,
);
/// `SHUTDOWN_TIMEOUT_SECS`.
pub const SHUTDOWN_TIMEOUT_SECS: Var<Duration> = Var::new(
    "SHUTDOWN_TIMEOUT_SECS",
    "seconds a graceful stop waits for requests in flight before closing them (1 or more)",
    Default::Value("10"),
    seconds,
);
/// `CLIENT_IP_HEADER`.
pub const CLIENT_IP_HEADER: Var<String> = Var::new(
    "CLIENT_IP_HEADER",
    "request header holding the client's address, set by a proxy in front (e.g. X-Real-IP); \
     only behind a proxy that always sets it",
    Default::Computed("none: the connection's peer address"),
    |text| {
        axum::http::HeaderName::try_from(text)
            .map(|name| name.as_str().to_owned())
            .map_err(|_| "an HTTP header name such as X-Real-IP")
    },
);
/// `LOGIN_HASH_CONCURRENCY`.
pub const LOGIN_HASH_CONCURRENCY: Var<usize> = Var::new(
    "LOGIN_HASH_CONCURRENCY",
    "password hashes (19 MiB each) computed at once (1 or more)",
    Default::Computed("the number of CPU cores"),
    count,
);
/// `LOGIN_HASH_QUEUE`.
pub const LOGIN_HASH_QUEUE: Var<usize> = Var::new(
    "LOGIN_HASH_QUEUE",
    "logins that may wait for a password hash; more are answered `503 overloaded`",
    Default::Value("16"),
    whole_usize,
);
/// `LOGIN_ATTEMPTS_PER_ADDRESS`.
pub const LOGIN_ATTEMPTS_PER_ADDRESS: Var<u32> = Var::new(
    "LOGIN_ATTEMPTS_PER_ADDRESS",
    "logins per minute from one client address (an IPv6 /64); more are answered \
     `429 rate_limited` (1 or more)",
    Default::Value("30"),
    per_minute,
);
/// `LOGIN_FAILURES_PER_ACCOUNT`.
pub const LOGIN_FAILURES_PER_ACCOUNT: Var<u32> = Var::new(
    "LOGIN_FAILURES_PER_ACCOUNT",
    "failed logins per minute for one email, from browsers that never signed in to it; more \
     are answered `429 rate_limited` (1 or more)",
    Default::Value("5"),
    per_minute,
);
/// `LOGIN_TRACKED_KEYS`.
pub const LOGIN_TRACKED_KEYS: Var<usize> = Var::new(
    "LOGIN_TRACKED_KEYS",
    "client addresses and emails the login throttle remembers at once (1 or more)",
    Default::Value("100000"),
    count,
);
/// `ACCESS_TOKEN_SECS`.
pub const ACCESS_TOKEN_SECS: Var<Duration> = Var::new(
    "ACCESS_TOKEN_SECS",
    "seconds a login's access token lives; the browser renews it from its session (which \
     lives 12 hours) before then, and a stream whose token expires is resumed with a renewed \
     one (1 to 43200)",
    Default::Value("900"),
    access_token_lifetime,
);
/// `SESSIONS_REMEMBERED`.
pub const SESSIONS_REMEMBERED: Var<usize> = Var::new(
    "SESSIONS_REMEMBERED",
    "sessions whose state an instance keeps in memory, so that a request costs no database \
     round trip (1 or more)",
    Default::Value("100000"),
    count,
);
/// `SEARCH_CONCURRENCY`.
pub const SEARCH_CONCURRENCY: Var<usize> = Var::new(
    "SEARCH_CONCURRENCY",
    "searches that scan chunks at once (1 or more)",
    Default::Computed("the number of CPU cores"),
    count,
);
/// `SEARCH_QUEUE`.
pub const SEARCH_QUEUE: Var<usize> = Var::new(
    "SEARCH_QUEUE",
    "searches that may wait for a scan; more are answered `503 overloaded`",
    Default::Value("32"),
    whole_usize,
);
/// `DEMO_USER`.
pub const DEMO_USER: Var<bool> = Var::new(
    "DEMO_USER",
    "`true` seeds demo@docpulse.local (password demo) and two projects on first start",
    Default::Computed("true with SQLite in development, false otherwise"),
    |text| match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("`true` or `false`"),
    },
);
/// `RUST_LOG`, read by [`crate::telemetry`] before the configuration.
pub const RUST_LOG: Var<String> = Var::new(
    "RUST_LOG",
    "log filter, e.g. `debug` or `docpulse=debug,tower_http=warn`",
    Default::Value(crate::telemetry::DEFAULT_FILTER),
    |text| Ok(text.to_owned()),
);

/// Every variable, in the order `--help` lists them.
pub const VARIABLES: [VarDoc; 44] = [
    LEPTOS_SITE_ADDR.doc(),
    DOCPULSE_ENV.doc(),
    JWT_SECRET.doc(),
    HEARTBEAT_SECS.doc(),
    COALESCE_MS.doc(),
    RETAIN_EVENTS.doc(),
    RETAIN_BYTES.doc(),
    SUBSCRIBER_BACKLOG.doc(),
    OUTBOX_LATE_SECS.doc(),
    PROJECT_IDLE_SECS.doc(),
    DATA_DIR.doc(),
    DATABASE_URL.doc(),
    REDIS_URL.doc(),
    WORKERS.doc(),
    EMBED_DELAY_MS.doc(),
    JOB_LEASE_SECS.doc(),
    EXTRACTION_BUDGET_MS.doc(),
    EXTRACTION_MAX_SENTENCE_CHARS.doc(),
    EXTRACTION_MAX_NAMES_PER_SENTENCE.doc(),
    EXTRACTION_MAX_PAIRS.doc(),
    MAX_DOCUMENT_BYTES.doc(),
    MAX_UPLOAD_FILES.doc(),
    MAX_CONNECTIONS.doc(),
    MAX_STREAMS_PER_USER.doc(),
    STREAM_ADMISSION_RATE.doc(),
    HEADER_TIMEOUT_SECS.doc(),
    IDLE_TIMEOUT_SECS.doc(),
    BODY_TIMEOUT_SECS.doc(),
    REQUEST_TIMEOUT_SECS.doc(),
    SHUTDOWN_TIMEOUT_SECS.doc(),
    SHUTDOWN_SPREAD_SECS.doc(),
    CLIENT_IP_HEADER.doc(),
    LOGIN_HASH_CONCURRENCY.doc(),
    LOGIN_HASH_QUEUE.doc(),
    LOGIN_ATTEMPTS_PER_ADDRESS.doc(),
    LOGIN_FAILURES_PER_ACCOUNT.doc(),
    LOGIN_TRACKED_KEYS.doc(),
    ACCESS_TOKEN_SECS.doc(),
    SESSIONS_REMEMBERED.doc(),
    SEARCH_CONCURRENCY.doc(),
    SEARCH_QUEUE.doc(),
    DEMO_USER.doc(),
    RUST_LOG.doc(),
    VarDoc {
        name: "LEPTOS_SITE_ROOT",
        meaning: "folder of the built site (WASM, JS, CSS), read by Leptos",
        default: "target/site",
    },
];

/// The text printed by `docpulse --help`: every variable, its meaning and its default.
pub fn help() -> String {
    let mut text = String::from(
        "docpulse: document processing whose every change reaches the browser live\n\n\
         Usage: docpulse [--help]\n       docpulse admin <command> (see `docpulse admin help`)\n\n\
         Configuration comes from environment variables:\n\n",
    );
    for VarDoc {
        name,
        meaning,
        default,
    } in VARIABLES
    {
        text.push_str(&format!(
            "  {name:<18} {meaning}\n  {:<18} default: {default}\n",
            ""
        ));
    }
    text
}

fn whole(text: &str) -> Result<u64, &'static str> {
    text.parse().map_err(|_| "a whole number")
}

fn whole_usize(text: &str) -> Result<usize, &'static str> {
    text.parse().map_err(|_| "a whole number")
}

/// A count of 1 or more, such as a buffer size.
fn count(text: &str) -> Result<usize, &'static str> {
    match text.parse() {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err("a whole number, 1 or more"),
    }
}

fn seconds(text: &str) -> Result<Duration, &'static str> {
    match text.parse() {
        Ok(secs) if secs >= 1 => Ok(Duration::from_secs(secs)),
        _ => Err("a whole number of seconds, 1 or more"),
    }
}

fn access_token_lifetime(text: &str) -> Result<Duration, &'static str> {
    match text.parse::<u64>() {
        Ok(secs) if (1..=crate::auth::SESSION_TTL.as_secs()).contains(&secs) => {
            Ok(Duration::from_secs(secs))
        }
        _ => Err("a whole number of seconds from 1 to 43200 (a session's 12 hours)"),
    }
}

fn per_minute(text: &str) -> Result<u32, &'static str> {
    match text.parse() {
        Ok(rate) if rate >= 1 => Ok(rate),
        _ => Err("a whole number per minute, 1 or more"),
    }
}

/// `url` with its password replaced by `***`, also when it does not parse as a URL.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_some() && parsed.set_password(Some("***")).is_ok() {
            return parsed.to_string();
        }
        if parsed.password().is_none() {
            return url.to_owned();
        }
    }
    // Unparsable: hide whatever sits between the scheme and an `@`, where a password would.
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
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
    /// Listening socket and the limits of every connection.
    pub http: HttpConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Password checks and their throttles.
    pub login: LoginConfig,
    /// Event stream timing and limits.
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
    /// Limits on searches.
    pub search: SearchConfig,
    /// Whether to seed the demo user and projects on first start (`DEMO_USER`).
    pub demo_user: bool,
}

/// Background job processing.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How many jobs run at once (`WORKERS`).
    pub workers: usize,
    /// Pause before each embedded chunk (`EMBED_DELAY_MS`).
    pub embed_delay: Duration,
    /// Shortest lease of a claimed job (`JOB_LEASE_SECS`); renewed while the job works.
    pub job_lease: Duration,
    /// Bounds on one document's extraction.
    pub extraction: ExtractionLimits,
}

/// Bounds that make any document's extraction finish in bounded time and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractionLimits {
    /// Longest an extraction computes (`EXTRACTION_BUDGET_MS`).
    pub budget: Duration,
    /// Longest sentence read whole (`EXTRACTION_MAX_SENTENCE_CHARS`).
    pub max_sentence_chars: usize,
    /// Names of one sentence paired with each other (`EXTRACTION_MAX_NAMES_PER_SENTENCE`).
    pub max_names_per_sentence: usize,
    /// Distinct pairs, and distinct names, counted per document (`EXTRACTION_MAX_PAIRS`).
    pub max_pairs: usize,
}

/// Limits on documents.
#[derive(Debug, Clone)]
pub struct DocumentsConfig {
    /// Largest accepted text of one document, in bytes (`MAX_DOCUMENT_BYTES`).
    pub max_document_bytes: usize,
    /// Files one upload may carry (`MAX_UPLOAD_FILES`).
    pub max_upload_files: usize,
}

/// Limits on searches.
#[derive(Debug, Clone, Copy)]
pub struct SearchConfig {
    /// Searches scanning at once (`SEARCH_CONCURRENCY`).
    pub concurrency: usize,
    /// Searches waiting for a scan (`SEARCH_QUEUE`).
    pub queue: usize,
}

/// Listening socket and the limits of every connection, whichever path serves it.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to bind; port 0 binds a free port (tests).
    pub addr: SocketAddr,
    /// Open connections at most (`MAX_CONNECTIONS`); `None` derives it from the open-file
    /// limit at start.
    pub max_connections: Option<usize>,
    /// Time for a new connection's first request head (`HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// Time a kept-alive connection waits for its next request head (`IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body (`BODY_TIMEOUT_SECS`).
    pub body_timeout: Duration,
    /// Longest a request other than an event stream may take (`REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// Longest a graceful stop waits for requests in flight (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
    /// The header a proxy puts the client's address in (`CLIENT_IP_HEADER`), lowercase.
    pub client_ip_header: Option<String>,
}

/// Token verification settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The HS256 key from `JWT_SECRET`; `None` only in development, where one is generated.
    pub jwt_secret: Option<Secret>,
}

/// Password checks and their throttles.
#[derive(Debug, Clone, Copy)]
pub struct LoginConfig {
    /// Password hashes at once (`LOGIN_HASH_CONCURRENCY`).
    pub hash_concurrency: usize,
    /// Logins waiting for a hash (`LOGIN_HASH_QUEUE`).
    pub hash_queue: usize,
    /// Logins per minute per client address (`LOGIN_ATTEMPTS_PER_ADDRESS`).
    pub attempts_per_address: u32,
    /// Failed logins per minute per email from unknown browsers (`LOGIN_FAILURES_PER_ACCOUNT`).
    pub failures_per_account: u32,
    /// Addresses and emails remembered at once (`LOGIN_TRACKED_KEYS`).
    pub tracked_keys: usize,
    /// Sessions whose state is kept in memory (`SESSIONS_REMEMBERED`).
    pub remembered_sessions: usize,
    /// How long a login's access token lives (`ACCESS_TOKEN_SECS`).
    pub access_ttl: Duration,
}

/// Event stream timing and limits.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Interval between heartbeat frames (`HEARTBEAT_SECS`).
    pub heartbeat: Duration,
    /// Streams open at once per token subject (`MAX_STREAMS_PER_USER`).
    pub max_streams_per_user: usize,
    /// New streams admitted per second (`STREAM_ADMISSION_RATE`).
    pub admission_rate: usize,
    /// Window over which a stopping server ends its streams (`SHUTDOWN_SPREAD_SECS`).
    pub shutdown_spread: Duration,
}

/// What the event bus keeps and merges; every bound keeps memory finite.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Window in which updates of one entity are merged (`COALESCE_MS`); zero turns it off.
    pub coalesce_window: Duration,
    /// Events kept per project for `Last-Event-ID` resumes (`RETAIN_EVENTS`).
    pub retain_events: usize,
    /// Bytes of frames kept per project (`RETAIN_BYTES`).
    pub retain_bytes: usize,
    /// Frames one stream may fall behind before its backlog is dropped (`SUBSCRIBER_BACKLOG`).
    pub subscriber_backlog: usize,
    /// Time after which an unused project is forgotten (`PROJECT_IDLE_SECS`).
    pub project_idle: Duration,
    /// Age of an unannounced change past which its project's streams resync
    /// (`OUTBOX_LATE_SECS`).
    pub outbox_late: Duration,
}

impl EventsConfig {
    /// Bounds for tests and benchmarks: the defaults, with `coalesce_window`,
    /// `retain_events` and `subscriber_backlog` as given.
    pub fn bounded(
        coalesce_window: Duration,
        retain_events: usize,
        subscriber_backlog: usize,
    ) -> Self {
        Self {
            coalesce_window,
            retain_events,
            retain_bytes: usize::MAX,
            subscriber_backlog,
            project_idle: Duration::from_secs(600),
            outbox_late: Duration::from_secs(10),
        }
    }
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
        /// The rejected value (a URL's password redacted), `None` for secrets.
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
        let lookup = Lookup(&lookup);
        let environment = DOCPULSE_ENV.read(&lookup)?;
        let jwt_secret = JWT_SECRET.read_optional(&lookup)?;
        if jwt_secret.is_none() && environment == Environment::Production {
            return Err(ConfigError::Missing {
                variable: JWT_SECRET.name(),
                reason: "when DOCPULSE_ENV=production",
            });
        }
        let data_dir = DATA_DIR.read(&lookup)?;
        let database_url = DATABASE_URL.read_optional(&lookup)?.unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                data_dir.join(DEFAULT_DATABASE_FILE).display()
            )
        });
        let bus = match REDIS_URL.read_optional(&lookup)? {
            None => BusConfig::InMemory,
            Some(url) => BusConfig::Redis { url },
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // A shared PostgreSQL database, or production, is a deployment: no account with a
        // known password unless asked for, and never in production.
        let demo_user = match DEMO_USER.read_optional(&lookup)? {
            Some(true) if environment == Environment::Production => {
                return Err(ConfigError::Invalid {
                    variable: DEMO_USER.name(),
                    expected: "`false` when DOCPULSE_ENV=production: the demo account's \
                               password is public",
                    value: Some("true".to_owned()),
                });
            }
            Some(demo_user) => demo_user,
            None => {
                environment == Environment::Development
                    && Backend::of_url(&database_url) == Some(Backend::Sqlite)
            }
        };

        // Streams still open at the shutdown deadline are cut without their `retry:`.
        let shutdown_timeout = SHUTDOWN_TIMEOUT_SECS.read(&lookup)?;
        let shutdown_spread = SHUTDOWN_SPREAD_SECS.read(&lookup)?;
        if shutdown_spread >= shutdown_timeout {
            return Err(ConfigError::Invalid {
                variable: SHUTDOWN_SPREAD_SECS.name(),
                expected: "fewer seconds than SHUTDOWN_TIMEOUT_SECS",
                value: Some(shutdown_spread.as_secs().to_string()),
            });
        }

        Ok(Self {
            environment,
            http: HttpConfig {
                addr: LEPTOS_SITE_ADDR.read(&lookup)?,
                max_connections: MAX_CONNECTIONS.read_optional(&lookup)?,
                header_timeout: HEADER_TIMEOUT_SECS.read(&lookup)?,
                idle_timeout: IDLE_TIMEOUT_SECS.read(&lookup)?,
                body_timeout: BODY_TIMEOUT_SECS.read(&lookup)?,
                request_timeout: REQUEST_TIMEOUT_SECS.read(&lookup)?,
                shutdown_timeout,
                client_ip_header: CLIENT_IP_HEADER.read_optional(&lookup)?,
            },
            auth: AuthConfig { jwt_secret },
            login: LoginConfig {
                hash_concurrency: LOGIN_HASH_CONCURRENCY
                    .read_optional(&lookup)?
                    .unwrap_or(cores),
                hash_queue: LOGIN_HASH_QUEUE.read(&lookup)?,
                attempts_per_address: LOGIN_ATTEMPTS_PER_ADDRESS.read(&lookup)?,
                failures_per_account: LOGIN_FAILURES_PER_ACCOUNT.read(&lookup)?,
                tracked_keys: LOGIN_TRACKED_KEYS.read(&lookup)?,
                remembered_sessions: SESSIONS_REMEMBERED.read(&lookup)?,
                access_ttl: ACCESS_TOKEN_SECS.read(&lookup)?,
            },
            stream: StreamConfig {
                heartbeat: HEARTBEAT_SECS.read(&lookup)?,
                max_streams_per_user: MAX_STREAMS_PER_USER.read(&lookup)?,
                admission_rate: STREAM_ADMISSION_RATE.read(&lookup)?,
                shutdown_spread,
            },
            events: EventsConfig {
                coalesce_window: COALESCE_MS.read(&lookup)?,
                retain_events: RETAIN_EVENTS.read(&lookup)?,
                retain_bytes: RETAIN_BYTES.read(&lookup)?,
                subscriber_backlog: SUBSCRIBER_BACKLOG.read(&lookup)?,
                project_idle: PROJECT_IDLE_SECS.read(&lookup)?,
                outbox_late: OUTBOX_LATE_SECS.read(&lookup)?,
            },
            storage: StorageConfig {
                data_dir,
                database_url,
            },
            bus,
            workers: WorkerConfig {
                workers: WORKERS.read(&lookup)?,
                embed_delay: EMBED_DELAY_MS.read(&lookup)?,
                job_lease: JOB_LEASE_SECS.read(&lookup)?,
                extraction: ExtractionLimits {
                    budget: EXTRACTION_BUDGET_MS.read(&lookup)?,
                    max_sentence_chars: EXTRACTION_MAX_SENTENCE_CHARS.read(&lookup)?,
                    max_names_per_sentence: EXTRACTION_MAX_NAMES_PER_SENTENCE.read(&lookup)?,
                    max_pairs: EXTRACTION_MAX_PAIRS.read(&lookup)?,
                },
            },
            documents: DocumentsConfig {
                max_document_bytes: MAX_DOCUMENT_BYTES.read(&lookup)?,
                max_upload_files: MAX_UPLOAD_FILES.read(&lookup)?,
            },
            search: SearchConfig {
                concurrency: SEARCH_CONCURRENCY.read_optional(&lookup)?.unwrap_or(cores),
                queue: SEARCH_QUEUE.read(&lookup)?,
            },
            demo_user,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

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
            "127.0.0.1:3000".parse().expect("valid address")
        );
        assert!(config.auth.jwt_secret.is_none());
        assert_eq!(config.stream.heartbeat, Duration::from_secs(30));
        assert_eq!(config.events.coalesce_window, Duration::from_millis(100));
        assert_eq!(config.events.retain_events, 1024);
        assert_eq!(config.events.subscriber_backlog, 256);
        assert_eq!(config.storage.data_dir, PathBuf::from("data"));
        assert_eq!(config.storage.database_url, "sqlite://data/docpulse.db");
        assert_eq!(config.bus, BusConfig::InMemory);
        assert_eq!(config.http.max_connections, None);
        assert_eq!(config.login.hash_queue, 16);
        assert!(config.login.hash_concurrency >= 1);
        assert_eq!(config.login.access_ttl, Duration::from_secs(15 * 60));
        assert!(config.demo_user);
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
            ("MAX_CONNECTIONS", "100"),
            ("CLIENT_IP_HEADER", "X-Real-IP"),
            ("ACCESS_TOKEN_SECS", "5"),
        ])
        .expect("valid configuration");
        assert_eq!(config.login.access_ttl, Duration::from_secs(5));
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
        assert_eq!(config.http.max_connections, Some(100));
        assert_eq!(config.http.client_ip_header.as_deref(), Some("x-real-ip"));
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
            "HEARTBEAT_SECS must be a whole number of seconds, 1 or more, got \"soon\"",
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
        check_error(
            &[("LOGIN_ATTEMPTS_PER_ADDRESS", "0")],
            "LOGIN_ATTEMPTS_PER_ADDRESS must be a whole number per minute, 1 or more, got \"0\"",
        );
        for longer_than_a_session in ["0", "43201"] {
            check_error(
                &[("ACCESS_TOKEN_SECS", longer_than_a_session)],
                &format!(
                    "ACCESS_TOKEN_SECS must be a whole number of seconds from 1 to 43200 (a \
                     session's 12 hours), got \"{longer_than_a_session}\""
                ),
            );
        }
        check_error(
            &[("CLIENT_IP_HEADER", "not a header")],
            "CLIENT_IP_HEADER must be an HTTP header name such as X-Real-IP, got \"not a header\"",
        );
    }

    #[test]
    fn production_never_seeds_the_demo_account() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let production = ("DOCPULSE_ENV", "production");
        let config = config_from(&[production, secret]).expect("valid");
        assert!(!config.demo_user, "not by default");
        check_error(
            &[production, secret, ("DEMO_USER", "true")],
            "DEMO_USER must be `false` when DOCPULSE_ENV=production: the demo account's password is public, got \"true\"",
        );
        assert!(
            config_from(&[]).expect("valid").demo_user,
            "development with SQLite"
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
    fn a_rejected_url_is_echoed_without_its_password() {
        check_error(
            &[("REDIS_URL", "rediss://user:hunter2@cache:6380")],
            "REDIS_URL must be a redis:// URL (this build has no TLS for rediss://), got \"rediss://user:***@cache:6380\"",
        );
        check_error(
            &[("DATABASE_URL", "mysql://root:hunter2@db/x")],
            "DATABASE_URL must be a sqlite: URL such as sqlite://data/docpulse.db or a postgres:// URL, got \"mysql://root:***@db/x\"",
        );
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/docpulse"),
            "postgres://app:***@db:5432/docpulse"
        );
        assert_eq!(
            redact_url("postgres://app:hunter2@[db/docpulse"),
            "postgres://***@[db/docpulse",
            "an unparsable URL keeps nothing between the scheme and the @"
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }

    #[test]
    fn help_lists_every_variable_the_configuration_reads() {
        let read = RefCell::new(BTreeSet::new());
        Config::from_lookup(|name| {
            read.borrow_mut().insert(name.to_owned());
            None
        })
        .expect("defaults are valid");
        let mut read = read.into_inner();
        // Read outside `Config`: by the tracing set-up and by Leptos.
        read.insert(RUST_LOG.name().to_owned());
        read.insert("LEPTOS_SITE_ROOT".to_owned());
        let listed: BTreeSet<String> = VARIABLES.iter().map(|doc| doc.name.to_owned()).collect();
        assert_eq!(read, listed);
        let help = help();
        for doc in VARIABLES {
            assert!(
                help.contains(doc.name) && help.contains(doc.default),
                "{}",
                doc.name
            );
        }
    }

    #[test]
    fn the_readme_lists_every_variable_with_its_default() {
        let readme = include_str!("../README.md");
        for doc in VARIABLES {
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `{}` |", doc.name)))
                .unwrap_or_else(|| panic!("README's configuration table lacks {}", doc.name));
            assert!(
                row.contains(&format!("`{}`", doc.default)) || row.contains(doc.default),
                "README's row of {} does not give its default {:?}: {row}",
                doc.name,
                doc.default
            );
        }
    }
}
