//! [`Sessions`]: checks a user's password, opens a server-side session and issues the short
//! access token that names it and opens the user's projects, both as JSON and as the HttpOnly
//! session cookie, with the refresh cookie that renews it (see [`crate::auth::refresh`]);
//! logging out ends the session.
//!
//! **Invariant:** an unknown email and a wrong password get the same answer after the same
//! work (a hash is computed either way), so a caller cannot tell which emails exist.
//! **Invariant:** every attempt passes the [`LoginThrottle`] before any hashing.
//! **Invariant:** a token issued here names its session (`sid`), so it stops working when the
//! session ends, whatever its `exp`; and it never outlives the session.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::Pool;
use anyhow::Context;
use axum::http::HeaderValue;

use app::resources::{Credentials, Session};

use app::protocol::ProjectId;

use crate::auth::password::PasswordWorkers;
use crate::auth::refresh::{HOST_REFRESH_COOKIE, REFRESH_COOKIE, RefreshClaims, Verdict, judge};
use crate::auth::revocation::SessionRegistry;
use crate::auth::throttle::{
    DEVICE_COOKIE, DEVICE_COOKIE_TTL, HOST_DEVICE_COOKIE, LoginThrottle, MAX_EMAIL_BYTES,
    MAX_PASSWORD_BYTES, account_key,
};
use crate::auth::{Claims, HOST_SESSION_COOKIE, JwtKeys, SESSION_COOKIE};
use crate::clock::unix_millis;
use crate::error::ApiError;
use crate::storage::{projects, sessions};

/// How long a login lasts; its access tokens are renewed within it.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Logs users in and out; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pool: Pool,
    keys: JwtKeys,
    throttle: LoginThrottle,
    passwords: PasswordWorkers,
    registry: SessionRegistry,
    /// Signs and verifies the refresh cookies.
    refresh_keys: JwtKeys,
    /// How long an access token lives.
    access_ttl: Duration,
    /// Production: the cookies are `__Host-` prefixed and `Secure` (served over HTTPS).
    production: bool,
}

/// Who is signing in, as far as the throttles care.
#[derive(Debug, Clone)]
pub struct LoginClient {
    /// The client's address.
    pub address: IpAddr,
    /// The device cookie the browser sent, if any.
    pub device: Option<String>,
}

/// An access token issued by a login or a renewal, with what goes in the browser's cookies.
#[derive(Debug)]
pub struct Issued {
    /// The session and its access token.
    pub session: Session,
    /// A refresh token of the session's new generation, when the refresh cookie changes.
    refresh_token: Option<String>,
    /// Seconds until the session expires: the refresh cookie's lifetime.
    session_expires_in: u64,
}

/// A successful login: the access token and its cookies, and the device cookie to give the
/// browser.
#[derive(Debug)]
pub struct LoggedIn {
    /// The session's first access token.
    pub issued: Issued,
    /// A fresh device cookie value for the account.
    pub device_token: String,
}

/// What [`Sessions`] works with.
pub struct SessionParts {
    /// The users, memberships and sessions.
    pub pool: Pool,
    /// Signs the tokens.
    pub keys: JwtKeys,
    /// Bounds the attempts.
    pub throttle: LoginThrottle,
    /// Checks the passwords.
    pub passwords: PasswordWorkers,
    /// Ends sessions everywhere.
    pub registry: SessionRegistry,
    /// Signs the refresh cookies: keys of their own purpose ([`crate::auth::refresh`]).
    pub refresh_keys: JwtKeys,
    /// How long an access token lives (`ACCESS_TOKEN_SECS`).
    pub access_ttl: Duration,
    /// Production: `__Host-` prefixed, `Secure` cookies.
    pub production: bool,
}

impl Sessions {
    /// Sessions made of `parts`.
    pub fn new(parts: SessionParts) -> Self {
        let SessionParts {
            pool,
            keys,
            throttle,
            passwords,
            registry,
            refresh_keys,
            access_ttl,
            production,
        } = parts;
        Self {
            pool,
            keys,
            throttle,
            passwords,
            registry,
            refresh_keys,
            access_ttl,
            production,
        }
    }

