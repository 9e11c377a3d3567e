//! Background workers: a bounded pool that takes jobs from the database and runs them
//! (chunk embedding, then extraction), claiming them and reporting progress through
//! [`WorkProgress`].
//!
//! **Invariant:** at most `WORKERS` jobs run at once, and a job runs in at most one worker
//! (the database lease). A worker stopped by shutdown gives its job back; a job cut short
//! by a crash is taken up again when its lease runs out. Either way, chunks already embedded
//! are kept and never embedded again.

pub mod embedder;
mod embedding;
mod extraction;
pub mod graph;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::storage::Pool;
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{ExtractionLimits, WorkerConfig};
use crate::documents::{ClaimedJob, JobKind, JobSignal, WorkProgress};

use self::embedder::Embedder;

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
    /// The document was deleted while the job ran, or the job's lease ran out (another worker
    /// may hold it now); nothing more is recorded.
    Cancelled,
    /// Shutdown stopped the job; it is queued again and resumes on the next start.
    Interrupted,
}

/// Everything a worker needs; cheap to clone.
#[derive(Clone)]
pub struct Workers {
    pool: Pool,
    progress: WorkProgress,
    embedder: Arc<dyn Embedder>,
    job_signal: JobSignal,
    embed_delay: Duration,
    job_lease: Duration,
    extraction: ExtractionLimits,
    workers: usize,
}

impl Workers {
    /// Workers that read documents from `pool`, claim jobs and record through `progress`,
    /// and embed with `embedder`.
    pub fn new(
        pool: Pool,
        progress: WorkProgress,
        embedder: Arc<dyn Embedder>,
        job_signal: JobSignal,
        config: &WorkerConfig,
    ) -> Self {
        Self {
            pool,
            progress,
            embedder,
            job_signal,
            embed_delay: config.embed_delay,
            job_lease: config.job_lease,
            extraction: config.extraction,
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
        let Some(job) = self
            .progress
            .claim_next(lease)
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
                JobKind::Extraction => extraction::run(self, &job, lease).await,
            }
        }
        .instrument(span.clone())
        .await?;

