//! The event streams of a run: the paced connect phase and one task per stream that reads,
//! checks and counts its frames.
//!
//! **Invariant:** at most `--connect-concurrency` connects are in flight and connection i
//! starts no earlier than `i / --connect-rate` seconds into the phase; a stream task holds one
//! TCP connection, its parser and one bit per event of its project, and ends when the run's
//! cancellation token fires. With `--resume`, a stream the server ends connects again with its
//! `Last-Event-ID` after the server's `retry:` (jittered, as the browser does), and keeps its
//! book, so an event missed meanwhile counts as missing unless the resume replays it.

pub mod book;
pub mod tally;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, HOST, HeaderName, RETRY_AFTER};
use hyper::{Request, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::sse::{SseFrame, SseParser};
use app::protocol::{EVENT_STREAM_PATH, PROJECT_HEADER, ProjectId, StreamMessage};

use crate::clock;
use crate::connection::{self, ClientConnection, ServerTarget};
use crate::pacing;
use crate::subscribers::book::{ConnectionBook, FrameCounts};
use crate::subscribers::tally::SubscriberTally;
use crate::tokens::TokenMinter;

/// Longest a stream may take from its TCP connect to its `connected` frame.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The connect phase gives up on the connections still pending when none has reported for
/// this long (the server stopped answering).
const CONNECT_STALL_LIMIT: Duration = Duration::from_secs(2 * CONNECT_TIMEOUT.as_secs());

/// Connect outcomes queued between the stream tasks and the phase's counter.
const OUTCOME_CHANNEL_CAPACITY: usize = 1024;

/// Most bytes of an error answer kept for the error message.
const ERROR_BODY_LIMIT: usize = 4096;

/// The wait before a resume when the server sent no `retry:`, and the first wait after a
/// resume attempt that reached no server; the later ones double up to [`RESUME_MAX_WAIT`].
const RESUME_FIRST_WAIT: Duration = Duration::from_secs(1);
const RESUME_MAX_WAIT: Duration = Duration::from_secs(10);

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// What every stream task of a run shares.
pub struct SubscriberPlan {
    /// Where the streams connect: stream i to target i mod N.
    pub targets: Vec<ServerTarget>,
    /// Signs each stream's token.
    pub minter: TokenMinter,
    /// The counters the tasks add to.
    pub tally: Arc<SubscriberTally>,
    /// `--projects`.
    pub projects: u32,
    /// `--per-source`.
    pub per_source: u32,
    /// Whether connections bind a loopback source address (only when the server is on one).
    pub bind_source_addresses: bool,
    /// Events the run publishes, so a stream can tell the run's entity ids from others.
    pub event_count: u64,
    /// `--resume`: streams the server ends connect again with their `Last-Event-ID`.
    pub resume: bool,
}

/// How fast the connect phase opens streams.
#[derive(Debug, Clone, Copy)]
pub struct ConnectPacing {
    /// `--connections`.
    pub connections: u32,
    /// `--connect-rate`.
    pub per_second: u32,
    /// `--connect-concurrency`.
    pub concurrency: u32,
}

/// How the connect phase went.
#[derive(Debug, Clone, Copy)]
pub struct ConnectPhase {
    /// Streams that sent their `connected` frame.
    pub connected: u64,
    /// Streams that failed (or never reported before the phase gave up).
    pub failed: u64,
    /// From the first connect to the last outcome.
    pub elapsed: Duration,
}

/// Opens every stream at the paced rate and returns once each has connected or failed.
///
/// Connected streams go on reading in tasks of `tracker` until `cancel` fires.
pub async fn connect_all(
    plan: Arc<SubscriberPlan>,
    pacing: ConnectPacing,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> ConnectPhase {
    let started = Instant::now();
    let (outcome_sender, mut outcome_receiver) = mpsc::channel(OUTCOME_CHANNEL_CAPACITY);
    let stop_spawning = cancel.child_token();
    tracker.spawn(spawn_streams(
        plan,
        pacing,
        started,
        outcome_sender,
        tracker.clone(),
        cancel.clone(),
        stop_spawning.clone(),
    ));
    let asked = u64::from(pacing.connections);
    let mut connected = 0;
    let mut failed = 0;
    let mut last_progress = Instant::now();
    while connected + failed < asked {
        match tokio::time::timeout(CONNECT_STALL_LIMIT, outcome_receiver.recv()).await {
            Ok(Some(true)) => connected += 1,
            Ok(Some(false)) => failed += 1,
            Ok(None) => break,
            Err(_) => {
                eprintln!(
                    "connecting: no connect finished for {} s; giving up on the rest",
                    CONNECT_STALL_LIMIT.as_secs()
                );
                break;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprintln!("connecting: {connected} connected, {failed} failed of {asked}");
        }
    }
    stop_spawning.cancel();
    ConnectPhase {
        connected,
        failed: asked - connected,
        elapsed: started.elapsed(),
    }
}

/// Spawns stream i at `started + i / per_second`, each holding one of `concurrency` permits
/// until it has connected or failed.
async fn spawn_streams(
    plan: Arc<SubscriberPlan>,
    pacing: ConnectPacing,
    started: Instant,
    outcome_sender: mpsc::Sender<bool>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    stop_spawning: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(
        usize::try_from(pacing.concurrency).expect("a u32 fits in usize"),
    ));
    for connection_index in 0..pacing.connections {
        let due = started + pacing::due_after(u64::from(connection_index), pacing.per_second);
        let permit = tokio::select! {
            () = stop_spawning.cancelled() => return,
            permit = async {
                tokio::time::sleep_until(due).await;
                Arc::clone(&permits).acquire_owned().await
            } => permit,
        };
        let Ok(permit) = permit else {
            return;
        };
        tracker.spawn(run_stream(
            connection_index,
            Arc::clone(&plan),
            permit,
            outcome_sender.clone(),
            cancel.clone(),
        ));
    }
}

/// One stream's whole life: connect, report the outcome, read until cancelled or ended.
async fn run_stream(
    connection_index: u32,
    plan: Arc<SubscriberPlan>,
    permit: OwnedSemaphorePermit,
    outcome_sender: mpsc::Sender<bool>,
    cancel: CancellationToken,
) {
    let project_index = connection_index % plan.projects;
    let mut book = ConnectionBook::new(project_index, plan.projects, plan.event_count);
    let opened = tokio::time::timeout(
        CONNECT_TIMEOUT,
        open_honouring_retry_after(connection_index, &plan, book.project_id(), None, false),
    )
    .await;
    drop(permit);
    let mut stream = match opened {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            plan.tally.record_error(&format!("connect: {error:#}"));
            // A send error means the phase stopped listening; the failure is counted there.
            let _ = outcome_sender.send(false).await;
            return;
        }
        Err(_) => {
            plan.tally.record_error(&format!(
                "connect: no connected frame within {} s",
                CONNECT_TIMEOUT.as_secs()
            ));
            let _ = outcome_sender.send(false).await;
            return;
        }
    };
    plan.tally.stream_opened(project_index);
    let _ = outcome_sender.send(true).await;
    // Dropped now so the phase's channel closes once every stream has reported.
    drop(outcome_sender);
    let mut last_event_id = None;
    loop {
        let Some(mut ended) = read_stream(stream, &mut book, &plan.tally, &cancel).await else {
            plan.tally.stream_closed(project_index, None);
            return;
        };
        if !plan.resume {
            plan.tally.stream_closed(project_index, Some(&ended.reason));
            return;
        }
        plan.tally.stream_ended_by_server();
        // A resumed stream that ends before any event resumes from the same id again.
        if ended.last_event_id.is_none() {
            ended.last_event_id = last_event_id.take();
        }
        last_event_id.clone_from(&ended.last_event_id);
        match resume(connection_index, &plan, &book, ended, &cancel).await {
            Some(resumed) => {
                plan.tally.stream_resumed();
                stream = resumed;
            }
            None => {
                plan.tally.stream_closed(project_index, None);
                return;
            }
        }
    }
}

/// Connects a stream the server ended again after `ended.retry` (half of it to all of it,
/// at random, as the browser waits), from its last event id; after an attempt that reaches
/// no server, waits [`RESUME_FIRST_WAIT`], doubling up to [`RESUME_MAX_WAIT`], jittered alike.
/// `None` when the run ends first.
async fn resume(
    connection_index: u32,
    plan: &SubscriberPlan,
    book: &ConnectionBook,
    ended: Ended,
    cancel: &CancellationToken,
) -> Option<OpenStream> {
    let mut wait = ended.retry.unwrap_or(RESUME_FIRST_WAIT);
    let mut next_wait = RESUME_FIRST_WAIT;
    loop {
        let jittered = wait.mul_f64(0.5 + clock::jitter() / 2.0);
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(jittered) => {}
        }
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT,
            open_honouring_retry_after(
                connection_index,
                plan,
                book.project_id(),
                ended.last_event_id.as_deref(),
                true,
            ),
        );
        let opened = tokio::select! {
            () = cancel.cancelled() => return None,
            opened = attempt => opened,
        };
        match opened {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(error)) => plan.tally.record_error(&format!("resume: {error:#}")),
            Err(_) => plan
                .tally
                .record_error("resume: no connected frame in time"),
        }
        wait = next_wait;
        next_wait = (next_wait * 2).min(RESUME_MAX_WAIT);
    }
}

