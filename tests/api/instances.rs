//! Several instances on one Redis: events cross instances in order, a resume on another
//! instance gets exactly the missed events, projects stay apart, and a lost Redis history
//! or a Redis restart leads to `resync` and 503s, never to silent loss or a hang.

use std::process::{Child, Command, Stdio};

use app::protocol::StreamMessage;

use crate::helpers::{
    FRAME_LIMIT, TestApp, expect_error, free_port, fresh_redis_database, notification,
    redis_connection,
};

/// Two servers sharing one empty Redis database.
async fn two_instances() -> (TestApp, TestApp) {
    let url = fresh_redis_database().await;
    let first = TestApp::spawn_with_env(&[("REDIS_URL", &url)]).await;
    let second = TestApp::spawn_with_env(&[("REDIS_URL", &url)]).await;
    (first, second)
}

#[tokio::test]
async fn a_client_on_one_instance_receives_events_published_on_another_in_order() {
    let (first, second) = two_instances().await;
    let mut stream = second.open_stream("proj_1", None).await;
    let mut ids = Vec::new();
    for n in 1..=20 {
        let instance = if n % 2 == 0 { &first } else { &second };
        ids.push(
            instance
                .publish_ok(&notification("proj_1", &format!("n_{n}")))
                .await,
        );
    }
    for (n, expected) in (1..=20).zip(&ids) {
        let (id, event) = stream.next_entity().await;
        assert_eq!(&id, expected);
        assert_eq!(event.id.expect("an id").as_str(), format!("n_{n}"));
    }
    let (first_epoch, _) = ids[0].split_once(':').expect("epoch:seq");
    assert!(
        ids.iter()
            .all(|id| id.starts_with(&format!("{first_epoch}:"))),
        "both instances share one history: {ids:?}"
    );
}

#[tokio::test]
async fn a_resume_on_another_instance_gets_exactly_the_missed_events() {
    let (first, second) = two_instances().await;
    let mut on_first = first.open_stream("proj_1", None).await;
    let seen = first.publish_ok(&notification("proj_1", "n_1")).await;
    assert_eq!(on_first.next_entity().await.0, seen);
    drop(on_first);

    let mut missed = Vec::new();
    for n in 2..=6 {
        missed.push(
            first
                .publish_ok(&notification("proj_1", &format!("n_{n}")))
                .await,
        );
    }
    let mut on_second = second.open_stream("proj_1", Some(&seen)).await;
    // A live event after the replay: any duplicate would arrive before it.
    let live = first.publish_ok(&notification("proj_1", "n_7")).await;
    for expected in missed.iter().chain([&live]) {
        assert_eq!(&on_second.next_entity().await.0, expected);
    }
}

#[tokio::test]
async fn a_project_never_sees_another_projects_events_on_any_instance() {
    let (first, second) = two_instances().await;
    let mut one_on_second = second.open_stream("proj_1", None).await;
    let mut two_on_first = first.open_stream("proj_2", None).await;
    for n in 1..=5 {
        first
            .publish_ok(&notification("proj_1", &format!("one_{n}")))
            .await;
        second
            .publish_ok(&notification("proj_2", &format!("two_{n}")))
            .await;
    }
    for n in 1..=5 {
        let (_, event) = one_on_second.next_entity().await;
        assert_eq!(event.project_id.as_str(), "proj_1");
        assert_eq!(event.id.expect("an id").as_str(), format!("one_{n}"));
        let (_, event) = two_on_first.next_entity().await;
        assert_eq!(event.project_id.as_str(), "proj_2");
        assert_eq!(event.id.expect("an id").as_str(), format!("two_{n}"));
    }
}

#[tokio::test]
async fn a_burst_of_updates_split_over_two_instances_loses_no_state() {
    let (first, second) = two_instances().await;
    let mut stream = second.open_stream("proj_1", None).await;
    let update = |n: u64| {
        serde_json::json!({
            "type": "entity.updated", "entity": "document", "id": "doc_1", "projectId": "proj_1",
            "data": { "embeddedChunks": n, format!("step{n}"): true },
        })
    };
    let burst: Vec<_> = (1..=20)
        .map(|n| {
            let instance = if n % 2 == 0 { &first } else { &second };
            let publisher = instance.publisher();
            let event = update(n);
            tokio::spawn(async move { publisher.publish_ok(&event).await })
        })
        .collect();
    for publish in burst {
        publish.await.expect("published");
    }
    // Each instance merges its share; together they carry every step.
    let mut seen = serde_json::Map::new();
    while !(1..=20).all(|n| seen.contains_key(&format!("step{n}"))) {
        let (_, event) = stream.next_entity().await;
        seen.extend(event.data.expect("data"));
    }
}

