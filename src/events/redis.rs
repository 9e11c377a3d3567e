//! [`RedisEventBus`]: the event bus of several instances sharing one Redis.
//!
//! Per project, Redis holds a stream `docpulse:{project}:events` (trimmed with
//! `MAXLEN ~ RETAIN_EVENTS`) and a counter `docpulse:{project}:seq`; the key `docpulse:epoch`
//! names the history, so every instance on one Redis shares it and a flushed or restarted
//! Redis starts a new one. A publish is one Lua script: it increments the counter, prefixes
//! the frame (serialized once, by the publishing instance) with its `id:` line and appends it
//! with the stream id `<seq>-0`, so stream order is sequence order.
//!
//! Each instance runs one reader task: an `XREAD BLOCK` over the streams of the projects it
//! has subscribers for, fanning frames out through a bounded `tokio::sync::broadcast` per
//! project, as the in-memory bus does. Coalescing happens per instance before the append, so
//! each instance's last update of a burst still goes out.
//!
//! **Invariant:** a project's reader position is taken before any subscriber of the project
//! reads its snapshot, so replay (`XRANGE` after the snapshot's position) and live frames
//! meet with no gap, and the subscription skips live frames it replayed.
//! **Invariant:** when the reader finds the epoch changed (a flushed or restarted Redis), or
//! comes back after losing Redis, it tells every live subscriber to resync; frames are never
//! silently skipped.
//! **Invariant:** every Redis call has a deadline; an unreachable Redis is a
//! [`BusError::Unavailable`], never a hang.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{Client, Script};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::sse::SseFrame;
use app::protocol::{EventId, NewEvent, ProjectId};

use crate::clock::timestamp;
use crate::config::EventsConfig;
use crate::events::coalesce::{Coalescer, Offer, Outgoing, WindowTimer, WindowTimers};
use crate::events::{
    BusError, EventBus, Live, Publication, SESSION_NEWS_BACKLOG, SessionNews, Subscription,
    new_epoch,
};
use crate::metrics::Metrics;

/// How long any Redis command may take before the bus reports Redis unavailable.
const CALL_LIMIT: Duration = Duration::from_secs(2);

/// How long one `XREAD` blocks; also the longest delay before the reader notices a new epoch
/// or a project whose first subscriber arrived while it was blocked.
const READ_BLOCK: Duration = Duration::from_millis(500);

/// Frames the reader takes per stream per `XREAD`.
const READ_COUNT: usize = 512;

/// The pause before the reader tries a lost Redis again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// The key naming the current history.
const EPOCH_KEY: &str = "docpulse:epoch";

/// The channel on which instances announce ended sessions.
const SESSION_CHANNEL: &str = "docpulse:sessions:ended";

/// Increments the project's sequence and appends the frame under it, atomically.
///
/// KEYS: epoch, seq, stream. ARGV: a new epoch should none exist, `MAXLEN ~` bound, the frame
/// without its `id:` line, the publisher's clock in Unix microseconds (field `t`, so that the
/// receiving instances measure delivery latency from the publish), the outbox rows the event
/// announces, comma-separated (field `o`, see [`EventBus::published_origins`]). Returns
/// `{epoch, seq}`.
const PUBLISH_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1]) or (redis.call('SET', KEYS[1], ARGV[1]) and ARGV[1])
local seq = redis.call('INCR', KEYS[2])
local frame = 'id: ' .. epoch .. ':' .. seq .. '\n' .. ARGV[3]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'f', frame, 't', ARGV[4], 'o', ARGV[5])
return {epoch, seq}
";

/// The epoch, the project's last sequence and, when ARGV[2] names the current epoch, the
/// retained entries after sequence ARGV[3].
///
/// KEYS: epoch, seq, stream. ARGV: a new epoch should none exist, the resume epoch (or ''),
/// the resume sequence, the most entries to return. Returns `{epoch, seq, entries}`.
const SNAPSHOT_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1]) or (redis.call('SET', KEYS[1], ARGV[1]) and ARGV[1])
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = {}
if ARGV[2] == epoch then
  entries = redis.call('XRANGE', KEYS[3], (tonumber(ARGV[3]) + 1) .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, seq, entries}
