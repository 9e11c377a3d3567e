//! [`JwtKeys`]: the HS256 key pair and the validation rules, built once from the secret.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::Claims;
use crate::config::Secret;

/// Signs and verifies access tokens; cheap to clone.
#[derive(Clone)]
pub struct JwtKeys(Arc<Keys>);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Keys for `secret`: HS256 only, `exp` and `sub` required, no leeway on expiry.
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self(Arc::new(Keys {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }))
    }

    /// Keys for tokens of another `purpose` than access (the device cookie): the same secret
    /// with the purpose mixed in, so that neither kind of token verifies as the other.
    pub fn for_purpose(secret: &Secret, purpose: &str) -> Self {
        Self::new(&Secret::new(format!(
            "docpulse:{purpose}:{}",
            secret.expose()
        )))
    }

    /// Signs `claims` with HS256.
    ///
    /// # Errors
    ///
    /// The claims cannot be serialized or signed.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign_claims(claims)
    }

    /// Verifies `token` and returns its claims.
    ///
    /// # Errors
    ///
    /// Bad signature, malformed token or claims, expired, or an algorithm other than HS256
    /// (`none` included).
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        self.verify_claims(token)
    }

    /// Signs claims of any shape with HS256.
    ///
    /// # Errors
    ///
    /// The claims cannot be serialized or signed.
    pub fn sign_claims<T: Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.0.encoding)
    }

    /// Verifies `token` under the same rules as [`JwtKeys::verify`] and returns its claims as
    /// `T`.
    ///
    /// # Errors
    ///
    /// As [`JwtKeys::verify`], or the claims are not a `T`.
    pub fn verify_claims<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<T>(token, &self.0.decoding, &self.0.validation)
            .map(|data| data.claims)
    }
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("JwtKeys([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&Secret::new("k".repeat(32)))
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "user_1".to_owned(),
            exp,
            projects: vec!["proj_1".to_owned()],
            role: None,
            sid: None,
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let claims = claims(now() + 60);
        let token = keys().sign(&claims).expect("signs");
        assert_eq!(keys().verify(&token).expect("verifies"), claims);
    }

    #[test]
    fn expired_foreign_and_unsigned_tokens_are_refused() {
        let expired = keys().sign(&claims(now() - 1)).expect("signs");
        assert!(keys().verify(&expired).is_err(), "an expired token passed");

        let foreign = JwtKeys::new(&Secret::new("x".repeat(32)))
            .sign(&claims(now() + 60))
            .expect("signs");
        assert!(keys().verify(&foreign).is_err(), "a foreign key passed");

        let good = keys().sign(&claims(now() + 60)).expect("signs");
        let payload = good.split('.').nth(1).expect("three parts");
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(keys().verify(&unsigned).is_err(), "alg none passed");

        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(now() + 60),
            &EncodingKey::from_secret("k".repeat(32).as_bytes()),
        )
        .expect("signs");
        assert!(keys().verify(&hs512).is_err(), "HS512 passed");

        assert!(keys().verify("not.a.token").is_err());
    }
}
