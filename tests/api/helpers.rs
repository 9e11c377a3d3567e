//! `TestApp`: the real `Application` on 127.0.0.1:0 with a temporary SQLite file, plus
//! token minting, publishing and a typed SSE reader.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::protocol::sse::SseParser;
use app::protocol::{EntityEvent, StreamMessage};
use app::resources::{Document, DocumentList};
use docpulse::auth::password::hash_password;
use docpulse::auth::{Claims, JwtKeys};
use docpulse::config::{Config, Secret};
use docpulse::startup::Application;
use docpulse::storage::Pool;
use docpulse::storage::{self, projects};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for one expected frame before failing.
pub const FRAME_LIMIT: Duration = Duration::from_secs(5);

/// How long [`TestApp::stop`] waits for the server to stop before failing the test.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// A client for the server; it reuses connections, so a stream it opens after another
    /// request is served by hyper.
    pub client: reqwest::Client,
    /// A client that opens a new connection per request, so a stream it opens is served
    /// directly (see `docpulse::serve`).
    pub stream_client: reqwest::Client,
    /// Signs tokens the server accepts.
    pub keys: JwtKeys,
    /// The server's own database file, opened a second time for set-up and checks.
    pub pool: Pool,
    config: Config,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    /// Kept so the folder lives as long as the server.
    _data_dir: TempDir,
}

/// A test configuration: free port, data in `data_dir`, plus `extra` variables.
pub fn test_config(data_dir: &Path, extra: &[(&str, &str)]) -> Config {
    let data_dir = data_dir.display().to_string();
    Config::from_lookup(|name| {
        if let Some((_, value)) = extra.iter().find(|(key, _)| *key == name) {
            return Some((*value).to_owned());
        }
        match name {
            "LEPTOS_SITE_ADDR" => Some("127.0.0.1:0".to_owned()),
            "DATA_DIR" => Some(data_dir.clone()),
            // Tests create their own users and want jobs at full speed unless they say.
            "DEMO_USER" => Some("false".to_owned()),
            "EMBED_DELAY_MS" => Some("0".to_owned()),
            // Tests stop their servers at once unless they test the spread.
            "SHUTDOWN_SPREAD_SECS" => Some("0".to_owned()),
            _ => None,
        }
    })
    .expect("the test configuration is valid")
}

/// The next database of the test Redis to hand out; the server has 4096 (scripts/redis.sh).
static NEXT_REDIS_DATABASE: AtomicU32 = AtomicU32::new(1);

/// The URL of an empty database of its own on the test Redis (`TEST_REDIS_URL`, started by
/// `scripts/redis.sh start` and by `make test`), for one test's servers.
pub async fn fresh_redis_database() -> String {
    let base = std::env::var("TEST_REDIS_URL").expect(
        "TEST_REDIS_URL names the test Redis: run `make test`, or \
         `export TEST_REDIS_URL=$(scripts/redis.sh start)` before `cargo test`",
    );
    let database = NEXT_REDIS_DATABASE.fetch_add(1, Ordering::Relaxed) % 4096;
    let url = format!("{}/{database}", base.trim_end_matches('/'));
    let mut connection = redis_connection(&url).await;
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut connection)
        .await
        .expect("the test Redis flushes a database");
    url
}

/// The URL of a new, empty database of its own on the test PostgreSQL (`TEST_POSTGRES_URL`,
/// started by `scripts/postgres.sh start` and by `make test`), for one test's servers.
pub async fn fresh_postgres_database() -> String {
    use sqlx::{Connection, Executor};

    let base = std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL names the test PostgreSQL: run `make test`, or \
         `export TEST_POSTGRES_URL=$(scripts/postgres.sh start)` before `cargo test`",
    );
    sqlx::any::install_default_drivers();
    let name = format!("test_{}", docpulse::random::random_hex::<8>());
    let mut connection = sqlx::AnyConnection::connect(&base)
        .await
        .expect("the test PostgreSQL answers");
    connection
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("the test PostgreSQL creates a database");
    connection.close().await.expect("the connection closes");
    let mut url = url::Url::parse(&base).expect("a postgres:// URL");
    url.set_path(&name);
    url.to_string()
}

/// A connection to the Redis at `url`, for tests that act on Redis directly.
pub async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("a redis:// URL")
        .get_multiplexed_async_connection()
        .await
        .expect("the test Redis answers")
}