/// Opens the stream; when the server refuses it with `Retry-After` (`429`, `503`), waits that
/// long plus up to half again at random (at least up to a second), and tries again.
async fn open_honouring_retry_after(
    connection_index: u32,
    plan: &SubscriberPlan,
    project_id: &ProjectId,
    last_event_id: Option<&str>,
    resuming: bool,
) -> anyhow::Result<OpenStream> {
    loop {
        match open_stream(connection_index, plan, project_id, last_event_id).await {
            Err(error) => match error.downcast_ref::<Refused>() {
                Some(refused) => {
                    plan.tally.record_refusal(resuming);
                    tokio::time::sleep(pacing::retry_delay(refused.retry_after, clock::jitter()))
                        .await;
                }
                None => return Err(error),
            },
            opened => return opened,
        }
    }
}

/// The server refused a stream for one of its limits and said when to come back.
#[derive(Debug)]
struct Refused {
    status: u16,
    retry_after: Duration,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "http {}: retry after {} s",
            self.status,
            self.retry_after.as_secs()
        )
    }
}

impl std::error::Error for Refused {}

/// A stream past its `connected` frame.
struct OpenStream {
    /// The HTTP/1.1 connection, polled by [`connection::drive`] while the body is read.
    connection: std::pin::Pin<Box<ClientConnection<Empty<Bytes>>>>,
    /// Kept so the connection is not closed for want of a requester.
    _sender: SendRequest<Empty<Bytes>>,
    /// The response body: the event stream.
    body: Incoming,
    /// Parser state, carried over between chunks.
    parser: SseParser,
    /// Frames that came in the same chunk as `connected`, not yet counted.
    pending: Vec<SseFrame>,
}

