//! Several instances on one PostgreSQL and one Redis: jobs are shared (each taken by
//! exactly one instance), and when an instance dies by SIGKILL its clients resume on
//! another with nothing missed, and its job is finished there with every chunk embedded
//! exactly once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use app::protocol::{
    EntityData, EntityKind, EventType, NewEvent, Notification, NotificationLevel, StreamMessage,
};
use app::resources::Document;
use docpulse::auth::JwtKeys;
use docpulse::config::{Secret, StorageConfig};
use docpulse::storage::jobs::{self, JobKind};
use docpulse::storage::{self, Pool, documents, outbox, projects};

use crate::documents::long_text;
use crate::helpers::{
    EventReader, FRAME_LIMIT, TestApp, connected, fresh_postgres_database, fresh_redis_database,
    request_stream, sign_token, unix_now,
};
use crate::workers::{Seen, chunks_embedded_once, is_ready};

/// One empty Redis database and one empty PostgreSQL database, for one test's instances.
async fn shared_stores() -> (String, String) {
    (
        fresh_redis_database().await,
        fresh_postgres_database().await,
    )
}

/// The sequence number of a stream id `<epoch>:<seq>`.
fn seq_of(id: &str) -> u64 {
    id.split_once(':')
        .and_then(|(_, seq)| seq.parse().ok())
        .expect("an id <epoch>:<seq>")
}

#[tokio::test]
async fn instances_on_one_database_share_the_jobs_and_embed_every_chunk_once() {
    let (redis, postgres) = shared_stores().await;
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("DATABASE_URL", postgres.as_str()),
        ("WORKERS", "2"),
        ("EMBED_DELAY_MS", "5"),
    ];
    let first = TestApp::spawn_with_env(&settings).await;
    let second = TestApp::spawn_with_env(&settings).await;
    first.create_project("proj_a", "Alpha").await;
    let mut stream = second.open_stream("proj_a", None).await;

    // Uploads through both instances, so both instances' workers are woken.
    let mut documents: Vec<Document> = Vec::new();
    for n in 0..8 {
        let instance = if n % 2 == 0 { &first } else { &second };
        documents.push(
            instance
                .create_document("proj_a", &format!("Doc {n}"), &long_text(6))
                .await,
        );
    }

    let mut waiting: HashSet<&str> = documents.iter().map(|doc| doc.id.as_str()).collect();
    let mut seen = Seen::default();
    while !waiting.is_empty() {
        let message = stream.next().await;
        seen.record(&message);
        waiting.retain(|id| !is_ready(&message, id));
    }

    let mut stored = HashSet::new();
    for document in &documents {
        let chunks = chunks_embedded_once(&first.pool, &document.id).await;
        assert!(!chunks.is_empty(), "{} was split", document.id);
        stored.extend(chunks);
    }
    assert_eq!(
        seen.embedded_once(),
        stored,
        "each chunk was embedded and announced once"
    );
    let claimed_twice = first
        .count(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'embedding' AND claims <> 1",
            &[],
        )
        .await;
    assert_eq!(claimed_twice, 0, "no job was taken by two workers");
}

#[tokio::test]
async fn concurrent_claims_on_postgres_give_a_job_to_exactly_one_worker() {
    let pool = open_database(&fresh_postgres_database().await).await;
    projects::create_project(&pool, "proj_a", "Alpha")
        .await
        .expect("the database answers");
    let mut connection = pool.acquire().await.expect("a connection");
    documents::insert_document(&mut connection, "doc_1", "proj_a", "Doc", "Text.")
        .await
        .expect("a document");
    let job_id = jobs::enqueue(&mut connection, "proj_a", "doc_1", JobKind::Embedding)
        .await
        .expect("a job");
    drop(connection);

    let claims = futures_util::future::join_all(
        (0..8).map(|_| jobs::claim_next(&pool, Duration::from_secs(30))),
    )
    .await;

    let claimed: Vec<String> = claims
        .into_iter()
        .filter_map(|claim| claim.expect("the database answers"))
        .map(|job| job.id)
        .collect();
    assert_eq!(claimed, [job_id], "one claim won, the others found nothing");
}

#[tokio::test]
async fn instances_starting_together_on_one_database_seed_the_demo_account_once() {
    let (redis, postgres) = shared_stores().await;
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("DATABASE_URL", postgres.as_str()),
        ("DEMO_USER", "true"),
    ];

    let (first, second) = tokio::join!(
        TestApp::spawn_with_env(&settings),
        TestApp::spawn_with_env(&settings)
    );

    let users = first.count("SELECT COUNT(*) FROM users", &[]).await;
    let memberships = first.count("SELECT COUNT(*) FROM memberships", &[]).await;
    let documents = second.count("SELECT COUNT(*) FROM documents", &[]).await;
    assert_eq!((users, memberships, documents), (1, 2, 5));
}

