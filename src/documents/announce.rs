//! [`Announcer`]: writes the events that announce a change into the outbox, in the change's
//! own transaction (the relay publishes them after the commit), and builds those events
//! from typed changes.
//!
//! **Invariant:** an event is written in the transaction of the change it announces, so it
//! is published if and only if the change commits.

use app::pages::document::document_address;
use app::protocol::{
    DocumentChange, EntityData, EntityId, EventType, ExtractionJobChange, ExtractionStatus,
    NewEvent, Notification, NotificationLevel, ProjectId,
};
use app::resources::Document;

use crate::outbox::Outbox;
use crate::random::random_hex;
use crate::storage::jobs::ClaimedJob;

/// Writes announcements into the outbox and wakes its relay; cheap to clone.
#[derive(Clone)]
pub(super) struct Announcer {
    outbox: Outbox,
}

impl Announcer {
    /// An announcer writing into `outbox`.
    pub fn new(outbox: Outbox) -> Self {
        Self { outbox }
    }

    /// Writes `events` into the outbox, in order, as the last step of `transaction`, commits
    /// it, and tells the relay that the events wait. A `None` (an id that cannot be on the
    /// wire, which stored ids never are) is skipped.
    ///
    /// # Errors
    ///
    /// The database fails; nothing is committed.
    pub async fn commit(
        &self,
        mut transaction: sqlx::Transaction<'static, sqlx::Any>,
        events: impl IntoIterator<Item = Option<NewEvent>>,
    ) -> sqlx::Result<()> {
        let events: Vec<NewEvent> = events.into_iter().flatten().collect();
        self.outbox.write(&mut transaction, &events).await?;
        transaction.commit().await?;
        self.outbox.wake();
        Ok(())
    }
}

/// A document event whose `data` is what `change` takes of the document.
pub(super) fn document_event(
    event_type: EventType,
    document: &Document,
    change: fn(&Document) -> DocumentChange,
) -> Option<NewEvent> {
    let project = ProjectId::try_from(document.project_id.clone()).ok()?;
    let id = EntityId::try_from(document.id.clone()).ok()?;
    Some(NewEvent::about(event_type, id, project, &change(document)))
}

/// `entity.batch` events naming `ids` (as many as the batch limit needs), each with `data`.
pub(super) fn batch_events<D: EntityData>(
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
pub(super) fn job_change(job: &ClaimedJob, status: ExtractionStatus) -> ExtractionJobChange {
    ExtractionJobChange {
        document_id: Some(job.document_id.clone()),
        status: Some(status),
        ..ExtractionJobChange::default()
    }
}

/// An extraction job's event: `change` to the job `job_id` of `job`'s document.
pub(super) fn job_event(
    job: &ClaimedJob,
    event_type: EventType,
    job_id: &str,
    change: &ExtractionJobChange,
) -> Option<NewEvent> {
    let id = EntityId::try_from(job_id.to_owned()).ok()?;
    Some(NewEvent::about(event_type, id, project_of(job), change))
}

/// The job's project; ids in the database were validated on the way in.
pub(super) fn project_of(job: &ClaimedJob) -> ProjectId {
    ProjectId::try_from(job.project_id.clone()).expect("stored project ids are valid")
}

/// A `notification` for the people of `job`'s project about its document: what happened
/// (`title`), more words (`body`), and a link to the document's page.
pub(super) fn notification_event(
    job: &ClaimedJob,
    level: NotificationLevel,
    title: String,
    body: Option<String>,
) -> Option<NewEvent> {
    let id = EntityId::try_from(format!("ntf_{}", random_hex::<8>())).ok()?;
    let notification = Notification {
        level,
        title,
        body,
        link: Some(document_address(&job.document_id)),
    };
    Some(NewEvent::about(
        EventType::Created,
        id,
        project_of(job),
        &notification,
    ))
}