impl TestApp {
    /// Starts a server with a fresh data folder and secret.
    pub async fn spawn() -> Self {
        Self::spawn_with_env(&[]).await
    }

    /// Starts a server with a fresh data folder and secret, plus the `extra` variables.
    ///
    /// With `TEST_BUS=redis` (and no `REDIS_URL` in `extra`), the server runs the Redis
    /// event bus on a database of its own; with `TEST_DATABASE=postgres` (and no
    /// `DATABASE_URL`), it stores in a PostgreSQL database of its own. That is how
    /// `make test` runs the suites against both buses and both databases.
    pub async fn spawn_with_env(extra: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("a temporary folder");
        // A fresh secret, so no two test servers share keys, unless the test gives one.
        let secret = Secret::generate().expect("the OS has randomness");
        let mut variables = extra.to_vec();
        if !extra.iter().any(|(name, _)| *name == "JWT_SECRET") {
            variables.push(("JWT_SECRET", secret.expose()));
        }
        let redis_url;
        if std::env::var("TEST_BUS").as_deref() == Ok("redis")
            && !extra.iter().any(|(name, _)| *name == "REDIS_URL")
        {
            redis_url = fresh_redis_database().await;
            variables.push(("REDIS_URL", &redis_url));
        }
        let database_url;
        if std::env::var("TEST_DATABASE").as_deref() == Ok("postgres")
            && !extra.iter().any(|(name, _)| *name == "DATABASE_URL")
        {
            database_url = fresh_postgres_database().await;
            variables.push(("DATABASE_URL", &database_url));
        }
        let config = test_config(data_dir.path(), &variables);
        Self::spawn_with(config, data_dir).await
    }

    /// Starts a server from `config`, keeping `data_dir` alive with it.
    pub async fn spawn_with(config: Config, data_dir: TempDir) -> Self {
        let keys = JwtKeys::new(
            config
                .auth
                .jwt_secret
                .as_ref()
                .expect("test configurations carry a JWT secret"),
        );
        docpulse::telemetry::init();
        let application = Application::build(config.clone())
            .await
            .expect("the application builds");
        let pool = storage::connect(&config.storage)
            .await
            .expect("the test opens the database");
        let address = format!("http://{}", application.local_addr());
        let shutdown = application.shutdown_token();
        let server = tokio::spawn(application.run_until_stopped());
        Self {
            address,
            client: reqwest::Client::new(),
            stream_client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("a client"),
            keys,
            pool,
            config,
            shutdown,
            server,
            _data_dir: data_dir,
        }
    }

    /// Stops the server (within [`SHUTDOWN_LIMIT`]) and starts it again on the same data
    /// folder and secret, on a new port.
    pub async fn restart(self) -> Self {
        let Self {
            config,
            shutdown,
            server,
            _data_dir: data_dir,
            pool,
            ..
        } = self;
        pool.close().await;
        shutdown.cancel();
        tokio::time::timeout(SHUTDOWN_LIMIT, server)
            .await
            .expect("the server stops within the limit")
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
        Self::spawn_with(config, data_dir).await
    }

    /// The single number `sql` answers (a `COUNT(*)`, say), with `args` bound to `$1`, `$2`...
    pub async fn count(&self, sql: &str, args: &[&str]) -> i64 {
        let mut query = sqlx::query_scalar(sql);
        for arg in args {
            query = query.bind(*arg);
        }
        query
            .fetch_one(&self.pool)
            .await
            .expect("the database answers")
    }

    /// Creates a project.
    pub async fn create_project(&self, id: &str, name: &str) {
        assert!(
            projects::create_project(&self.pool, id, name)
                .await
                .expect("the database answers"),
            "the project {id} is new"
        );
    }

    /// Creates a user with `password`, member of `member_of`; returns the user's id.
    pub async fn create_user(&self, email: &str, password: &str, member_of: &[&str]) -> String {
        let id = storage::new_id("user");
        let hash = hash_password(password.to_owned()).await.expect("hashes");
        assert!(
            projects::create_user(&self.pool, &id, email, &hash)
                .await
                .expect("the database answers"),
            "the email {email} is new"
        );
        for project in member_of {
            projects::add_member(&self.pool, &id, project)
                .await
                .expect("the database answers");
        }
        id
    }

