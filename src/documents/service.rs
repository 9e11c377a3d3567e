//! [`DocumentService`]: creates, renames and deletes documents, records the workers'
//! progress, and writes the events that announce each change into the outbox, in the change's
//! own transaction (the relay publishes them).

use std::sync::Arc;
use std::time::Duration;

use crate::storage::Pool;
use tokio::sync::Notify;

use app::protocol::{
    ChunkChange, ChunkStatus, DocumentChange, EntityData, EntityId, EntityKind, EventType,
    ExtractionJobChange, ExtractionStatus, GraphObjectChange, NewEvent, ProjectId,
};
use app::resources::{Document, DocumentDetail, DocumentList, NewDocument};

use crate::config::DocumentsConfig;
use crate::error::ApiError;
use crate::events::{BusError, EventBus};
use crate::outbox::Outbox;
use crate::storage::jobs::{self, ClaimedJob, JobKind};
use crate::storage::{self, DbConnection, chunks, documents, graph};

/// Longest accepted title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

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

/// Why a document operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// No such document in the project.
    #[error("document not found")]
    NotFound,
    /// The project does not exist.
    #[error("project not found")]
    ProjectNotFound,
    /// The document cannot be stored; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The document's text is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The database failed.
    #[error("database query failed")]
    Database(#[from] sqlx::Error),
    /// The event bus failed.
    #[error("the event bus failed")]
    Bus(#[from] BusError),
}

impl From<DocumentError> for ApiError {
    fn from(error: DocumentError) -> Self {
        match error {
            DocumentError::NotFound => Self::ResourceNotFound("document"),
            DocumentError::ProjectNotFound => Self::ResourceNotFound("project"),
            DocumentError::Invalid(message) => Self::InvalidDocument(message),
            DocumentError::TooLarge(message) => Self::DocumentTooLarge(message),
            DocumentError::Database(error) => Self::from(error),
            DocumentError::Bus(error) => Self::from(error),
        }
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

/// The one writer of documents; cheap to clone.
#[derive(Clone)]
pub struct DocumentService {
    pool: Pool,
    /// Read for the snapshots' `lastEventId`; events are written to the outbox.
    event_bus: Arc<dyn EventBus>,
    outbox: Outbox,
    job_signal: JobSignal,
    max_document_bytes: usize,
    max_upload_files: usize,
}

impl DocumentService {
    /// A service over `pool` that announces changes through `outbox`, reads snapshot ids from
    /// `event_bus` and wakes workers via `job_signal`.
    pub fn new(
        pool: Pool,
        event_bus: Arc<dyn EventBus>,
        outbox: Outbox,
        job_signal: JobSignal,
        config: &DocumentsConfig,
    ) -> Self {
        Self {
            pool,
            event_bus,
            outbox,
            job_signal,
            max_document_bytes: config.max_document_bytes,
            max_upload_files: config.max_upload_files,
        }
    }

    /// The largest accepted document text, in bytes.
    pub fn max_document_bytes(&self) -> usize {
        self.max_document_bytes
    }

    /// The most files one upload may carry.
    pub fn max_upload_files(&self) -> usize {
        self.max_upload_files
    }

    /// The project's documents, newest first, with the event id to resume its stream from.
    ///
    /// The id is read before the documents, so an event published between the two is
    /// replayed to the client rather than missed.
    ///
    /// # Errors
    ///
    /// The database or the bus fails.
    pub async fn list(&self, project: &ProjectId) -> Result<DocumentList, DocumentError> {
        let last_event_id = self.event_bus.last_event_id(project).await?;
        let documents = documents::list_documents(&self.pool, project.as_str()).await?;
        Ok(DocumentList {
            documents,
            last_event_id: last_event_id.to_string(),
        })
    }

    /// One of the project's documents with its text.
    ///
    /// # Errors
    ///
    /// [`DocumentError::NotFound`] when the project has no such document.
    pub async fn get(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> Result<DocumentDetail, DocumentError> {
        documents::find_document_detail(&self.pool, project.as_str(), id)
            .await?
            .ok_or(DocumentError::NotFound)
    }

    /// Checks a document before anything is stored: a title of 1 to [`MAX_TITLE_CHARS`]
    /// characters, text that is not blank and not over the size limit. `name` is how
    /// messages refer to it (a file name, or "the document").
    ///
    /// # Errors
    ///
    /// [`DocumentError::Invalid`] or [`DocumentError::TooLarge`], naming `name`.
    pub fn validate(&self, name: &str, document: &NewDocument) -> Result<(), DocumentError> {
        if document.content.len() > self.max_document_bytes {
            return Err(DocumentError::TooLarge(format!(
                "{name} is {} bytes, over the limit of {} bytes",
                document.content.len(),
                self.max_document_bytes
            )));
        }
        if document.content.trim().is_empty() {
            return Err(DocumentError::Invalid(format!("{name} has no text")));
        }
        validate_title(&document.title)
    }

    /// Stores the documents in one transaction, queues an embedding job for each and
    /// announces `entity.created` for each. Either all are created or none.
    ///
    /// # Errors
    ///
    /// A document is invalid, the project does not exist, or the database fails.
    pub async fn create(
        &self,
        project: &ProjectId,
        new_documents: Vec<NewDocument>,
    ) -> Result<Vec<Document>, DocumentError> {
        for (index, document) in new_documents.iter().enumerate() {
            self.validate(&format!("document {}", index + 1), document)?;
        }
        if !storage::projects::project_exists(&self.pool, project.as_str()).await? {
            return Err(DocumentError::ProjectNotFound);
        }
        let mut transaction = self.pool.begin().await?;
        let mut created = Vec::with_capacity(new_documents.len());
        for document in &new_documents {
            let id = storage::new_id("doc");
            let stored = documents::insert_document(
                &mut transaction,
                &id,
                project.as_str(),
                document.title.trim(),
                &document.content,
            )
            .await?;
            jobs::enqueue(&mut transaction, project.as_str(), &id, JobKind::Embedding).await?;
            self.write(
                &mut transaction,
                document_event(EventType::Created, &stored, DocumentChange::created),
            )
            .await?;
            created.push(stored);
        }
        transaction.commit().await?;
        self.outbox.wake();
        for _ in &created {
            self.job_signal.notify();
        }
        Ok(created)
    }

    /// Renames one of the project's documents and announces the new title.
    ///
    /// # Errors
    ///
    /// The title is invalid, the document does not exist, or the database fails.
    pub async fn rename(
        &self,
        project: &ProjectId,
        id: &str,
        title: &str,
    ) -> Result<Document, DocumentError> {
        validate_title(title)?;
        let mut transaction = self.pool.begin().await?;
        let document =
            documents::rename_document(&mut transaction, project.as_str(), id, title.trim())
                .await?
                .ok_or(DocumentError::NotFound)?;
        self.write(
            &mut transaction,
            document_event(EventType::Updated, &document, DocumentChange::renamed),
        )
        .await?;
        transaction.commit().await?;
        self.outbox.wake();
        Ok(document)
    }

    /// Deletes one of the project's documents, with its chunks, jobs and graph objects (a
    /// running job notices and stops), and announces `entity.deleted`.
    ///
    /// # Errors
    ///
    /// The document does not exist, or the database fails.
    pub async fn delete(&self, project: &ProjectId, id: &str) -> Result<(), DocumentError> {
        let entity_id = EntityId::try_from(id.to_owned()).map_err(|_| DocumentError::NotFound)?;
        let mut transaction = self.pool.begin().await?;
        if !documents::delete_document(&mut transaction, project.as_str(), id).await? {
            return Err(DocumentError::NotFound);
        }
        self.write(
            &mut transaction,
            Some(NewEvent::single(
                EventType::Deleted,
                EntityKind::Document,
                entity_id,
                project.clone(),
                None,
            )),
        )
        .await?;
        transaction.commit().await?;
        self.outbox.wake();
        Ok(())
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
        self.write_all(&mut transaction, std::iter::once(progress).chain(chunks))
            .await?;
        transaction.commit().await?;
        self.outbox.wake();
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
        self.write_all(
            &mut transaction,
            [
                chunk_event,
                document_event(EventType::Updated, &document, DocumentChange::progress),
            ],
        )
        .await?;
        transaction.commit().await?;
        self.outbox.wake();
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
        self.write(
            &mut transaction,
            document_event(EventType::Updated, &document, DocumentChange::progress),
        )
        .await?;
        self.write_job(
            &mut transaction,
            job,
            EventType::Created,
            &extraction_id,
            job_change(job, ExtractionStatus::Queued),
        )
        .await?;
        transaction.commit().await?;
        self.outbox.wake();
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
        self.write_job(
            &mut transaction,
            job,
            EventType::Updated,
            &job.id,
            job_change(job, ExtractionStatus::Running),
        )
        .await?;
        transaction.commit().await?;
        self.outbox.wake();
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
        self.write_all(
            &mut transaction,
            batch_events(
                job,
                ids,
                &GraphObjectChange {
                    document_id: Some(job.document_id.clone()),
                    job_id: Some(job.id.clone()),
                },
            ),
        )
        .await?;
        let done = ExtractionJobChange {
            document_id: Some(job.document_id.clone()),
            status: Some(ExtractionStatus::Done),
            ..summary
        };
        self.write_job(&mut transaction, job, EventType::Updated, &job.id, done)
            .await?;
        transaction.commit().await?;
        self.outbox.wake();
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
        if let Some(document) = document {
            self.write(
                &mut transaction,
                document_event(EventType::Updated, &document, DocumentChange::failed),
            )
            .await?;
        }
        if job.kind == JobKind::Extraction {
            self.write_job(
                &mut transaction,
                job,
                EventType::Updated,
                &job.id,
                ExtractionJobChange {
                    error: Some(reason.to_owned()),
                    ..job_change(job, ExtractionStatus::Failed)
                },
            )
            .await?;
        }
        transaction.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Writes `event` into the outbox in `transaction`; `None` (an id that cannot be on the
    /// wire, which stored ids never are) writes nothing.
    async fn write(
        &self,
        transaction: &mut DbConnection,
        event: Option<NewEvent>,
    ) -> sqlx::Result<()> {
        self.write_all(transaction, [event]).await
    }

    /// Writes `events` into the outbox in `transaction`, in order.
    async fn write_all(
        &self,
        transaction: &mut DbConnection,
        events: impl IntoIterator<Item = Option<NewEvent>>,
    ) -> sqlx::Result<()> {
        let events: Vec<NewEvent> = events.into_iter().flatten().collect();
        self.outbox.write(transaction, &events).await
    }

    /// Writes an extraction job's event into the outbox in `transaction`.
    async fn write_job(
        &self,
        transaction: &mut DbConnection,
        job: &ClaimedJob,
        event_type: EventType,
        job_id: &str,
        change: ExtractionJobChange,
    ) -> sqlx::Result<()> {
        let event = EntityId::try_from(job_id.to_owned())
            .ok()
            .map(|id| NewEvent::about(event_type, id, project_of(job), &change));
        self.write(transaction, event).await
    }
}

/// A document event whose `data` is what `change` takes of the document.
fn document_event(
    event_type: EventType,
    document: &Document,
    change: fn(&Document) -> DocumentChange,
) -> Option<NewEvent> {
    let project = ProjectId::try_from(document.project_id.clone()).ok()?;
    let id = EntityId::try_from(document.id.clone()).ok()?;
    Some(NewEvent::about(event_type, id, project, &change(document)))
}

/// `entity.batch` events naming `ids` (as many as the batch limit needs), each with `data`.
fn batch_events<D: EntityData>(
    job: &ClaimedJob,
    ids: Vec<String>,
    data: &D,
) -> impl Iterator<Item = Option<NewEvent>> + use<D> {
    let ids: Vec<EntityId> = ids
        .into_iter()
        .filter_map(|id| EntityId::try_from(id).ok())
        .collect();
    NewEvent::batches_about(&ids, &project_of(job), data)
        .into_iter()
        .map(Some)
}

/// An extraction job's change to `status`.
fn job_change(job: &ClaimedJob, status: ExtractionStatus) -> ExtractionJobChange {
    ExtractionJobChange {
        document_id: Some(job.document_id.clone()),
        status: Some(status),
        ..ExtractionJobChange::default()
    }
}

/// A title of 1 to [`MAX_TITLE_CHARS`] characters without control characters.
fn validate_title(title: &str) -> Result<(), DocumentError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(DocumentError::Invalid("the title is empty".to_owned()));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(DocumentError::Invalid(format!(
            "the title is longer than {MAX_TITLE_CHARS} characters"
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(DocumentError::Invalid(
            "the title contains control characters".to_owned(),
        ));
    }
    Ok(())
}

/// The job's project; ids in the database were validated on the way in.
fn project_of(job: &ClaimedJob) -> ProjectId {
    ProjectId::try_from(job.project_id.clone()).expect("stored project ids are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_title(title: &str, expected_error: Option<&str>) {
        let result = validate_title(title).err().map(|error| error.to_string());
        assert_eq!(result.as_deref(), expected_error);
    }

    #[test]
    fn titles_are_checked() {
        check_title("Notes", None);
        check_title("  Notes  ", None);
        check_title("", Some("the title is empty"));
        check_title("   ", Some("the title is empty"));
        check_title(&"x".repeat(MAX_TITLE_CHARS), None);
        check_title(
            &"x".repeat(MAX_TITLE_CHARS + 1),
            Some("the title is longer than 200 characters"),
        );
        check_title("a\nb", Some("the title contains control characters"));
    }
}
