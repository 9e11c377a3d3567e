//! `GET /api/events/stream`: framing, isolation, resume, coalescing, heartbeats, expiry,
//! slow clients, disconnects and shutdown, all over real HTTP.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;

use app::protocol::{EventType, StreamMessage};

use crate::helpers::{FRAME_LIMIT, TestApp, notification, read_until, unix_now};

/// The sequence number of a stream event id `<epoch>:<seq>`.
fn seq(id: &str) -> u64 {
    id.rsplit_once(':')
        .and_then(|(_, seq)| seq.parse().ok())
        .unwrap_or_else(|| panic!("not an event id: {id}"))
}

/// Publishes notifications `n_<n>` for each `n` of `range` to `project`; returns their ids.
async fn publish_notifications(
    app: &TestApp,
    project: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for n in range {
        ids.push(
            app.publish_ok(&notification(project, &format!("n_{n}")))
                .await,
        );
    }
    ids
}

#[tokio::test]
async fn a_stream_is_uncompressed_unbuffered_sse_starting_with_connected() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&["proj_1"]);
    let response = app
        .stream_get("")
        .bearer_auth(&token)
        .header("X-Project-Id", "proj_1")
        .header("Accept-Encoding", "gzip, br, deflate")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("ASCII").to_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(header("content-encoding"), None);
    assert_eq!(header("content-length"), None);

    let mut reader = crate::helpers::EventReader::new(response);
    match reader.next().await {
        StreamMessage::Connected(connected) => {
            assert_eq!(connected.project_id.as_str(), "proj_1");
            assert!(connected.connection_id.starts_with("conn_"));
        }
        other => panic!("the first frame is not `connected`: {other:?}"),
    }
}

#[tokio::test]
async fn a_stream_on_a_reused_connection_behaves_the_same() {
    let app = TestApp::spawn().await;
    // The pooled client keeps this connection, so the stream below is served by hyper.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let refused = app
        .client
        .get(format!("{}/api/events/stream", app.address))
        .bearer_auth(app.token_for(&["proj_1"]))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "missing_project");

    let response = app
        .client
        .get(format!(
            "{}/api/events/stream?projectId=proj_1",
            app.address
        ))
        .bearer_auth(app.token_for(&["proj_1"]))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert!(response.headers().get("content-encoding").is_none());
    let mut stream = crate::helpers::EventReader::new(response);
    assert!(matches!(stream.next().await, StreamMessage::Connected(_)));
    let id = app.publish_ok(&notification("proj_1", "n_1")).await;
    assert_eq!(stream.next_entity().await.0, id);
}

#[tokio::test]
async fn interleaved_projects_never_see_each_others_events() {
    let app = TestApp::spawn().await;
    let mut first = app.open_stream("proj_a", None).await;
    let mut second = app.open_stream("proj_b", None).await;
    for n in 0..20 {
        let project = if n % 2 == 0 { "proj_a" } else { "proj_b" };
        app.publish_ok(&notification(project, &format!("n_{n}")))
            .await;
    }
    for (reader, project, parity) in [(&mut first, "proj_a", 0), (&mut second, "proj_b", 1)] {
        let mut previous = 0;
        for n in (parity..20).step_by(2) {
            let (id, event) = reader.next_entity().await;
            assert_eq!(event.project_id.as_str(), project);
            assert_eq!(event.id.expect("an id").as_str(), format!("n_{n}"));
            assert_eq!(
                seq(&id),
                previous + 1,
                "each project numbers its own events"
            );
            previous = seq(&id);
        }
    }
    // Had any frame of the other project arrived, it would come before these sentinels.
    for (reader, project) in [(&mut first, "proj_a"), (&mut second, "proj_b")] {
        app.publish_ok(&notification(project, "sentinel")).await;
        let (_, event) = reader.next_entity().await;
        assert_eq!(event.id.expect("an id").as_str(), "sentinel");
    }
}

#[tokio::test]
async fn resume_replays_only_events_after_last_event_id_then_goes_live() {
    let app = TestApp::spawn().await;
    let ids = publish_notifications(&app, "proj_1", 1..=5).await;
    let mut resumed = app.open_stream("proj_1", Some(&ids[1])).await;
    for expected in &ids[2..] {
        let (id, _) = resumed.next_entity().await;
        assert_eq!(&id, expected);
    }
    let live = app.publish_ok(&notification("proj_1", "n_6")).await;
    let (id, event) = resumed.next_entity().await;
    assert_eq!(id, live);
    assert_eq!(event.id.expect("an id").as_str(), "n_6");
}

