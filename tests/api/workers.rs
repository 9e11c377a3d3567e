//! The job workers across restarts and deletions: nothing lost, nothing done twice.

use std::collections::HashSet;

use app::protocol::{EntityEvent, EntityKind, EventType, StreamMessage};
use reqwest::Method;
use serde_json::Value;

use crate::documents::long_text;
use crate::helpers::TestApp;

/// The chunk id of an `entity.updated` chunk event with `status: embedded`.
pub fn embedded_chunk(message: &StreamMessage) -> Option<String> {
    let StreamMessage::Entity { event, .. } = message else {
        return None;
    };
    let embedded = event.entity == EntityKind::Chunk
        && event.event_type == EventType::Updated
        && event.data.as_ref().and_then(|data| data.get("status"))
            == Some(&Value::from("embedded"));
    embedded.then(|| event.id.as_ref().map(|id| id.as_str().to_owned()))?
}

/// Keeps the stream id of `message` in `last_seen` when it is an entity event.
pub fn remember_id(message: &StreamMessage, last_seen: &mut String) {
    if let StreamMessage::Entity { id, .. } = message {
        id.clone_into(last_seen);
    }
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

    let mut first_run = Vec::new();
    let mut last_seen = String::new();
    while first_run.len() < 3 {
        let message = stream.next().await;
        remember_id(&message, &mut last_seen);
        if let Some(chunk) = embedded_chunk(&message) {
            first_run.push(chunk);
        }
    }
    let app = app.restart().await;
    // The old stream ends at shutdown; whatever the first run embedded is on it.
    while let Some(message) = stream.try_next().await {
        remember_id(&message, &mut last_seen);
        if let Some(chunk) = embedded_chunk(&message) {
            first_run.push(chunk);
        }
    }

    // The Redis bus keeps its history across the restart: resume from the last event seen.
    // The in-memory bus starts a new epoch; resuming from its sequence 0 replays everything
    // it published since it started. Either way nothing is missed while the stream connects.
    let epoch = app_epoch(&app).await;
    let resume_from = if last_seen.starts_with(&format!("{epoch}:")) {
        last_seen
    } else {
        format!("{epoch}:0")
    };
    let mut stream = app.open_stream("proj_a", Some(resume_from.as_str())).await;
    let mut second_run = Vec::new();
    loop {
        let message = stream.next().await;
        if let Some(chunk) = embedded_chunk(&message) {
            second_run.push(chunk);
        }
        if is_ready(&message, &document.id) {
            break;
        }
    }

    let all_chunks: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM chunks WHERE document_id = $1")
            .bind(&document.id)
            .fetch_all(&app.pool)
            .await
            .expect("the database answers")
            .into_iter()
            .collect();
    let mut embedded: Vec<String> = first_run.iter().chain(&second_run).cloned().collect();
    embedded.sort();
    let unique: HashSet<String> = embedded.iter().cloned().collect();
    assert_eq!(unique.len(), embedded.len(), "no chunk was embedded twice");
    assert_eq!(unique, all_chunks, "every chunk was embedded");
    assert!(
        !second_run.is_empty(),
        "the restart came before the end of the job"
    );
    let not_embedded = app
        .count(
            "SELECT COUNT(*) FROM chunks WHERE document_id = $1 AND embedding IS NULL",
            &[&document.id],
        )
        .await;
    assert_eq!(not_embedded, 0);
    let (chunks, embedded_chunks): (i64, i64) =
        sqlx::query_as("SELECT chunks, embedded_chunks FROM documents WHERE id = $1")
            .bind(&document.id)
            .fetch_one(&app.pool)
            .await
            .expect("the database answers");
    assert_eq!(embedded_chunks, chunks);
    assert_eq!(usize::try_from(chunks).expect("small"), all_chunks.len());
}

/// The epoch of the server's event ids, from a document list's `lastEventId`.
async fn app_epoch(app: &TestApp) -> String {
    let list: Value = app
        .api(Method::GET, "/api/documents", "proj_a")
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON body");
    let last = list["lastEventId"].as_str().expect("an id");
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

    let response = app
        .api(
            Method::DELETE,
            &format!("/api/documents/{}", doomed.id),
            "proj_a",
        )
        .send()
        .await
        .expect("the server answers");
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
