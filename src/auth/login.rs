//! [`Sessions`]: checks a user's password, opens a server-side session and issues the token
//! that names it and opens the user's projects, both as JSON and as the HttpOnly session
//! cookie; logging out ends the session.
//!
//! **Invariant:** an unknown email and a wrong password get the same answer after the same
//! work (a hash is computed either way), so a caller cannot tell which emails exist.
//! **Invariant:** every attempt passes the [`LoginThrottle`] before any hashing.
//! **Invariant:** a token issued here names its session (`sid`), so it stops working when the
//! session ends, whatever its `exp`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::Pool;
use anyhow::Context;
use axum::http::HeaderValue;

use app::resources::{Credentials, Session};

use app::protocol::ProjectId;

use crate::auth::password::PasswordWorkers;
use crate::auth::revocation::SessionRegistry;
use crate::auth::throttle::{
    DEVICE_COOKIE, DEVICE_COOKIE_TTL, HOST_DEVICE_COOKIE, LoginThrottle, MAX_EMAIL_BYTES,
    MAX_PASSWORD_BYTES, account_key,
};
use crate::auth::{Claims, HOST_SESSION_COOKIE, JwtKeys, SESSION_COOKIE};
use crate::error::ApiError;
use crate::storage::{projects, sessions};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Logs users in and out; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pool: Pool,
    keys: JwtKeys,
    throttle: LoginThrottle,
    passwords: PasswordWorkers,
    registry: SessionRegistry,
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

/// A successful login: the session, and the device cookie to give the browser.
#[derive(Debug)]
pub struct LoggedIn {
    /// The session and its token.
    pub session: Session,
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
            production,
        } = parts;
        Self {
            pool,
            keys,
            throttle,
            passwords,
            registry,
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
        // Only valid project ids become claims: never `*`, which would open every project.
        let projects: Vec<_> = projects::member_projects(&self.pool, &user.id)
            .await?
            .into_iter()
            .filter(|project| project.id.parse::<ProjectId>().is_ok())
            .collect();
        let expires_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .saturating_add(SESSION_TTL)
            .as_secs();
        let sid = format!("ses_{}", crate::random::random_hex::<16>());
        let expires_at_ms = i64::try_from(expires_at)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        sessions::create(&self.pool, &sid, &user.id, expires_at_ms).await?;
        let claims = Claims {
            sub: user.id.clone(),
            exp: expires_at,
            projects: projects.iter().map(|project| project.id.clone()).collect(),
            role: None,
            sid: Some(sid),
        };
        let token = self.keys.sign(&claims).context("cannot sign a token")?;
        let device_token = self.throttle.device_token(&account)?;
        Ok(LoggedIn {
            session: Session {
                token,
                expires_at,
                user_id: user.id,
                email: user.email,
                projects,
            },
            device_token,
        })
    }

    /// Ends the session `claims` names, if any: everywhere, with its streams.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn log_out(&self, claims: &Claims) -> Result<(), ApiError> {
        if let Some(sid) = &claims.sid {
            self.registry.end(sid).await?;
        }
        Ok(())
    }

    /// The `Set-Cookie` value that stores the session's token in the browser.
    pub fn cookie(&self, session: &Session) -> HeaderValue {
        self.cookie_with(self.cookie_name(), &session.token, SESSION_TTL.as_secs())
    }

    /// The `Set-Cookie` value that tells later logins this browser signed in before.
    pub fn device_cookie(&self, logged_in: &LoggedIn) -> HeaderValue {
        self.cookie_with(
            self.device_cookie_name(),
            &logged_in.device_token,
            DEVICE_COOKIE_TTL.as_secs(),
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clearing_cookie(&self) -> HeaderValue {
        self.cookie_with(self.cookie_name(), "", 0)
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