    /// The name of the session cookie.
    pub fn cookie_name(&self) -> &'static str {
        if self.production {
            HOST_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The name of the refresh cookie.
    pub fn refresh_cookie_name(&self) -> &'static str {
        if self.production {
            HOST_REFRESH_COOKIE
        } else {
            REFRESH_COOKIE
        }
    }

    /// The name of the device cookie.
    pub fn device_cookie_name(&self) -> &'static str {
        if self.production {
            HOST_DEVICE_COOKIE
        } else {
            DEVICE_COOKIE
        }
    }

    /// Checks the credentials, within the throttles, and issues a token for the user's
    /// projects.
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidRequest`] for an email or password over its length limit;
    /// [`ApiError::RateLimited`] or [`ApiError::Overloaded`] from the throttles;
    /// [`ApiError::InvalidCredentials`] for an unknown email or a wrong password;
    /// [`ApiError::Internal`] when the database or signing fails.
    pub async fn log_in(
        &self,
        credentials: Credentials,
        client: &LoginClient,
    ) -> Result<LoggedIn, ApiError> {
        if credentials.email.len() > MAX_EMAIL_BYTES {
            return Err(ApiError::InvalidRequest(format!(
                "the email is longer than {MAX_EMAIL_BYTES} bytes"
            )));
        }
        if credentials.password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::InvalidRequest(format!(
                "the password is longer than {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        let account = account_key(&credentials.email);
        let admitted = self
            .throttle
            .admit(client.address, &account, client.device.as_deref())
            .await?;
        let email = credentials.email.trim();
        let Some(user) = projects::find_user_by_email(&self.pool, email).await? else {
            // Same cost as a real check, so timing does not reveal unknown emails.
            self.passwords.burn(credentials.password).await?;
            self.throttle.failed(&account, &admitted);
            return Err(ApiError::InvalidCredentials);
        };
        if !self
            .passwords
            .verify(credentials.password, user.password_hash)
            .await?
        {
            self.throttle.failed(&account, &admitted);
            return Err(ApiError::InvalidCredentials);
        }
        drop(admitted);
        let session_expires_at_ms = unix_millis().saturating_add(
            i64::try_from(SESSION_TTL.as_millis()).context("the session lifetime fits")?,
        );
        let sid = format!("ses_{}", crate::random::random_hex::<16>());
        sessions::create(&self.pool, &sid, &user.id, session_expires_at_ms).await?;
        let issued = self
            .issue(user.id, user.email, sid, session_expires_at_ms, Some(0))
            .await?;
        let device_token = self.throttle.device_token(&account)?;
        Ok(LoggedIn {
            issued,
            device_token,
        })
    }

    /// Renews the access token of the session `refresh_token` names, rotating the refresh
    /// cookie (see [`crate::auth::refresh`]); the token opens the user's projects as they are
    /// now.
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidToken`] for a refresh token that does not verify;
    /// [`ApiError::SessionEnded`] when the session is over, or was just ended because the
    /// cookie was used after it was replaced; [`ApiError::Internal`] when the database or
    /// signing fails.
    pub async fn renew(&self, refresh_token: &str) -> Result<Issued, ApiError> {
        let claims: RefreshClaims = self
            .refresh_keys
            .verify_claims(refresh_token)
            .map_err(|_| ApiError::InvalidToken)?;
        let now_ms = unix_millis();
        let rotation = sessions::rotate(&self.pool, &claims.sid, claims.generation, now_ms).await?;
        let (user_id, expires_at_ms, generation) = match judge(rotation, claims.generation, now_ms)
        {
            Verdict::Renew {
                user_id,
                expires_at_ms,
                generation,
            } => (user_id, expires_at_ms, generation),
            Verdict::EndSession => {
                tracing::warn!(
                    sid = %claims.sid,
                    "a replaced refresh cookie came back: the session is ended"
                );
                self.registry.end(&claims.sid).await?;
                return Err(ApiError::SessionEnded);
            }
            Verdict::Refuse => return Err(ApiError::SessionEnded),
        };
        let email = projects::user_email(&self.pool, &user_id)
            .await?
            .ok_or(ApiError::SessionEnded)?;
        self.issue(user_id, email, claims.sid, expires_at_ms, generation)
            .await
    }

    /// An access token of session `sid` for the user's projects, living the configured time
    /// but never past the session; and a refresh token of `generation`, if given.
    async fn issue(
        &self,
        user_id: String,
        email: String,
        sid: String,
        session_expires_at_ms: i64,
        generation: Option<i64>,
    ) -> Result<Issued, ApiError> {
        // Only valid project ids become claims: never `*`, which would open every project.
        let projects: Vec<_> = projects::member_projects(&self.pool, &user_id)
            .await?
            .into_iter()
            .filter(|project| project.id.parse::<ProjectId>().is_ok())
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs();
        let session_expires_at = u64::try_from(session_expires_at_ms / 1000).unwrap_or(0);
        let expires_at = now
            .saturating_add(self.access_ttl.as_secs())
            .min(session_expires_at);
        let claims = Claims {
            sub: user_id.clone(),
            exp: expires_at,
            projects: projects.iter().map(|project| project.id.clone()).collect(),
            role: None,
            sid: Some(sid.clone()),
        };
        let token = self.keys.sign(&claims).context("cannot sign a token")?;
        let refresh_token = generation
            .map(|generation| {
                self.refresh_keys.sign_claims(&RefreshClaims {
                    sub: user_id.clone(),
                    sid,
                    generation,
                    exp: session_expires_at,
                })
            })
            .transpose()
            .context("cannot sign a refresh token")?;
        Ok(Issued {
            session: Session {
                token,
                expires_at,
                expires_in: expires_at.saturating_sub(now),
                user_id,
                email,
                projects,
            },
            refresh_token,
            session_expires_in: session_expires_at.saturating_sub(now),
        })
    }

    /// Ends the session that `claims` name, or else the one a verified `refresh_token` names,
    /// if any: everywhere, with its streams. The refresh token counts because the access token
    /// may have expired while the session lives on.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn log_out(
        &self,
        claims: Option<&Claims>,
        refresh_token: Option<&str>,
    ) -> Result<(), ApiError> {
        let sid = claims.and_then(|claims| claims.sid.clone()).or_else(|| {
            refresh_token
                .and_then(|token| self.refresh_keys.verify_claims::<RefreshClaims>(token).ok())
                .map(|claims| claims.sid)
        });
        if let Some(sid) = sid {
            self.registry.end(&sid).await?;
        }
        Ok(())
    }

    /// The `Set-Cookie` values that store what `issued` gives the browser: the access token,
    /// living as long as it does, and the refresh token when it changed, living as long as
    /// the session.
    pub fn cookies(&self, issued: &Issued) -> Vec<HeaderValue> {
        let access = self.cookie_with(
            self.cookie_name(),
            &issued.session.token,
            issued.session.expires_in,
        );
        let refresh = issued.refresh_token.as_ref().map(|token| {
            self.cookie_with(self.refresh_cookie_name(), token, issued.session_expires_in)
        });
        std::iter::once(access).chain(refresh).collect()
    }

    /// The `Set-Cookie` value that tells later logins this browser signed in before.
    pub fn device_cookie(&self, logged_in: &LoggedIn) -> HeaderValue {
        self.cookie_with(
            self.device_cookie_name(),
            &logged_in.device_token,
            DEVICE_COOKIE_TTL.as_secs(),
        )
    }

    /// The `Set-Cookie` values that remove the session and refresh cookies.
    pub fn clearing_cookies(&self) -> [HeaderValue; 2] {
        [
            self.cookie_with(self.cookie_name(), "", 0),
            self.cookie_with(self.refresh_cookie_name(), "", 0),
        ]
    }

    fn cookie_with(&self, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
        let secure = if self.production { "; Secure" } else { "" };
        let cookie = format!(
            "{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
        );
        HeaderValue::from_str(&cookie)
            .expect("a JWT and the fixed attributes are valid header text")
    }
}
