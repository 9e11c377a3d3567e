//! [`WorkProgress`]: the one owner of job rows. Workers claim, renew, give back and end
//! their jobs through it, and it records their progress on documents, chunks and graph
//! objects with the events that announce it, one transaction per step.
//!
//! **Invariant:** every write of a step is fenced by the job's claim (its lease is renewed,
//! or the job finished, in the step's transaction), so a worker whose lease ran out writes
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use app::protocol::{
    ChunkChange, ChunkStatus, DocumentChange, EntityId, EventType, ExtractionJobChange,
    ExtractionStatus, GraphObjectChange, NewEvent, NotificationLevel,
};
use app::resources::ExtractionSummary;

use super::announce::{
    Announcer, batch_events, document_event, job_change, job_event, notification_event, project_of,
};
use crate::outbox::Outbox;
use crate::storage::jobs::{self, ClaimedJob, JobKind};
use crate::storage::{DbConnection, Pool, chunks, documents, graph};

/// Wakes idle workers when a job is queued, so work starts at once instead of at the next
/// poll.
#[derive(Debug, Clone, Default)]
pub struct JobSignal(Arc<Notify>);

impl JobSignal {
    /// Wakes one idle worker (or the next one to wait).
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Waits for [`JobSignal::notify`].
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// Progress of an embedding job after one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkRecorded {
    /// Stored; more chunks remain or this was the last.
    Stored,
    /// The chunk already had an embedding (a resumed job); nothing changed.
    AlreadyEmbedded,
    /// The document or its job is gone: the job was cancelled.
    Cancelled,
}

/// Records the workers' progress; cheap to clone.
#[derive(Clone)]
pub struct WorkProgress {
    pool: Pool,
    announcer: Announcer,
    job_signal: JobSignal,
}

impl WorkProgress {
    /// Progress over `pool`, announced through `outbox`; queued jobs wake workers through
    /// `job_signal`.
    pub fn new(pool: Pool, outbox: Outbox, job_signal: JobSignal) -> Self {
        Self {
            pool,
            announcer: Announcer::new(outbox),
            job_signal,
        }
    }