#[tokio::test]
async fn a_resume_racing_publishers_has_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let start = app.publish_ok(&notification("proj_1", "n_0")).await;
    let publisher = {
        let publisher = app.publisher();
        tokio::spawn(async move {
            for n in 1..=200 {
                publisher
                    .publish_ok(&notification("proj_1", &format!("n_{n}")))
                    .await;
            }
        })
    };
    let mut resumed = app.open_stream("proj_1", Some(&start)).await;
    publisher.await.expect("the publisher finished");
    for n in 1..=200 {
        let (id, event) = resumed.next_entity().await;
        assert_eq!(seq(&id), seq(&start) + n, "gap or duplicate at {id}");
        assert_eq!(event.id.expect("an id").as_str(), format!("n_{n}"));
    }
}

#[tokio::test]
async fn an_id_older_than_the_retained_history_gets_resync_then_live_events() {
    let app = TestApp::spawn_with_env(&[("RETAIN_EVENTS", "4")]).await;
    let ids = publish_notifications(&app, "proj_1", 1..=10).await;
    let mut stream = app.open_stream("proj_1", Some(&ids[1])).await;
    match stream.next().await {
        StreamMessage::Resync(notice) => assert!(notice.reason.contains("older"), "{notice:?}"),
        other => panic!("expected resync, got {other:?}"),
    }
    let live = app.publish_ok(&notification("proj_1", "n_11")).await;
    assert_eq!(stream.next_entity().await.0, live);

    // The oldest retained resume point still replays.
    let mut replay = app.open_stream("proj_1", Some(&ids[6])).await;
    for expected in ids[7..].iter().chain([&live]) {
        assert_eq!(&replay.next_entity().await.0, expected);
    }
}

#[tokio::test]
async fn an_id_from_another_history_or_garbage_gets_resync() {
    let app = TestApp::spawn().await;
    let id = app.publish_ok(&notification("proj_1", "n_1")).await;
    let (epoch, _) = id.split_once(':').expect("epoch:seq");
    let foreign = if epoch == "0" { "1:1" } else { "0:1" };
    for last_event_id in [foreign, "garbage", "0:99999"] {
        let mut stream = app.open_stream("proj_1", Some(last_event_id)).await;
        match stream.next().await {
            StreamMessage::Resync(_) => {}
            other => panic!("{last_event_id}: expected resync, got {other:?}"),
        }
    }
}

fn progress(n: u64) -> serde_json::Value {
    json!({
        "type": "entity.updated",
        "entity": "document",
        "id": "doc_1",
        "projectId": "proj_1",
        "data": { "embeddedChunks": n, format!("step{n}"): true },
    })
}

#[tokio::test]
async fn a_burst_of_updates_leaves_as_fewer_events_and_loses_no_state() {
    let app = TestApp::spawn().await;
    let mut stream = app.open_stream("proj_1", None).await;
    let first = app.publish_ok(&progress(0)).await;
    let burst: Vec<_> = (1..=20)
        .map(|n| {
            let publisher = app.publisher();
            tokio::spawn(async move { publisher.publish_ok(&progress(n)).await })
        })
        .collect();
    let mut burst_ids = Vec::new();
    for publish in burst {
        burst_ids.push(publish.await.expect("published"));
    }

    let (id, event) = stream.next_entity().await;
    assert_eq!(id, first, "the isolated first update went out at once");
    assert_eq!(event.data.expect("data")["embeddedChunks"], 0);

    let mut seen = serde_json::Map::new();
    let mut received = 0;
    while !(1..=20).all(|n| seen.contains_key(&format!("step{n}"))) {
        let (id, event) = stream.next_entity().await;
        assert!(
            burst_ids.contains(&id),
            "{id} is the id a merged publish was given"
        );
        seen.extend(event.data.expect("data"));
        received += 1;
    }
    assert!(received < 20, "20 updates left as {received} events");
    assert!(app.metric("docpulse_events_coalesced_total").await >= 1.0);
}

