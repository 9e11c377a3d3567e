//! Sessions: one row per login, ended by logout, by an operator or by a membership removed.
//!
//! **Invariant:** an ended session never lives again: `ended_at_ms` is set once and never
//! cleared.

use super::Pool;

/// What the server knows of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Live until this time (Unix milliseconds).
    Live {
        /// Its expiry.
        expires_at_ms: i64,
    },
    /// Ended (or unknown: a session this database never made is as good as ended).
    Ended,
}

/// Records a new session of `user_id` expiring at `expires_at_ms`.
///
/// # Errors
///
/// The database fails.
pub async fn create(pool: &Pool, id: &str, user_id: &str, expires_at_ms: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(user_id)
    .bind(super::now())
    .bind(expires_at_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// The state of session `id`.
///
/// # Errors
///
/// The database fails.
pub async fn state(pool: &Pool, id: &str) -> sqlx::Result<SessionState> {
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT expires_at_ms, ended_at_ms FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        Some((expires_at_ms, None)) => SessionState::Live { expires_at_ms },
        Some((_, Some(_))) | None => SessionState::Ended,
    })
}

/// Ends session `id`; `true` when it was live.
///
/// # Errors
///
/// The database fails.
pub async fn end(pool: &Pool, id: &str) -> sqlx::Result<bool> {
    let result =
        sqlx::query("UPDATE sessions SET ended_at_ms = $2 WHERE id = $1 AND ended_at_ms IS NULL")
            .bind(id)
            .bind(crate::clock::unix_millis())
            .execute(pool)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends every live session of the user; returns their ids.
///
/// # Errors
///
/// The database fails.
pub async fn end_user_sessions(pool: &Pool, user_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "UPDATE sessions SET ended_at_ms = $2 WHERE user_id = $1 AND ended_at_ms IS NULL \
         RETURNING id",
    )
    .bind(user_id)
    .bind(crate::clock::unix_millis())
    .fetch_all(pool)
    .await
}

/// The sessions ended at or after `since_ms` (Unix milliseconds), at most `limit` of them,
/// oldest end first, with their end times: how every instance learns of ends made elsewhere.
///
/// # Errors
///
/// The database fails.
pub async fn ended_since(
    pool: &Pool,
    since_ms: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT id, ended_at_ms FROM sessions WHERE ended_at_ms >= $1 \
         ORDER BY ended_at_ms, id LIMIT $2",
    )
    .bind(since_ms)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Forgets sessions that expired before `before_ms`: their tokens are refused by their own
/// expiry, so the rows serve nothing.
///
/// # Errors
///
/// The database fails.
pub async fn forget_expired(pool: &Pool, before_ms: i64) -> sqlx::Result<u64> {
    let result = sqlx::query("DELETE FROM sessions WHERE expires_at_ms < $1")
        .bind(before_ms)
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{self, projects};

    #[tokio::test]
    async fn a_session_lives_until_it_is_ended_and_then_for_ever_ended() {
        let (pool, _data_dir) = storage::test_pool().await;
        projects::create_user(&pool, "user_1", "ada@example.com", "hash")
            .await
            .expect("a user");
        create(&pool, "ses_1", "user_1", 2_000_000_000_000)
            .await
            .expect("a session");
        create(&pool, "ses_2", "user_1", 2_000_000_000_000)
            .await
            .expect("a session");
        assert_eq!(
            state(&pool, "ses_1").await.expect("answers"),
            SessionState::Live {
                expires_at_ms: 2_000_000_000_000
            }
        );
        assert_eq!(
            state(&pool, "ses_unknown").await.expect("answers"),
            SessionState::Ended
        );
        let before = crate::clock::unix_millis();
        assert!(end(&pool, "ses_1").await.expect("answers"));
        assert!(!end(&pool, "ses_1").await.expect("answers"), "once only");
        assert_eq!(
            state(&pool, "ses_1").await.expect("answers"),
            SessionState::Ended
        );
        assert_eq!(
            end_user_sessions(&pool, "user_1").await.expect("answers"),
            ["ses_2"]
        );
        let ended: Vec<String> = ended_since(&pool, before, 10)
            .await
            .expect("answers")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ended, ["ses_1", "ses_2"]);
        assert_eq!(
            forget_expired(&pool, 2_000_000_000_001)
                .await
                .expect("answers"),
            2
        );
    }
}
