//! Jobs: background work as rows, claimed with a lease so that no job runs twice at once
//! and a job whose worker died is taken up again.
//!
//! **Invariant:** a job is `running` for at most one worker at a time: claiming is one
//! `UPDATE` of a `queued` job or of a `running` one whose lease has run out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Backend, DbConnection, Pool};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Split the document into chunks and embed each.
    Embedding,
    /// Derive graph objects from the document.
    Extraction,
}

impl JobKind {
    /// The name stored in the database and shown in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedding => "embedding",
            Self::Extraction => "extraction",
        }
    }
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// `job_` and 16 hex digits.
    pub id: String,
    /// The project of its document.
    pub project_id: String,
    /// The document it works on.
    pub document_id: String,
    /// What it does.
    pub kind: JobKind,
    /// How many times it has been claimed, this claim included.
    pub claims: u32,
}

/// A job's row, for tests and operators.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    /// The job.
    pub id: String,
    /// Its document.
    pub document_id: String,
    /// `embedding` or `extraction`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Queues a job and returns its id.
///
/// # Errors
///
/// The database fails (for instance, the document is gone).
pub async fn enqueue(
    connection: &mut DbConnection,
    project_id: &str,
    document_id: &str,
    kind: JobKind,
) -> sqlx::Result<String> {
    let id = super::new_id("job");
    let now = super::now();
    sqlx::query(
        "INSERT INTO jobs (id, project_id, document_id, kind, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $5)",
    )
    .bind(&id)
    .bind(project_id)
    .bind(document_id)
    .bind(kind.as_str())
    .bind(&now)
    .execute(connection)
    .await?;
    Ok(id)
}

/// Claims the oldest job that is queued or whose lease ran out, for `lease`.
///
/// # Errors
///
/// The database fails.
pub async fn claim_next(pool: &Pool, lease: Duration) -> sqlx::Result<Option<ClaimedJob>> {
    let now_ms = unix_millis(SystemTime::now());
    // SQLite runs one writing statement at a time, so the statement alone is atomic.
    // PostgreSQL runs claims side by side: SKIP LOCKED makes each one pass over the job
    // another is taking, instead of both picking it and one of them waiting to take it too.
    let lock = match Backend::of(pool) {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(&format!(
        "UPDATE jobs SET status = 'running', claims = claims + 1, lease_until_ms = $1, \
             updated_at = $2 \
         WHERE id = (SELECT id FROM jobs \
             WHERE status = 'queued' OR (status = 'running' AND lease_until_ms < $3) \
             ORDER BY created_at, rowid LIMIT 1{lock}) \
         RETURNING id, project_id, document_id, kind, claims"
    ))
    .bind(now_ms.saturating_add(millis(lease)))
    .bind(super::now())
    .bind(now_ms)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(id, project_id, document_id, kind, claims)| ClaimedJob {
            id,
            project_id,
            document_id,
            kind: if kind == JobKind::Extraction.as_str() {
                JobKind::Extraction
            } else {
                JobKind::Embedding
            },
            claims: u32::try_from(claims).unwrap_or(u32::MAX),
        }),
    )
}

/// Extends a running job's lease; `false` when the job is gone (its document was deleted)
/// or no longer running.
///
/// # Errors
///
/// The database fails.
pub async fn renew_lease(
    connection: &mut DbConnection,
    job_id: &str,
    lease: Duration,
) -> sqlx::Result<bool> {
    let until = unix_millis(SystemTime::now()).saturating_add(millis(lease));
    let result =
        sqlx::query("UPDATE jobs SET lease_until_ms = $2 WHERE id = $1 AND status = 'running'")
            .bind(job_id)
            .bind(until)
            .execute(connection)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks a running job done; `false` when it is gone.
///
/// # Errors
///
/// The database fails.
pub async fn finish(connection: &mut DbConnection, job_id: &str) -> sqlx::Result<bool> {
    set_final(connection, job_id, "done", None).await
}

/// Marks a running job failed with `reason`; `false` when it is gone.
///
/// # Errors
///
/// The database fails.
pub async fn fail(connection: &mut DbConnection, job_id: &str, reason: &str) -> sqlx::Result<bool> {
    set_final(connection, job_id, "failed", Some(reason)).await
}

async fn set_final(
    connection: &mut DbConnection,
    job_id: &str,
    status: &str,
    reason: Option<&str>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE jobs SET status = $2, error = $3, lease_until_ms = NULL, updated_at = $4 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job_id)
    .bind(status)
    .bind(reason)
    .bind(super::now())
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives a running job back to the queue, as a worker stopping at shutdown does; the claim
/// does not count against the job.
///
/// # Errors
///
/// The database fails.
pub async fn release(pool: &Pool, job_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', claims = CASE WHEN claims > 0 THEN claims - 1 ELSE 0 END, lease_until_ms = NULL, \
             updated_at = $2 \
         WHERE id = $1 AND status = 'running'",
    )
    .bind(job_id)
    .bind(super::now())
    .execute(pool)
    .await?;
    Ok(())
}

