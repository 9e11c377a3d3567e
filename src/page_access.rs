//! Who may open which page: the server checks a page request's session before rendering it,
//! sends a reader without one from a page that needs it to sign in (`303 /login?next=…`),
//! and tells the rendered page whether someone is signed in ([`RequestSession`]).
//!
//! So a signed-out reader is never shown a page that then fetches into a `401` (an error
//! in the browser's console and a flash of a broken page): the redirect happens before any
//! byte of the page. A reader whose access token expired while the session lives (a tab
//! opened after a pause) is renewed here, from the refresh cookie, before the page renders.
//!
//! **Invariant:** the session is checked by the same extractor as the REST routes
//! ([`Authenticated`]), so a page shows someone as signed in exactly when the API would
//! answer them.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::session::{RequestSession, login_address};

use crate::auth::{Authenticated, Issued, cookie};
use crate::state::AppState;

/// The pages that show a session's data, by path prefix.
const SESSION_PAGES: [&str; 2] = ["/documents", "/search"];

/// Middleware on the pages: checks the session (renewing an expired access token from the
/// refresh cookie), redirects where one is needed and missing, and puts the
/// [`RequestSession`] on the request for the page to read.
pub async fn check_page_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let mut caller = Authenticated::from_request_parts(&mut parts, &state)
        .await
        .ok();
    let mut renewed = None;
    if caller.is_none()
        && let Some(issued) = renew_from_cookie(&state, &mut parts).await
    {
        caller = Authenticated::from_request_parts(&mut parts, &state)
            .await
            .ok();
        renewed = Some(issued);
    }
    if caller.is_none() && needs_session(parts.uri.path()) {
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        return sign_in_first(here);
    }
    parts.extensions.insert(RequestSession {
        access_expires_in: caller.map(|Authenticated(claims)| seconds_until(claims.exp)),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(issued) = renewed {
        for value in state.sessions.cookies(&issued) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

/// Renews the access token from the request's refresh cookie, if it has a live one, and puts
/// the new token in the request's cookies, so the page renders with it.
async fn renew_from_cookie(state: &AppState, parts: &mut Parts) -> Option<Issued> {
    let refresh_token = cookie(&parts.headers, state.sessions.refresh_cookie_name())?;
    let issued = state.sessions.renew(&refresh_token).await.ok()?;
    replace_cookie(
        &mut parts.headers,
        state.sessions.cookie_name(),
        &issued.session.token,
    );
    Some(issued)
}

/// Makes `headers`' cookies carry `value` as cookie `name`, whatever they carried before.
fn replace_cookie(headers: &mut HeaderMap, name: &str, value: &str) {
    let others: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty()
                && pair
                    .split_once('=')
                    .is_none_or(|(cookie_name, _)| cookie_name != name)
        })
        .map(str::to_owned)
        .collect();
    let cookies = others
        .into_iter()
        .chain(std::iter::once(format!("{name}={value}")))
        .collect::<Vec<_>>()
        .join("; ");
    headers.remove(COOKIE);
    if let Ok(cookies) = HeaderValue::from_str(&cookies) {
        headers.insert(COOKIE, cookies);
    }
}

/// Seconds from now until the Unix time `exp`, none when it is past.
fn seconds_until(exp: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs());
    exp.saturating_sub(now)
}

/// Whether the page at `path` shows a session's data.
fn needs_session(path: &str) -> bool {
    SESSION_PAGES.iter().any(|page| {
        path.strip_prefix(page)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// `303 See Other` to the sign-in page, which comes back to `here` afterwards.
fn sign_in_first(here: &str) -> Response {
    match HeaderValue::from_str(&login_address(here)) {
        Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(LOCATION, HeaderValue::from_static("/login"))],
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_cookie_keeps_the_others_and_leaves_no_copy_of_the_old_value() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("docpulse_session=old; docpulse_device=d1"),
        );
        headers.append(COOKIE, HeaderValue::from_static("theme=dark"));
        replace_cookie(&mut headers, "docpulse_session", "new");
        assert_eq!(headers.get_all(COOKIE).iter().count(), 1);
        assert_eq!(
            headers.get(COOKIE).and_then(|value| value.to_str().ok()),
            Some("docpulse_device=d1; theme=dark; docpulse_session=new")
        );
    }

    #[test]
    fn the_documents_and_search_pages_need_a_session_and_their_namesakes_do_not() {
        for path in ["/documents", "/documents/doc_1", "/search"] {
            assert!(needs_session(path), "{path}");
        }
        for path in ["/", "/login", "/documentsx", "/searching", "/api/documents"] {
            assert!(!needs_session(path), "{path}");
        }
    }
}
