//! [`Application`]: builds the server from a [`Config`], serves it, and shuts it down cleanly.
//!
//! **Invariant:** one [`CancellationToken`] stops everything: the listener, every event
//! stream and every background task (all spawned on one [`TaskTracker`]).
//! [`Application::run_until_stopped`] returns only after the listener is closed, in-flight
//! requests are answered, the tasks have ended and the database pool is closed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::storage::Pool;
use anyhow::Context;
use app::data_updates::ServerHeartbeat;
use axum::Router;
use axum::middleware;
use leptos::config::get_configuration;
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, file_and_error_handler, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::api;
use crate::assets;
use crate::auth::password::PasswordWorkers;
use crate::auth::refresh::REFRESH_PURPOSE;
use crate::auth::revocation::SessionRegistry;
use crate::auth::throttle::LoginThrottle;
use crate::auth::{Authenticator, ClientIpSource, JwtKeys, SessionParts, Sessions};
use crate::config::{
    BusConfig, Config, Environment, EventsConfig, HttpConfig, MIN_JWT_SECRET_LEN, Secret,
};
use crate::demo;
use crate::documents::{DocumentService, JobSignal, WorkProgress};
use crate::error::log_internal_errors;
use crate::events::{EventBus, InMemoryEventBus, RedisEventBus};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::outbox::relay::{Relay, RelayConfig};
use crate::page_access;
use crate::page_data::ServerPageData;
use crate::search::Search;
use crate::serve::{self, ConnectionLimits, RequestDeadline, limit_request_time};
use crate::state::AppState;
use crate::storage;
use crate::stream::{DirectStreams, Heartbeats, StreamLimits, Streams};
use crate::workers::Workers;
use crate::workers::embedder::{Embedder, LocalEmbedder};

/// File in the data folder that keeps the generated development JWT secret.
const DEV_SECRET_FILE: &str = "jwt-secret.dev";
/// Open files kept for other uses than served connections when `MAX_CONNECTIONS` is derived
/// from the open-file limit: the connections refused at the limit that still linger, and 256
/// for the database, logs and Redis. With 256 in all, a flood of new connections at the limit
/// ran the process out of files (the lingering refusals alone took them), and it could no
/// longer accept any.
const RESERVED_FILES: u64 = serve::MAX_LINGERING_REFUSALS as u64 + 256;

/// A built server, bound to its address, not yet serving.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    /// What direct event streams use (the router holds its own handles).
    direct: Arc<DirectStreams>,
    /// The limits every connection is served within.
    limits: ConnectionLimits,
    pool: Pool,
    /// Fired once to stop the listener and everything that serves.
    shutdown: CancellationToken,
    /// Every background task, so shutdown can wait for them.
    tasks: TaskTracker,
}

impl Application {
    /// Connects the storage, seeds the demo account when asked, starts the workers, binds
    /// the listener and assembles the router.
    ///
    /// # Errors
    ///
    /// The database cannot be opened or migrated, the demo cannot be seeded, the address
    /// cannot be bound, the development secret cannot be kept, or the configuration asks for
    /// a part this build does not have.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let open_files = raise_open_file_limit();
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let metrics = Arc::new(Metrics::new());
        let event_bus = start_event_bus(
            &config.bus,
            config.events.clone(),
            metrics.clone(),
            &tasks,
            shutdown.clone(),
        )
        .await?;
        let heartbeats = Heartbeats::start(config.stream.heartbeat, &tasks, shutdown.clone());

        let pool = storage::connect(&config.storage).await?;
        let jwt_secret = match config.auth.jwt_secret {
            Some(secret) => secret,
            None => load_or_create_dev_secret(&config.storage.data_dir)?,
        };

        let listener = listen(config.http.addr)
            .with_context(|| format!("cannot listen on {}", config.http.addr))?;
        let local_addr = listener
            .local_addr()
            .context("cannot read the bound address")?;

        let mut leptos_options = get_configuration(None)
            .context("cannot read the Leptos site settings (LEPTOS_* variables)")?
            .leptos_options;
        leptos_options.site_addr = local_addr;
        leptos_options.hash_files = assets::hashed_site(&leptos_options);

