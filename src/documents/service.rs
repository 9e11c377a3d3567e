//! [`DocumentService`]: lists, reads, creates, renames and deletes documents, announcing each
//! change through the outbox in the change's own transaction.

use std::sync::Arc;

use app::protocol::{DocumentChange, EntityId, EntityKind, EventType, NewEvent, ProjectId};
use app::resources::{Document, DocumentDetail, DocumentList, DocumentPipeline, NewDocument};

use super::announce::{Announcer, document_event};
use super::progress::{JobSignal, WorkProgress};
use crate::config::DocumentsConfig;
use crate::error::ApiError;
use crate::events::{BusError, EventBus};
use crate::outbox::Outbox;
use crate::storage::documents::ListCursor;
use crate::storage::jobs::JobKind;
use crate::storage::{self, Pool, chunks, documents, graph};

pub use app::resources::MAX_TITLE_CHARS;

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

/// The one writer of documents; cheap to clone.
#[derive(Clone)]
pub struct DocumentService {
    pool: Pool,
    /// Read for the snapshots' `lastEventId`; events are written to the outbox.
    event_bus: Arc<dyn EventBus>,
    announcer: Announcer,
    job_signal: JobSignal,
    /// Read for a document's extraction job (it owns job rows).
    progress: WorkProgress,
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
            progress: WorkProgress::new(pool.clone(), outbox.clone(), job_signal.clone()),
            pool,
            event_bus,
            announcer: Announcer::new(outbox),
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

    /// The project's documents, newest first, from after `after`: all of them, or at most
    /// `limit` with `next` when more follow; with the event id to resume its stream from,
    /// and on a first page that has more, the project's count of documents (one more
    /// query, an index count, for a list long enough to come in pages).
    ///
    /// The id is read before the documents, so an event published between the two is
    /// replayed to the client rather than missed; each page of a list carries its own.
    ///
    /// # Errors
    ///
    /// The database or the bus fails.
    pub async fn list(
        &self,
        project: &ProjectId,
        limit: Option<usize>,
        after: Option<&ListCursor>,
    ) -> Result<DocumentList, DocumentError> {
        let last_event_id = self.event_bus.last_event_id(project).await?;
        let (documents, next) =
            documents::list_documents(&self.pool, project.as_str(), limit, after).await?;
        let total = match (after, &next) {
            (None, Some(_)) => {
                Some(documents::count_documents(&self.pool, project.as_str()).await?)
            }
            _ => None,
        };
        Ok(DocumentList {
            documents,
            last_event_id: last_event_id.to_string(),
            next: next.as_ref().map(ListCursor::encode),
            total,
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

    /// What the document's page shows: the document, its chunks, its extraction job and the
    /// graph extraction found, with the event id to resume the project's stream from (read
    /// first, as in [`DocumentService::list`]).
    ///
    /// # Errors
    ///
    /// [`DocumentError::NotFound`] when the project has no such document.
    pub async fn pipeline(
        &self,
        project: &ProjectId,
        id: &str,
    ) -> Result<DocumentPipeline, DocumentError> {
        let last_event_id = self.event_bus.last_event_id(project).await?;
        let document = self.get(project, id).await?;
        let chunks = chunks::document_chunks(&self.pool, id).await?;
        let extraction = self.progress.latest_extraction(id).await?;
        let (entities, relations) = graph::document_graph(&self.pool, id).await?;
        Ok(DocumentPipeline {
            document,
            chunks,
            extraction,
            entities,
            relations,
            last_event_id: last_event_id.to_string(),
        })
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
            WorkProgress::queue(&mut transaction, project.as_str(), &id, JobKind::Embedding)
                .await?;
            created.push(stored);
        }
        let events = created
            .iter()
            .map(|stored| document_event(EventType::Created, stored, DocumentChange::created));
        self.announcer.commit(transaction, events).await?;
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
        self.announcer
            .commit(
                transaction,
                [document_event(
                    EventType::Updated,
                    &document,
                    DocumentChange::renamed,
                )],
            )
            .await?;
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
        self.announcer
            .commit(
                transaction,
                [Some(NewEvent::single(
                    EventType::Deleted,
                    EntityKind::Document,
                    entity_id,
                    project.clone(),
                    None,
                ))],
            )
            .await?;
        Ok(())
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