    /// A request to `path` for `project` with a token for `project`.
    pub fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        project: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(self.token_for(&[project]))
            .header("X-Project-Id", project)
    }

    /// Creates a document in `project` through the API and returns it.
    pub async fn create_document(&self, project: &str, title: &str, content: &str) -> Document {
        let response = self
            .api(reqwest::Method::POST, "/api/documents", project)
            .json(&serde_json::json!({ "title": title, "content": content }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 201, "the document is created");
        response.json().await.expect("a document")
    }

    /// `GET <address><path>`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the server answers")
    }

    /// A token for `projects`, valid for `valid_for`, with `role`.
    pub fn token(&self, projects: &[&str], role: Option<&str>, valid_for: Duration) -> String {
        self.token_expiring_at(projects, role, unix_now() + valid_for.as_secs())
    }

    /// A token for `projects` with `role` whose `exp` is `exp` (Unix seconds).
    pub fn token_expiring_at(&self, projects: &[&str], role: Option<&str>, exp: u64) -> String {
        sign_token(&self.keys, projects, role, exp)
    }

    /// A user token for `projects`, valid for an hour.
    pub fn token_for(&self, projects: &[&str]) -> String {
        self.token(projects, None, Duration::from_secs(3600))
    }

    /// A publisher token for every project.
    pub fn publisher_token(&self) -> String {
        self.token(&["*"], Some("publisher"), Duration::from_secs(3600))
    }

    /// A `GET /api/events/stream<query>` on a new connection, to add headers to.
    pub fn stream_get(&self, query: &str) -> reqwest::RequestBuilder {
        self.stream_client
            .get(format!("{}/api/events/stream{query}", self.address))
    }

    /// `GET /api/events/stream` for `project` with `token`, on a new connection.
    pub async fn stream_request(
        &self,
        token: &str,
        project: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        request_stream(
            &self.stream_client,
            &self.address,
            token,
            project,
            last_event_id,
        )
        .await
    }

    /// Opens `project`'s stream (resuming after `last_event_id`) and reads `connected`.
    pub async fn open_stream(&self, project: &str, last_event_id: Option<&str>) -> EventReader {
        let token = self.token_for(&[project]);
        connected(
            self.stream_request(&token, project, last_event_id).await,
            project,
        )
        .await
    }

    /// `POST /api/auth/login` with `email` and `password`.
    pub async fn log_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/auth/login", self.address))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("the server answers")
    }

    /// `GET /api/documents` of `project`, which must answer 200.
    pub async fn list_documents(&self, project: &str) -> DocumentList {
        let response = self
            .api(reqwest::Method::GET, "/api/documents", project)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200);
        response.json().await.expect("a document list")
    }

    /// `DELETE /api/documents/<id>` in `project`.
    pub async fn delete_document(&self, project: &str, id: &str) -> reqwest::Response {
        self.api(
            reqwest::Method::DELETE,
            &format!("/api/documents/{id}"),
            project,
        )
        .send()
        .await
        .expect("the server answers")
    }

    /// A publisher for this server, cheap to clone into spawned tasks.
    pub fn publisher(&self) -> Publisher {
        self.publisher_as(&self.publisher_token())
    }

    /// A publisher that sends `token`.
    pub fn publisher_as(&self, token: &str) -> Publisher {
        Publisher {
            client: self.client.clone(),
            url: format!("{}/api/events/publish", self.address),
            token: token.to_owned(),
        }
    }

    /// Publishes `event` (a JSON body) with a publisher token.
    pub async fn publish(&self, event: &Value) -> reqwest::Response {
        self.publisher().publish(event).await
    }

    /// Publishes `event` with `token`.
    pub async fn publish_as(&self, token: &str, event: &Value) -> reqwest::Response {
        self.publisher_as(token).publish(event).await
    }

    /// Publishes `event` and returns the id of the stream event that carries it.
    pub async fn publish_ok(&self, event: &Value) -> String {
        self.publisher().publish_ok(event).await
    }

    /// Waits until the unlabelled `name` series of `/metrics` equals `expected`; fails after
    /// [`FRAME_LIMIT`].
    pub async fn wait_for_metric(&self, name: &str, expected: f64) {
        let waited = tokio::time::timeout(FRAME_LIMIT, async {
            while self.metric(name).await != expected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{name} never reached {expected}");
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The server's socket address.
    pub fn socket_address(&self) -> std::net::SocketAddr {
        self.address
            .trim_start_matches("http://")
            .parse()
            .expect("an address")
    }

    /// A token of user `sub` for `projects`, valid for an hour.
    pub fn token_of(&self, sub: &str, projects: &[&str]) -> String {
        let claims = Claims {
            sub: sub.to_owned(),
            exp: unix_now() + 3600,
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            role: None,
            sid: None,
        };
        self.keys.sign(&claims).expect("signs")
    }

    /// A client that sends `GET /api/events/stream` of `project` and then reads nothing, with
    /// a small receive buffer. With `via_hyper`, the connection first carries a `/healthz`
    /// request, so that hyper, not the direct path, serves the stream.
    pub async fn stalled_client(&self, project: &str, via_hyper: bool) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;

        let address = self.socket_address();
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("a small buffer");
        let mut stream = socket.connect(address).await.expect("connects");
        if via_hyper {
            stream
                .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
                .await
                .expect("sends");
            read_until(&mut stream, "\"status\":\"ok\"").await;
        }
        let request = format!(
            "GET /api/events/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             X-Project-Id: {project}\r\n\r\n",
            self.token_for(&[project])
        );
        stream.write_all(request.as_bytes()).await.expect("sends");
        stream
    }

    /// The value of an unlabelled series on `GET /metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.expect("a body");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
            .parse()
            .expect("a number")
    }

    /// Fires the shutdown token and waits for the server to finish, at most [`SHUTDOWN_LIMIT`].
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_within(SHUTDOWN_LIMIT).await
    }

    /// Fires the shutdown token and waits for the server to finish, at most `limit`.
    pub async fn stop_within(self, limit: Duration) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(limit, self.server)
            .await
            .expect("the server stops within the limit")
            .expect("the server task does not panic")
    }
}

