//! The publish phase: `--rate` events per second for `--duration` seconds over a few
//! keep-alive connections, counting what the server accepted and the deliveries that owes.
//!
//! **Invariant:** event n is sent no earlier than `n / rate` seconds into the phase, is an
//! `entity.created` notification with the distinct id `load_<n>` (so the coalescer, which
//! merges only updates of one id, never merges two of them) on project `load_proj_<n mod P>`,
//! and its `data.sentAtUs` is read just before its request is written. At most
//! [`PUBLISH_CONNECTIONS`] publishes are in flight.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use serde_json::{Map, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use app::protocol::{EntityKind, EventType, NewEvent, PUBLISH_PATH};

use crate::clock;
use crate::connection::{self, ServerTarget};
use crate::naming;
use crate::pacing;
use crate::report::ErrorSamples;
use crate::subscribers::book::SENT_AT_KEY;
use crate::subscribers::tally::SubscriberTally;

/// Keep-alive connections the events are published over, each with one request in flight.
pub const PUBLISH_CONNECTIONS: u64 = 8;

/// Longest a publish may take, connect included, before it counts as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of an answer body kept (for the error message of a refused publish).
const ANSWER_BODY_LIMIT: usize = 64 * 1024;

/// What the publish phase needs.
pub struct PublishPlan {
    /// Where to publish: publisher task j through target j mod N.
    pub targets: Vec<ServerTarget>,
    /// `Bearer <publisher token>`.
    pub authorization: String,
    /// `--rate`.
    pub rate: u32,
    /// `--rate × --duration`.
    pub event_count: u64,
    /// `--projects`.
    pub projects: u32,
    /// The streams' counters, read for the number of streams open on each event's project.
    pub tally: Arc<SubscriberTally>,
    /// `--resume`: a failed publish is tried again for up to [`PUBLISH_RETRY_WINDOW`].
    pub retry_failures: bool,
}

/// How long `--resume` keeps trying a failed publish (a server restarting).
const PUBLISH_RETRY_WINDOW: Duration = Duration::from_secs(30);
/// The pause between two tries of a failed publish.
const PUBLISH_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How the publish phase went.
#[derive(Debug, Clone, Default)]
pub struct PublishOutcome {
    /// Publishes answered 202.
    pub accepted: u64,
    /// Publishes answered otherwise or not in time.
    pub failed: u64,
    /// Sum over accepted events of the streams open on their project when accepted.
    pub expected_deliveries: u64,
    /// From the start of the phase to the end of the last publish.
    pub elapsed: Duration,
    /// Why publishes failed.
    pub errors: ErrorSamples,
}

impl PublishOutcome {
    fn merge(&mut self, other: &Self) {
        self.accepted += other.accepted;
        self.failed += other.failed;
        self.expected_deliveries += other.expected_deliveries;
        self.errors.merge(&other.errors);
    }
}