";

/// One stream entry as Redis returns it: its id and its field list (`f`, the frame).
type Entry = (String, Vec<Vec<u8>>);

/// The Redis event bus; cheap to clone.
#[derive(Clone)]
pub struct RedisEventBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: EventsConfig,
    metrics: Arc<Metrics>,
    /// Commands (publish, snapshot, `CLIENT UNBLOCK`); reconnects on its own.
    commands: ConnectionManager,
    publish_script: Script,
    snapshot_script: Script,
    /// The projects this instance has subscribers for, shared with the reader.
    projects: Mutex<HashMap<ProjectId, Arc<ProjectFeed>>>,
    /// Coalescing state per project: an async mutex, because the append that a decision
    /// leads to is a Redis call, and a project's appends must leave in decision order.
    coalescers: Mutex<HashMap<ProjectId, Arc<tokio::sync::Mutex<Coalescer>>>>,
    /// Coalescing windows to close.
    timers: WindowTimers<ProjectId>,
    /// Wakes the reader when a project gets its first subscriber.
    reader_wake: Notify,
    /// The reader connection's `CLIENT ID`, so a new project can unblock its `XREAD`.
    reader_client: Mutex<Option<i64>>,
    /// Ended sessions, as the subscription to [`SESSION_CHANNEL`] hears them.
    session_news: broadcast::Sender<SessionNews>,
}

/// A project's live frames on this instance.
struct ProjectFeed {
    /// Live frames; a receiver more than `subscriber_backlog` behind lags and resyncs.
    live: broadcast::Sender<Live>,
    /// Becomes true once the reader follows the project's stream.
    following: watch::Sender<bool>,
}

/// What the snapshot script returned.
struct Snapshot {
    epoch: String,
    last_seq: u64,
    entries: Vec<Entry>,
}

impl RedisEventBus {
    /// Connects to Redis at `url` and starts the reader and window closer on `tasks`, until
    /// `shutdown`.
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] when the URL is unusable or Redis cannot be reached.
    pub async fn connect(
        url: &str,
        config: EventsConfig,
        metrics: Arc<Metrics>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, BusError> {
        let client = Client::open(url).map_err(unavailable)?;
        let commands = deadline(ConnectionManager::new(client.clone())).await?;
        let inner = Arc::new(Inner {
            config,
            metrics,
            commands,
            publish_script: Script::new(PUBLISH_SCRIPT),
            snapshot_script: Script::new(SNAPSHOT_SCRIPT),
            projects: Mutex::new(HashMap::new()),
            coalescers: Mutex::new(HashMap::new()),
            timers: WindowTimers::new(),
            reader_wake: Notify::new(),
            reader_client: Mutex::new(None),
            session_news: broadcast::channel(SESSION_NEWS_BACKLOG).0,
        });
        tasks.spawn(hear_session_news(
            inner.clone(),
            client.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(read_streams(inner.clone(), client, shutdown.clone()));
        if !inner.config.coalesce_window.is_zero() {
            tasks.spawn(close_windows(inner.clone(), shutdown.clone()));
        }
        tasks.spawn(forget_idle_coalescers(inner.clone(), shutdown));
        Ok(Self { inner })
    }
}

/// Forgets, every half `PROJECT_IDLE_SECS`, the coalescers nobody holds and no window needs,
/// so this instance's memory follows the projects in use (the history lives in Redis).
async fn forget_idle_coalescers(inner: Arc<Inner>, shutdown: CancellationToken) {
    let mut sweeps = tokio::time::interval(inner.config.project_idle / 2);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = sweeps.tick() => {
                // Under the map's lock nobody can take a new handle to a coalescer, so one
                // only the map holds, and idle, can go.
                inner
                    .coalescers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|_, coalescer| {
                        Arc::strong_count(coalescer) > 1
                            || coalescer.try_lock().map_or(true, |state| !state.is_idle())
                    });
            }
        }
    }
}