#[tokio::test]
async fn a_delete_after_pending_updates_arrives_after_them() {
    let app = TestApp::spawn().await;
    let mut stream = app.open_stream("proj_1", None).await;
    app.publish_ok(&progress(1)).await;
    let pending = {
        let publisher = app.publisher();
        tokio::spawn(async move { publisher.publish_ok(&progress(2)).await })
    };
    app.wait_for_metric("docpulse_events_coalesced_total", 1.0)
        .await;
    let deleted = app
        .publish_ok(&json!({
            "type": "entity.deleted", "entity": "document", "id": "doc_1", "projectId": "proj_1",
        }))
        .await;
    let merged = pending.await.expect("finished");
    assert_eq!(
        seq(&merged),
        2,
        "the pending update went out before the delete"
    );

    let (_, one) = stream.next_entity().await;
    let (_, two) = stream.next_entity().await;
    let (id, three) = stream.next_entity().await;
    assert_eq!(one.data.expect("data")["embeddedChunks"], 1);
    assert_eq!(two.event_type, EventType::Updated);
    assert_eq!(two.data.expect("data")["embeddedChunks"], 2);
    assert_eq!(three.event_type, EventType::Deleted);
    assert_eq!(id, deleted);
}

#[tokio::test]
async fn heartbeats_arrive_every_heartbeat_secs() {
    let app = TestApp::spawn_with_env(&[("HEARTBEAT_SECS", "1")]).await;
    let mut stream = app.open_stream("proj_1", None).await;
    let mut beats = Vec::new();
    for _ in 0..2 {
        match stream.next().await {
            StreamMessage::Heartbeat(beat) => {
                assert!(beat.timestamp.ends_with('Z'), "{beat:?}");
                beats.push(std::time::Instant::now());
            }
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
    // The upper bound is FRAME_LIMIT; a lower one proves the interval is kept.
    let interval = beats[1] - beats[0];
    assert!(
        interval >= Duration::from_millis(800),
        "beats {interval:?} apart"
    );
}

#[tokio::test]
async fn a_token_that_expires_mid_stream_gets_auth_expired_and_the_stream_ends() {
    let app = TestApp::spawn().await;
    let token = app.token_expiring_at(&["proj_1"], None, unix_now() + 2);
    let response = app.stream_request(&token, "proj_1", None).await;
    assert_eq!(response.status(), 200);
    let mut stream = crate::helpers::EventReader::new(response);
    assert!(matches!(stream.next().await, StreamMessage::Connected(_)));
    match stream.next().await {
        StreamMessage::AuthExpired(_) => {}
        other => panic!("expected auth_expired, got {other:?}"),
    }
    assert!(
        stream.try_next().await.is_none(),
        "the stream goes on after auth_expired"
    );
}

#[tokio::test]
async fn a_slow_client_gets_resync_while_a_fast_one_gets_every_event() {
    const EVENTS: u64 = 600;
    let app =
        TestApp::spawn_with_env(&[("SUBSCRIBER_BACKLOG", "16"), ("RETAIN_EVENTS", "16")]).await;
    let mut slow = app.stalled_client("proj_1", false).await;
    read_until(&mut slow, "event: connected").await;
    let mut fast = app.open_stream("proj_1", None).await;
    let fast_reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        for _ in 0..EVENTS {
            ids.push(seq(&fast.next_entity().await.0));
        }
        (ids, fast)
    });

    // 16 KiB per event: ~10 MB in all, more than the kernel buffers of the stalled socket.
    let padding = "x".repeat(16 * 1024);
    for n in 0..EVENTS {
        let mut event = notification("proj_1", &format!("n_{n}"));
        event["data"] = json!({ "padding": padding });
        app.publish_ok(&event).await;
    }
    let (ids, mut fast) = fast_reader.await.expect("the fast client read everything");
    assert_eq!(
        ids,
        (1..=EVENTS).collect::<Vec<_>>(),
        "the fast client missed events"
    );

    let before_resync = read_until(&mut slow, "event: resync").await;
    let entity_frames = before_resync.matches("event: entity.created").count();
    assert!(
        (entity_frames as u64) < EVENTS,
        "the slow client was sent everything ({entity_frames} frames): nothing was dropped"
    );
    assert!(app.metric("docpulse_events_dropped_total").await > 0.0);
    assert!(app.metric("docpulse_resyncs_total").await >= 1.0);

    // Both carry on with live events.
    app.publish_ok(&notification("proj_1", "after_resync"))
        .await;
    read_until(&mut slow, "after_resync").await;
    let (_, event) = fast.next_entity().await;
    assert_eq!(event.id.expect("an id").as_str(), "after_resync");
}