/// Publishes every event of the run on schedule and waits for the last answer.
///
/// Connection tasks are spawned on `tracker`.
pub async fn publish_all(plan: Arc<PublishPlan>, tracker: &TaskTracker) -> PublishOutcome {
    let started = Instant::now();
    let worker_count = PUBLISH_CONNECTIONS.min(plan.event_count);
    let mut workers = JoinSet::new();
    for worker_index in 0..worker_count {
        workers.spawn(publish_every_nth(
            worker_index,
            worker_count,
            started,
            Arc::clone(&plan),
            tracker.clone(),
        ));
    }
    let mut outcome = PublishOutcome::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(worker_outcome) => outcome.merge(&worker_outcome),
            Err(error) => outcome
                .errors
                .record(&format!("publish: a publisher task failed: {error}")),
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// Publishes events `first`, `first + stride`, ... over one keep-alive connection, each at
/// its due time; reconnects after any failure.
async fn publish_every_nth(
    first: u64,
    stride: u64,
    started: Instant,
    plan: Arc<PublishPlan>,
    tracker: TaskTracker,
) -> PublishOutcome {
    let mut outcome = PublishOutcome::default();
    let mut sender = None;
    for event_number in (first..plan.event_count).step_by(usize::try_from(stride).unwrap_or(1)) {
        tokio::time::sleep_until(started + pacing::due_after(event_number, plan.rate)).await;
        let first_try = Instant::now();
        loop {
            let published = tokio::time::timeout(
                PUBLISH_TIMEOUT,
                publish_one(&mut sender, first, event_number, &plan, &tracker),
            )
            .await;
            let error = match published {
                Ok(Ok(())) => {
                    outcome.accepted += 1;
                    let project_index = naming::project_index_of_event(event_number, plan.projects);
                    outcome.expected_deliveries += plan.tally.open_on_project(project_index);
                    break;
                }
                Ok(Err(error)) => format!("publish: {error:#}"),
                Err(_) => format!("publish: no answer within {} s", PUBLISH_TIMEOUT.as_secs()),
            };
            sender = None;
            if plan.retry_failures && first_try.elapsed() < PUBLISH_RETRY_WINDOW {
                tokio::time::sleep(PUBLISH_RETRY_PAUSE).await;
                continue;
            }
            outcome.failed += 1;
            outcome.errors.record(&error);
            break;
        }
    }
    outcome
}

/// Publishes event `event_number`, opening a connection into `sender` when there is none.
async fn publish_one(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    worker_index: u64,
    event_number: u64,
    plan: &PublishPlan,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let target_index = usize::try_from(worker_index).unwrap_or(0) % plan.targets.len();
    let target = &plan.targets[target_index];
    let sender = match sender.take() {
        Some(open) if !open.is_closed() => sender.insert(open),
        _ => {
            let (opened, connection) = connection::open(target, None).await?;
            tracker.spawn(async move {
                // A failure here surfaces as the next request's error on this connection.
                let _ = connection.await;
            });
            sender.insert(opened)
        }
    };
    sender
        .ready()
        .await
        .context("the publish connection closed")?;
    let body = event_body(event_number, plan.projects, clock::unix_micros_now())?;
    let request = Request::post(target.path(PUBLISH_PATH))
        .header(HOST, &target.authority)
        .header(AUTHORIZATION, &plan.authorization)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .context("cannot build the publish request")?;
    let response = sender
        .send_request(request)
        .await
        .context("the publish request failed")?;
    let status = response.status();
    // The body is read whole even when unused, so the connection can carry the next request.
    let answer = Limited::new(response.into_body(), ANSWER_BODY_LIMIT)
        .collect()
        .await
        .map_err(|error| anyhow::anyhow!("reading the publish answer failed: {error}"))?
        .to_bytes();
    if status != StatusCode::ACCEPTED {
        bail!(
            "http {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(())
}

/// The JSON body that publishes event `event_number` of a run with `project_count` projects,
/// stamped with `sent_at_unix_us`.
///
/// # Errors
///
/// Serialization failed (it does not for these types).
pub fn event_body(
    event_number: u64,
    project_count: u32,
    sent_at_unix_us: u64,
) -> anyhow::Result<Vec<u8>> {
    let mut data = Map::new();
    data.insert(SENT_AT_KEY.to_owned(), Value::from(sent_at_unix_us));
    let event = NewEvent::single(
        EventType::Created,
        EntityKind::Notification,
        naming::entity_id(event_number),
        naming::project_id(naming::project_index_of_event(event_number, project_count)),
        Some(data),
    );
    serde_json::to_vec(&event).context("cannot serialize the event")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_documented_notification() {
        let body = event_body(23, 10, 1_733_313_600_000_000).expect("serializable");
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"type":"entity.created","entity":"notification","id":"load_23","projectId":"load_proj_3","data":{"sentAtUs":1733313600000000}}"#
        );
    }

    #[test]
    fn the_body_is_a_valid_publish_payload() {
        let body = event_body(0, 1, 5).expect("serializable");
        let event: NewEvent = serde_json::from_slice(&body).expect("a publish payload");
        event.validate().expect("a valid shape");
        assert_eq!(event.project_id.as_str(), "load_proj_0");
    }
}