impl Inner {
    fn coalescer(&self, project: &ProjectId) -> Arc<tokio::sync::Mutex<Coalescer>> {
        self.coalescers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(project.clone())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Coalescer::new(
                    self.config.coalesce_window,
                )))
            })
            .clone()
    }

    /// Serializes `outgoing` once and appends it to its project's stream.
    async fn append(&self, outgoing: Outgoing) -> Result<EventId, BusError> {
        let project = outgoing.event.project_id.clone();
        let event_type = outgoing.event.event_type;
        let origins: Vec<String> = outgoing
            .event
            .origins
            .iter()
            .map(ToString::to_string)
            .collect();
        let payload = outgoing.event.into_event(timestamp());
        let json = serde_json::to_string(&payload)
            .expect("an event is strings, numbers and JSON values, which always serialize");
        // The id line is written by the script, once the sequence is known.
        let frame_rest = SseFrame::new(event_type.as_str(), json).encode();
        let mut commands = self.commands.clone();
        let (epoch, seq): (String, u64) = deadline(
            self.publish_script
                .key(EPOCH_KEY)
                .key(seq_key(&project))
                .key(stream_key(&project))
                .arg(new_epoch())
                .arg(self.config.retain_events.max(1))
                .arg(frame_rest)
                .arg(unix_micros(SystemTime::now()))
                .arg(origins.join(","))
                .invoke_async(&mut commands),
        )
        .await?;
        self.metrics.event_published();
        let id = EventId { epoch, seq };
        if let Some(waiters) = outgoing.waiters {
            waiters.send_replace(Some(id.clone()));
        }
        Ok(id)
    }

    /// Appends `outgoing`, logging a failure: its publishers learn of it when their
    /// watch closes, and the streams resync once Redis is back.
    async fn append_pending(&self, outgoing: Outgoing) {
        if let Err(error) = self.append(outgoing).await {
            tracing::warn!(%error, "a coalesced update could not be published");
        }
    }

    async fn snapshot(
        &self,
        project: &ProjectId,
        resume: Option<&EventId>,
    ) -> Result<Snapshot, BusError> {
        let mut commands = self.commands.clone();
        let (epoch, last_seq, entries): (String, u64, Vec<Entry>) = deadline(
            self.snapshot_script
                .key(EPOCH_KEY)
                .key(seq_key(project))
                .key(stream_key(project))
                .arg(new_epoch())
                .arg(resume.map_or("", |id| id.epoch.as_str()))
                .arg(resume.map_or(0, |id| id.seq))
                .arg(self.config.retain_events.max(1))
                .invoke_async(&mut commands),
        )
        .await?;
        Ok(Snapshot {
            epoch,
            last_seq,
            entries,
        })
    }

    /// The feed of `project`, and whether the reader already follows it.
    fn feed(&self, project: &ProjectId) -> (broadcast::Receiver<Live>, watch::Receiver<bool>) {
        let mut projects = self.projects.lock().unwrap_or_else(PoisonError::into_inner);
        let feed = projects.entry(project.clone()).or_insert_with(|| {
            Arc::new(ProjectFeed {
                live: broadcast::channel(self.config.subscriber_backlog).0,
                following: watch::channel(false).0,
            })
        });
        (feed.live.subscribe(), feed.following.subscribe())
    }

    /// Makes the reader follow `project` and waits until it does.
    async fn follow(&self, mut following: watch::Receiver<bool>) -> Result<(), BusError> {
        if *following.borrow() {
            return Ok(());
        }
        self.reader_wake.notify_one();
        let reader_client = *self
            .reader_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client_id) = reader_client {
            let mut commands = self.commands.clone();
            let _: i64 = deadline(
                redis::cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(client_id)
                    .query_async(&mut commands),
            )
            .await?;
        }
        match tokio::time::timeout(CALL_LIMIT + READ_BLOCK, following.wait_for(|on| *on)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(BusError::Closed),
            Err(_) => Err(BusError::Unavailable(
                "the redis reader did not pick the project up".into(),
            )),
        }
    }
}

