//! The HTTP API: thin handlers, one module per resource, assembled by [`router`].

mod health;
mod metrics;
mod publish;

use axum::Router;
use axum::routing::{any, get, post};

use app::protocol::PUBLISH_PATH;

use crate::error::ApiError;
use crate::state::AppState;

/// Every API route; anything else under `/api` answers the JSON 404 envelope.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::check_health))
        .route("/metrics", get(metrics::render_metrics))
        .route(PUBLISH_PATH, post(publish::publish_event))
        .merge(crate::stream::router())
        .route("/api", any(route_not_found))
        .route("/api/{*path}", any(route_not_found))
}

/// An API path that does not exist gets the JSON error envelope, not the HTML 404 page.
async fn route_not_found() -> ApiError {
    ApiError::NotFound
}
