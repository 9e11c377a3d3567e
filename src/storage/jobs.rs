//! Jobs: background work as rows, claimed with a lease so that no job runs twice at once
//! and a job whose worker died is taken up again.
//!
//! **Invariant:** a job is `running` for at most one worker at a time: claiming is one
//! `UPDATE` of a `queued` job or of a `running` one whose lease has run out.
//! **Invariant:** a job is fenced by its claim: every write of a worker names the claim it
//! holds (the job's `claims` count when it claimed it) and happens only while that claim's
//! lease is live, so a worker whose lease ran out, or whose job another worker took over,
//! can no longer change it.
//! **Invariant:** claims are fair across projects: the next job comes from a project with
//! the fewest jobs running, so one project's backlog cannot hold back another's first job.

use std::time::Duration;

use crate::clock::millis;

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

/// Claims a job that is queued or whose lease ran out, for `lease`: the oldest of those of
/// the projects with the fewest jobs running now.
///
/// # Errors
///
/// The database fails.
pub async fn claim_next(pool: &Pool, lease: Duration) -> sqlx::Result<Option<ClaimedJob>> {
    let now_ms = crate::clock::unix_millis();
    // SQLite runs one writing statement at a time, so the statement alone is atomic.
    // PostgreSQL runs claims side by side: SKIP LOCKED makes each one pass over the job
    // another is taking, instead of both picking it and one of them waiting to take it too.
    let lock = match Backend::of(pool) {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE OF candidate SKIP LOCKED",
    };
    // `running` counts, per project, the jobs whose lease is live: at most one row per
    // project with work in progress, so the ordering costs little however long the queue.
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(&format!(
        "UPDATE jobs SET status = 'running', claims = claims + 1, lease_until_ms = $1, \
             updated_at = $2 \
         WHERE id = (SELECT candidate.id FROM jobs candidate \
             LEFT JOIN (SELECT project_id, COUNT(*) AS jobs_running FROM jobs \
                 WHERE status = 'running' AND lease_until_ms >= $3 GROUP BY project_id) busy \
             ON busy.project_id = candidate.project_id \
             WHERE candidate.status = 'queued' \
                 OR (candidate.status = 'running' AND candidate.lease_until_ms < $3) \
             ORDER BY COALESCE(busy.jobs_running, 0), candidate.created_at, candidate.rowid \
             LIMIT 1{lock}) \
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

/// Extends the lease of `job` by `lease` from now; `false` when the claim is no longer the
/// worker's: the job is gone (its document was deleted), finished, taken over by another
/// claim, or its lease ran out.
///
/// # Errors
///
/// The database fails.
pub async fn renew_lease(
    connection: &mut DbConnection,
    job: &ClaimedJob,
    lease: Duration,
) -> sqlx::Result<bool> {
    let now_ms = crate::clock::unix_millis();
    let result = sqlx::query(&format!("UPDATE jobs SET lease_until_ms = $3 WHERE {HELD}"))
        .bind(&job.id)
        .bind(i64::from(job.claims))
        .bind(now_ms.saturating_add(millis(lease)))
        .bind(now_ms)
        .execute(connection)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The condition of a job still held by the claim that took it: `$1` the job, `$2` the
/// claim, `$4` now in Unix milliseconds.
const HELD: &str = "id = $1 AND claims = $2 AND status = 'running' AND lease_until_ms >= $4";

/// Marks `job` done; `false` when the claim is no longer the worker's.
///
/// # Errors
///
/// The database fails.
pub async fn finish(connection: &mut DbConnection, job: &ClaimedJob) -> sqlx::Result<bool> {
    set_final(connection, job, "done", None).await
}

/// Marks `job` failed with `reason`; `false` when the claim is no longer the worker's.
///
/// # Errors
///
/// The database fails.
pub async fn fail(
    connection: &mut DbConnection,
    job: &ClaimedJob,
    reason: &str,
) -> sqlx::Result<bool> {
    set_final(connection, job, "failed", Some(reason)).await
}

async fn set_final(
    connection: &mut DbConnection,
    job: &ClaimedJob,
    status: &str,
    reason: Option<&str>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(&format!(
        "UPDATE jobs SET status = $3, error = $5, lease_until_ms = NULL, updated_at = $6 \
         WHERE {HELD}"
    ))
    .bind(&job.id)
    .bind(i64::from(job.claims))
    .bind(status)
    .bind(crate::clock::unix_millis())
    .bind(reason)
    .bind(super::now())
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives `job` back to the queue, as a worker stopping at shutdown does; the claim does not
/// count against the job. Nothing changes when the claim is no longer the worker's.
///
/// # Errors
///
/// The database fails.
pub async fn release(pool: &Pool, job: &ClaimedJob) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "UPDATE jobs SET status = 'queued', \
             claims = CASE WHEN claims > 0 THEN claims - 1 ELSE 0 END, \
             lease_until_ms = NULL, updated_at = $3 \
         WHERE {HELD}"
    ))
    .bind(&job.id)
    .bind(i64::from(job.claims))
    .bind(super::now())
    .bind(crate::clock::unix_millis())
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
        expire_lease(&pool, &job_id).await;
        let again = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job is claimable again");

        assert_eq!(again.id, job_id);
        assert_eq!(again.claims, 2);
    }

    #[tokio::test]
    async fn a_finished_job_is_not_claimed_and_a_released_one_is() {
        let (pool, _job_id, _data_dir) = database_with_a_job().await;
        let claimed = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job");
        release(&pool, &claimed)
            .await
            .expect("the database answers");
        let released = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("a released job is queued");
        assert_eq!(released.claims, 1, "a release does not count as a claim");

        let mut connection = pool.acquire().await.expect("a connection");
        assert!(
            finish(&mut connection, &released)
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
            !renew_lease(&mut connection, &released, Duration::from_secs(30))
                .await
                .expect("the database answers"),
            "a finished job has no lease to renew"
        );
    }

    #[tokio::test]
    async fn a_worker_whose_lease_ran_out_can_no_longer_write() {
        let (pool, job_id, _data_dir) = database_with_a_job().await;
        let first = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job");
        let mut connection = pool.acquire().await.expect("a connection");
        assert!(
            renew_lease(&mut connection, &first, Duration::from_secs(30))
                .await
                .expect("the database answers"),
            "a live claim renews"
        );
        expire_lease(&pool, &job_id).await;
        assert!(
            !renew_lease(&mut connection, &first, Duration::from_secs(30))
                .await
                .expect("the database answers"),
            "an expired lease is not renewed"
        );
        assert!(
            !finish(&mut connection, &first)
                .await
                .expect("the database answers"),
            "an expired claim does not finish the job"
        );

        let second = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("the job is taken over");
        assert_eq!(second.claims, 2);
        assert!(
            !fail(&mut connection, &first, "late")
                .await
                .expect("the database answers"),
            "the first claim cannot fail the job the second holds"
        );
        release(&pool, &first).await.expect("the database answers");
        assert!(
            finish(&mut connection, &second)
                .await
                .expect("the database answers"),
            "the second claim still holds the job"
        );
    }

    #[tokio::test]
    async fn a_project_with_nothing_running_goes_before_a_busy_projects_backlog() {
        let (pool, first_job, _data_dir) = database_with_a_job().await;
        let mut connection = pool.acquire().await.expect("a connection");
        for number in 2..=5 {
            let document = format!("doc_{number}");
            documents::insert_document(&mut connection, &document, "proj_a", "Doc", "Text.")
                .await
                .expect("a document");
            enqueue(&mut connection, "proj_a", &document, JobKind::Embedding)
                .await
                .expect("a job");
        }
        projects::create_project(&pool, "proj_b", "Beta")
            .await
            .expect("a project");
        documents::insert_document(&mut connection, "doc_b", "proj_b", "Doc", "Text.")
            .await
            .expect("a document");
        let late_job = enqueue(&mut connection, "proj_b", "doc_b", JobKind::Embedding)
            .await
            .expect("a job");

        let claimed = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("a job");
        assert_eq!(claimed.id, first_job, "the oldest job goes first");
        let claimed = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("a job");
        assert_eq!(
            claimed.id, late_job,
            "proj_b has nothing running, so its only job goes before proj_a's backlog"
        );
        let claimed = claim_next(&pool, Duration::from_secs(30))
            .await
            .expect("the database answers")
            .expect("a job");
        assert_eq!(claimed.project_id, "proj_a");
    }

    /// Moves the job's lease into the past, as the crash of its worker would leave it.
    async fn expire_lease(pool: &Pool, job_id: &str) {
        sqlx::query("UPDATE jobs SET lease_until_ms = 0 WHERE id = $1")
            .bind(job_id)
            .execute(pool)
            .await
            .expect("the database answers");
    }
}
