//! The outbox: events written in the same transaction as the change they announce, published
//! by the relay of the instance that wrote them, then deleted.
//!
//! **Invariant:** a row belongs to one owner (an instance) at a time; an owner whose lease
//! ran out, or that has no lease at all, has its rows adopted by a live one, so rows are never
//! left behind by a dead instance.
//! **Invariant:** an owner deletes only its own rows.

use std::time::Duration;

use app::protocol::NewEvent;

use super::{DbConnection, Pool};
use crate::clock::{millis, unix_millis};

/// A row waiting to be published.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// Its place in the outbox; the rows of a project are published in this order.
    pub id: i64,
    /// The project of its event.
    pub project_id: String,
    /// The event, as JSON.
    pub event: String,
    /// 1 when an older row of the same project belongs to another owner (a live instance
    /// about to publish it, or a dead one whose rows are not adopted yet): this row must
    /// wait for it, or the project's events would go out of order.
    pub waits: i64,
}

/// The most rows one insert statement writes.
const INSERT_ROWS: usize = 1_000;

/// The PostgreSQL advisory lock that a transaction writing outbox rows holds until it ends.
const OUTBOX_WRITE_LOCK: i64 = 0x646f_6370_756c_7365; // "docpulse"

/// Writes `events` into the outbox of `owner`, in order, in the caller's transaction, with
/// one statement per [`INSERT_ROWS`].
///
/// On PostgreSQL the transaction first takes [`OUTBOX_WRITE_LOCK`], which it keeps until it
/// commits or rolls back: ids are handed out at insert, so without it a transaction could
/// take an id, another take a higher one and commit first, and the relay, reading after
/// the higher id, would publish the lower one late, after newer announcements of the same
/// entity (a document's older progress merged over its `ready`). With it, rows become
/// visible in id order. (SQLite writes one transaction at a time already.) The lock is held
/// only from this insert, the caller's last step, to the commit.
///
/// # Errors
///
/// The database fails.
pub async fn insert(
    connection: &mut DbConnection,
    owner: &str,
    events: &[NewEvent],
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if connection.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(OUTBOX_WRITE_LOCK)
            .execute(&mut *connection)
            .await?;
    }
    // A statement binds 4 values per row; SQLite allows 32,766.
    for events in events.chunks(INSERT_ROWS) {
        let rows: Vec<String> = (0..events.len())
            .map(|index| {
                let first = index * 4 + 1;
                format!("(${first}, ${}, ${}, ${})", first + 1, first + 2, first + 3)
            })
            .collect();
        let sql = format!(
            "INSERT INTO outbox (owner, project_id, event, created_at_ms) VALUES {}",
            rows.join(", ")
        );
        let now = unix_millis();
        let mut query = sqlx::query(&sql);
        for event in events {
            let json = serde_json::to_string(event)
                .expect("an event is strings, numbers and JSON values, which always serialize");
            query = query
                .bind(owner)
                .bind(event.project_id.as_str())
                .bind(json)
                .bind(now);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Records that `owner` is alive for `lease` from now.
///
/// # Errors
///
/// The database fails.
pub async fn renew_owner(pool: &Pool, owner: &str, lease: Duration) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox_owners (owner, lease_until_ms) VALUES ($1, $2) \
         ON CONFLICT (owner) DO UPDATE SET lease_until_ms = $2",
    )
    .bind(owner)
    .bind(unix_millis().saturating_add(millis(lease)))
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives up `owner`'s lease, as an instance stopping does: its rows are adopted at once.
///
/// # Errors
///
/// The database fails.
pub async fn release_owner(pool: &Pool, owner: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM outbox_owners WHERE owner = $1")
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(())
}

/// Gives `owner` the rows of every owner without a live lease; returns how many it took.
///
/// # Errors
///
/// The database fails.
pub async fn adopt_orphans(pool: &Pool, owner: &str) -> sqlx::Result<u64> {
    let now = unix_millis();
    let adopted = sqlx::query(
        "UPDATE outbox SET owner = $1 WHERE owner <> $1 AND owner NOT IN \
         (SELECT owner FROM outbox_owners WHERE lease_until_ms >= $2)",
    )
    .bind(owner)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM outbox_owners WHERE lease_until_ms < $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(adopted)
}

/// `owner`'s first `limit` rows after `after_id`, in order, each saying whether it must wait
/// for another owner's older row of its project. One statement, so one snapshot: on SQLite,
/// where rows become visible in id order, every older row of another owner is seen. Both
/// parts scan the primary key from the first row still there (published rows are deleted)
/// up to the last row returned, so a round costs about the rows not yet deleted.
///
/// # Errors
///
/// The database fails.
pub async fn pending(
    pool: &Pool,
    owner: &str,
    after_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<OutboxRow>> {
    sqlx::query_as(
        "WITH mine AS (SELECT id, project_id, event FROM outbox WHERE owner = $1 AND id > $2 \
             ORDER BY id LIMIT $3), \
         others AS (SELECT project_id, MIN(id) AS oldest FROM outbox WHERE owner <> $1 \
             AND id < (SELECT COALESCE(MAX(id), 0) FROM mine) GROUP BY project_id) \
         SELECT mine.id, mine.project_id, mine.event, \
             CASE WHEN others.oldest < mine.id THEN 1 ELSE 0 END AS waits \
         FROM mine LEFT JOIN others ON others.project_id = mine.project_id ORDER BY mine.id",
    )
    .bind(owner)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Deletes `owner`'s rows `ids` (published); rows adopted by another meanwhile stay.
///
/// # Errors
///
/// The database fails.
pub async fn delete(pool: &Pool, owner: &str, ids: &[i64]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (0..ids.len())
        .map(|index| format!("${}", index + 2))
        .collect();
    let sql = format!(
        "DELETE FROM outbox WHERE owner = $1 AND id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(owner);
    for id in ids {
        query = query.bind(id);
    }
    query.execute(pool).await?;
    Ok(())
}

/// The projects with a row written before `before_ms`: their announcements are late.
///
/// # Errors
///
/// The database fails.
pub async fn late_projects(pool: &Pool, before_ms: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT project_id FROM outbox WHERE created_at_ms < $1")
        .bind(before_ms)
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod tests {
    use app::protocol::{EntityKind, EventType};

    use super::*;
    use crate::storage;

    fn event(project: &str, id: &str) -> NewEvent {
        NewEvent::single(
            EventType::Created,
            EntityKind::Notification,
            id.parse().expect("valid"),
            project.parse().expect("valid"),
            None,
        )
    }

    async fn insert_one(pool: &Pool, owner: &str, project: &str, id: &str) {
        let mut connection = pool.acquire().await.expect("a connection");
        insert(&mut connection, owner, &[event(project, id)])
            .await
            .expect("inserted");
    }

    #[tokio::test]
    async fn rows_come_back_in_order_and_go_once_published() {
        let (pool, _data_dir) = storage::test_pool().await;
        for id in ["n_1", "n_2", "n_3"] {
            insert_one(&pool, "me", "proj_a", id).await;
        }
        insert_one(&pool, "other", "proj_a", "n_4").await;
        let rows = pending(&pool, "me", 0, 10).await.expect("rows");
        assert_eq!(rows.len(), 3, "only my rows");
        let first: NewEvent = serde_json::from_str(&rows[0].event).expect("an event");
        assert_eq!(first, event("proj_a", "n_1"));
        assert_eq!(pending(&pool, "me", 0, 2).await.expect("rows").len(), 2);
        delete(&pool, "me", &[rows[0].id, rows[1].id])
            .await
            .expect("deleted");
        delete(&pool, "other", &[rows[2].id])
            .await
            .expect("nothing of mine");
        let left = pending(&pool, "me", 0, 10).await.expect("rows");
        assert_eq!(
            left.iter().map(|row| row.id).collect::<Vec<_>>(),
            [rows[2].id]
        );
    }

    #[tokio::test]
    async fn many_events_written_at_once_keep_their_order_across_statements() {
        let (pool, _data_dir) = storage::test_pool().await;
        let ids: Vec<String> = (0..INSERT_ROWS + 5).map(|n| format!("n_{n}")).collect();
        let events: Vec<NewEvent> = ids.iter().map(|id| event("proj_a", id)).collect();
        let mut connection = pool.acquire().await.expect("a connection");
        insert(&mut connection, "me", &events)
            .await
            .expect("inserted");
        let rows = pending(&pool, "me", 0, 2 * INSERT_ROWS as i64)
            .await
            .expect("rows");
        let written: Vec<NewEvent> = rows
            .iter()
            .map(|row| serde_json::from_str(&row.event).expect("an event"))
            .collect();
        assert_eq!(written, events);
        let after = pending(&pool, "me", rows[INSERT_ROWS].id, 10)
            .await
            .expect("rows");
        assert_eq!(after.len(), 4, "only the rows after the given id");
    }

    #[tokio::test]
    async fn a_row_waits_for_another_owners_older_row_of_its_project() {
        let (pool, _data_dir) = storage::test_pool().await;
        insert_one(&pool, "other", "proj_a", "n_1").await;
        insert_one(&pool, "me", "proj_a", "n_2").await;
        insert_one(&pool, "me", "proj_b", "n_3").await;
        let waits: Vec<i64> = pending(&pool, "me", 0, 10)
            .await
            .expect("rows")
            .iter()
            .map(|row| row.waits)
            .collect();
        assert_eq!(
            waits,
            [1, 0],
            "proj_a waits for the older row; proj_b does not"
        );
    }

    #[tokio::test]
    async fn rows_of_an_owner_without_a_live_lease_are_adopted() {
        let (pool, _data_dir) = storage::test_pool().await;
        renew_owner(&pool, "alive", Duration::from_secs(60))
            .await
            .expect("a lease");
        sqlx::query("INSERT INTO outbox_owners (owner, lease_until_ms) VALUES ('dead', 0)")
            .execute(&pool)
            .await
            .expect("a lease long past");
        insert_one(&pool, "alive", "proj_a", "n_1").await;
        insert_one(&pool, "dead", "proj_a", "n_2").await;
        insert_one(&pool, "never_registered", "proj_b", "n_3").await;

        assert_eq!(adopt_orphans(&pool, "me").await.expect("adopted"), 2);
        let mine = pending(&pool, "me", 0, 10).await.expect("rows");
        assert_eq!(mine.len(), 2);
        assert_eq!(pending(&pool, "alive", 0, 10).await.expect("rows").len(), 1);
        assert_eq!(
            late_projects(&pool, unix_millis() + 1)
                .await
                .expect("projects")
                .len(),
            2
        );
    }
}
