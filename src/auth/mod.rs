//! Who is calling and what they may touch: JWT claims, keys and the Axum extractors.
//!
//! **Invariant:** a token is read from the `Authorization` header or the session cookie,
//! never from the query string, and only HS256 with an unexpired `exp` is accepted.

mod claims;
mod extract;
mod keys;
mod login;
pub mod password;
pub mod refresh;
pub mod revocation;
pub mod throttle;

pub use claims::{ALL_PROJECTS, Claims, PUBLISHER_ROLE};
pub use extract::{
    Authenticated, Authenticator, ClientIp, ClientIpSource, HOST_SESSION_COOKIE, ProjectAccess,
    Publisher, SESSION_COOKIE, cookie, from_another_site,
};
pub use keys::JwtKeys;
pub use login::{Issued, LoggedIn, LoginClient, SESSION_TTL, SessionParts, Sessions};