/// A `docpulse` process: the real binary, which a test can SIGKILL.
struct Instance {
    process: Child,
    address: String,
    _data_dir: tempfile::TempDir,
}

impl Instance {
    /// Starts the binary with `settings` and waits until it listens.
    fn start(settings: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("a temporary folder");
        let mut process = Command::new(env!("CARGO_BIN_EXE_docpulse"))
            .envs(settings.iter().copied())
            .env("DATA_DIR", data_dir.path())
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log = BufReader::new(process.stderr.take().expect("piped stderr"));
        let (sender, receiver) = std::sync::mpsc::channel();
        // Reads the log to its end, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if let Some((_, address)) = line.split_once("listening on ") {
                    let _ = sender.send(address.trim().to_owned());
                }
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address once it listens");
        Self {
            process,
            address,
            _data_dir: data_dir,
        }
    }

    /// Kills the process with SIGKILL: no shutdown, no released job, no flushed event.
    fn kill(&mut self) {
        self.process.kill().expect("SIGKILL is delivered");
        self.process.wait().expect("the process is reaped");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test]
async fn a_killed_instances_client_and_job_continue_on_another_with_nothing_lost_or_doubled() {
    let (redis, postgres) = shared_stores().await;
    let secret = Secret::generate().expect("the OS has randomness");
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("DATABASE_URL", postgres.as_str()),
        ("JWT_SECRET", secret.expose()),
        ("WORKERS", "1"),
        ("JOB_LEASE_SECS", "1"),
    ];
    let mut doomed = Instance::start(&[shared.as_slice(), &[("EMBED_DELAY_MS", "150")]].concat());
    let pool = open_database(&postgres).await;
    projects::create_project(&pool, "proj_a", "Alpha")
        .await
        .expect("the database answers");
    let token = sign_token(&JwtKeys::new(&secret), &["proj_a"], None, unix_now() + 3600);

    // A client streams from the doomed instance while a document is embedded there.
    let client = reqwest::Client::new();
    let mut stream = open_stream(&client, &doomed.address, &token, None).await;
    let document: Document = client
        .post(format!("{}/api/documents", doomed.address))
        .bearer_auth(&token)
        .header("X-Project-Id", "proj_a")
        .json(&serde_json::json!({ "title": "Long", "content": long_text(24) }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a document");
    let mut seen = Seen::default();
    while seen.embedded.len() < 3 {
        seen.record(&stream.next().await);
    }

    doomed.kill();
    while let Some(message) = stream.try_next().await {
        seen.record(&message);
    }

    // The client reconnects to the survivor, which takes the job over once its lease ran
    // out, and the doomed instance's unpublished announcements once its outbox lease did;
    // meanwhile everything published is kept in Redis for the resume.
    let survivor =
        TestApp::spawn_with_env(&[shared.as_slice(), &[("EMBED_DELAY_MS", "0")]].concat()).await;
    let mut stream = open_stream(&client, &survivor.address, &token, Some(seen.last_id())).await;
    let mut ready = false;
    let finished = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let message = stream.next().await;
            seen.record(&message);
            ready |= is_ready(&message, &document.id);
            let chunks = survivor
                .count(
                    "SELECT COUNT(*) FROM chunks WHERE document_id = $1",
                    &[&document.id],
                )
                .await;
            if ready && seen.embedded.len() as i64 == chunks {
                break;
            }
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the survivor finished the job and its announcements"
    );

    let sequence: Vec<u64> = seen.ids.iter().map(|id| seq_of(id)).collect();
    let expected: Vec<u64> = (sequence[0]..sequence[0] + sequence.len() as u64).collect();
    assert_eq!(
        sequence, expected,
        "the client got every event once, in order, across the two instances"
    );
    assert_eq!(
        seen.embedded_once(),
        chunks_embedded_once(&pool, &document.id).await,
        "every chunk, the one the kill cut off included, was announced exactly once"
    );
    let claims = survivor
        .count(
            "SELECT claims FROM jobs WHERE document_id = $1 AND kind = 'embedding'",
            &[&document.id],
        )
        .await;
    assert_eq!(claims, 2, "the job was taken over once");
}

/// A small random number generator (xorshift), seeded so that a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn from_clock() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |since| since.as_nanos() as u64)
            | 1;
        eprintln!("crash test seed: {seed}");
        Self(seed)
    }

    /// A number in `low..high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Every stream event a client saw, by entity: the last `data` of each document and job,
