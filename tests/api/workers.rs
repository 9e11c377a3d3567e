//! The job workers across restarts and deletions: nothing lost, nothing done twice.

use std::collections::HashSet;

use app::protocol::{EntityEvent, EntityKind, EventType, StreamMessage};
use docpulse::storage::Pool;
use serde_json::Value;

use crate::documents::long_text;
use crate::helpers::TestApp;

/// The chunk id of an `entity.updated` chunk event with `status: embedded`.
fn embedded_chunk(message: &StreamMessage) -> Option<String> {
    let StreamMessage::Entity { event, .. } = message else {
        return None;
    };
    let embedded = event.entity == EntityKind::Chunk
        && event.event_type == EventType::Updated
        && event.data.as_ref().and_then(|data| data.get("status"))
            == Some(&Value::from("embedded"));
    embedded.then(|| event.id.as_ref().map(|id| id.as_str().to_owned()))?
}

/// What a client saw on its streams: the id of every entity event, in order, and the
/// chunks announced as embedded.
#[derive(Default)]
pub struct Seen {
    /// Stream ids, `<epoch>:<seq>`.
    pub ids: Vec<String>,
    /// Chunk ids, as often as they were announced.
    pub embedded: Vec<String>,
}

impl Seen {
    /// Notes what `message` says.
    pub fn record(&mut self, message: &StreamMessage) {
        if let StreamMessage::Entity { id, .. } = message {
            self.ids.push(id.clone());
        }
        self.embedded.extend(embedded_chunk(message));
    }

    /// The id to resume after; empty before the first event.
    pub fn last_id(&self) -> &str {
        self.ids.last().map_or("", String::as_str)
    }

    /// The chunks announced as embedded, each of which must have been announced once.
    pub fn embedded_once(&self) -> HashSet<String> {
        let unique: HashSet<String> = self.embedded.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            self.embedded.len(),
            "no chunk was embedded twice"
        );
        unique
    }
}

/// The chunks of `document_id`, once the database shows each of them embedded and counted
/// once on the document.
pub async fn chunks_embedded_once(pool: &Pool, document_id: &str) -> HashSet<String> {
    let chunks: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM chunks WHERE document_id = $1")
            .bind(document_id)
            .fetch_all(pool)
            .await
            .expect("the database answers")
            .into_iter()
            .collect();
    let not_embedded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM chunks WHERE document_id = $1 AND embedding IS NULL",
    )
    .bind(document_id)
    .fetch_one(pool)
    .await
    .expect("the database answers");
    assert_eq!(not_embedded, 0, "every chunk has its vector");
    let (count, embedded): (i64, i64) =
        sqlx::query_as("SELECT chunks, embedded_chunks FROM documents WHERE id = $1")
            .bind(document_id)
            .fetch_one(pool)
            .await
            .expect("the database answers");
    assert_eq!(embedded, count, "each chunk was counted once");
    assert_eq!(usize::try_from(count).expect("small"), chunks.len());
    chunks
}

