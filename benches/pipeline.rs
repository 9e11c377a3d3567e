//! The document pipeline end to end, as a user drives it: a real server on a free port with
//! a SQLite file, a bulk upload of documents through `POST /api/documents`, and a project
//! stream that watches every chunk get embedded and every extraction finish.
//!
//! Prints, for one worker and then for the default pool of two:
//! - the chunks per second the workers embed (first to last `chunk` embedded event), with
//!   `EMBED_DELAY_MS=0`, so this is the embedder plus the database writes and events; and
//!   the same from the chunks' stored times, which leaves the announcements out;
//! - the events per second the workers publish while they work (the bus's counters: events
//!   that went out plus updates merged by the coalescer) and the frames the stream received;
//! - the time from the first upload until every extraction job is done.
//!
//! Run with `cargo bench --bench pipeline` (release build). `DOCUMENTS` (default 100) and
//! `PARAGRAPHS` (default 12, about 6 KB and 8 chunks per document) change the load;
//! `PIPELINE_DATABASE=postgres` stores in a fresh database of the private PostgreSQL of
//! `scripts/postgres.sh` (started if it is not running) instead of SQLite.

use std::time::{Duration, Instant};

use app::protocol::sse::SseParser;
use app::protocol::{ChunkStatus, EventType, ExtractionStatus, StreamMessage};
use docpulse::auth::{Claims, JwtKeys};
use docpulse::config::{Config, Secret};
use docpulse::startup::Application;
use docpulse::storage::{self, projects};
use reqwest::multipart::{Form, Part};

