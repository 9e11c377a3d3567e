//! The extractors handlers use to learn who calls: [`Authenticated`], [`ProjectAccess`] and
//! [`Publisher`], all through the [`Authenticator`]. Handlers never read auth headers
//! themselves.
//!
//! **Invariant:** the token comes from `Authorization: Bearer` or the session cookie, never
//! from the query string; the project from `X-Project-Id` or `projectId`.
//! **Invariant:** a token naming a session (a login's) passes only while that session lives.
//! **Invariant:** an unsafe method (POST, PUT, PATCH, DELETE) authenticated by the cookie
//! passes only when neither `Sec-Fetch-Site` nor `Origin` says it came from another site;
//! a bearer token, which another site cannot make a browser send, is not checked.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Query};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method};
use serde::Deserialize;

use app::protocol::{PROJECT_HEADER, ProjectId};

use crate::auth::revocation::SessionRegistry;
use crate::auth::{Claims, JwtKeys};
use crate::error::ApiError;

/// The HttpOnly cookie that carries the browser's token in development (plain HTTP).
pub const SESSION_COOKIE: &str = "docpulse_session";
/// The same in production: the `__Host-` prefix makes browsers accept it only `Secure`, for
/// this host alone and the whole site, so a sibling subdomain cannot plant one.
pub const HOST_SESSION_COOKIE: &str = "__Host-docpulse_session";

/// Verifies callers: the token's keys, the sessions tokens name, the cookie's name; cheap to
/// clone.
#[derive(Clone)]
pub struct Authenticator {
    /// Verifies tokens.
    pub keys: JwtKeys,
    /// Whether a token's session still lives.
    pub sessions: SessionRegistry,
    /// The session cookie's name ([`SESSION_COOKIE`] or [`HOST_SESSION_COOKIE`]).
    pub cookie: &'static str,
}

/// A caller whose token verified (and whose session, if it names one, lives); holds its
/// claims.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl<S> FromRequestParts<S> for Authenticated
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        let (token, by_cookie) = match bearer_token(parts)? {
            Some(token) => (token, false),
            None => (
                cookie(&parts.headers, authenticator.cookie).ok_or(ApiError::MissingToken)?,
                true,
            ),
        };
        let claims = authenticator
            .keys
            .verify(&token)
            .map_err(|_| ApiError::InvalidToken)?;
        if by_cookie && is_unsafe(&parts.method) && from_another_site(&parts.headers) {
            return Err(ApiError::CrossSite);
        }
        if let Some(sid) = &claims.sid {
            authenticator.sessions.check(sid).await?;
        }
        Ok(Self(claims))
    }
}

/// Whether `method` may change something (what a cross-site form or fetch could abuse).
fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the browser says the request comes from a page of another site:
/// `Sec-Fetch-Site: cross-site`, or an `Origin` (`null` included) whose host is not the
/// request's own.
pub fn from_another_site(headers: &HeaderMap) -> bool {
    let header = |name: &HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    if header(&HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return true;
    }
    let Some(origin) = header(&ORIGIN) else {
        return false;
    };
    let host_of = |authority: &str| {
        authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|byte| byte.is_ascii_digit()))
            .map_or(authority, |(host, _)| host)
            .to_ascii_lowercase()
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, authority)| host_of(authority));
    let own_host = header(&HOST).map(host_of);
    origin_host.is_none() || origin_host != own_host
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
    Authenticator: FromRef<S>,
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
    Authenticator: FromRef<S>,
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

    #[track_caller]
    fn check_site(headers: &[(&str, &str)], another_site: bool) {
        assert_eq!(
            from_another_site(&parts(headers).headers),
            another_site,
            "{headers:?}"
        );
    }

    #[test]
    fn another_site_is_told_by_sec_fetch_site_or_origin() {
        check_site(&[], false);
        check_site(&[("host", "docpulse.example.com")], false);
        check_site(&[("sec-fetch-site", "same-origin")], false);
        check_site(&[("sec-fetch-site", "same-site")], false);
        check_site(&[("sec-fetch-site", "none")], false);
        check_site(&[("sec-fetch-site", "cross-site")], true);
        let host = ("host", "docpulse.example.com");
        check_site(&[host, ("origin", "https://docpulse.example.com")], false);
        check_site(
            &[host, ("origin", "https://DocPulse.example.com:443")],
            false,
        );
        check_site(
            &[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            false,
        );
        check_site(&[host, ("origin", "https://evil.example")], true);
        check_site(&[host, ("origin", "null")], true);
        check_site(&[("origin", "https://docpulse.example.com")], true);
    }

    #[test]
    fn only_methods_that_change_something_are_checked() {
        assert!(!is_unsafe(&Method::GET));
        assert!(!is_unsafe(&Method::HEAD));
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_unsafe(&method));
        }
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