        let jwt_keys = JwtKeys::new(&jwt_secret);
        let job_signal = JobSignal::default();
        let outbox = Outbox::new();
        let relay_config = RelayConfig {
            lease: config.workers.job_lease,
            late_after: config.events.outbox_late,
        };
        Relay::register(&pool, &outbox, relay_config)
            .await
            .context("cannot register this instance's outbox")?;
        Relay::start(
            pool.clone(),
            event_bus.clone(),
            outbox.clone(),
            relay_config,
            &tasks,
            shutdown.clone(),
        );
        let documents = DocumentService::new(
            pool.clone(),
            event_bus.clone(),
            outbox.clone(),
            job_signal.clone(),
            &config.documents,
        );
        let progress = WorkProgress::new(pool.clone(), outbox, job_signal.clone());
        let embedder: Arc<dyn Embedder> = Arc::new(LocalEmbedder::default());
        if config.demo_user {
            demo::seed(&pool, &documents).await?;
        }
        Workers::new(
            pool.clone(),
            progress,
            embedder.clone(),
            job_signal,
            &config.workers,
        )
        .start(&tasks, &shutdown);

        let production = config.environment == Environment::Production;
        let registry = SessionRegistry::new(
            pool.clone(),
            event_bus.clone(),
            config.login.remembered_sessions,
        );
        registry.start(&tasks, shutdown.clone());
        let sessions = Sessions::new(SessionParts {
            pool: pool.clone(),
            keys: jwt_keys.clone(),
            throttle: LoginThrottle::new(&config.login, &jwt_secret),
            passwords: PasswordWorkers::start(
                config.login.hash_concurrency,
                config.login.hash_queue,
            )?,
            registry: registry.clone(),
            refresh_keys: JwtKeys::for_purpose(&jwt_secret, REFRESH_PURPOSE),
            access_ttl: config.login.access_ttl,
            production,
        });
        let state = AppState {
            pool: pool.clone(),
            authenticator: Authenticator {
                keys: jwt_keys,
                sessions: registry,
                cookie: sessions.cookie_name(),
            },
            sessions,
            event_bus,
            documents,
            search: Search::new(pool.clone(), embedder, &config.search),
            client_ip: ClientIpSource(
                config
                    .http
                    .client_ip_header
                    .as_deref()
                    .and_then(|name| name.parse().ok()),
            ),
            streams: Streams::new(
                heartbeats,
                metrics.clone(),
                StreamLimits {
                    max_streams_per_user: config.stream.max_streams_per_user,
                    admission_rate: config.stream.admission_rate,
                    shutdown_spread: config.stream.shutdown_spread,
                },
            ),
            metrics,
            leptos_options,
        };
        let direct = Arc::new(DirectStreams {
            authenticator: state.authenticator.clone(),
            event_bus: state.event_bus.clone(),
            streams: state.streams.clone(),
        });
        let router = assemble_router(state, &config.http, config.stream.heartbeat);
        let limits = connection_limits(&config.http, config.stream.heartbeat, open_files);
        tracing::info!(
            max_connections = limits.max_connections,
            "serving at most this many connections at once"
        );

        Ok(Self {
            listener,
            local_addr,
            router,
            direct,
            limits,
            pool,
            shutdown,
            tasks,
        })
    }

    /// The address the server listens on (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token fires, then finishes in-flight requests and stops
    /// the background tasks.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for parts whose shutdown can fail.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        serve::serve(
            self.listener,
            self.router,
            self.direct,
            self.limits,
            self.shutdown.clone(),
        )
        .await;
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.pool.close().await;
        tracing::info!("docpulse stopped");
        Ok(())
    }
}

/// The event bus `bus` asks for; the one place that chooses an implementation.
async fn start_event_bus(
    bus: &BusConfig,
    events: EventsConfig,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<dyn EventBus>> {
    match bus {
        BusConfig::InMemory => Ok(Arc::new(InMemoryEventBus::start(
            events, metrics, tasks, shutdown,
        ))),
        BusConfig::Redis { url } => {
            let bus = RedisEventBus::connect(url, events, metrics, tasks, shutdown)
                .await
                .context("cannot connect to REDIS_URL")?;
            Ok(Arc::new(bus))
        }
    }
}

/// Connections the kernel may hold for the server before it accepts them; the kernel caps it
/// at `net.core.somaxconn`. tokio's own bind asks for 1024, and a burst of more new
/// connections (1,000 slow clients, a reconnect storm) then drops SYNs, which costs a
/// legitimate client a one-second retransmission.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a [`LISTEN_BACKLOG`] queue.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // A restarted server binds at once, as with tokio's bind.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raises the soft open-file limit to the hard one (every connection holds a socket) and
/// returns the limit now in force, if it could be read.
fn raise_open_file_limit() -> Option<u64> {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) => match rlimit::increase_nofile_limit(hard) {
            Ok(raised) => {
                tracing::info!(
                    soft_before = soft,
                    soft_now = raised,
                    hard,
                    "open-file limit"
                );
                Some(raised)
            }
            Err(error) => {
                tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
                Some(soft)
            }
        },
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            None
        }
    }
}