/// and how often each chunk was announced embedded.
#[derive(Default)]
struct Announced {
    ids: Vec<u64>,
    documents: std::collections::HashMap<String, serde_json::Map<String, serde_json::Value>>,
    jobs: std::collections::HashMap<String, String>,
    seen: Seen,
}

impl Announced {
    fn record(&mut self, message: &StreamMessage) {
        self.seen.record(message);
        let StreamMessage::Entity { id, event } = message else {
            return;
        };
        self.ids.push(seq_of(id));
        let (Some(entity_id), Some(data)) = (&event.id, &event.data) else {
            return;
        };
        match event.entity {
            EntityKind::Document => self
                .documents
                .entry(entity_id.as_str().to_owned())
                .or_default()
                .extend(data.clone()),
            EntityKind::ExtractionJob => {
                if let Some(status) = data.get("status").and_then(|status| status.as_str()) {
                    self.jobs
                        .insert(entity_id.as_str().to_owned(), status.to_owned());
                }
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn sigkilled_over_and_over_mid_pipeline_every_change_is_announced_exactly_once() {
    const KILLS: usize = 20;
    let (redis, postgres) = shared_stores().await;
    let secret = Secret::generate().expect("the OS has randomness");
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("DATABASE_URL", postgres.as_str()),
        ("JWT_SECRET", secret.expose()),
        ("WORKERS", "2"),
        ("JOB_LEASE_SECS", "1"),
        ("EMBED_DELAY_MS", "60"),
        // Late announcements must be published, not papered over with a resync.
        ("OUTBOX_LATE_SECS", "600"),
    ];
    let pool = open_database(&postgres).await;
    projects::create_project(&pool, "proj_a", "Alpha")
        .await
        .expect("the database answers");
    let token = sign_token(&JwtKeys::new(&secret), &["proj_a"], None, unix_now() + 3600);
    let client = reqwest::Client::new();
    let mut dice = Dice::from_clock();
    let mut announced = Announced::default();

    let mut instance = Instance::start(&settings);
    // Streams resume from a marker published before the first document, so an announcement
    // made before the first stream was open is not missed.
    let start = publish_marker(&client, &instance.address, &secret, "the_start").await;
    let mut document_ids = Vec::new();
    // Short ones get through between kills; long ones are cut short until they fail.
    for (n, paragraphs) in [4, 8, 16, 40, 100, 100].into_iter().enumerate() {
        let document: Document = client
            .post(format!("{}/api/documents", instance.address))
            .bearer_auth(&token)
            .header("X-Project-Id", "proj_a")
            .json(&serde_json::json!({
                "title": format!("Doc {n}"),
                "content": long_text(paragraphs),
            }))
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a document");
        document_ids.push(document.id);
    }
    let mut kills_mid_pipeline = 0;
    for _ in 0..KILLS {
        // Follow the stream from where the last instance left it, for a random while.
        let last = match announced.seen.last_id() {
            "" => start.clone(),
            last => last.to_owned(),
        };
        let mut stream = open_stream(&client, &instance.address, &token, Some(&last)).await;
        let alive_for = Duration::from_millis(dice.between(100, 900));
        let _ = tokio::time::timeout(alive_for, async {
            while let Some(message) = stream.try_next().await {
                announced.record(&message);
            }
        })
        .await;
        let unfinished: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_one(&pool)
                .await
                .expect("the database answers");
        kills_mid_pipeline += usize::from(unfinished > 0);
        instance.kill();
        while let Some(message) = stream.try_next().await {
            announced.record(&message);
        }
        instance = Instance::start(&settings);
    }
    assert!(
        kills_mid_pipeline >= KILLS / 2,
        "only {kills_mid_pipeline} kills came while jobs were running"
    );

    // The last instance runs to the end: every job over (done, or failed after being cut
    // short too often), every row of the outbox published.
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let unfinished: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')) \
                 + (SELECT COUNT(*) FROM outbox)",
            )
            .fetch_one(&pool)
            .await
            .expect("the database answers");
            if unfinished == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "the pipeline finished after the last kill");
    // A marker published now arrives after every announcement made before it.
    let last = announced.seen.last_id().to_owned();
    let mut stream = open_stream(&client, &instance.address, &token, Some(&last)).await;
    let marker = seq_of(&publish_marker(&client, &instance.address, &secret, "the_end").await);
    while announced.ids.last() != Some(&marker) {
        announced.record(&stream.next().await);
    }

    let expected: Vec<u64> = (seq_of(&start) + 1..=marker).collect();
    assert_eq!(
        announced.ids, expected,
        "no gap and no duplicate id over {KILLS} kills"
    );
    for document_id in &document_ids {
        let (status, chunks, embedded): (String, i64, i64) =
            sqlx::query_as("SELECT status, chunks, embedded_chunks FROM documents WHERE id = $1")
                .bind(document_id)
                .fetch_one(&pool)
                .await
                .expect("the document");
        let last = &announced.documents[document_id];
        assert_eq!(last["status"], serde_json::json!(status), "{document_id}");
        assert_eq!(last["chunks"], serde_json::json!(chunks), "{document_id}");
        assert_eq!(
            last["embeddedChunks"],
            serde_json::json!(embedded),
            "{document_id}"
        );
    }
    let stored_chunks: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM chunks WHERE embedding IS NOT NULL")
            .fetch_all(&pool)
            .await
            .expect("the chunks")
            .into_iter()
            .collect();
    assert_eq!(
        announced.seen.embedded_once(),
        stored_chunks,
        "every chunk embedded was announced embedded exactly once"
    );
    let jobs: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM jobs WHERE kind = 'extraction'")
            .fetch_all(&pool)
            .await
            .expect("the jobs");
    assert!(
        !jobs.is_empty(),
        "some documents got as far as their extraction"
    );
    for (job, status) in jobs {
        assert_eq!(
            announced.jobs.get(&job),
            Some(&status),
            "extraction job {job}"
        );
    }
}

/// The test's own pool on the shared database.
async fn open_database(url: &str) -> Pool {
    storage::connect(&StorageConfig {
        data_dir: std::env::temp_dir(),
        database_url: url.to_owned(),
    })
    .await
    .expect("the test opens the database")
}

/// Publishes notification `id` to `proj_a`; returns the id of the stream event that carries it.
async fn publish_marker(
    client: &reqwest::Client,
    address: &str,
    secret: &Secret,
    id: &str,
) -> String {
    let published: serde_json::Value = client
        .post(format!("{address}/api/events/publish"))
        .bearer_auth(sign_token(
            &JwtKeys::new(secret),
            &["*"],
            Some("publisher"),
            unix_now() + 3600,
        ))
        .json(&serde_json::json!({
            "type": "entity.created", "entity": "notification", "id": id,
            "projectId": "proj_a"
        }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("the marker's id");
    published["id"].as_str().expect("an id").to_owned()
}

/// Opens `proj_a`'s stream at `address` (resuming after `last_event_id`) and reads
/// `connected`.
async fn open_stream(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> EventReader {
    connected(
        request_stream(client, address, token, "proj_a", last_event_id).await,
        "proj_a",
    )
    .await
}

#[tokio::test]
async fn outbox_rows_of_concurrent_transactions_become_visible_in_id_order() {
    let (_, postgres) = shared_stores().await;
    let pool = open_database(&postgres).await;
    let event = |id: &str| {
        NewEvent::about(
            EventType::Created,
            id.parse().expect("an id"),
            "proj_a".parse().expect("a project"),
            &Notification {
                level: NotificationLevel::Info,
                title: id.to_owned(),
                body: None,
                link: None,
            },
        )
    };
    let mut first = pool.begin().await.expect("a transaction");
    outbox::insert(&mut first, "inst_a", &[event("ntf_first")])
        .await
        .expect("the first row");

    // A second writer must wait for the first to end before it takes its id.
    let second_pool = pool.clone();
    let second = tokio::spawn(async move {
        let mut second = second_pool.begin().await.expect("a transaction");
        outbox::insert(&mut second, "inst_a", &[event("ntf_second")])
            .await
            .expect("the second row");
        second.commit().await.expect("the second commits");
    });
    let waiting = tokio::time::timeout(FRAME_LIMIT, async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .fetch_one(&pool)
            .await
            .expect("the database answers");
            if waiting == 1 {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waiting.is_ok(), "the second writer waits for the first");
    let visible: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("the database answers");
    assert_eq!(visible, 0, "nothing is visible before the first commits");

    first.commit().await.expect("the first commits");
    second.await.expect("the second writer");
    let rows: Vec<String> = sqlx::query_scalar("SELECT event FROM outbox ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("the database answers");
    let titles: Vec<String> = rows
        .iter()
        .filter_map(|row| serde_json::from_str::<NewEvent>(row).ok())
        .filter_map(|event| event.data.as_ref().and_then(Notification::from_data))
        .map(|notification| notification.title)
        .collect();
    assert_eq!(
        titles,
        ["ntf_first", "ntf_second"],
        "ids follow the commits"
    );
}
