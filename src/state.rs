//! [`AppState`]: the cheap, cloneable handles shared by every handler.

use std::sync::Arc;

use crate::storage::Pool;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use crate::auth::{Authenticator, ClientIpSource, Sessions};
use crate::documents::DocumentService;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::search::Search;
use crate::stream::Streams;

/// Shared state; handlers extract the narrowest part they need through [`FromRef`].
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub pool: Pool,
    /// Verifies access tokens and the sessions they name.
    pub authenticator: Authenticator,
    /// Logs users in and out.
    pub sessions: Sessions,
    /// Carries events from publishers to streams; which implementation is decided at start.
    pub event_bus: Arc<dyn EventBus>,
    /// The one writer of documents.
    pub documents: DocumentService,
    /// Ranks a project's chunks against a query, within its concurrency limit.
    pub search: Search,
    /// Where the client's address comes from (the login throttle keys on it).
    pub client_ip: ClientIpSource,
    /// Heartbeats and bookkeeping of open streams.
    pub streams: Streams,
    /// Counters for `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// Where the site's files are and what the WASM is called, for SSR and static files.
    pub leptos_options: LeptosOptions,
}
