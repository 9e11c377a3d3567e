//! [`LoginThrottle`]: what logins may cost, whoever sends them.
//!
//! A password check runs argon2 (19 MiB and tens of milliseconds each) on purpose, so logins
//! are the cheapest way to make the server spend memory and CPU. Three bounds apply, in this
//! order, each refusing before any hashing:
//!
//! 1. per client address (an IPv4 address or an IPv6 /64): so many attempts per minute,
//!    successful or not (`429 rate_limited`);
//! 2. per account (the email as typed, trimmed and lowercased, whether or not it exists): so
//!    many failures per minute (`429 rate_limited`). A browser that has signed in to that
//!    account before carries a signed device cookie naming it and is exempt, so an attacker
//!    who keeps an account throttled locks out only browsers its owner never used;
//! 3. the hashing itself: so many at once and so many waiting (`503 overloaded`).
//!
//! **Invariant:** an unknown email and a wrong password pass the same throttles, cost the
//! same hash and get the same answer.
//! **Invariant:** memory is bounded: both limiters remember at most `LOGIN_TRACKED_KEYS` keys,
//! and at most `LOGIN_HASH_CONCURRENCY` hashes run at once.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::auth::JwtKeys;
use crate::config::{LoginConfig, Secret};
use crate::error::ApiError;
use crate::limits::{Gate, GatePass, RateLimiter, Refusal};

/// The cookie that says this browser signed in to an account before.
pub const DEVICE_COOKIE: &str = "docpulse_device";
/// Its name in production, where it is `__Host-` prefixed like the session cookie.
pub const HOST_DEVICE_COOKIE: &str = "__Host-docpulse_device";
/// How long a device cookie vouches for its browser.
pub const DEVICE_COOKIE_TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Longest accepted email, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest accepted password, in bytes: longer ones cost no more to hash, but are no use.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The claims of a device cookie: the account it signed in to, until when.
#[derive(Debug, Serialize, Deserialize)]
struct DeviceClaims {
    /// The account's email, trimmed and lowercased.
    sub: String,
    /// Expiry, Unix seconds.
    exp: u64,
}

/// Bounds logins by client address, by account and by hashing capacity; cheap to clone.
#[derive(Clone)]
pub struct LoginThrottle {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    per_address: RateLimiter<IpAddr>,
    per_account: RateLimiter<String>,
    hashing: Gate,
    /// Signs and verifies device cookies; derived from the JWT secret for that purpose only.
    device_keys: JwtKeys,
}

/// The account key of an email: how throttles and device cookies name it.
pub fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The key of a client address: IPv4 as it is, IPv6 by its /64 (one host's usual share).
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

impl LoginThrottle {
    /// A throttle with `config`'s bounds, signing device cookies with a key derived from
    /// `secret`.
    pub fn new(config: &LoginConfig, secret: &Secret) -> Self {
        Self {
            inner: std::sync::Arc::new(Inner {
                per_address: RateLimiter::per_minute(
                    config.attempts_per_address,
                    config.tracked_keys,
                ),
                per_account: RateLimiter::per_minute(
                    config.failures_per_account,
                    config.tracked_keys,
                ),
                hashing: Gate::new(
                    config.hash_concurrency,
                    config.hash_queue,
                    "password checks",
                ),
                device_keys: JwtKeys::for_purpose(secret, "device"),
            }),
        }
    }

    /// Admits one login attempt for `account` from `address`, vouched for by `device` (the
    /// device cookie, if any), and waits for its turn to hash. The caller then reports a
    /// failure with [`LoginThrottle::failed`].
    ///
    /// # Errors
    ///
    /// [`ApiError::RateLimited`] for too many attempts from the address or failures for the
    /// account; [`ApiError::Overloaded`] when the hashing queue or the limiters are full.
    pub async fn admit(
        &self,
        address: IpAddr,
        account: &str,
        device: Option<&str>,
    ) -> Result<Admitted, ApiError> {
        let now = Instant::now();
        self.inner
            .per_address
            .acquire(&address_key(address), now)
            .map_err(|refusal| refused(refusal, "too many sign-in attempts from this address"))?;
        let trusted = device.is_some_and(|token| self.vouches_for(token, account));
        if !trusted {
            self.inner
                .per_account
                .check(&account.to_owned(), now)
                .map_err(|refusal| refused(refusal, "too many failed sign-ins for this account"))?;
        }
        let pass = self.inner.hashing.enter().await?;
        Ok(Admitted {
            _pass: pass,
            trusted,
        })
    }

    /// Counts a failed attempt against `account`, unless `admitted` came from a browser that
    /// signed in to it before.
    pub fn failed(&self, account: &str, admitted: &Admitted) {
        if !admitted.trusted {
            // A full limiter cannot count this failure; the address limit still holds.
            let _ = self
                .inner
                .per_account
                .record(&account.to_owned(), Instant::now());
        }
    }

    /// A device cookie value vouching that this browser signed in to `account`.
    ///
    /// # Errors
    ///
    /// The clock is before 1970 or signing fails.
    pub fn device_token(&self, account: &str) -> anyhow::Result<String> {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)?
            .saturating_add(DEVICE_COOKIE_TTL)
            .as_secs();
        Ok(self.inner.device_keys.sign_claims(&DeviceClaims {
            sub: account.to_owned(),
            exp,
        })?)
    }

    fn vouches_for(&self, token: &str, account: &str) -> bool {
        self.inner
            .device_keys
            .verify_claims::<DeviceClaims>(token)
            .is_ok_and(|claims| claims.sub == account)
    }
}