        match &outcome {
            JobOutcome::Done => span.in_scope(|| tracing::info!("job done")),
            JobOutcome::Cancelled => span.in_scope(|| tracing::info!("job cancelled")),
            JobOutcome::Failed(reason) => {
                span.in_scope(|| tracing::warn!(reason, "job failed"));
                self.progress
                    .fail_job(&job, reason)
                    .await
                    .context("cannot record a failed job")?;
            }
            JobOutcome::Interrupted => {
                self.progress
                    .release(&job)
                    .await
                    .context("cannot give back an interrupted job")?;
            }
        }
        Ok(Some((job, outcome)))
    }

    /// A lease long enough for a few chunks at the configured pace.
    fn lease(&self) -> Duration {
        self.job_lease.max(self.embed_delay.saturating_mul(4))
    }

    /// Runs `work` while renewing `job`'s `lease` every third of it, so that a long step
    /// (splitting, extraction) keeps the job its worker's; `None`, with `work` dropped, when
    /// the lease cannot be renewed because the job was deleted or its claim lost.
    ///
    /// # Errors
    ///
    /// The database fails.
    async fn renewing_lease<T>(
        &self,
        job: &ClaimedJob,
        lease: Duration,
        work: impl Future<Output = T>,
    ) -> anyhow::Result<Option<T>> {
        tokio::pin!(work);
        let period = (lease / 3).max(Duration::from_millis(10));
        let mut renewal = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                output = &mut work => return Ok(Some(output)),
                _ = renewal.tick() => {
                    if !self.progress.renew_lease(job, lease)
                        .await
                        .context("cannot renew a lease")?
                    {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use app::pages::document::document_address;
    use app::protocol::{
        EntityData, EntityKind, NewEvent, Notification, NotificationLevel, ProjectId,
    };
    use app::resources::{DocumentStatus, NewDocument};

    use super::embedder::{EmbedError, Embedding, LocalEmbedder};
    use super::*;
    use crate::config::{DocumentsConfig, EventsConfig};
    use crate::documents::DocumentService;
    use crate::events::InMemoryEventBus;
    use crate::metrics::Metrics;
    use crate::storage::{self, documents, jobs, projects};

    /// An embedder that fails its first `failures` calls, then embeds like the local one.
    struct FlakyEmbedder {
        failures: u32,
        calls: AtomicU32,
    }

    impl Embedder for FlakyEmbedder {
        fn dimensions(&self) -> usize {
            LocalEmbedder::default().dimensions()
        }

        fn embed(&self, text: &str) -> Result<Embedding, EmbedError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                return Err(EmbedError::NoFeatures);
            }
            LocalEmbedder::default().embed(text)
        }
    }

    /// Workers over a fresh database with one project and one queued one-chunk document.
    struct Fixture {
        workers: Workers,
        pool: Pool,
        embedder: Arc<FlakyEmbedder>,
        document_id: String,
        _data_dir: tempfile::TempDir,
    }

    async fn fixture(failures: u32) -> Fixture {
        let (pool, data_dir) = storage::test_pool().await;
        let event_bus = Arc::new(InMemoryEventBus::start(
            EventsConfig::bounded(Duration::ZERO, 64, 64),
            Arc::new(Metrics::new()),
            &TaskTracker::new(),
            CancellationToken::new(),
        ));
        let job_signal = JobSignal::default();
        let outbox = crate::outbox::Outbox::new();
        let document_service = DocumentService::new(
            pool.clone(),
            event_bus,
            outbox.clone(),
            job_signal.clone(),
            &DocumentsConfig {
                max_document_bytes: 10_000,
                max_upload_files: 20,
            },
        );
        projects::create_project(&pool, "proj_a", "Alpha")
            .await
            .expect("a project");
        let created = document_service
            .create(
                &ProjectId::try_from("proj_a".to_owned()).expect("valid"),
                vec![NewDocument {
                    title: "One chunk".to_owned(),
                    content: "A single short paragraph.".to_owned(),
                }],
            )
            .await
            .expect("a document");
        let embedder = Arc::new(FlakyEmbedder {
            failures,
            calls: AtomicU32::new(0),
        });
        let workers = Workers::new(
            pool.clone(),
            WorkProgress::new(pool.clone(), outbox, job_signal.clone()),
            embedder.clone(),
            job_signal,
            &WorkerConfig {
                workers: 1,
                embed_delay: Duration::ZERO,
                job_lease: Duration::from_secs(30),
                extraction: crate::config::Config::from_lookup(|_| None)
                    .expect("the defaults are valid")
                    .workers
                    .extraction,
            },
        );
        Fixture {
            workers,
            pool,
            embedder,
            document_id: created[0].id.clone(),
            _data_dir: data_dir,
        }
    }

    impl Fixture {
        /// Runs the next job to its end, until `shutdown` if it fires; fails when no job waits.
        async fn run_one(&self, shutdown: &CancellationToken) -> (ClaimedJob, JobOutcome) {
            self.workers
                .run_next(shutdown)
                .await
                .expect("the job runs")
                .expect("a job was waiting")
        }
    }

    #[tokio::test]
    async fn a_chunk_that_fails_fewer_times_than_the_bound_is_retried_until_embedded() {
        let fixture = fixture(MAX_CHUNK_ATTEMPTS - 1).await;

        let (job, outcome) = fixture.run_one(&CancellationToken::new()).await;

        assert_eq!(job.kind, JobKind::Embedding);
        assert_eq!(outcome, JobOutcome::Done);
        assert_eq!(
            fixture.embedder.calls.load(Ordering::SeqCst),
            MAX_CHUNK_ATTEMPTS
        );
        let document = documents::find_document(&fixture.pool, "proj_a", &fixture.document_id)
            .await
            .expect("the database answers")
            .expect("the document");
        assert_eq!(document.status, DocumentStatus::Ready);
        assert_eq!((document.embedded_chunks, document.chunks), (1, 1));
    }

    #[tokio::test]
    async fn a_chunk_that_keeps_failing_fails_the_job_and_its_document_with_the_reason() {
        let fixture = fixture(u32::MAX).await;

        let (_, outcome) = fixture.run_one(&CancellationToken::new()).await;

        let reason = "chunk 1 could not be embedded after 3 attempts: \
                      text has no words to embed";
        assert_eq!(outcome, JobOutcome::Failed(reason.to_owned()));
        assert_eq!(
            fixture.embedder.calls.load(Ordering::SeqCst),
            MAX_CHUNK_ATTEMPTS,
            "the retries are bounded"
        );
        let document = documents::find_document(&fixture.pool, "proj_a", &fixture.document_id)
            .await
            .expect("the database answers")
            .expect("the document");
        assert_eq!(document.status, DocumentStatus::Failed);
        assert_eq!(document.error.as_deref(), Some(reason));
        let jobs = jobs::document_jobs(&fixture.pool, &fixture.document_id)
            .await
            .expect("the database answers");
        assert_eq!(jobs.len(), 1, "no extraction job follows a failure");
        assert_eq!(jobs[0].status, "failed");
        assert_eq!(jobs[0].error.as_deref(), Some(reason));
        let announced: Vec<String> = sqlx::query_scalar("SELECT event FROM outbox ORDER BY id")
            .fetch_all(&fixture.pool)
            .await
            .expect("the database answers");
        let notifications: Vec<Notification> = announced
            .iter()
            .filter_map(|event| serde_json::from_str::<NewEvent>(event).ok())
            .filter(|event| event.entity == EntityKind::Notification)
            .filter_map(|event| event.data.as_ref().and_then(Notification::from_data))
            .collect();
        assert_eq!(
            notifications,
            [Notification {
                level: NotificationLevel::Error,
                title: "Embedding of One chunk failed".to_owned(),
                body: Some(reason.to_owned()),
                link: Some(document_address(&fixture.document_id)),
            }],
            "the project's people are told, once"
        );
        assert!(
            fixture
                .workers
                .run_next(&CancellationToken::new())
                .await
                .expect("the database answers")
                .is_none(),
            "a failed job is not taken again"
        );
    }

    #[tokio::test]
    async fn a_job_cut_short_too_many_times_fails_instead_of_running_again() {
        let fixture = fixture(0).await;
        sqlx::query("UPDATE jobs SET claims = $1")
            .bind(i64::from(MAX_CLAIMS))
            .execute(&fixture.pool)
            .await
            .expect("the database answers");

        let (_, outcome) = fixture.run_one(&CancellationToken::new()).await;

        assert_eq!(
            outcome,
            JobOutcome::Failed(format!("the job was interrupted {MAX_CLAIMS} times"))
        );
        assert_eq!(fixture.embedder.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_job_stopped_by_shutdown_is_given_back_and_resumed() {
        let fixture = fixture(0).await;
        let stopped = CancellationToken::new();
        stopped.cancel();

        let (_, outcome) = fixture.run_one(&stopped).await;
        assert_eq!(outcome, JobOutcome::Interrupted);
        let (job, outcome) = fixture.run_one(&CancellationToken::new()).await;

        assert_eq!(outcome, JobOutcome::Done);
        assert_eq!(job.claims, 1, "a shutdown does not count against the job");
    }
}
