//! `POST /api/events/publish`: what a publisher gets back and what streams then carry.

use serde_json::json;

use app::protocol::{EntityKind, EventType};

use crate::helpers::{TestApp, notification};

#[tokio::test]
async fn a_publish_answers_202_with_the_id_of_the_stream_event_that_carries_it() {
    let app = TestApp::spawn().await;
    let mut stream = app.open_stream("proj_1", None).await;
    let event = json!({
        "type": "entity.updated",
        "entity": "document",
        "id": "doc_456",
        "projectId": "proj_1",
        "data": {"embeddedChunks": 5, "chunks": 10},
        "timestamp": "1999-01-01T00:00:00Z",
    });
    let id = app.publish_ok(&event).await;

    let (frame_id, received) = stream.next_entity().await;
    assert_eq!(frame_id, id);
    assert!(
        id.ends_with(":1"),
        "the first event of a project has sequence 1: {id}"
    );
    assert_eq!(received.event_type, EventType::Updated);
    assert_eq!(received.entity, EntityKind::Document);
    assert_eq!(received.id.as_ref().map(|id| id.as_str()), Some("doc_456"));
    assert_eq!(received.project_id.as_str(), "proj_1");
    assert_eq!(
        serde_json::Value::Object(received.data.expect("data")),
        json!({"embeddedChunks": 5, "chunks": 10})
    );
    assert_ne!(
        received.timestamp, "1999-01-01T00:00:00Z",
        "the server sets the time"
    );
    assert!(
        received.timestamp.ends_with('Z'),
        "ISO 8601 UTC: {}",
        received.timestamp
    );
}

#[tokio::test]
async fn a_batch_event_carries_its_ids_and_a_null_id() {
    let app = TestApp::spawn().await;
    let mut stream = app.open_stream("proj_1", None).await;
    app.publish_ok(&json!({
        "type": "entity.batch",
        "entity": "graph_object",
        "ids": ["g_1", "g_2", "g_3"],
        "projectId": "proj_1",
    }))
    .await;
    let (_, received) = stream.next_entity().await;
    assert_eq!(received.event_type, EventType::Batch);
    assert!(received.id.is_none());
    let ids: Vec<&str> = received
        .ids
        .as_deref()
        .expect("ids")
        .iter()
        .map(|id| id.as_str())
        .collect();
    assert_eq!(ids, ["g_1", "g_2", "g_3"]);
}

#[tokio::test]
async fn publishing_counts_into_the_metrics() {
    let app = TestApp::spawn().await;
    let mut stream = app.open_stream("proj_1", None).await;
    for n in 0..3 {
        app.publish_ok(&notification("proj_1", &format!("n_{n}")))
            .await;
    }
    for _ in 0..3 {
        stream.next_entity().await;
    }
    assert_eq!(app.metric("docpulse_events_published_total").await, 3.0);
    assert_eq!(app.metric("docpulse_events_delivered_total").await, 3.0);
    assert_eq!(
        app.metric("docpulse_delivery_latency_seconds_count").await,
        3.0
    );
    assert_eq!(app.metric("docpulse_open_streams").await, 1.0);
}