/// Connects stream `connection_index` (from `last_event_id` when given) and reads up to its
/// `connected` frame.
async fn open_stream(
    connection_index: u32,
    plan: &SubscriberPlan,
    project_id: &ProjectId,
    last_event_id: Option<&str>,
) -> anyhow::Result<OpenStream> {
    let token = plan
        .minter
        .subscriber(connection_index, project_id)
        .context("cannot sign the stream token")?;
    let source = if plan.bind_source_addresses {
        Some(
            connection::source_address(connection_index, plan.per_source)
                .context("no loopback source address is left for this connection")?,
        )
    } else {
        None
    };
    let target_index = usize::try_from(connection_index).unwrap_or(0) % plan.targets.len();
    let target = &plan.targets[target_index];
    let (mut sender, connection) = connection::open(target, source).await?;
    let mut connection = Box::pin(connection);
    let mut request = Request::get(target.path(EVENT_STREAM_PATH))
        .header(HOST, &target.authority)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(PROJECT_HEADER, project_id.as_str())
        .header(ACCEPT, "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header(LAST_EVENT_ID, id);
    }
    let request = request
        .body(Empty::new())
        .context("cannot build the stream request")?;
    let response = connection::drive(connection.as_mut(), sender.send_request(request))
        .await?
        .context("the stream request failed")?;
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
        .map(Duration::from_secs);
    if let (429 | 503, Some(retry_after)) = (response.status().as_u16(), retry_after) {
        return Err(Refused {
            status: response.status().as_u16(),
            retry_after,
        }
        .into());
    }
    if response.status() != StatusCode::OK {
        let status = response.status().as_u16();
        let error_body = connection::drive(
            connection.as_mut(),
            Limited::new(response.into_body(), ERROR_BODY_LIMIT).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|collected| String::from_utf8_lossy(&collected.to_bytes()).into_owned())
        .unwrap_or_default();
        bail!("http {status}: {error_body}");
    }
    let mut body = response.into_body();
    let mut parser = SseParser::new();
    loop {
        let frame = connection::drive(connection.as_mut(), body.frame())
            .await?
            .context("the stream ended before its connected frame")?
            .context("reading the stream failed")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let mut frames = parser.push(&data).into_iter();
        let Some(first) = frames.next() else {
            continue;
        };
        match StreamMessage::from_frame(&first) {
            Ok(Some(StreamMessage::Connected(connected)))
                if &connected.project_id == project_id => {}
            Ok(Some(StreamMessage::Connected(connected))) => {
                bail!(
                    "the connected frame names project {}, not {project_id}",
                    connected.project_id
                )
            }
            Ok(_) => bail!("the first frame is `{}`, not `connected`", first.event),
            Err(error) => bail!("the connected frame is malformed: {error}"),
        }
        return Ok(OpenStream {
            connection,
            _sender: sender,
            body,
            parser,
            pending: frames.collect(),
        });
    }
}

