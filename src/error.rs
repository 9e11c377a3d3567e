//! [`ApiError`]: the error table of `API.md` as a type, and the JSON envelope it writes.
//!
//! **Invariant:** every error response is `{"error":{"code","message"}}`; a 5xx never shows
//! its cause to the client, and [`log_internal_errors`] logs that cause once, with its chain.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to an HTTP client, one variant per `API.md` code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token in the `Authorization` header or the session cookie.
    #[error("an access token is required")]
    MissingToken,
    /// Bad signature, malformed, expired or wrong algorithm.
    #[error("the access token is invalid or expired")]
    InvalidToken,
    /// The token's session ended (logout, revocation); the token is otherwise valid.
    #[error("the session has ended; sign in again")]
    SessionEnded,
    /// An unsafe method authenticated by the cookie, sent from another site.
    #[error("this request came from another site; it must come from docpulse's own pages")]
    CrossSite,
    /// Neither `X-Project-Id` nor `projectId` was given.
    #[error("a project id is required (X-Project-Id header or projectId query parameter)")]
    MissingProject,
    /// The project is not in the token's `projects` claim.
    #[error("this token does not give access to the project")]
    ForbiddenProject,
    /// Publishing without `role: publisher`.
    #[error("publishing events requires the publisher role")]
    NotPublisher,
    /// The body is not a valid event; the text says what is wrong with it.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The body is over the size limit.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// A document over the size limit; the text names it and the limit.
    #[error("{0}")]
    DocumentTooLarge(String),
    /// A document that cannot be stored (empty, not UTF-8, wrong file type, bad title).
    #[error("{0}")]
    InvalidDocument(String),
    /// A request malformed in another way (bad JSON, missing parameter).
    #[error("{0}")]
    InvalidRequest(String),
    /// Login with an unknown email or a wrong password (the two are not told apart).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// No such route or resource (or one the caller may not know exists).
    #[error("not found")]
    NotFound,
    /// No such resource in the caller's project; the text says which kind.
    #[error("{0} not found")]
    ResourceNotFound(&'static str),
    /// A body of a type the route does not take; the text names the ones it does.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request (its body, or the whole of it) took longer than the server allows.
    #[error("the request took too long to arrive")]
    RequestTimeout,
    /// Too many attempts from one client or for one account; try again after `retry_after`.
    #[error("{message}; try again in {} s", whole_seconds(*.retry_after))]
    RateLimited {
        /// What was limited, in words.
        message: &'static str,
        /// When a new attempt may succeed.
        retry_after: Duration,
    },
    /// The server is at one of its limits; try again after `retry_after`.
    #[error("the server is at its limit of {limit}; try again in {} s", whole_seconds(*.retry_after))]
    Overloaded {
        /// Which limit, in words ("connections", "password checks").
        limit: &'static str,
        /// When a new attempt may succeed.
        retry_after: Duration,
    },
    /// A backing service (the Redis event bus) is unreachable; the client may retry.
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything unexpected; the client sees a generic message.
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken
            | Self::InvalidToken
            | Self::SessionEnded
            | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::MissingProject
            | Self::InvalidEvent(_)
            | Self::InvalidDocument(_)
            | Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::ForbiddenProject | Self::NotPublisher | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge | Self::DocumentTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound | Self::ResourceNotFound(_) => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of the envelope; codes are defined here and nowhere else.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::SessionEnded => "session_ended",
            Self::CrossSite => "cross_site",
            Self::MissingProject => "missing_project",
            Self::ForbiddenProject => "forbidden_project",
            Self::NotPublisher => "not_publisher",
            Self::InvalidEvent(_) => "invalid_event",
            Self::PayloadTooLarge | Self::DocumentTooLarge(_) => "payload_too_large",
            Self::InvalidDocument(_) => "invalid_document",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::NotFound | Self::ResourceNotFound(_) => "not_found",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded { .. } => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// How long the client should wait before trying again, for the errors that say.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Overloaded { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// The `{"error":{"code","message"}}` envelope of this error.
    pub fn envelope(&self) -> String {
        serde_json::to_string(&Envelope {
            error: Body {
                code: self.code(),
                message: self.to_string(),
            },
        })
        .expect("two strings always serialize")
    }
}

