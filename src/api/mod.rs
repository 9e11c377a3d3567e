//! The HTTP API: thin handlers, one module per resource, assembled by [`router`].

mod documents;
mod health;
pub mod json;
mod metrics;
mod publish;
mod search;
mod session;

use axum::Router;
use axum::extract::DefaultBodyLimit;
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
        .route("/api/auth/login", post(session::log_in))
        .route("/api/auth/refresh", post(session::renew))
        .route("/api/auth/logout", post(session::log_out))
        .route("/api/projects", get(session::list_projects))
        .route("/api/projects/overview", get(session::overview_projects))
        .route(
            "/api/documents",
            get(documents::list_documents)
                // Uploads are limited per file while they stream in (MAX_DOCUMENT_BYTES).
                .post(documents::create_document)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/documents/{id}",
            get(documents::get_document)
                .patch(documents::rename_document)
                .delete(documents::delete_document),
        )
        .route(
            "/api/documents/{id}/pipeline",
            get(documents::document_pipeline),
        )
        .route("/api/search", get(search::search_chunks))
        .merge(crate::stream::router())
        .route("/api", any(route_not_found))
        .route("/api/{*path}", any(route_not_found))
}

/// An API path that does not exist gets the JSON error envelope, not the HTML 404 page.
async fn route_not_found() -> ApiError {
    ApiError::NotFound
}
