//! The HS256 tokens of a run: one subscriber token per stream, one publisher token.
//!
//! **Invariant:** a subscriber token names exactly the one project its stream watches, so a
//! cross-project delivery can only be the server's fault; only the publisher token carries
//! `role: publisher` and the `*` project.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use app::protocol::ProjectId;

/// The claims API.md defines.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: String,
    exp: u64,
    projects: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

/// Mints the tokens of a run, all signed with the server's secret and expiring together.
pub struct TokenMinter {
    /// The HS256 key made from `--jwt-secret`.
    key: EncodingKey,
    /// Unix seconds at which every token of the run expires.
    expires_at_unix_secs: u64,
}

impl TokenMinter {
    /// A minter signing with `secret` whose tokens expire at `expires_at_unix_secs`.
    pub fn new(secret: &str, expires_at_unix_secs: u64) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            expires_at_unix_secs,
        }
    }

    /// The token of stream `connection_index`: subject `load-sub-<i>`, allowed `project_id` only.
    ///
    /// # Errors
    ///
    /// Signing failed (it does not for HS256 and these claims).
    pub fn subscriber(
        &self,
        connection_index: u32,
        project_id: &ProjectId,
    ) -> jsonwebtoken::errors::Result<String> {
        self.mint(&Claims {
            sub: format!("load-sub-{connection_index}"),
            exp: self.expires_at_unix_secs,
            projects: [project_id.as_str()],
            role: None,
        })
    }

    /// The publisher token: subject `load-publisher`, every project, `role: publisher`.
    ///
    /// # Errors
    ///
    /// Signing failed (it does not for HS256 and these claims).
    pub fn publisher(&self) -> jsonwebtoken::errors::Result<String> {
        self.mint(&Claims {
            sub: "load-publisher".to_owned(),
            exp: self.expires_at_unix_secs,
            projects: ["*"],
            role: Some("publisher"),
        })
    }

    /// The token of user `sub`, allowed `project` only (the hostile modes' attacker and
    /// bystander).
    ///
    /// # Errors
    ///
    /// Signing failed (it does not for HS256 and these claims).
    pub fn user(&self, sub: &str, project: &str) -> jsonwebtoken::errors::Result<String> {
        self.mint(&Claims {
            sub: sub.to_owned(),
            exp: self.expires_at_unix_secs,
            projects: [project],
            role: None,
        })
    }

    fn mint(&self, claims: &Claims<'_>) -> jsonwebtoken::errors::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::{Value, json};

    use super::*;

    fn decode(token: &str, secret: &str) -> Value {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .expect("a token signed with the secret")
        .claims
    }

    #[test]
    fn a_subscriber_token_allows_only_its_project() {
        let minter = TokenMinter::new("secret", 1_900_000_000);
        let project_id: ProjectId = "load_proj_3".parse().expect("valid");
        let token = minter.subscriber(13, &project_id).expect("signed");
        assert_eq!(
            decode(&token, "secret"),
            json!({"sub": "load-sub-13", "exp": 1_900_000_000u64, "projects": ["load_proj_3"]})
        );
    }

    #[test]
    fn a_user_token_names_its_subject_and_project() {
        let minter = TokenMinter::new("secret", 1_900_000_000);
        let token = minter
            .user("load-attacker", "proj_history")
            .expect("signed");
        assert_eq!(
            decode(&token, "secret"),
            json!({"sub": "load-attacker", "exp": 1_900_000_000u64, "projects": ["proj_history"]})
        );
    }

    #[test]
    fn the_publisher_token_has_the_role_and_every_project() {
        let minter = TokenMinter::new("secret", 1_900_000_000);
        let token = minter.publisher().expect("signed");
        assert_eq!(
            decode(&token, "secret"),
            json!({
                "sub": "load-publisher",
                "exp": 1_900_000_000u64,
                "projects": ["*"],
                "role": "publisher"
            })
        );
    }
}