#[tokio::test]
async fn a_client_that_takes_nothing_for_two_heartbeats_is_closed_on_either_path() {
    for via_hyper in [false, true] {
        let app = TestApp::spawn_with_env(&[
            ("HEARTBEAT_SECS", "1"),
            ("SUBSCRIBER_BACKLOG", "16"),
            ("RETAIN_EVENTS", "16"),
        ])
        .await;
        let mut stalled = app.stalled_client("proj_1", via_hyper).await;
        read_until(&mut stalled, "event: connected").await;
        let mut healthy = app.open_stream("proj_1", None).await;
        assert_eq!(app.metric("docpulse_open_streams").await, 2.0);

        let padding = "x".repeat(16 * 1024);
        for n in 0..600 {
            let mut event = notification("proj_1", &format!("n_{n}"));
            event["data"] = json!({ "padding": padding });
            app.publish_ok(&event).await;
            healthy.next_entity().await;
        }
        app.wait_for_metric("docpulse_open_streams", 1.0).await;

        // The stalled client finds the end of its stream once it reads what was sent.
        let mut buffer = vec![0; 64 * 1024];
        let closed = tokio::time::timeout(FRAME_LIMIT, async {
            while matches!(stalled.read(&mut buffer).await, Ok(read) if read > 0) {}
        })
        .await;
        assert!(
            closed.is_ok(),
            "the stalled stream was not closed (via hyper: {via_hyper})"
        );
        // The healthy one is still served.
        app.publish_ok(&notification("proj_1", "still_here")).await;
        assert_eq!(
            healthy.next_entity().await.1.id.expect("an id").as_str(),
            "still_here"
        );
    }
}

#[tokio::test]
async fn the_open_streams_gauge_returns_to_zero_when_clients_leave() {
    let app = TestApp::spawn().await;
    let mut streams = Vec::new();
    for project in ["proj_1", "proj_1", "proj_2"] {
        streams.push(app.open_stream(project, None).await);
    }
    assert_eq!(app.metric("docpulse_open_streams").await, 3.0);
    drop(streams);
    app.wait_for_metric("docpulse_open_streams", 0.0).await;
}

#[tokio::test]
async fn shutdown_without_a_spread_ends_open_streams_within_a_second() {
    let app = TestApp::spawn().await;
    let mut first = app.open_stream("proj_1", None).await;
    let mut second = app.open_stream("proj_2", None).await;
    // `stop` fails the test when the server takes longer than a second.
    app.stop().await.expect("clean stop");
    for stream in [&mut first, &mut second] {
        assert!(stream.try_next().await.is_none());
        assert_eq!(stream.retry(), Some(1000), "told to wait a second at least");
    }
}

#[tokio::test]
async fn a_stopping_server_ends_its_streams_spread_over_the_window_each_told_a_random_retry() {
    let app = TestApp::spawn_with_env(&[
        ("SHUTDOWN_SPREAD_SECS", "2"),
        ("SHUTDOWN_TIMEOUT_SECS", "5"),
    ])
    .await;
    let mut streams = Vec::new();
    for _ in 0..16 {
        streams.push(app.open_stream("proj_1", None).await);
    }
    let started = tokio::time::Instant::now();
    let stopping = tokio::spawn(app.stop_within(Duration::from_secs(4)));

    let ends = futures_util::future::join_all(streams.into_iter().map(|mut stream| async move {
        while stream.try_next().await.is_some() {}
        (started.elapsed(), stream.retry())
    }))
    .await;
    stopping.await.expect("no panic").expect("a clean stop");

    let times: Vec<Duration> = ends.iter().map(|(time, _)| *time).collect();
    let first = times.iter().min().expect("16 streams");
    let last = times.iter().max().expect("16 streams");
    assert!(
        *last < Duration::from_millis(2_500),
        "all ended within the window: {times:?}"
    );
    assert!(
        *last - *first >= Duration::from_millis(500),
        "the ends are spread, not at once: {times:?}"
    );
    let retries: Vec<u64> = ends
        .iter()
        .map(|(_, retry)| retry.expect("each stream is told when to come back"))
        .collect();
    assert!(
        retries.iter().all(|retry| (1_000..3_000).contains(retry)),
        "{retries:?}"
    );
    assert!(
        retries.iter().any(|retry| *retry != retries[0]),
        "{retries:?}"
    );
}