/// Subscribes to [`SESSION_CHANNEL`] and passes what it hears to this instance's listeners;
/// after every (re)connection it says news may have been lost, since the channel keeps
/// nothing for a subscriber that was away.
async fn hear_session_news(inner: Arc<Inner>, client: Client, shutdown: CancellationToken) {
    loop {
        let heard = tokio::select! {
            () = shutdown.cancelled() => return,
            heard = hear_until_lost(&inner, &client) => heard,
        };
        if let Err(error) = heard {
            tracing::warn!(%error, "the redis session news were lost; retrying");
        }
        let _ = inner.session_news.send(SessionNews::Lost);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}

async fn hear_until_lost(inner: &Inner, client: &Client) -> Result<(), BusError> {
    use futures_util::StreamExt;

    let mut pubsub = deadline(client.get_async_pubsub()).await?;
    deadline(pubsub.subscribe(SESSION_CHANNEL)).await?;
    let _ = inner.session_news.send(SessionNews::Lost);
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        if let Ok(sid) = message.get_payload::<String>() {
            let _ = inner.session_news.send(SessionNews::Ended(sid.into()));
        }
    }
    Err(BusError::Unavailable("the session channel closed".into()))
}

/// The reader: follows the streams of every project with local subscribers and fans their
/// frames out; reconnects after errors and resyncs everyone when the history changed.
async fn read_streams(inner: Arc<Inner>, client: Client, shutdown: CancellationToken) {
    let mut reader = Reader {
        inner,
        epoch: None,
        positions: HashMap::new(),
        lost_redis: false,
    };
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = reader.run(&client) => outcome,
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "the redis event reader lost redis; retrying");
            reader.lost_redis = true;
        }
        *reader
            .inner
            .reader_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
        }
    }
}

struct Reader {
    inner: Arc<Inner>,
    /// The history the positions belong to.
    epoch: Option<String>,
    /// Per followed project, the last sequence fanned out.
    positions: HashMap<ProjectId, u64>,
    /// Redis was out of reach since the last check: publishes may have failed meanwhile,
    /// so the streams are told to resync even when the history survived.
    lost_redis: bool,
}

impl Reader {
    /// Reads until an error; a new connection per call of this, so a lost Redis is retried.
    async fn run(&mut self, client: &Client) -> Result<(), BusError> {
        let mut connection = deadline(client.get_multiplexed_async_connection()).await?;
        let client_id: i64 =
            deadline(redis::cmd("CLIENT").arg("ID").query_async(&mut connection)).await?;
        *self
            .inner
            .reader_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(client_id);
        loop {
            self.check_epoch(&mut connection).await?;
            self.follow_new_projects(&mut connection).await?;
            if self.positions.is_empty() {
                self.inner.reader_wake.notified().await;
                continue;
            }
            self.read_once(&mut connection).await?;
        }
    }

    /// Resyncs every subscriber when the epoch is not the one the positions belong to (and
    /// then restarts every project at sequence 0), or when Redis was out of reach.
    async fn check_epoch(
        &mut self,
        connection: &mut MultiplexedConnection,
    ) -> Result<(), BusError> {
        // A new candidate each time: a lost history must never come back under its old name.
        let candidate = new_epoch();
        let epoch: String = deadline(
            redis::cmd("SET")
                .arg(EPOCH_KEY)
                .arg(&candidate)
                .arg("NX")
                .arg("GET")
                .query_async::<Option<String>>(connection),
        )
        .await?
        .unwrap_or(candidate);
        let lost_redis = std::mem::take(&mut self.lost_redis);
        let reset = self
            .epoch
            .as_deref()
            .is_some_and(|known| known != epoch.as_str());
        let reason = if reset {
            tracing::warn!(%epoch, "the redis event history was reset; streams resync");
            "the event history was reset"
        } else if lost_redis {
            tracing::info!("the redis event reader is back; streams resync");
            "events may have been lost while redis was out of reach"
        } else {
            self.epoch = Some(epoch);
            return Ok(());
        };
        let projects = self
            .inner
            .projects
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (project, position) in &mut self.positions {
            if reset {
                *position = 0;
            }
            if let Some(feed) = projects.get(project) {
                let _ = feed.live.send(Live::Resync(reason));
            }
        }
        drop(projects);
        self.epoch = Some(epoch);
        Ok(())
    }