/// Sends events to `POST /api/events/publish` with one token.
#[derive(Clone)]
pub struct Publisher {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Publisher {
    /// Publishes `event` (a JSON body).
    pub async fn publish(&self, event: &Value) -> reqwest::Response {
        self.client
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(event)
            .send()
            .await
            .expect("the server answers")
    }

    /// Publishes `event`, expects `202` and returns the id of the stream event that carries it.
    pub async fn publish_ok(&self, event: &Value) -> String {
        let response = self.publish(event).await;
        assert_eq!(response.status(), 202, "published");
        let body: Value = response.json().await.expect("a JSON body");
        body["id"].as_str().expect("an id").to_owned()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// An `entity.created` notification event for `project` (the simplest valid body).
pub fn notification(project: &str, id: &str) -> Value {
    serde_json::json!({
        "type": "entity.created",
        "entity": "notification",
        "id": id,
        "projectId": project,
    })
}

/// How soon after a session ends its streams must end, as API.md says.
const WITHIN_A_SECOND: Duration = Duration::from_secs(1);

/// Reads `stream` until `auth_expired`, which must come within [`WITHIN_A_SECOND`] (past
/// heartbeats and events), and then the stream's end.
pub async fn expect_auth_expired(stream: &mut EventReader) {
    let expired = tokio::time::timeout(WITHIN_A_SECOND, async {
        loop {
            match stream.next().await {
                StreamMessage::AuthExpired(notice) => return notice.reason,
                StreamMessage::Heartbeat(_) | StreamMessage::Entity { .. } => {}
                other => panic!("expected auth_expired, got {other:?}"),
            }
        }
    })
    .await
    .expect("auth_expired within a second of the session's end");
    assert_eq!(expired, "the session ended");
    assert!(stream.try_next().await.is_none(), "the stream ends");
}

/// `GET /api/projects` of `app` with `token`.
pub async fn projects_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/projects", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers")
}

/// Asserts `response` is the JSON error envelope with `expected_status` and `code`.
pub async fn expect_error(response: reqwest::Response, expected_status: u16, code: &str) -> String {
    let (status, body) = error_of(response).await;
    assert_eq!(status.as_u16(), expected_status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a message explains the error: {body}"
    );
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The status and JSON body of an error response.
pub async fn error_of(response: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.expect("errors are JSON");
    (status, body)
}

/// Reads raw bytes from `stream` until `needle` appears; returns everything read. Fails when
/// the stream closes first or after twice [`FRAME_LIMIT`].
pub async fn read_until(stream: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;

    let mut text = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    tokio::time::timeout(FRAME_LIMIT * 2, async {
        while !String::from_utf8_lossy(&text).contains(needle) {
            let read = stream.read(&mut buffer).await.expect("reads");
            assert!(read > 0, "the stream closed before {needle:?}");
            text.extend_from_slice(&buffer[..read]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{needle:?} never arrived"));
    String::from_utf8_lossy(&text).into_owned()
}

/// Reads `stream` until the server closes it; returns what it sent and how long that took.
/// Fails after `limit`.
pub async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Duration) {
    use tokio::io::AsyncReadExt;

    let started = tokio::time::Instant::now();
    let mut text = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => text.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server did not close the connection within {limit:?}"));
    (
        String::from_utf8_lossy(&text).into_owned(),
        started.elapsed(),
    )
}

/// A loopback port nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A token signed with `keys` for `projects` with `role`, whose `exp` is `exp` (Unix seconds).
pub fn sign_token(keys: &JwtKeys, projects: &[&str], role: Option<&str>, exp: u64) -> String {
    let claims = Claims {
        sub: "user_test".to_owned(),
        exp,
        projects: projects.iter().map(|p| (*p).to_owned()).collect(),
        role: role.map(str::to_owned),
        sid: None,
    };
    keys.sign(&claims).expect("signs")
}

/// `GET /api/events/stream` of `project` at `address` (`http://host:port`) with `token`,
/// resuming after `last_event_id`.
pub async fn request_stream(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    project: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .get(format!("{address}/api/events/stream"))
        .bearer_auth(token)
        .header("X-Project-Id", project);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.expect("the server answers")
}

/// A reader over `project`'s stream `response`, which must be `200`, past its `connected`.
pub async fn connected(response: reqwest::Response, project: &str) -> EventReader {
    assert_eq!(response.status(), 200, "the stream opens");
    let mut reader = EventReader::new(response);
    match reader.next().await {
        StreamMessage::Connected(connected) => {
            assert_eq!(connected.project_id.as_str(), project);
        }
        other => panic!("the first frame is not `connected`: {other:?}"),
    }
    reader
}

/// Reads a stream response frame by frame, with the shared SSE parser.
pub struct EventReader {
    response: reqwest::Response,
    parser: SseParser,
    ready: std::collections::VecDeque<StreamMessage>,
    /// The last [`RECENT`] messages read, for the message of a failed wait.
    recent: std::collections::VecDeque<StreamMessage>,
}

/// How many of the last messages a failed wait shows.
const RECENT: usize = 16;

impl EventReader {
    /// A reader over a `200` stream response.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            parser: SseParser::new(),
            ready: std::collections::VecDeque::new(),
            recent: std::collections::VecDeque::new(),
        }
    }

    /// The next message, or `None` when the stream ended; fails after [`FRAME_LIMIT`],
    /// showing the messages read before.
    pub async fn try_next(&mut self) -> Option<StreamMessage> {
        let Ok(message) = tokio::time::timeout(FRAME_LIMIT, self.read()).await else {
            panic!(
                "no frame and no end of the stream within {FRAME_LIMIT:?}; the last {} \
                 messages were: {:#?}",
                self.recent.len(),
                self.recent
            );
        };
        if let Some(message) = &message {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(message.clone());
        }
        message
    }

    /// The last `retry:` the stream sent, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.parser.retry()
    }

    /// The next message; fails when the stream ends or after [`FRAME_LIMIT`].
    pub async fn next(&mut self) -> StreamMessage {
        self.try_next().await.expect("the stream goes on")
    }

    /// The next entity event with its id, skipping heartbeats; fails on anything else.
    pub async fn next_entity(&mut self) -> (String, EntityEvent) {
        loop {
            match self.next().await {
                StreamMessage::Entity { id, event } => return (id, event),
                StreamMessage::Heartbeat(_) => {}
                other => panic!("expected an entity event, got {other:?}"),
            }
        }
    }

    async fn read(&mut self) -> Option<StreamMessage> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(message);
            }
            let chunk = self.response.chunk().await.ok()??;
            for frame in self.parser.push(&chunk) {
                if let Some(message) = StreamMessage::from_frame(&frame).expect("a valid frame") {
                    self.ready.push_back(message);
                }
            }
        }
    }
}