    /// Queues a `kind` job for `document` in `transaction`; call [`JobSignal::notify`] after
    /// the commit.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub(super) async fn queue(
        transaction: &mut DbConnection,
        project: &str,
        document: &str,
        kind: JobKind,
    ) -> sqlx::Result<String> {
        jobs::enqueue(transaction, project, document, kind).await
    }

    /// Claims the next job with a `lease`, fairly across projects; `None` when none waits.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn claim_next(&self, lease: Duration) -> sqlx::Result<Option<ClaimedJob>> {
        jobs::claim_next(&self.pool, lease).await
    }

    /// The document's latest extraction job, once one was queued.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn latest_extraction(
        &self,
        document: &str,
    ) -> sqlx::Result<Option<ExtractionSummary>> {
        let jobs = jobs::document_jobs(&self.pool, document).await?;
        Ok(jobs
            .into_iter()
            .rev()
            .find(|job| job.kind == JobKind::Extraction.as_str())
            .map(|job| ExtractionSummary {
                status: match job.status.as_str() {
                    "queued" => ExtractionStatus::Queued,
                    "running" => ExtractionStatus::Running,
                    "done" => ExtractionStatus::Done,
                    _ => ExtractionStatus::Failed,
                },
                id: job.id,
                error: job.error,
            }))
    }

    /// Extends `job`'s claim by `lease`; `false` when the job was deleted or its claim lost.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn renew_lease(&self, job: &ClaimedJob, lease: Duration) -> sqlx::Result<bool> {
        let mut connection = self.pool.acquire().await?;
        jobs::renew_lease(&mut connection, job, lease).await
    }

    /// Gives `job` back to the queue (shutdown stopped it), to be resumed on the next start.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn release(&self, job: &ClaimedJob) -> sqlx::Result<()> {
        jobs::release(&self.pool, job).await
    }

    /// Splits the job's document into `texts` (unless a previous run did) and announces the
    /// chunk count, renewing the job's `lease`; returns `false` when the job was cancelled or
    /// its claim lost.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn record_split(
        &self,
        job: &ClaimedJob,
        texts: &[String],
        lease: Duration,
    ) -> sqlx::Result<bool> {
        if chunks::count_chunks(&self.pool, &job.document_id).await? > 0 {
            return Ok(true);
        }
        let mut transaction = self.pool.begin().await?;
        if !jobs::renew_lease(&mut transaction, job, lease).await? {
            return Ok(false);
        }
        let chunk_ids =
            chunks::insert_chunks(&mut transaction, &job.document_id, &job.project_id, texts)
                .await?;
        let count = u32::try_from(texts.len()).unwrap_or(u32::MAX);
        let Some(document) =
            documents::start_embedding(&mut transaction, &job.document_id, count).await?
        else {
            return Ok(false);
        };
        let progress = document_event(EventType::Updated, &document, DocumentChange::progress);
        let chunks = batch_events(
            job,
            chunk_ids,
            &ChunkChange {
                document_id: Some(job.document_id.clone()),
                status: Some(ChunkStatus::Pending),
                ..ChunkChange::default()
            },
        );
        self.announcer
            .commit(transaction, std::iter::once(progress).chain(chunks))
            .await?;
        Ok(true)
    }

    /// Stores one chunk's embedding, counts it on the document, renews the job's lease and
    /// announces the chunk and the document's progress, in one transaction.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn record_embedding(
        &self,
        job: &ClaimedJob,
        chunk_id: &str,
        position: i64,
        embedding: &[u8],
        lease: Duration,
    ) -> sqlx::Result<ChunkRecorded> {
        let mut transaction = self.pool.begin().await?;
        if !jobs::renew_lease(&mut transaction, job, lease).await? {
            return Ok(ChunkRecorded::Cancelled);
        }
        if !chunks::store_embedding(&mut transaction, chunk_id, embedding).await? {
            return Ok(ChunkRecorded::AlreadyEmbedded);
        }
        let Some(document) =
            documents::count_embedded_chunk(&mut transaction, &job.document_id).await?
        else {
            return Ok(ChunkRecorded::Cancelled);
        };
        let chunk_event = EntityId::try_from(chunk_id.to_owned()).ok().map(|chunk| {
            NewEvent::about(
                EventType::Updated,
                chunk,
                project_of(job),
                &ChunkChange {
                    document_id: Some(job.document_id.clone()),
                    position: Some(position),
                    status: Some(ChunkStatus::Embedded),
                },
            )
        });
        self.announcer
            .commit(
                transaction,
                [
                    chunk_event,
                    document_event(EventType::Updated, &document, DocumentChange::progress),
                ],
            )
            .await?;
        Ok(ChunkRecorded::Stored)
    }

    /// Ends an embedding job: the document is ready and its extraction job queued, both
    /// announced, in one transaction. Returns `false` when the job was cancelled.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn finish_embedding(&self, job: &ClaimedJob) -> sqlx::Result<bool> {
        let mut transaction = self.pool.begin().await?;
        if !jobs::finish(&mut transaction, job).await? {
            return Ok(false);
        }
        let Some(document) = documents::mark_ready(&mut transaction, &job.document_id).await?
        else {
            return Ok(false);
        };
        let extraction_id = jobs::enqueue(
            &mut transaction,
            &job.project_id,
            &job.document_id,
            JobKind::Extraction,
        )
        .await?;
        self.announcer
            .commit(
                transaction,
                [
                    document_event(EventType::Updated, &document, DocumentChange::progress),
                    job_event(
                        job,
                        EventType::Created,
                        &extraction_id,
                        &job_change(job, ExtractionStatus::Queued),
                    ),
                    notification_event(
                        job,
                        NotificationLevel::Success,
                        format!("{} is ready", document.title),
                        Some(match document.chunks {
                            1 => "Its chunk is embedded and searchable.".to_owned(),
                            chunks => format!("Its {chunks} chunks are embedded and searchable."),
                        }),
                    ),
                ],
            )
            .await?;
        self.job_signal.notify();
        Ok(true)
    }

    /// Announces that an extraction job started, renewing its `lease`; returns `false` when
    /// the job was cancelled or its claim lost.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn record_extraction_started(
        &self,
        job: &ClaimedJob,
        lease: Duration,
    ) -> sqlx::Result<bool> {
        let mut transaction = self.pool.begin().await?;
        if !jobs::renew_lease(&mut transaction, job, lease).await? {
            return Ok(false);
        }
        let running = job_change(job, ExtractionStatus::Running);
        self.announcer
            .commit(
                transaction,
                [job_event(job, EventType::Updated, &job.id, &running)],
            )
            .await?;
        Ok(true)
    }

    /// Stores the graph objects an extraction job derived and ends the job, announcing the
    /// objects (as `entity.batch`) and the job's end with `summary` (what it found), in one
    /// transaction. Returns `false` when the job was cancelled.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn finish_extraction(
        &self,
        job: &ClaimedJob,
        objects: &[graph::NewGraphObject],
        summary: ExtractionJobChange,
    ) -> sqlx::Result<bool> {
        let mut transaction = self.pool.begin().await?;
        // The job's row first, as every worker transaction and a document's deletion lock it.
        if !jobs::finish(&mut transaction, job).await? {
            return Ok(false);
        }
        let ids = graph::replace_job_objects(
            &mut transaction,
            &job.project_id,
            &job.document_id,
            &job.id,
            objects,
        )
        .await?;
        let objects = batch_events(
            job,
            ids,
            &GraphObjectChange {
                document_id: Some(job.document_id.clone()),
                job_id: Some(job.id.clone()),
            },
        );
        let done = ExtractionJobChange {
            document_id: Some(job.document_id.clone()),
            status: Some(ExtractionStatus::Done),
            ..summary
        };
        let end = job_event(job, EventType::Updated, &job.id, &done);
        let title = documents::title_of(&mut transaction, &job.document_id)
            .await?
            .unwrap_or_default();
        let found = notification_event(
            job,
            NotificationLevel::Info,
            format!("Entities found in {title}"),
            Some(format!(
                "{} entities and {} relations.",
                done.entities.unwrap_or(0),
                done.relations.unwrap_or(0)
            )),
        );
        self.announcer
            .commit(transaction, objects.chain([end, found]))
            .await?;
        Ok(true)
    }

    /// Marks the job and its document failed with `reason`, announcing both, in one
    /// transaction.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn fail_job(&self, job: &ClaimedJob, reason: &str) -> sqlx::Result<()> {
        let mut transaction = self.pool.begin().await?;
        if !jobs::fail(&mut transaction, job, reason).await? {
            return Ok(());
        }
        let document = documents::mark_failed(&mut transaction, &job.document_id, reason).await?;
        let failed = ExtractionJobChange {
            error: Some(reason.to_owned()),
            ..job_change(job, ExtractionStatus::Failed)
        };
        self.announcer
            .commit(
                transaction,
                [
                    document.as_ref().and_then(|document| {
                        document_event(EventType::Updated, document, DocumentChange::failed)
                    }),
                    (job.kind == JobKind::Extraction)
                        .then(|| job_event(job, EventType::Updated, &job.id, &failed))
                        .flatten(),
                    notification_event(
                        job,
                        NotificationLevel::Error,
                        format!(
                            "{} of {} failed",
                            match job.kind {
                                JobKind::Embedding => "Embedding",
                                JobKind::Extraction => "Extraction",
                            },
                            document
                                .as_ref()
                                .map_or("a document", |document| document.title.as_str())
                        ),
                        Some(reason.to_owned()),
                    ),
                ],
            )
            .await?;
        Ok(())
    }
}