    /// Starts following the projects that got subscribers, from their current sequence, and
    /// stops following those that lost them all.
    async fn follow_new_projects(
        &mut self,
        connection: &mut MultiplexedConnection,
    ) -> Result<(), BusError> {
        let new: Vec<(ProjectId, Arc<ProjectFeed>)> = {
            let mut projects = self
                .inner
                .projects
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            projects.retain(|project, feed| {
                let keep = feed.live.receiver_count() > 0;
                if !keep {
                    self.positions.remove(project);
                }
                keep
            });
            projects
                .iter()
                .filter(|(_, feed)| !*feed.following.borrow())
                .map(|(project, feed)| (project.clone(), feed.clone()))
                .collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        let mut get = redis::cmd("MGET");
        for (project, _) in &new {
            get.arg(seq_key(project));
        }
        let seqs: Vec<Option<u64>> = deadline(get.query_async(connection)).await?;
        for ((project, feed), seq) in new.into_iter().zip(seqs) {
            self.positions.insert(project, seq.unwrap_or(0));
            feed.following.send_replace(true);
        }
        Ok(())
    }

    /// One `XREAD` over the followed streams; fans out what it returns.
    async fn read_once(&mut self, connection: &mut MultiplexedConnection) -> Result<(), BusError> {
        let projects: Vec<(ProjectId, u64)> = self
            .positions
            .iter()
            .map(|(project, seq)| (project.clone(), *seq))
            .collect();
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(READ_BLOCK.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS");
        for (project, _) in &projects {
            read.arg(stream_key(project));
        }
        for (_, seq) in &projects {
            read.arg(format!("{seq}-0"));
        }
        let reply: Option<Vec<(String, Vec<Entry>)>> =
            bounded(CALL_LIMIT + READ_BLOCK, read.query_async(connection)).await?;
        let keys: HashMap<String, &ProjectId> = projects
            .iter()
            .map(|(project, _)| (stream_key(project), project))
            .collect();
        let feeds = self
            .inner
            .projects
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (key, entries) in reply.unwrap_or_default() {
            let Some(project) = keys.get(&key) else {
                continue;
            };
            let Some(feed) = feeds.get(*project) else {
                continue;
            };
            for (entry_id, fields) in entries {
                let Some(frame) = frame_of(&entry_id, fields) else {
                    tracing::warn!(%key, %entry_id, "skipping a malformed stream entry");
                    continue;
                };
                self.positions.insert((*project).clone(), frame.seq);
                // An error only means nobody listens right now.
                let _ = feed.live.send(Live::Frame(frame));
            }
        }
        Ok(())
    }
}

/// The window closer: sleeps until the first window is due, closes what is due, repeats; at
/// shutdown it sends every pending update, so no publisher waits for ever.
async fn close_windows(inner: Arc<Inner>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                let coalescers: Vec<_> = inner
                    .coalescers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .cloned()
                    .collect();
                for coalescer in coalescers {
                    let mut coalescer = coalescer.lock().await;
                    for outgoing in coalescer.shut_down() {
                        inner.append_pending(outgoing).await;
                    }
                }
                return;
            }
            () = inner.timers.wait() => close_due_windows(&inner, Instant::now()).await,
        }
    }
}