#[tokio::test]
async fn a_flushed_redis_makes_open_streams_resync_then_follow_the_new_history() {
    let url = fresh_redis_database().await;
    let app = TestApp::spawn_with_env(&[("REDIS_URL", &url)]).await;
    let mut stream = app.open_stream("proj_1", None).await;
    let before = app.publish_ok(&notification("proj_1", "n_1")).await;
    assert_eq!(stream.next_entity().await.0, before);

    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut redis_connection(&url).await)
        .await
        .expect("flushed");
    let after = app.publish_ok(&notification("proj_1", "n_2")).await;
    assert_ne!(
        after.split_once(':').map(|(epoch, _)| epoch),
        before.split_once(':').map(|(epoch, _)| epoch),
        "a lost history starts a new epoch"
    );
    match stream.next().await {
        StreamMessage::Resync(_) => {}
        other => panic!("expected resync, got {other:?}"),
    }
    assert_eq!(stream.next_entity().await.0, after);

    let mut resumed = app.open_stream("proj_1", Some(&before)).await;
    assert!(matches!(resumed.next().await, StreamMessage::Resync(_)));
}

/// A redis-server of the test's own, so it can be killed and started again on its port.
struct OwnRedis {
    port: u16,
    process: Child,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/redis.sh installs it)");
        Self { port, process }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Waits until the server answers.
    async fn ready(self) -> Self {
        let url = self.url();
        let answered = tokio::time::timeout(FRAME_LIMIT, async {
            loop {
                if let Ok(client) = redis::Client::open(url.as_str())
                    && client.get_multiplexed_async_connection().await.is_ok()
                {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(answered.is_ok(), "redis-server never answered on {url}");
        self
    }

    fn kill(mut self) {
        self.process.kill().expect("killed");
        self.process.wait().expect("reaped");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn streams_resync_when_their_instance_lost_redis_even_if_the_history_survived() {
    let redis = OwnRedis::start(free_port()).ready().await;
    let app = TestApp::spawn_with_env(&[("REDIS_URL", &redis.url())]).await;
    let mut stream = app.open_stream("proj_1", None).await;
    let before = app.publish_ok(&notification("proj_1", "n_1")).await;
    assert_eq!(stream.next_entity().await.0, before);

    // Every connection of the server drops; the data stays.
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async::<i64>(&mut redis_connection(&redis.url()).await)
        .await
        .expect("killed the server's connections");
    match stream.next().await {
        StreamMessage::Resync(_) => {}
        other => panic!("expected resync, got {other:?}"),
    }
    let after = publish_when_redis_answers(&app, "n_2").await;
    let (epoch, seq) = before.split_once(':').expect("epoch:seq");
    let next_seq: u64 = seq.parse::<u64>().expect("a number") + 1;
    assert_eq!(after, format!("{epoch}:{next_seq}"), "the history went on");
    assert_eq!(stream.next_entity().await.0, after);
}

/// Publishes notification `id` as soon as the server's bus reaches Redis again (it answers
/// 503 until then); returns the event id.
async fn publish_when_redis_answers(app: &TestApp, id: &str) -> String {
    tokio::time::timeout(FRAME_LIMIT, async {
        loop {
            let response = app.publish(&notification("proj_1", id)).await;
            if response.status() == 202 {
                let body: serde_json::Value = response.json().await.expect("json");
                return body["id"].as_str().expect("an id").to_owned();
            }
            assert_eq!(
                response.status(),
                503,
                "only Redis being away fails a publish"
            );
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("publishing works again once Redis is back")
}

#[tokio::test]
async fn a_redis_restart_answers_503_while_down_and_resyncs_open_streams_once_back() {
    let port = free_port();
    let redis = OwnRedis::start(port).ready().await;
    let app = TestApp::spawn_with_env(&[("REDIS_URL", &redis.url())]).await;
    let mut stream = app.open_stream("proj_1", None).await;
    let before = app.publish_ok(&notification("proj_1", "n_1")).await;
    assert_eq!(stream.next_entity().await.0, before);

    redis.kill();
    let refused = tokio::time::timeout(FRAME_LIMIT, app.publish(&notification("proj_1", "n_2")))
        .await
        .expect("a publish without Redis does not hang");
    expect_error(refused, 503, "unavailable").await;

    let _redis = OwnRedis::start(port).ready().await;
    match stream.next().await {
        StreamMessage::Resync(_) => {}
        other => panic!("expected resync, got {other:?}"),
    }
    let after = publish_when_redis_answers(&app, "n_3").await;
    assert_eq!(stream.next_entity().await.0, after);
}

#[tokio::test]
async fn a_change_stored_while_redis_refuses_publishes_is_announced_once_it_accepts_them() {
    let redis = OwnRedis::start(free_port()).ready().await;
    let app = TestApp::spawn_with_env(&[("REDIS_URL", &redis.url())]).await;
    app.create_project("proj_1", "One").await;
    let mut stream = app.open_stream("proj_1", None).await;
    let mut admin = redis_connection(&redis.url()).await;

    // Publishing (a script) is refused; the stream's reader (XREAD) goes on.
    redis::cmd("ACL")
        .arg(&["SETUSER", "default", "-eval", "-evalsha"][..])
        .query_async::<()>(&mut admin)
        .await
        .expect("the ACL changes");
    let request = app
        .api(reqwest::Method::POST, "/api/documents", "proj_1")
        .json(&serde_json::json!({ "title": "Stored first", "content": "Some text." }));
    let creating = tokio::spawn(async move { request.send().await.expect("the server answers") });
    let refused = tokio::time::timeout(FRAME_LIMIT, async {
        loop {
            let log: Vec<redis::Value> = redis::cmd("ACL")
                .arg("LOG")
                .query_async(&mut admin)
                .await
                .expect("the ACL log");
            if !log.is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        refused.is_ok(),
        "the server tried to publish and was refused"
    );
    redis::cmd("ACL")
        .arg(&["SETUSER", "default", "+@all"][..])
        .query_async::<()>(&mut admin)
        .await
        .expect("the ACL changes back");

    let response = creating.await.expect("the request task");
    assert_eq!(response.status(), 201, "the document was stored");
    // The worker may announce its first progress meanwhile; the creation is what must come.
    let event = loop {
        let (_, event) = stream.next_entity().await;
        if event.event_type == app::protocol::EventType::Created {
            break event;
        }
    };
    assert_eq!(
        event.data.as_ref().and_then(|data| data.get("title")),
        Some(&serde_json::Value::from("Stored first"))
    );
}

#[tokio::test]
async fn announcements_late_past_their_bound_make_the_projects_streams_resync() {
    let redis = OwnRedis::start(free_port()).ready().await;
    let app =
        TestApp::spawn_with_env(&[("REDIS_URL", &redis.url()), ("OUTBOX_LATE_SECS", "1")]).await;
    app.create_project("proj_1", "One").await;
    let mut stream = app.open_stream("proj_1", None).await;
    let mut admin = redis_connection(&redis.url()).await;
    redis::cmd("ACL")
        .arg(&["SETUSER", "default", "-eval", "-evalsha"][..])
        .query_async::<()>(&mut admin)
        .await
        .expect("the ACL changes");

    // The change is stored at once; its announcement waits in the outbox.
    let document = app.create_document("proj_1", "Late", "Some text.").await;
    let started = tokio::time::Instant::now();
    match stream.next().await {
        StreamMessage::Resync(notice) => {
            assert!(notice.reason.contains("late"), "{}", notice.reason);
        }
        other => panic!("expected resync, got {other:?}"),
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "not before the bound: {:?}",
        started.elapsed()
    );

    redis::cmd("ACL")
        .arg(&["SETUSER", "default", "+@all"][..])
        .query_async::<()>(&mut admin)
        .await
        .expect("the ACL changes back");
    // Once Redis takes publishes again, the late announcement arrives, once.
    let (_, created) = stream.next_entity().await;
    assert_eq!(created.event_type, app::protocol::EventType::Created);
    assert_eq!(
        created.id.as_ref().map(|id| id.as_str()),
        Some(document.id.as_str())
    );
}
