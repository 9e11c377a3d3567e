//! [`AppState`]: the cheap, cloneable handles shared by every handler.

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::SqlitePool;

use crate::config::Secret;

/// Shared state; handlers extract the narrowest part they need through [`FromRef`].
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub pool: SqlitePool,
    /// The HS256 key of access tokens (from `JWT_SECRET`, or the development one).
    pub jwt_secret: Secret,
    /// Where the site's files are and what the WASM is called, for SSR and static files.
    pub leptos_options: LeptosOptions,
}