/// Closes every window due by `now`, sending what was pending in it.
async fn close_due_windows(inner: &Inner, now: Instant) {
    loop {
        let Some(timer) = inner.timers.pop_due(now) else {
            return;
        };
        let coalescer = inner.coalescer(&timer.project);
        let mut coalescer = coalescer.lock().await;
        if let Some((outgoing, next_due)) = coalescer.close_window(&timer.key, timer.due, now) {
            inner.append_pending(outgoing).await;
            drop(coalescer);
            inner.timers.push(WindowTimer {
                due: next_due,
                ..timer
            });
        }
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish_nowait(&self, event: NewEvent) -> Result<Publication, BusError> {
        let inner = &self.inner;
        let project = event.project_id.clone();
        let coalescer = inner.coalescer(&project);
        let mut coalescer = coalescer.lock().await;
        match coalescer.offer(event, Instant::now()) {
            Offer::Send {
                flushed,
                event,
                window,
            } => {
                for outgoing in flushed {
                    inner.append_pending(outgoing).await;
                }
                let id = inner
                    .append(Outgoing {
                        event,
                        waiters: None,
                    })
                    .await?;
                drop(coalescer);
                if let Some((key, due)) = window {
                    inner.timers.push(WindowTimer { due, project, key });
                }
                Ok(Publication::Sent(id))
            }
            Offer::Merged(receiver) => {
                inner.metrics.event_coalesced();
                Ok(Publication::Merged(receiver))
            }
        }
    }

    async fn subscribe(
        &self,
        project: &ProjectId,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let (live, following) = self.inner.feed(project);
        self.inner.follow(following).await?;
        let resume = match last_event_id.map(str::parse::<EventId>) {
            None => None,
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => {
                let snapshot = self.inner.snapshot(project, None).await?;
                return Ok(Subscription::new(
                    Some("the Last-Event-ID is not an id of this server"),
                    Vec::new(),
                    live,
                    snapshot.last_seq,
                ));
            }
        };
        let snapshot = self.inner.snapshot(project, resume.as_ref()).await?;
        let last_seq = snapshot.last_seq;
        let retain = u64::try_from(self.inner.config.retain_events.max(1)).unwrap_or(u64::MAX);
        let subscription = match resume.map(|id| replay(&snapshot, &id, retain)) {
            None => Subscription::new(None, Vec::new(), live, last_seq),
            Some(Ok(frames)) => Subscription::new(None, frames, live, last_seq),
            Some(Err(reason)) => Subscription::new(Some(reason), Vec::new(), live, last_seq),
        };
        Ok(subscription)
    }

    async fn last_event_id(&self, project: &ProjectId) -> Result<EventId, BusError> {
        let snapshot = self.inner.snapshot(project, None).await?;
        Ok(EventId {
            epoch: snapshot.epoch,
            seq: snapshot.last_seq,
        })
    }

    /// The `o` fields of the project's last `RETAIN_EVENTS` entries: an outbox row is
    /// published, and then deleted, before many more events of its project follow.
    async fn published_origins(&self, project: &ProjectId) -> Result<HashSet<i64>, BusError> {
        let mut commands = self.inner.commands.clone();
        let entries: Vec<Entry> = deadline(
            redis::cmd("XREVRANGE")
                .arg(stream_key(project))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(self.inner.config.retain_events.max(1))
                .query_async(&mut commands),
        )
        .await?;
        Ok(entries
            .iter()
            .flat_map(|(_, fields)| origins_of(fields))
            .collect())
    }

    fn resync_local(&self, project: &ProjectId, reason: &'static str) {
        let feeds = self
            .inner
            .projects
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = feeds.get(project) {
            // An error only means nobody listens right now.
            let _ = feed.live.send(Live::Resync(reason));
        }
    }

    async fn announce_session_end(&self, sid: &str) -> Result<(), BusError> {
        let mut commands = self.inner.commands.clone();
        let _: i64 = deadline(
            redis::cmd("PUBLISH")
                .arg(SESSION_CHANNEL)
                .arg(sid)
                .query_async(&mut commands),
        )
        .await?;
        Ok(())
    }

    fn session_news(&self) -> broadcast::Receiver<SessionNews> {
        self.inner.session_news.subscribe()
    }
}

/// The outbox rows named by the `o` field of an entry's field list.
fn origins_of(fields: &[Vec<u8>]) -> Vec<i64> {
    fields
        .chunks_exact(2)
        .filter(|pair| pair[0] == b"o")
        .flat_map(|pair| {
            std::str::from_utf8(&pair[1])
                .unwrap_or_default()
                .split(',')
                .filter_map(|origin| origin.parse().ok())
                .collect::<Vec<i64>>()
        })
        .collect()
}

/// The frames a stream resuming after `id` replays from `snapshot`, or why it must resync.
///
/// `MAXLEN ~` trims lazily, so the stream may hold more than `retain` entries; a resume
/// reaches back `retain` events, as on the in-memory bus, whatever Redis still holds.
fn replay(
    snapshot: &Snapshot,
    id: &EventId,
    retain: u64,
) -> Result<Vec<crate::events::Frame>, &'static str> {
    if id.epoch != snapshot.epoch {
        return Err("the event history was reset since the Last-Event-ID");
    }
    if id.seq > snapshot.last_seq {
        return Err("the Last-Event-ID is ahead of the event history");
    }
    if snapshot.last_seq - id.seq > retain {
        return Err("the Last-Event-ID is older than the retained history");
    }
    let frames: Vec<crate::events::Frame> = snapshot
        .entries
        .iter()
        .filter_map(|(entry_id, fields)| frame_of(entry_id, fields.clone()))
        .filter(|frame| frame.seq <= snapshot.last_seq)
        .collect();
    let expected = snapshot.last_seq - id.seq;
    let complete = frames.len() as u64 == expected
        && frames.first().is_none_or(|frame| frame.seq == id.seq + 1);
    if !complete {
        return Err("the Last-Event-ID is older than the retained history");
    }
    Ok(frames)
}

