//! `POST /api/auth/login`, `POST /api/auth/logout` and `GET /api/projects`.

use crate::storage::Pool;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};

use app::resources::{Credentials, ProjectList};

use crate::auth::{Authenticated, Sessions};
use crate::error::ApiError;
use crate::storage::projects;

/// Checks the credentials; answers the [`app::resources::Session`] as JSON and sets it as
/// the HttpOnly session cookie.
pub async fn log_in(State(sessions): State<Sessions>, body: Bytes) -> Result<Response, ApiError> {
    let credentials: Credentials = serde_json::from_slice(&body).map_err(|error| {
        ApiError::InvalidRequest(format!(
            "the body must be JSON with an email and a password: {error}"
        ))
    })?;
    let session = sessions.log_in(credentials).await?;
    let cookie = sessions.cookie(&session);
    Ok(([(SET_COOKIE, cookie)], Json(session)).into_response())
}

/// Removes the session cookie; answers 204 whether or not there was a session.
pub async fn log_out(State(sessions): State<Sessions>) -> Response {
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, sessions.clearing_cookie())],
    )
        .into_response()
}

/// The projects the caller's token opens, with their names.
pub async fn list_projects(
    Authenticated(claims): Authenticated,
    State(pool): State<Pool>,
) -> Result<Json<ProjectList>, ApiError> {
    let projects = projects::list_projects(&pool, claims.project_ids()).await?;
    Ok(Json(ProjectList { projects }))
}
