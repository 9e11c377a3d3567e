//! The extractors handlers use to learn who calls: [`Authenticated`], [`ProjectAccess`] and
//! [`Publisher`]. Handlers never read auth headers themselves.
//!
//! **Invariant:** the token comes from `Authorization: Bearer` or the [`SESSION_COOKIE`],
//! never from the query string; the project from `X-Project-Id` or `projectId`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Query};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use serde::Deserialize;

use app::protocol::{PROJECT_HEADER, ProjectId};

use crate::auth::{Claims, JwtKeys};
use crate::error::ApiError;

/// The HttpOnly cookie that carries the browser's token.
pub const SESSION_COOKIE: &str = "docpulse_session";

/// A caller whose token verified; holds its claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl<S> FromRequestParts<S> for Authenticated
where
    JwtKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?
            .or_else(|| cookie(&parts.headers, SESSION_COOKIE))
            .ok_or(ApiError::MissingToken)?;
        let keys = JwtKeys::from_ref(state);
        let claims = keys.verify(&token).map_err(|_| ApiError::InvalidToken)?;
        Ok(Self(claims))
    }
}

/// The token of an `Authorization: Bearer` header; an `Authorization` of another scheme is
/// an invalid token, not a missing one.
fn bearer_token(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(ApiError::InvalidToken),
    }
}

/// The value of the cookie `name`, if the request carries one that is not empty.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// Where the client's address comes from: the connection's peer, or a header that the proxy
/// in front sets (`CLIENT_IP_HEADER`).
#[derive(Debug, Clone, Default)]
pub struct ClientIpSource(pub Option<HeaderName>);

/// The client's address: the last address in the configured header when it holds one (a
/// proxy appends the address it saw), else the connection's peer.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    ClientIpSource: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIpSource(header) = ClientIpSource::from_ref(state);
        let from_header = header.and_then(|header| {
            let value = parts.headers.get(header)?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        });
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip())
        };
        Ok(Self(
            from_header
                .or_else(peer)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

/// A caller allowed to use the project the request names.
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    /// The verified claims.
    pub claims: Claims,
    /// The project, from `X-Project-Id` or the `projectId` query parameter.
    pub project: ProjectId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectQuery {
    project_id: Option<String>,
}

impl<S> FromRequestParts<S> for ProjectAccess
where
    JwtKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        let from_header = parts
            .headers
            .get(PROJECT_HEADER)
            .map(|value| value.to_str().map(str::to_owned).unwrap_or_default());
        let from_query = || {
            Query::<ProjectQuery>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|Query(query)| query.project_id)
        };
        let project = from_header
            .or_else(from_query)
            .filter(|project| !project.trim().is_empty())
            .ok_or(ApiError::MissingProject)?;
        // A malformed id cannot be one the token grants.
        let project: ProjectId = project.parse().map_err(|_| ApiError::ForbiddenProject)?;
        if !claims.allows(&project) {
            return Err(ApiError::ForbiddenProject);
        }
        Ok(Self { claims, project })
    }
}

/// A caller whose token has `role: publisher`.
#[derive(Debug, Clone)]
pub struct Publisher(pub Claims);

impl<S> FromRequestParts<S> for Publisher
where
    JwtKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        if !claims.is_publisher() {
            return Err(ApiError::NotPublisher);
        }
        Ok(Self(claims))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri("/api/events/stream?token=abc");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("a valid request").into_parts().0
    }

    #[test]
    fn the_bearer_header_wins_and_other_schemes_are_invalid() {
        let token = bearer_token(&parts(&[("authorization", "Bearer abc.def")]));
        assert_eq!(token.expect("valid"), Some("abc.def".to_owned()));
        let lower = bearer_token(&parts(&[("authorization", "bearer xyz")]));
        assert_eq!(lower.expect("valid"), Some("xyz".to_owned()));
        assert!(bearer_token(&parts(&[("authorization", "Basic dTpw")])).is_err());
        assert!(bearer_token(&parts(&[("authorization", "Bearer ")])).is_err());
        assert_eq!(bearer_token(&parts(&[])).expect("valid"), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_the_query_is_ignored() {
        let value = cookie(
            &parts(&[("cookie", "theme=dark; docpulse_session=tok.en; other=1")]).headers,
            SESSION_COOKIE,
        );
        assert_eq!(value, Some("tok.en".to_owned()));
        assert_eq!(
            cookie(
                &parts(&[("cookie", "docpulse_session=")]).headers,
                SESSION_COOKIE
            ),
            None
        );
        assert_eq!(cookie(&parts(&[]).headers, SESSION_COOKIE), None);
    }
}