/// The frame of a stream entry `<seq>-0` whose fields are `f`, the frame bytes, and `t`, when
/// it was published (Unix microseconds).
fn frame_of(entry_id: &str, fields: Vec<Vec<u8>>) -> Option<crate::events::Frame> {
    let seq = entry_id.strip_suffix("-0")?.parse().ok()?;
    let mut bytes = None;
    let mut sent_at = None;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name.as_slice() {
            b"f" => bytes = Some(value),
            b"t" => {
                sent_at = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|t| t.parse().ok())
            }
            _ => {}
        }
    }
    Some(crate::events::Frame {
        seq,
        published_at: instant_of(sent_at, SystemTime::now(), Instant::now()),
        bytes: Bytes::from(bytes?),
    })
}

/// The instant at which an event sent at `sent_at` (Unix microseconds, by the publishing
/// instance's clock) was published, given that `now` is `wall_now`. A clock ahead of ours
/// counts as no delay; an unknown time as now.
fn instant_of(sent_at: Option<u64>, wall_now: SystemTime, now: Instant) -> Instant {
    let age = sent_at
        .and_then(|sent_at| unix_micros(wall_now).checked_sub(sent_at))
        .map_or(Duration::ZERO, Duration::from_micros);
    now.checked_sub(age).unwrap_or(now)
}

fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
    })
}

fn seq_key(project: &ProjectId) -> String {
    format!("docpulse:{{{project}}}:seq")
}

fn stream_key(project: &ProjectId) -> String {
    format!("docpulse:{{{project}}}:events")
}

fn unavailable(error: redis::RedisError) -> BusError {
    BusError::Unavailable(Box::new(error))
}

