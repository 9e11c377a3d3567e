//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/projects` and
//! `GET /api/projects/overview`.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::resources::{Credentials, ProjectList, ProjectsOverview};

use crate::api::json::{ApiJson, JsonBody};
use crate::auth::{Authenticated, ClientIp, LoginClient, Sessions, cookie};
use crate::error::ApiError;
use crate::storage::{Pool, projects};

impl JsonBody for Credentials {}

/// Checks the credentials, within the login throttles; answers the
/// [`app::resources::Session`] as JSON, sets it as the HttpOnly session cookie, and marks the
/// browser as one that signed in to the account (the device cookie).
pub async fn log_in(
    State(sessions): State<Sessions>,
    ClientIp(address): ClientIp,
    headers: HeaderMap,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let client = LoginClient {
        address,
        device: cookie(&headers, sessions.device_cookie_name()),
    };
    let logged_in = sessions.log_in(credentials, &client).await?;
    let mut response = Json(&logged_in.session).into_response();
    let cookies = response.headers_mut();
    cookies.append(SET_COOKIE, sessions.cookie(&logged_in.session));
    cookies.append(SET_COOKIE, sessions.device_cookie(&logged_in));
    Ok(response)
}

/// Ends the caller's session, everywhere and with its streams, and removes the session
/// cookie; answers 204 whether or not there was a live session (but 403 to another site).
pub async fn log_out(
    State(sessions): State<Sessions>,
    caller: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    match caller {
        Ok(Authenticated(claims)) => sessions.log_out(&claims).await?,
        Err(ApiError::CrossSite) => return Err(ApiError::CrossSite),
        Err(_) => {}
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, sessions.clearing_cookie())],
    )
        .into_response())
}

/// The first [`app::resources::MAX_OVERVIEW_PROJECTS`] projects the caller's token opens, with how many
/// of their documents are in each state.
pub async fn overview_projects(
    Authenticated(claims): Authenticated,
    State(pool): State<Pool>,
) -> Result<Json<ProjectsOverview>, ApiError> {
    Ok(Json(projects::overview(&pool, claims.project_ids()).await?))
}

/// The projects the caller's token opens, with their names.
pub async fn list_projects(
    Authenticated(claims): Authenticated,
    State(pool): State<Pool>,
) -> Result<Json<ProjectList>, ApiError> {
    let projects = projects::list_projects(&pool, claims.project_ids()).await?;
    Ok(Json(ProjectList { projects }))
}