/// The connection limits of `http`, the stall limit of two `heartbeat`s, and, unless
/// `MAX_CONNECTIONS` says, as many connections as `open_files` leaves room for.
fn connection_limits(
    http: &HttpConfig,
    heartbeat: Duration,
    open_files: Option<u64>,
) -> ConnectionLimits {
    let derived = open_files
        .map(|files| files.saturating_sub(RESERVED_FILES).max(1))
        .and_then(|connections| usize::try_from(connections).ok())
        .unwrap_or(1024);
    ConnectionLimits {
        max_connections: http.max_connections.unwrap_or(derived),
        header_timeout: http.header_timeout,
        idle_timeout: http.idle_timeout,
        stall_limit: heartbeat.saturating_mul(2),
        shutdown_timeout: http.shutdown_timeout,
    }
}

/// The pages' routes, listed once per process. Listing them runs the app with resource loads
/// suppressed by a flag global to the process (`leptos_server`'s `SuppressResourceLoad`), and
/// a resource that starts loading meanwhile never loads (leptos issue #4773). A server built
/// while another in this process serves pages (the API tests run dozens) hung a page that way.
static PAGE_ROUTES: LazyLock<Vec<AxumRouteListing>> =
    LazyLock::new(|| generate_route_list(app::App));

/// The whole HTTP surface: the API, the Leptos pages and server functions, static files,
/// each request within `http`'s body and request timeouts.
fn assemble_router(state: AppState, http: &HttpConfig, heartbeat: Duration) -> Router {
    let routes = PAGE_ROUTES.clone();
    let leptos_options = state.leptos_options.clone();
    // Pages load their first data while they render, through the same services as the API.
    let page_data = ServerPageData::context(state.clone());
    // Every page knows whether its reader is signed in; those that need it redirect first.
    let pages = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(page_data.clone());
                // The pages' streams wait for 2.5 of this server's heartbeats of silence.
                provide_context(ServerHeartbeat(heartbeat));
            },
            move || app::shell(leptos_options.clone()),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            page_access::check_page_session,
        ));
    Router::new()
        .merge(api::router())
        .merge(assets::pkg_router(&state.leptos_options))
        .merge(pages)
        .fallback(file_and_error_handler::<AppState, _>(app::shell))
        .layer(middleware::from_fn(assets::html_is_not_cached))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(RequestBodyTimeoutLayer::new(http.body_timeout))
        .layer(middleware::from_fn_with_state(
            RequestDeadline(http.request_timeout),
            limit_request_time,
        ))
        // Failures are logged once, with their cause, by `log_internal_errors`; a refusal under
        // attack (429, 503) must not cost a log line each.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(state)
}

/// Reads the development JWT secret from the data folder, generating it on first start.
///
/// Development needs no configuration, yet tokens must survive a restart; production never
/// gets here, as `Config` refuses to start without `JWT_SECRET`.
fn load_or_create_dev_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join(DEV_SECRET_FILE);
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the development secret {}", path.display()))?;
        let secret = secret.trim();
        anyhow::ensure!(
            secret.len() >= MIN_JWT_SECRET_LEN,
            "the development secret {} is shorter than {MIN_JWT_SECRET_LEN} characters; \
             delete it to generate a new one",
            path.display()
        );
        return Ok(Secret::new(secret.to_owned()));
    }
    let secret = Secret::generate()
        .map_err(|error| anyhow::anyhow!("cannot generate a development secret: {error}"))?;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create the development secret {}", path.display()))?;
    file.write_all(secret.expose().as_bytes())
        .with_context(|| format!("cannot write the development secret {}", path.display()))?;
    tracing::warn!(
        "JWT_SECRET is not set: generated a development secret in {}",
        path.display()
    );
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_connection_limit_leaves_files_for_lingering_refusals_and_the_process() {
        let config = Config::from_lookup(|_| None).expect("the defaults are valid");
        let limits = connection_limits(&config.http, config.stream.heartbeat, Some(20_000));
        assert_eq!(
            limits.max_connections + serve::MAX_LINGERING_REFUSALS + 256,
            20_000
        );
        let tiny = connection_limits(&config.http, config.stream.heartbeat, Some(100));
        assert_eq!(tiny.max_connections, 1, "always at least one");
    }
}
