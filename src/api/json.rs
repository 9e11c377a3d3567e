//! [`ApiJson`]: the one way handlers read a JSON body, answering API.md's envelope for every
//! body that is not what the route takes.
//!
//! **Invariant:** a JSON body is read only with `Content-Type: application/json` (`415`
//! otherwise), never past its limit (`413`, checked against `Content-Length` before reading
//! and while reading), never slower than the body timeout allows (`408`), and a body that does
//! not parse as the route's type is a `400` with the parser's reason.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON body of a route that does not say otherwise, as API.md's error table says.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A body a route takes as JSON: its limit and how its parse errors are answered.
pub trait JsonBody: DeserializeOwned {
    /// Largest accepted body, in bytes.
    const LIMIT: usize = MAX_JSON_BYTES;

    /// Parses the body; the default answers a parse error with `400 invalid_request`.
    ///
    /// # Errors
    ///
    /// The body is not this type's JSON.
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|error| ApiError::InvalidRequest(format!("the body is not valid: {error}")))
    }
}

/// A JSON body of type `T`, read under the rules of this module.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: JsonBody, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_json(request, T::LIMIT).await.map(Self)
    }
}

/// The body of `request` as `T`, at most `limit` bytes: what [`ApiJson`] does, for a route
/// whose limit is configured at run time.
///
/// # Errors
///
/// As [`ApiJson`]: `415`, `413`, `408`, or `T::parse`'s error.
pub async fn read_json<T: JsonBody>(request: Request, limit: usize) -> Result<T, ApiError> {
    require_json(request.headers())?;
    let bytes = read_body(request, limit).await?;
    T::parse(&bytes)
}

/// Whether `headers` say the body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses a body that is not declared as JSON.
///
/// # Errors
///
/// [`ApiError::UnsupportedMediaType`] unless `Content-Type` is `application/json`.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if is_json(headers) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send the body as JSON (Content-Type: application/json)".to_owned(),
        ))
    }
}

/// The whole body of `request`, at most `limit` bytes.
///
/// # Errors
///
/// [`ApiError::PayloadTooLarge`] past `limit` (by `Content-Length` or by what arrives),
/// [`ApiError::RequestTimeout`] when the body stalls, [`ApiError::InvalidRequest`] when it
/// cannot be read.
pub async fn read_body(request: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    if declared_length(request.headers())
        .is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ApiError::PayloadTooLarge);
    }
    read_limited(request.into_body(), limit).await
}

/// The body length `headers` declare (`Content-Length`), if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|error| body_error(&error))
}

/// The API error a failed body read means: too large, too slow, or broken.
pub fn body_error(error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge;
        }
        if current.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::RequestTimeout;
        }
        cause = current.source();
    }
    ApiError::InvalidRequest(format!("the body could not be read: {error}"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_application_json_is_json() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            headers
        };
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&headers("application/x-www-form-urlencoded")));
        assert!(!is_json(&headers("multipart/form-data; boundary=x")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
