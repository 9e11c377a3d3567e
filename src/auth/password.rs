//! Password hashing with argon2id, run off the async threads since each hash takes tens of
//! milliseconds on purpose.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes `password` into a PHC string with a fresh random salt.
///
/// # Errors
///
/// No randomness for the salt, or the hasher fails.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0_u8; 16];
        getrandom::fill(&mut salt).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
        let salt = SaltString::encode_b64(&salt)
            .map_err(|error| anyhow::anyhow!("cannot encode the salt: {error}"))?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))?;
        Ok(hash.to_string())
    })
    .await
    .context("password hashing panicked")?
}

/// Whether `password` matches the PHC string `hash`.
///
/// # Errors
///
/// The stored hash is malformed.
pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|error| anyhow::anyhow!("malformed password hash: {error}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .context("password verification panicked")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hash = hash_password("correct horse".to_owned()).await.unwrap();

        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".to_owned(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct horse ".to_owned(), hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let first = hash_password("demo".to_owned()).await.unwrap();
        let second = hash_password("demo".to_owned()).await.unwrap();

        assert_ne!(first, second, "each hash has its own salt");
    }

    #[tokio::test]
    async fn a_malformed_hash_is_an_error_not_a_match() {
        assert!(
            verify_password("demo".to_owned(), "plain".to_owned())
                .await
                .is_err()
        );
    }
}