/// A login let through to its password check; holds its place in the hashing gate.
pub struct Admitted {
    _pass: GatePass,
    /// The browser signed in to this account before.
    trusted: bool,
}

fn refused(refusal: Refusal, message: &'static str) -> ApiError {
    match refusal {
        Refusal::Limited(retry_after) => ApiError::RateLimited {
            message,
            retry_after,
        },
        Refusal::Full => ApiError::Overloaded {
            limit: "sign-in attempts tracked",
            retry_after: Duration::from_secs(1),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn throttle(per_address: u32, per_account: u32) -> LoginThrottle {
        LoginThrottle::new(
            &LoginConfig {
                hash_concurrency: 1,
                hash_queue: 0,
                attempts_per_address: per_address,
                failures_per_account: per_account,
                tracked_keys: 100,
                remembered_sessions: 100,
                access_ttl: std::time::Duration::from_secs(60),
            },
            &Secret::new("s".repeat(32)),
        )
    }

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    #[track_caller]
    fn assert_rate_limited(result: Result<Admitted, ApiError>, expected: &str) {
        match result {
            Err(ApiError::RateLimited { message, .. }) => assert_eq!(message, expected),
            Err(other) => panic!("expected 429, got {other:?}"),
            Ok(_) => panic!("expected 429, got admitted"),
        }
    }

    #[tokio::test]
    async fn an_address_gets_its_attempts_then_waits() {
        let throttle = throttle(2, 100);
        for _ in 0..2 {
            drop(throttle.admit(HOME, "a@x", None).await.expect("admitted"));
        }
        assert_rate_limited(
            throttle.admit(HOME, "b@x", None).await,
            "too many sign-in attempts from this address",
        );
        drop(
            throttle
                .admit(OTHER, "a@x", None)
                .await
                .expect("another address is apart"),
        );
    }

    #[tokio::test]
    async fn failures_throttle_an_account_except_for_a_browser_that_signed_in_before() {
        let throttle = throttle(100, 2);
        for _ in 0..2 {
            let admitted = throttle
                .admit(OTHER, "ada@x", None)
                .await
                .expect("admitted");
            throttle.failed("ada@x", &admitted);
        }
        assert_rate_limited(
            throttle.admit(HOME, "ada@x", None).await,
            "too many failed sign-ins for this account",
        );
        let device = throttle.device_token("ada@x").expect("signs");
        let admitted = throttle
            .admit(HOME, "ada@x", Some(&device))
            .await
            .expect("the owner's browser is let through");
        throttle.failed("ada@x", &admitted);
        drop(admitted);
        drop(
            throttle
                .admit(HOME, "ada@x", Some(&device))
                .await
                .expect("and its own typos do not lock it out"),
        );
        assert_rate_limited(
            throttle
                .admit(HOME, "ada@x", Some("forged.token.value"))
                .await,
            "too many failed sign-ins for this account",
        );
        let other_account = throttle.device_token("bob@x").expect("signs");
        assert_rate_limited(
            throttle.admit(HOME, "ada@x", Some(&other_account)).await,
            "too many failed sign-ins for this account",
        );
    }

    #[tokio::test]
    async fn hashing_beyond_the_gate_is_refused_as_overloaded() {
        let throttle = throttle(100, 100);
        let first = throttle.admit(HOME, "a@x", None).await.expect("admitted");
        match throttle.admit(OTHER, "b@x", None).await {
            Err(ApiError::Overloaded { limit, .. }) => assert_eq!(limit, "password checks"),
            Err(other) => panic!("expected 503, got {other:?}"),
            Ok(_) => panic!("expected 503, got admitted"),
        }
        drop(first);
        drop(
            throttle
                .admit(OTHER, "b@x", None)
                .await
                .expect("room again"),
        );
    }

    #[test]
    fn addresses_are_keyed_by_host_and_ipv6_by_its_64() {
        let v6: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().expect("valid");
        let same_64: IpAddr = "2001:db8:1:2::9".parse().expect("valid");
        assert_eq!(address_key(v6), address_key(same_64));
        assert_ne!(
            address_key(v6),
            address_key("2001:db8:1:3::9".parse().expect("valid"))
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(address_key(mapped), HOME);
        assert_eq!(
            address_key(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            "::".parse::<IpAddr>().expect("valid"),
            "::1 is in the /64 of ::"
        );
        assert_eq!(account_key("  Ada@Example.COM "), "ada@example.com");
    }
}