/// The document's jobs, oldest first.
///
/// # Errors
///
/// The database fails.
pub async fn document_jobs(pool: &Pool, document_id: &str) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(
        "SELECT id, document_id, kind, status, error FROM jobs WHERE document_id = $1 \
         ORDER BY created_at, rowid",
    )
    .bind(document_id)
    .fetch_all(pool)
    .await
}

fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{self, documents, projects};

    /// A fresh database with one document and one queued embedding job for it.
    async fn database_with_a_job() -> (Pool, String, tempfile::TempDir) {
        let (pool, data_dir) = storage::test_pool().await;
        projects::create_project(&pool, "proj_a", "Alpha")
            .await
            .expect("a project");
        let mut connection = pool.acquire().await.expect("a connection");
        documents::insert_document(&mut connection, "doc_1", "proj_a", "Doc", "Text.")
            .await
            .expect("a document");
        let job_id = enqueue(&mut connection, "proj_a", "doc_1", JobKind::Embedding)
            .await
            .expect("a job");
        (pool, job_id, data_dir)
    }

    #[tokio::test]
    async fn concurrent_claims_give_a_job_to_exactly_one_worker() {
        let (pool, job_id, _data_dir) = database_with_a_job().await;

        let claims = futures_util::future::join_all(
            (0..8).map(|_| claim_next(&pool, Duration::from_secs(30))),
        )
        .await;

        let claimed: Vec<ClaimedJob> = claims
            .into_iter()
            .filter_map(|claim| claim.expect("the database answers"))
            .collect();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, job_id);
        assert_eq!(claimed[0].claims, 1);
    }

    #[tokio::test]
    async fn a_job_whose_lease_ran_out_is_claimed_again_and_a_live_lease_is_respected() {
        let (pool, job_id, _data_dir) = database_with_a_job().await;
        claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job");
        assert!(
            claim_next(&pool, Duration::from_secs(30))
                .await
                .expect("the database answers")
                .is_none(),
            "a running job with a live lease is nobody else's"
        );

        // The worker died: its lease is in the past.
        sqlx::query("UPDATE jobs SET lease_until_ms = 0 WHERE id = $1")
            .bind(&job_id)
            .execute(&pool)
            .await
            .expect("the database answers");
        let again = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job is claimable again");

        assert_eq!(again.id, job_id);
        assert_eq!(again.claims, 2);
    }

    #[tokio::test]
    async fn a_finished_job_is_not_claimed_and_a_released_one_is() {
        let (pool, job_id, _data_dir) = database_with_a_job().await;
        claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job");
        release(&pool, &job_id).await.expect("the database answers");
        let released = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("a released job is queued");
        assert_eq!(released.claims, 1, "a release does not count as a claim");

        let mut connection = pool.acquire().await.expect("a connection");
        assert!(
            finish(&mut connection, &job_id)
                .await
                .expect("the database answers")
        );

        assert!(
            claim_next(&pool, Duration::from_secs(30))
                .await
                .expect("the database answers")
                .is_none()
        );
        assert!(
            !renew_lease(&mut connection, &job_id, Duration::from_secs(30))
                .await
                .expect("the database answers"),
            "a finished job has no lease to renew"
        );
    }
}
