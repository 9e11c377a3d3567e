//! Who may open which page: the server checks a page request's session before rendering it,
//! sends a reader without one from a page that needs it to sign in (`303 /login?next=…`),
//! and tells the rendered page whether someone is signed in ([`RequestSession`]).
//!
//! So a signed-out reader is never shown a page that then fetches into a `401` (an error
//! in the browser's console and a flash of a broken page): the redirect happens before any
//! byte of the page.
//!
//! **Invariant:** the session is checked by the same extractor as the REST routes
//! ([`Authenticated`]), so a page shows someone as signed in exactly when the API would
//! answer them.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::session::{RequestSession, login_address};

use crate::auth::Authenticated;
use crate::state::AppState;

/// The pages that show a session's data, by path prefix.
const SESSION_PAGES: [&str; 2] = ["/documents", "/search"];

/// Middleware on the pages: checks the session, redirects where one is needed and missing,
/// and puts the [`RequestSession`] on the request for the page to read.
pub async fn check_page_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let signed_in = Authenticated::from_request_parts(&mut parts, &state)
        .await
        .is_ok();
    if !signed_in && needs_session(parts.uri.path()) {
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        return sign_in_first(here);
    }
    parts.extensions.insert(RequestSession { signed_in });
    next.run(Request::from_parts(parts, body)).await
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
    fn the_documents_and_search_pages_need_a_session_and_their_namesakes_do_not() {
        for path in ["/documents", "/documents/doc_1", "/search"] {
            assert!(needs_session(path), "{path}");
        }
        for path in ["/", "/login", "/documentsx", "/searching", "/api/documents"] {
            assert!(!needs_session(path), "{path}");
        }
    }
}