/// Why a stream ended without the tool closing it, and how to resume it.
struct Ended {
    reason: String,
    /// The id of the last frame that had one.
    last_event_id: Option<String>,
    /// The server's last `retry:`.
    retry: Option<Duration>,
}

/// Reads and counts frames until `cancel` fires (returns `None`) or the stream ends (returns
/// why, with where to resume).
async fn read_stream(
    mut stream: OpenStream,
    book: &mut ConnectionBook,
    tally: &SubscriberTally,
    cancel: &CancellationToken,
) -> Option<Ended> {
    let mut latencies = Vec::new();
    let pending = std::mem::take(&mut stream.pending);
    let mut reason = absorb(book, &pending, tally, &mut latencies);
    let cancelled = cancel.cancelled();
    let mut cancelled = std::pin::pin!(cancelled);
    while reason.is_none() {
        let next = tokio::select! {
            biased;
            () = &mut cancelled => return None,
            next = connection::drive(stream.connection.as_mut(), stream.body.frame()) => next,
        };
        let frame = match next {
            Err(error) => {
                reason = Some(format!("stream: {error:#}"));
                break;
            }
            Ok(None) => {
                reason = Some("stream: the server ended the stream".to_owned());
                break;
            }
            Ok(Some(Err(error))) => {
                reason = Some(format!("stream: reading failed: {error}"));
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let frames = stream.parser.push(&data);
        reason = absorb(book, &frames, tally, &mut latencies);
    }
    Some(Ended {
        reason: reason.unwrap_or_default(),
        last_event_id: stream.parser.last_event_id().map(str::to_owned),
        retry: stream.parser.retry().map(Duration::from_millis),
    })
}

/// Counts a chunk's frames into `tally` in one go, reusing `latencies` as scratch space.
fn absorb(
    book: &mut ConnectionBook,
    frames: &[SseFrame],
    tally: &SubscriberTally,
    latencies: &mut Vec<u64>,
) -> Option<String> {
    if frames.is_empty() {
        return None;
    }
    let mut counts = FrameCounts::default();
    let ended = book.absorb(frames, clock::unix_micros_now(), &mut counts, latencies);
    tally.add(&counts, latencies);
    latencies.clear();
    ended.map(|reason| format!("stream: {reason}"))
}