/// Whether `message` says document `id` is ready.
pub fn is_ready(message: &StreamMessage, id: &str) -> bool {
    let StreamMessage::Entity { event, .. } = message else {
        return false;
    };
    event.entity == EntityKind::Document
        && event.id.as_ref().map(|id| id.as_str()) == Some(id)
        && event.data.as_ref().and_then(|data| data.get("status")) == Some(&Value::from("ready"))
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_job_resumes_it_and_embeds_every_chunk_exactly_once() {
    let app = TestApp::spawn_with_env(&[("WORKERS", "1"), ("EMBED_DELAY_MS", "100")]).await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let document = app.create_document("proj_a", "Long", &long_text(16)).await;

    let mut seen = Seen::default();
    while seen.embedded.len() < 3 {
        seen.record(&stream.next().await);
    }
    let app = app.restart().await;
    // The old stream ends at shutdown; whatever the first run embedded is on it.
    while let Some(message) = stream.try_next().await {
        seen.record(&message);
    }
    let first_run = seen.embedded.len();

    // The Redis bus keeps its history across the restart: resume from the last event seen.
    // The in-memory bus starts a new epoch; resuming from its sequence 0 replays everything
    // it published since it started. Either way nothing is missed while the stream connects.
    let epoch = app_epoch(&app).await;
    let resume_from = if seen.last_id().starts_with(&format!("{epoch}:")) {
        seen.last_id().to_owned()
    } else {
        format!("{epoch}:0")
    };
    let mut stream = app.open_stream("proj_a", Some(resume_from.as_str())).await;
    loop {
        let message = stream.next().await;
        seen.record(&message);
        if is_ready(&message, &document.id) {
            break;
        }
    }

    let all_chunks = chunks_embedded_once(&app.pool, &document.id).await;
    assert_eq!(seen.embedded_once(), all_chunks, "every chunk was embedded");
    assert!(
        seen.embedded.len() > first_run,
        "the restart came before the end of the job"
    );
}

/// The epoch of the server's event ids, from a document list's `lastEventId`.
async fn app_epoch(app: &TestApp) -> String {
    let last = app.list_documents("proj_a").await.last_event_id;
    last.split_once(':').expect("epoch:seq").0.to_owned()
}

#[tokio::test]
async fn deleting_a_document_stops_its_job() {
    let app = TestApp::spawn_with_env(&[("WORKERS", "1"), ("EMBED_DELAY_MS", "100")]).await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let doomed = app
        .create_document("proj_a", "Doomed", &long_text(16))
        .await;
    while embedded_chunk(&stream.next().await).is_none() {}

    let response = app.delete_document("proj_a", &doomed.id).await;
    assert_eq!(response.status(), 204);

    // With one worker, the next document starts only once the cancelled job has stopped.
    let next = app
        .create_document("proj_a", "Next", "Short and sweet.")
        .await;
    let mut after_delete = Vec::new();
    let mut deleted = false;
    loop {
        let StreamMessage::Entity { event, .. } = stream.next().await else {
            continue;
        };
        if event.event_type == EventType::Deleted {
            deleted = true;
            continue;
        }
        let about_next = event.id.as_ref().map(|id| id.as_str()) == Some(next.id.as_str());
        if deleted && about_next && event.event_type == EventType::Updated {
            break;
        }
        if deleted && !about_next {
            after_delete.push(event);
        }
    }
    // Events are published after their commit, so the one chunk whose transaction
    // committed just before the delete may be announced just after it (a client ignores
    // updates of a document it no longer has). Nothing else may follow: the job stopped.
    let about_doomed: Vec<&EntityEvent> = after_delete
        .iter()
        .filter(|event| {
            let data = event.data.clone().unwrap_or_default();
            data.get("documentId") == Some(&Value::from(doomed.id.as_str()))
                || event.id.as_ref().map(|id| id.as_str()) == Some(doomed.id.as_str())
        })
        .collect();
    let late_chunks = about_doomed
        .iter()
        .filter(|event| event.entity == EntityKind::Chunk)
        .count();
    let late_documents = about_doomed
        .iter()
        .filter(|event| event.entity == EntityKind::Document)
        .count();
    assert!(
        late_chunks <= 1
            && late_documents <= 1
            && about_doomed.len() == late_chunks + late_documents,
        "nothing of the deleted document happened after its deletion: {about_doomed:?}"
    );
    let jobs = app
        .count(
            "SELECT COUNT(*) FROM jobs WHERE document_id = $1",
            &[&doomed.id],
        )
        .await;
    assert_eq!(jobs, 0);
    let chunks = app
        .count(
            "SELECT COUNT(*) FROM chunks WHERE document_id = $1",
            &[&doomed.id],
        )
        .await;
    assert_eq!(chunks, 0);
}
