//! Background workers: a bounded pool that takes jobs from the database and runs them
//! (chunk embedding, then extraction), reporting progress through the
//! [`DocumentService`].
//!
//! **Invariant:** at most `WORKERS` jobs run at once, and a job runs in at most one worker
//! (the database lease). A worker stopped by shutdown gives its job back; a job cut short
//! by a crash is taken up again when its lease runs out. Either way, chunks already embedded
//! are kept and never embedded again.

pub mod embedder;
mod embedding;
mod extraction;
pub mod graph;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::SqlitePool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::WorkerConfig;
use crate::documents::{DocumentService, JobSignal};
use crate::storage::jobs::{self, ClaimedJob, JobKind};

use self::embedder::Embedder;

/// Shortest lease of a claimed job; renewed after each chunk.
const MIN_LEASE: Duration = Duration::from_secs(30);
/// How often an idle worker looks for jobs nobody signalled (expired leases, other
/// instances).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Claims after which a job that keeps being cut short is failed instead of retried.
const MAX_CLAIMS: u32 = 5;
/// Attempts to embed one chunk before its job fails.
pub const MAX_CHUNK_ATTEMPTS: u32 = 3;

/// How a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The work is done and recorded.
    Done,
    /// The job failed for good; the reason is recorded on it and its document.
    Failed(String),
    /// The document was deleted while the job ran; nothing more is recorded.
    Cancelled,
    /// Shutdown stopped the job; it is queued again and resumes on the next start.
    Interrupted,
}

/// Everything a worker needs; cheap to clone.
#[derive(Clone)]
pub struct Workers {
    pool: SqlitePool,
    documents: DocumentService,
    embedder: Arc<dyn Embedder>,
    job_signal: JobSignal,
    embed_delay: Duration,
    workers: usize,
}

impl Workers {
    /// Workers that take jobs from `pool`, record through `documents` and embed with
    /// `embedder`.
    pub fn new(
        pool: SqlitePool,
        documents: DocumentService,
        embedder: Arc<dyn Embedder>,
        job_signal: JobSignal,
        config: &WorkerConfig,
    ) -> Self {
        Self {
            pool,
            documents,
            embedder,
            job_signal,
            embed_delay: config.embed_delay,
            workers: config.workers,
        }
    }

    /// Spawns the pool on `tasks`; every worker stops when `shutdown` fires, giving back the
    /// job it holds.
    pub fn start(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        for index in 0..self.workers {
            let workers = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(
                async move { workers.work_until(shutdown).await }
                    .instrument(tracing::info_span!("worker", index)),
            );
        }
    }

    /// One worker: runs jobs until `shutdown`, waiting for a signal or the poll interval
    /// when there are none.
    async fn work_until(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let idle = match self.run_next(&shutdown).await {
                Ok(Some(_)) => false,
                Ok(None) => true,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "job processing failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = self.job_signal.notified() => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }

    /// Claims the next job and runs it to its end; `None` when no job is waiting. Tests
    /// call this to drive the workers one job at a time.
    ///
    /// # Errors
    ///
    /// The database fails; the job is then taken up again when its lease runs out.
    pub async fn run_next(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<(ClaimedJob, JobOutcome)>> {
        let lease = self.lease();
        let Some(job) = jobs::claim_next(&self.pool, lease)
            .await
            .context("cannot claim a job")?
        else {
            return Ok(None);
        };
        // Another idle worker may take the next job while this one works.
        self.job_signal.notify();

        let span = tracing::info_span!("job", id = %job.id, kind = job.kind.as_str(), document = %job.document_id);
        let outcome = async {
            if job.claims > MAX_CLAIMS {
                return Ok(JobOutcome::Failed(format!(
                    "the job was interrupted {} times",
                    job.claims - 1
                )));
            }
            match job.kind {
                JobKind::Embedding => embedding::run(self, &job, lease, shutdown).await,
                JobKind::Extraction => extraction::run(self, &job).await,
            }
        }
        .instrument(span.clone())
        .await?;

        match &outcome {
            JobOutcome::Done => span.in_scope(|| tracing::info!("job done")),
            JobOutcome::Cancelled => span.in_scope(|| tracing::info!("job cancelled")),
            JobOutcome::Failed(reason) => {
                span.in_scope(|| tracing::warn!(reason, "job failed"));
                self.documents
                    .fail_job(&job, reason)
                    .await
                    .context("cannot record a failed job")?;
            }
            JobOutcome::Interrupted => {
                jobs::release(&self.pool, &job.id)
                    .await
                    .context("cannot give back an interrupted job")?;
            }
        }
        Ok(Some((job, outcome)))
    }

    /// A lease long enough for a few chunks at the configured pace.
    fn lease(&self) -> Duration {
        MIN_LEASE.max(self.embed_delay.saturating_mul(4))
    }
}