/// `duration` in whole seconds, rounded up and at least 1, as `Retry-After` says it.
pub fn whole_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
        .max(1)
}

impl From<crate::events::BusError> for ApiError {
    fn from(error: crate::events::BusError) -> Self {
        match error {
            crate::events::BusError::Unavailable(_) => Self::Unavailable(anyhow::Error::new(error)),
            crate::events::BusError::Closed => Self::Internal(anyhow::Error::new(error)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database query failed"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(error)
    }
}

/// The cause of a 5xx, carried in the response extensions to [`log_internal_errors`].
#[derive(Clone)]
struct InternalCause(Arc<anyhow::Error>);

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let envelope = Envelope {
            error: Body {
                code: self.code(),
                message: self.to_string(),
            },
        };
        let mut response = (self.status(), Json(envelope)).into_response();
        if let Some(retry_after) = self.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(whole_seconds(retry_after)));
        }
        if let Self::Internal(cause) | Self::Unavailable(cause) = self {
            response
                .extensions_mut()
                .insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}

/// Middleware that logs the cause of every internal error once, inside the request's span.
pub async fn log_internal_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    log_internal_cause(&response);
    response
}

/// Logs the cause a 5xx `response` carries, with its chain; for responses that bypass the
/// router's middleware (the direct event streams).
pub fn log_internal_cause(response: &Response) {
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(error = format!("{cause:#}"), "request failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(error: ApiError, status: StatusCode, code: &str) {
        assert_eq!(error.status(), status);
        assert_eq!(error.code(), code);
    }

    #[test]
    fn every_api_md_row_has_its_status_and_code() {
        check(
            ApiError::MissingToken,
            StatusCode::UNAUTHORIZED,
            "missing_token",
        );
        check(
            ApiError::InvalidToken,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        );
        check(
            ApiError::MissingProject,
            StatusCode::BAD_REQUEST,
            "missing_project",
        );
        check(
            ApiError::ForbiddenProject,
            StatusCode::FORBIDDEN,
            "forbidden_project",
        );
        check(
            ApiError::NotPublisher,
            StatusCode::FORBIDDEN,
            "not_publisher",
        );
        check(
            ApiError::InvalidEvent("no type".to_owned()),
            StatusCode::BAD_REQUEST,
            "invalid_event",
        );
        check(
            ApiError::PayloadTooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        check(ApiError::NotFound, StatusCode::NOT_FOUND, "not_found");
        check(
            ApiError::SessionEnded,
            StatusCode::UNAUTHORIZED,
            "session_ended",
        );
        check(ApiError::CrossSite, StatusCode::FORBIDDEN, "cross_site");
        check(
            ApiError::UnsupportedMediaType("send JSON".to_owned()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        check(
            ApiError::RateLimited {
                message: "too many attempts",
                retry_after: Duration::from_secs(3),
            },
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        );
        check(
            ApiError::Overloaded {
                limit: "connections",
                retry_after: Duration::from_secs(1),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
        );
    }

    #[test]
    fn a_refusal_says_when_to_try_again_in_whole_seconds() {
        let error = ApiError::RateLimited {
            message: "too many login attempts from this address",
            retry_after: Duration::from_millis(2100),
        };
        assert_eq!(
            error.to_string(),
            "too many login attempts from this address; try again in 3 s"
        );
        let response = error.into_response();
        assert_eq!(response.headers()[RETRY_AFTER], "3");
        assert_eq!(
            whole_seconds(Duration::ZERO),
            1,
            "never 0: that invites a storm"
        );
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
    }

    #[test]
    fn application_errors_have_their_status_and_code() {
        check(
            ApiError::DocumentTooLarge("notes.txt is over 1 MiB".to_owned()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        check(
            ApiError::InvalidDocument("notes.txt is empty".to_owned()),
            StatusCode::BAD_REQUEST,
            "invalid_document",
        );
        check(
            ApiError::InvalidRequest("q is required".to_owned()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        check(
            ApiError::InvalidCredentials,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
        check(
            ApiError::ResourceNotFound("document"),
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }

    #[test]
    fn an_internal_error_hides_its_cause_from_the_client() {
        let error = ApiError::from(anyhow::anyhow!("disk full at /secret/path"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.to_string(), "internal server error");
        let response = error.into_response();
        assert!(response.extensions().get::<InternalCause>().is_some());
    }
}