/// `call` within [`CALL_LIMIT`].
async fn deadline<T>(call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, BusError> {
    bounded(CALL_LIMIT, call).await
}

/// `call` within `limit`; a late or failed call is [`BusError::Unavailable`].
async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(BusError::Unavailable("redis did not answer in time".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        (
            format!("{seq}-0"),
            vec![b"f".to_vec(), format!("id: ep:{seq}\n\n").into_bytes()],
        )
    }

    fn snapshot(last_seq: u64, retained: impl Iterator<Item = u64>, after: u64) -> Snapshot {
        Snapshot {
            epoch: "ep".to_owned(),
            last_seq,
            entries: retained.filter(|seq| *seq > after).map(entry).collect(),
        }
    }

    #[track_caller]
    fn check(snapshot: &Snapshot, last_event_id: &str, expected: Option<&[u64]>) {
        let id: EventId = last_event_id.parse().expect("an id");
        let seqs = replay(snapshot, &id, 6)
            .ok()
            .map(|frames| frames.iter().map(|frame| frame.seq).collect::<Vec<_>>());
        assert_eq!(seqs.as_deref(), expected, "{last_event_id}");
    }

    #[test]
    fn replays_exactly_the_retained_entries_after_the_id() {
        check(&snapshot(10, 5..=10, 6), "ep:6", Some(&[7, 8, 9, 10]));
        check(&snapshot(10, 5..=10, 10), "ep:10", Some(&[]));
        check(&snapshot(10, 5..=10, 4), "ep:4", Some(&[5, 6, 7, 8, 9, 10]));
        check(&snapshot(0, std::iter::empty(), 0), "ep:0", Some(&[]));
    }

    #[test]
    fn resyncs_trimmed_foreign_or_future_ids() {
        check(&snapshot(10, 5..=10, 2), "ep:2", None);
        check(&snapshot(10, 1..=10, 3), "ep:3", None);
        check(&snapshot(10, 5..=10, 8), "other:8", None);
        check(&snapshot(10, 5..=10, 11), "ep:11", None);
        check(&snapshot(10, std::iter::empty(), 7), "ep:7", None);
        check(&snapshot(10, 8..=10, 5), "ep:5", None);
    }

    #[test]
    fn a_frame_is_as_old_as_its_publisher_says() {
        let wall_now = UNIX_EPOCH + Duration::from_secs(1_000);
        let now = Instant::now();
        let sent = Some(1_000_000_000 - 2_500);

        assert_eq!(
            now - instant_of(sent, wall_now, now),
            Duration::from_micros(2_500)
        );
        assert_eq!(
            instant_of(Some(2_000_000_000), wall_now, now),
            now,
            "a clock ahead"
        );
        assert_eq!(instant_of(None, wall_now, now), now);

        let two_seconds_ago = unix_micros(SystemTime::now()) - 2_000_000;
        let mut fields = entry(7).1;
        fields.extend([b"t".to_vec(), two_seconds_ago.to_string().into_bytes()]);
        let frame = frame_of("7-0", fields).expect("a frame with its publish time");
        assert!(frame.published_at.elapsed() >= Duration::from_secs(2));
    }

    #[test]
    fn frames_come_from_well_formed_entries_only() {
        assert_eq!(frame_of("7-0", entry(7).1).map(|frame| frame.seq), Some(7));
        assert!(frame_of("7-1", entry(7).1).is_none());
        assert!(frame_of("x-0", entry(7).1).is_none());
        assert!(frame_of("7-0", vec![b"g".to_vec(), Vec::new()]).is_none());
    }

    #[test]
    fn an_entry_names_the_outbox_rows_it_announces() {
        let fields = |origins: &str| {
            vec![
                b"f".to_vec(),
                b"id: e:1\n".to_vec(),
                b"o".to_vec(),
                origins.as_bytes().to_vec(),
            ]
        };
        assert_eq!(origins_of(&fields("7,8,12")), [7, 8, 12]);
        assert!(origins_of(&fields("")).is_empty());
        assert!(
            origins_of(&entry(7).1).is_empty(),
            "an entry of a publisher"
        );
    }
}