/// Files per upload request (the server accepts up to 20).
const FILES_PER_UPLOAD: usize = 20;
/// How long the whole run may take before it is reported as stuck.
const RUN_LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let documents = env_count("DOCUMENTS", 100);
    let paragraphs = env_count("PARAGRAPHS", 12);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let postgres = std::env::var("PIPELINE_DATABASE").as_deref() == Ok("postgres");
    println!(
        "pipeline: {documents} documents of {paragraphs} paragraphs, EMBED_DELAY_MS=0, {}",
        if postgres { "PostgreSQL" } else { "SQLite" }
    );
    for workers in [1, 2] {
        let database_url = postgres.then(fresh_postgres_database);
        runtime.block_on(run(workers, documents, paragraphs, database_url));
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A new database on the private PostgreSQL (`scripts/postgres.sh createdb`).
fn fresh_postgres_database() -> String {
    let script = |command: &str| {
        let output = std::process::Command::new("scripts/postgres.sh")
            .arg(command)
            .output()
            .expect("scripts/postgres.sh runs");
        assert!(
            output.status.success(),
            "scripts/postgres.sh {command} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("a URL")
            .trim()
            .to_owned()
    };
    script("start");
    script("createdb")
}

async fn run(workers: usize, documents: usize, paragraphs: usize, database_url: Option<String>) {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let secret = Secret::generate().expect("randomness");
    let data_dir_text = data_dir.path().display().to_string();
    let workers_text = workers.to_string();
    let config = Config::from_lookup(|name| {
        let value = match name {
            "LEPTOS_SITE_ADDR" => "127.0.0.1:0",
            "DATA_DIR" => &data_dir_text,
            "JWT_SECRET" => secret.expose(),
            "DEMO_USER" => "false",
            "EMBED_DELAY_MS" => "0",
            "WORKERS" => &workers_text,
            "DATABASE_URL" => database_url.as_deref()?,
            _ => return None,
        };
        Some(value.to_owned())
    })
    .expect("a valid configuration");
    let pool = storage::connect(&config.storage)
        .await
        .expect("the database");
    projects::create_project(&pool, "proj_bench", "Bench")
        .await
        .expect("a project");
    let application = Application::build(config).await.expect("the server builds");
    let address = format!("http://{}", application.local_addr());
    let shutdown = application.shutdown_token();
    let server = tokio::spawn(application.run_until_stopped());

    let token = JwtKeys::new(&secret)
        .sign(&Claims {
            sub: "bench".to_owned(),
            exp: unix_now() + 3600,
            projects: vec!["proj_bench".to_owned()],
            role: None,
            sid: None,
        })
        .expect("a token");
    let client = reqwest::Client::new();
    let stream = client
        .get(format!("{address}/api/events/stream"))
        .bearer_auth(&token)
        .header("X-Project-Id", "proj_bench")
        .send()
        .await
        .expect("the stream opens");
    let before = metrics(&client, &address).await;

    let started = Instant::now();
    let text = document_text(paragraphs);
    for batch_start in (0..documents).step_by(FILES_PER_UPLOAD) {
        let mut form = Form::new();
        for index in batch_start..documents.min(batch_start + FILES_PER_UPLOAD) {
            form = form.part(
                "file",
                Part::text(text.clone()).file_name(format!("document-{index}.md")),
            );
        }
        let response = client
            .post(format!("{address}/api/documents"))
            .bearer_auth(&token)
            .header("X-Project-Id", "proj_bench")
            .multipart(form)
            .send()
            .await
            .expect("the upload is answered");
        assert_eq!(response.status(), 201, "the upload is accepted");
    }
    let uploaded = started.elapsed();

    let watch = tokio::time::timeout(RUN_LIMIT, watch(stream, documents))
        .await
        .expect("every document is processed within the limit");
    let after = metrics(&client, &address).await;
    shutdown.cancel();
    server
        .await
        .expect("the server task ends")
        .expect("the server stops cleanly");

    let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chunks WHERE embedding IS NOT NULL")
        .fetch_one(&pool)
        .await
        .expect("the database answers");
    let (first_stored, last_stored): (String, String) =
        sqlx::query_as("SELECT MIN(embedded_at), MAX(embedded_at) FROM chunks")
            .fetch_one(&pool)
            .await
            .expect("the database answers");
    let stored = humantime::parse_rfc3339(&last_stored)
        .expect("a timestamp")
        .duration_since(humantime::parse_rfc3339(&first_stored).expect("a timestamp"))
        .unwrap_or_default()
        .as_secs_f64();
    let published = (after.0 - before.0) + (after.1 - before.1);
    let busy = watch.last_event.duration_since(started).as_secs_f64();
    let embedding = watch
        .last_chunk
        .duration_since(watch.first_chunk)
        .as_secs_f64();
    println!("workers={workers}:");
    println!(
        "  upload: {documents} documents in {:.2} s; all embedded and extracted after {:.2} s",
        uploaded.as_secs_f64(),
        busy
    );
    println!(
        "  embedding: {chunks} chunks in {embedding:.2} s = {:.0} chunks/s ({:.0} per worker)",
        chunks as f64 / embedding,
        chunks as f64 / embedding / workers as f64
    );
    println!(
        "  stored: the workers stored those chunks in {stored:.2} s = {:.0} chunks/s",
        chunks as f64 / stored
    );
    println!(
        "  events: {published:.0} published ({:.0}/s), {:.0} merged by the coalescer, {} frames received on the stream ({:.0}/s)",
        published / busy,
        after.1 - before.1,
        watch.frames,
        watch.frames as f64 / busy
    );
}

/// What the stream showed.
struct Watched {
    frames: u64,
    first_chunk: Instant,
    last_chunk: Instant,
    last_event: Instant,
}

/// Reads the stream until `documents` extraction jobs are done.
async fn watch(mut stream: reqwest::Response, documents: usize) -> Watched {
    let mut parser = SseParser::new();
    let mut frames = 0;
    let mut done = 0;
    let mut first_chunk = None;
    let mut last_chunk = Instant::now();
    while done < documents {
        let bytes = stream
            .chunk()
            .await
            .expect("the stream reads")
            .expect("the stream goes on");
        for frame in parser.push(&bytes) {
            let Ok(Some(StreamMessage::Entity { event, .. })) = StreamMessage::from_frame(&frame)
            else {
                continue;
            };
            frames += 1;
            if event.event_type != EventType::Updated {
                continue;
            }
            let chunk = event.chunk().and_then(|change| change.status);
            let job = event.extraction_job().and_then(|change| change.status);
            if chunk == Some(ChunkStatus::Embedded) {
                first_chunk.get_or_insert_with(Instant::now);
                last_chunk = Instant::now();
            } else if job == Some(ExtractionStatus::Done) {
                done += 1;
            }
        }
    }
    Watched {
        frames,
        first_chunk: first_chunk.unwrap_or(last_chunk),
        last_chunk,
        last_event: Instant::now(),
    }
}

/// `docpulse_events_published_total` and `docpulse_events_coalesced_total`.
async fn metrics(client: &reqwest::Client, address: &str) -> (f64, f64) {
    let text = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("a body");
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("docpulse_events_published_total"),
        value("docpulse_events_coalesced_total"),
    )
}

/// A markdown document of `paragraphs` paragraphs of about 500 characters with names in
/// them, so extraction has work too.
fn document_text(paragraphs: usize) -> String {
    let mut text = String::from("# Field notes\n\n");
    for index in 0..paragraphs {
        text.push_str(&format!(
            "Entry {index}. Marie Curie and Pierre Curie measured the radiation of pitchblende \
             in their shed in Paris, while Ernest Rutherford in Manchester sorted the rays into \
             alpha and beta. Their letters crossed the Channel every week. The Royal Society \
             followed the work closely, and Lord Kelvin doubted it loudly. Years later, \
             Lise Meitner and Otto Hahn in Berlin found that uranium could split, and Niels \
             Bohr carried the news to Princeton.\n\n"
        ));
    }
    text
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}
