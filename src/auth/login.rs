//! [`Sessions`]: checks a user's password and issues the token that opens the user's
//! projects, both as JSON and as the HttpOnly session cookie.
//!
//! **Invariant:** an unknown email and a wrong password get the same answer after the same
//! work (a hash is computed either way), so a caller cannot tell which emails exist.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::storage::Pool;
use anyhow::Context;
use axum::http::HeaderValue;

use app::resources::{Credentials, Session};

use crate::auth::password::{hash_password, verify_password};
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
    /// Whether the cookie gets `Secure` (production, served over HTTPS).
    secure_cookie: bool,
}

impl Sessions {
    /// Sessions checked against `pool`'s users and signed with `keys`.
    pub fn new(pool: Pool, keys: JwtKeys, secure_cookie: bool) -> Self {
        Self {
            pool,
            keys,
            secure_cookie,
        }
    }

    /// Checks the credentials and issues a token for the user's projects.
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidCredentials`] for an unknown email or a wrong password;
    /// [`ApiError::Internal`] when the database or signing fails.
    pub async fn log_in(&self, credentials: Credentials) -> Result<Session, ApiError> {
        let email = credentials.email.trim();
        let Some(user) = projects::find_user_by_email(&self.pool, email).await? else {
            // Same cost as a real check, so timing does not reveal unknown emails.
            hash_password(credentials.password).await?;
            return Err(ApiError::InvalidCredentials);
        };
        if !verify_password(credentials.password, user.password_hash).await? {
            return Err(ApiError::InvalidCredentials);
        }
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
        Ok(Session {
            token,
            expires_at,
            user_id: user.id,
            email: user.email,
            projects,
        })
    }

    /// The `Set-Cookie` value that stores the session's token in the browser.
    pub fn cookie(&self, session: &Session) -> HeaderValue {
        self.cookie_with(&session.token, SESSION_TTL.as_secs())
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clearing_cookie(&self) -> HeaderValue {
        self.cookie_with("", 0)
    }

    fn cookie_with(&self, value: &str, max_age_secs: u64) -> HeaderValue {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        let cookie = format!(
            "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
        );
        HeaderValue::from_str(&cookie)
            .expect("a JWT and the fixed attributes are valid header text")
    }
}
