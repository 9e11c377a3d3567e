//! `POST /api/auth/login`, `POST /api/auth/refresh`, `POST /api/auth/logout`,
//! `GET /api/projects` and `GET /api/projects/overview`.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::resources::{Credentials, ProjectList, ProjectsOverview};

use crate::api::json::{ApiJson, JsonBody};
use crate::auth::{
    Authenticated, ClientIp, Issued, LoginClient, Sessions, cookie, from_another_site,
};
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
    let mut response = issued_response(&sessions, &logged_in.issued);
    response
        .headers_mut()
        .append(SET_COOKIE, sessions.device_cookie(&logged_in));
    Ok(response)
}

/// Renews the access token from the session the HttpOnly refresh cookie names, rotating that
/// cookie; answers the new [`app::resources::Session`] and sets its cookies. Costs one
/// database write and no password hash, so it needs no throttle of its own.
pub async fn renew(
    State(sessions): State<Sessions>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refresh_token =
        cookie(&headers, sessions.refresh_cookie_name()).ok_or(ApiError::MissingToken)?;
    if from_another_site(&headers) {
        return Err(ApiError::CrossSite);
    }
    let issued = sessions.renew(&refresh_token).await?;
    Ok(issued_response(&sessions, &issued))
}

/// The session as JSON, with the cookies that store it.
fn issued_response(sessions: &Sessions, issued: &Issued) -> Response {
    let mut response = Json(&issued.session).into_response();
    for value in sessions.cookies(issued) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Ends the caller's session, everywhere and with its streams (the one its access token
/// names, or else its refresh cookie's), and removes both cookies; answers 204 whether or not
/// there was a live session (but 403 to another site).
pub async fn log_out(
    State(sessions): State<Sessions>,
    headers: HeaderMap,
    caller: Result<Authenticated, ApiError>,
) -> Result<Response, ApiError> {
    let claims = match caller {
        Ok(Authenticated(claims)) => Some(claims),
        Err(ApiError::CrossSite) => return Err(ApiError::CrossSite),
        Err(_) => None,
    };
    let refresh_token = cookie(&headers, sessions.refresh_cookie_name());
    if claims.is_none() && refresh_token.is_some() && from_another_site(&headers) {
        return Err(ApiError::CrossSite);
    }
    sessions
        .log_out(claims.as_ref(), refresh_token.as_deref())
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for value in sessions.clearing_cookies() {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
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
