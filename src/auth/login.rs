//! [`Sessions`]: checks a user's password and issues the token that opens the user's
//! projects, both as JSON and as the HttpOnly session cookie.
//!
//! **Invariant:** an unknown email and a wrong password get the same answer after the same
//! work (a hash is computed either way), so a caller cannot tell which emails exist.
//! **Invariant:** every attempt passes the [`LoginThrottle`] before any hashing.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::Pool;
use anyhow::Context;
use axum::http::HeaderValue;

use app::resources::{Credentials, Session};

use crate::auth::password::PasswordWorkers;
use crate::auth::throttle::{
    DEVICE_COOKIE, DEVICE_COOKIE_TTL, LoginThrottle, MAX_EMAIL_BYTES, MAX_PASSWORD_BYTES,
    account_key,
};
use crate::auth::{Claims, JwtKeys, SESSION_COOKIE};
use crate::error::ApiError;
use crate::storage::projects;

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Logs users in and out; cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    pool: Pool,
    keys: JwtKeys,
    throttle: LoginThrottle,
    passwords: PasswordWorkers,
    /// Whether the cookie gets `Secure` (production, served over HTTPS).
    secure_cookie: bool,
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

impl Sessions {
    /// Sessions checked against `pool`'s users on `passwords`, throttled by `throttle`, and
    /// signed with `keys`.
    pub fn new(
        pool: Pool,
        keys: JwtKeys,
        throttle: LoginThrottle,
        passwords: PasswordWorkers,
        secure_cookie: bool,
    ) -> Self {
        Self {
            pool,
            keys,
            throttle,
            passwords,
            secure_cookie,
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
        let projects = projects::member_projects(&self.pool, &user.id).await?;
        let expires_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .saturating_add(SESSION_TTL)
            .as_secs();
        let claims = Claims {
            sub: user.id.clone(),
            exp: expires_at,
            projects: projects.iter().map(|project| project.id.clone()).collect(),
            role: None,
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

    /// The `Set-Cookie` value that stores the session's token in the browser.
    pub fn cookie(&self, session: &Session) -> HeaderValue {
        self.cookie_with(SESSION_COOKIE, &session.token, SESSION_TTL.as_secs())
    }

    /// The `Set-Cookie` value that tells later logins this browser signed in before.
    pub fn device_cookie(&self, logged_in: &LoggedIn) -> HeaderValue {
        self.cookie_with(
            DEVICE_COOKIE,
            &logged_in.device_token,
            DEVICE_COOKIE_TTL.as_secs(),
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clearing_cookie(&self) -> HeaderValue {
        self.cookie_with(SESSION_COOKIE, "", 0)
    }

    fn cookie_with(&self, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        let cookie = format!(
            "{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
        );
        HeaderValue::from_str(&cookie)
            .expect("a JWT and the fixed attributes are valid header text")
    }
}
