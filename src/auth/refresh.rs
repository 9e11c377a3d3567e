//! The refresh cookie: how a browser renews its short access token from its server-side
//! session, without signing in again.
//!
//! The cookie holds a token of its own kind (signed with the secret mixed with `refresh`, so
//! neither kind verifies as the other) that names the session and a generation. Each renewal
//! rotates it: the session's generation moves on by one and the browser gets a cookie of the
//! new one.
//!
//! **Invariant:** a renewal with the generation just replaced passes only within
//! [`REUSE_GRACE`] of the replacement (tabs of one browser renewing at once), and gets an
//! access token but no new cookie; any older generation means the cookie was copied, and ends
//! the session, with its streams.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::sessions::Rotation;

/// The HttpOnly cookie that carries the refresh token in development (plain HTTP).
pub const REFRESH_COOKIE: &str = "docpulse_refresh";
/// The same in production, `__Host-` prefixed like the session cookie.
pub const HOST_REFRESH_COOKIE: &str = "__Host-docpulse_refresh";
/// What the refresh tokens' keys are derived for.
pub const REFRESH_PURPOSE: &str = "refresh";

/// How long the generation just replaced still renews: long enough for the other tabs of the
/// browser whose renewal replaced it, far too short to be worth stealing.
pub const REUSE_GRACE: Duration = Duration::from_secs(30);

/// The claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// The session's user.
    pub sub: String,
    /// The session.
    pub sid: String,
    /// The session's refresh generation when the token was issued.
    pub generation: i64,
    /// The session's expiry, in seconds since the Unix epoch.
    pub exp: u64,
}

/// What a renewal does, from what the session's row said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Issue an access token for `user_id`; and a refresh cookie of `generation` when it is
    /// `Some` (the renewal rotated).
    Renew {
        /// The session's user.
        user_id: String,
        /// The session's expiry (Unix milliseconds).
        expires_at_ms: i64,
        /// The new generation, if this renewal rotated.
        generation: Option<i64>,
    },
    /// The cookie was used after it was replaced: end the session.
    EndSession,
    /// The session is over: refuse.
    Refuse,
}

/// The verdict on a renewal presenting `generation` that found `rotation`, at `now_ms`.
pub fn judge(rotation: Rotation, generation: i64, now_ms: i64) -> Verdict {
    let grace_ms = i64::try_from(REUSE_GRACE.as_millis()).unwrap_or(i64::MAX);
    match rotation {
        Rotation::Rotated {
            user_id,
            expires_at_ms,
        } => Verdict::Renew {
            user_id,
            expires_at_ms,
            generation: Some(generation.saturating_add(1)),
        },
        Rotation::Previous {
            user_id,
            expires_at_ms,
            rotated_at_ms,
        } if now_ms.saturating_sub(rotated_at_ms) < grace_ms => Verdict::Renew {
            user_id,
            expires_at_ms,
            generation: None,
        },
        Rotation::Previous { .. } | Rotation::Stale => Verdict::EndSession,
        Rotation::Ended => Verdict::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn previous(rotated_at_ms: i64) -> Rotation {
        Rotation::Previous {
            user_id: "user_1".to_owned(),
            expires_at_ms: 9_000_000,
            rotated_at_ms,
        }
    }

    #[test]
    fn the_current_generation_rotates_to_the_next() {
        let rotated = Rotation::Rotated {
            user_id: "user_1".to_owned(),
            expires_at_ms: 9_000_000,
        };
        assert_eq!(
            judge(rotated, 4, 1_000),
            Verdict::Renew {
                user_id: "user_1".to_owned(),
                expires_at_ms: 9_000_000,
                generation: Some(5),
            }
        );
    }

    #[test]
    fn the_generation_just_replaced_renews_without_a_cookie_only_within_the_grace() {
        let rotated_at = 1_000_000;
        let last_moment = rotated_at + 29_999;
        assert_eq!(
            judge(previous(rotated_at), 4, last_moment),
            Verdict::Renew {
                user_id: "user_1".to_owned(),
                expires_at_ms: 9_000_000,
                generation: None,
            }
        );
        assert_eq!(
            judge(previous(rotated_at), 4, last_moment + 1),
            Verdict::EndSession
        );
    }

    #[test]
    fn an_older_generation_ends_the_session_and_an_ended_session_is_refused() {
        assert_eq!(judge(Rotation::Stale, 1, 1_000), Verdict::EndSession);
        assert_eq!(judge(Rotation::Ended, 1, 1_000), Verdict::Refuse);
    }
}
