//! Whether someone is signed in, so that a page needing a session never fetches into a
//! `401`: the server knows it from the request's session cookie and redirects such pages
//! to sign in itself (`303 /login?next=…`); the browser gets the answer with the page and
//! keeps it current on sign-in and log-out ([`SignedIn`]).
//!
//! **Invariant:** `next` addresses are local paths ([`safe_next`]), so signing in never
//! sends the reader to another site.

use std::time::Duration;

use leptos::prelude::*;

/// The most a renewal of the access token comes before its expiry.
const MAX_RENEWAL_LEAD: Duration = Duration::from_secs(60);

/// When to renew an access token that expires in `expires_in`: a fifth of its life early, at
/// most [`MAX_RENEWAL_LEAD`] early, so a short token is renewed when four fifths of it are
/// gone and a long one a minute before its end.
pub fn renewal_delay(expires_in: Duration) -> Duration {
    expires_in.saturating_sub((expires_in / 5).min(MAX_RENEWAL_LEAD))
}

/// Where a page that needs a session sends a reader who has none, and the default place
/// after signing in.
pub const DEFAULT_NEXT: &str = "/documents";

/// What the server found about a page request's session; it puts this on the request
/// (an extension) before the page renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSession {
    /// Seconds until the request's access token expires, when it came with a live session
    /// (`None`: signed out): when the browser renews it.
    pub access_expires_in: Option<u64>,
}

/// The context value: whether the reader is signed in, as far as the page knows.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn(pub RwSignal<bool>);

impl SignedIn {
    /// Provides the context from what the server found (during SSR) or from what it sent
    /// with the page (at hydration), and in the browser keeps the access token renewed.
    pub fn provide() -> Self {
        let access_expires_in =
            leptos::server::SharedValue::new(request_access_expires_in).into_inner();
        let signed_in = Self(RwSignal::new(access_expires_in.is_some()));
        provide_context(signed_in);
        #[cfg(feature = "hydrate")]
        if let Some(expires_in) = access_expires_in {
            crate::session_renewal::renew_before_expiry(expires_in);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = access_expires_in;
        signed_in
    }

    /// Whether the reader is signed in.
    pub fn get(self) -> bool {
        self.0.get()
    }

    /// Records a sign-in (`true`) or a log-out (`false`, which stops renewing the token).
    pub fn set(self, signed_in: bool) {
        #[cfg(feature = "hydrate")]
        if !signed_in {
            crate::session_renewal::stop_renewing();
        }
        self.0.set(signed_in);
    }
}

/// The context provided by [`SignedIn::provide`].
pub fn use_signed_in() -> SignedIn {
    expect_context::<SignedIn>()
}

/// Seconds until the request's access token expires; `None` when it came signed out.
#[cfg(feature = "ssr")]
fn request_access_expires_in() -> Option<u64> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<RequestSession>().copied())
        .and_then(|session| session.access_expires_in)
}

#[cfg(not(feature = "ssr"))]
fn request_access_expires_in() -> Option<u64> {
    None
}

/// For a page that needs a session: sends a reader who has none to sign in, and back.
#[derive(Clone, Copy)]
pub struct SessionGate {
    signed_in: SignedIn,
    /// The page's path and query, read when the gate sends the reader away.
    here: StoredValue<Box<dyn Fn() -> String + Send + Sync>>,
}

impl SessionGate {
    /// The gate of the current page.
    pub fn new() -> Self {
        let location = leptos_router::hooks::use_location();
        let here: Box<dyn Fn() -> String + Send + Sync> = Box::new(move || {
            format!(
                "{}{}",
                location.pathname.get_untracked(),
                location.search.get_untracked()
            )
        });
        Self {
            signed_in: use_signed_in(),
            here: StoredValue::new(here),
        }
    }

    /// A redirect to sign in when the reader is signed out (the server already redirected
    /// a page load; this is a navigation in the browser, which then calls no API).
    pub fn signed_out(self) -> Option<AnyView> {
        (!self.signed_in.0.get_untracked()).then(|| self.to_sign_in())
    }

    /// What a page shows when the API says the session ended: a redirect to sign in.
    pub fn session_ended(self) -> AnyView {
        self.signed_in.set(false);
        self.to_sign_in()
    }

    fn to_sign_in(self) -> AnyView {
        let next = self.here.with_value(|here| here());
        view! { <leptos_router::components::Redirect path=login_address(&next) /> }.into_any()
    }
}

impl Default for SessionGate {
    fn default() -> Self {
        Self::new()
    }
}

/// The sign-in page's address that comes back to `next` (a path with its query).
pub fn login_address(next: &str) -> String {
    format!("/login?next={}", query_value(next))
}

/// `text` percent-encoded for a query's value: everything but unreserved characters and
/// `/` is escaped, so it cannot end the value or the query.
pub fn query_value(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(char::from(byte));
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// `next` if it is a path of this site, else [`DEFAULT_NEXT`]: `//host` and `/\host` are
/// other sites to a browser, and anything not starting with `/` is not a path.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(char::is_control) =>
        {
            next
        }
        _ => DEFAULT_NEXT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_a_fifth_of_its_life_early_and_at_most_a_minute_early() {
        let secs = Duration::from_secs;
        assert_eq!(renewal_delay(secs(5)), secs(4));
        assert_eq!(renewal_delay(secs(100)), secs(80));
        assert_eq!(renewal_delay(secs(900)), secs(840));
        assert_eq!(renewal_delay(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_login_address_carries_the_path_and_query_encoded() {
        assert_eq!(login_address("/documents"), "/login?next=/documents");
        assert_eq!(
            login_address("/documents?project=proj_a&x=a b"),
            "/login?next=/documents%3Fproject%3Dproj_a%26x%3Da%20b"
        );
        assert_eq!(login_address("/é"), "/login?next=/%C3%A9");
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/documents?project=a")),
            "/documents?project=a"
        );
        assert_eq!(safe_next(Some("/search")), "/search");
        for unsafe_next in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "documents",
            "",
            "/a\nb",
        ] {
            assert_eq!(
                safe_next(Some(unsafe_next)),
                DEFAULT_NEXT,
                "{unsafe_next:?}"
            );
        }
        assert_eq!(safe_next(None), DEFAULT_NEXT);
    }
}
