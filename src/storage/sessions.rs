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

/// What [`rotate`] found for a presented refresh generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The generation was the current one; the session's is now the next.
    Rotated {
        /// The session's user.
        user_id: String,
        /// The session's expiry (Unix milliseconds).
        expires_at_ms: i64,
    },
    /// The generation is the one just before the current, replaced at `rotated_at_ms`.
    Previous {
        /// The session's user.
        user_id: String,
        /// The session's expiry (Unix milliseconds).
        expires_at_ms: i64,
        /// When the current generation replaced it (Unix milliseconds).
        rotated_at_ms: i64,
    },
    /// Any other generation of a live session: a cookie used after it was replaced twice.
    Stale,
    /// The session ended, expired or never was.
    Ended,
}

/// Moves session `id`'s refresh generation on from `generation`, in one statement, so that of
/// renewals racing with the same generation exactly one rotates; says what it found.
///
/// # Errors
///
/// The database fails.
pub async fn rotate(pool: &Pool, id: &str, generation: i64, now_ms: i64) -> sqlx::Result<Rotation> {
    let rotated: Option<(String, i64)> = sqlx::query_as(
        "UPDATE sessions SET refresh_generation = refresh_generation + 1, rotated_at_ms = $3 \
         WHERE id = $1 AND refresh_generation = $2 AND ended_at_ms IS NULL \
         AND expires_at_ms > $3 RETURNING user_id, expires_at_ms",
    )
    .bind(id)
    .bind(generation)
    .bind(now_ms)
    .fetch_optional(pool)
    .await?;
    if let Some((user_id, expires_at_ms)) = rotated {
        return Ok(Rotation::Rotated {
            user_id,
            expires_at_ms,
        });
    }
    let row: Option<(String, i64, Option<i64>, i64, i64)> = sqlx::query_as(
        "SELECT user_id, expires_at_ms, ended_at_ms, refresh_generation, rotated_at_ms \
         FROM sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((user_id, expires_at_ms, None, current, rotated_at_ms))
            if expires_at_ms > now_ms && current == generation.saturating_add(1) =>
        {
            Rotation::Previous {
                user_id,
                expires_at_ms,
                rotated_at_ms,
            }
        }
        Some((_, expires_at_ms, None, _, _)) if expires_at_ms > now_ms => Rotation::Stale,
        Some(_) | None => Rotation::Ended,
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

    /// A database with `user_1` and a session `ses_1` of it.
    async fn a_users_session() -> (Pool, tempfile::TempDir) {
        let (pool, data_dir) = storage::test_pool().await;
        projects::create_user(&pool, "user_1", "ada@example.com", "hash")
            .await
            .expect("a user");
        create(&pool, "ses_1", "user_1", 2_000_000_000_000)
            .await
            .expect("a session");
        (pool, data_dir)
    }

    #[tokio::test]
    async fn a_refresh_generation_rotates_once_and_the_one_before_is_told_apart_from_older() {
        let (pool, _data_dir) = a_users_session().await;
        let rotated = Rotation::Rotated {
            user_id: "user_1".to_owned(),
            expires_at_ms: 2_000_000_000_000,
        };
        assert_eq!(
            rotate(&pool, "ses_1", 0, 1_000).await.expect("answers"),
            rotated
        );
        assert_eq!(
            rotate(&pool, "ses_1", 0, 1_500).await.expect("answers"),
            Rotation::Previous {
                user_id: "user_1".to_owned(),
                expires_at_ms: 2_000_000_000_000,
                rotated_at_ms: 1_000,
            },
            "a racing renewal with the same generation does not rotate again"
        );
        assert_eq!(
            rotate(&pool, "ses_1", 1, 2_000).await.expect("answers"),
            rotated
        );
        assert_eq!(
            rotate(&pool, "ses_1", 0, 2_500).await.expect("answers"),
            Rotation::Stale
        );
        assert_eq!(
            rotate(&pool, "ses_1", 7, 2_500).await.expect("answers"),
            Rotation::Stale
        );
        assert_eq!(
            rotate(&pool, "ses_1", 2, 2_000_000_000_000)
                .await
                .expect("answers"),
            Rotation::Ended,
            "an expired session renews nothing"
        );
        assert!(end(&pool, "ses_1").await.expect("answers"));
        assert_eq!(
            rotate(&pool, "ses_1", 2, 3_000).await.expect("answers"),
            Rotation::Ended
        );
        assert_eq!(
            rotate(&pool, "ses_unknown", 0, 3_000)
                .await
                .expect("answers"),
            Rotation::Ended
        );
    }

    #[tokio::test]
    async fn a_session_lives_until_it_is_ended_and_then_for_ever_ended() {
        let (pool, _data_dir) = a_users_session().await;
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
