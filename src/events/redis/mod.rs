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
//!
//! Modules: [`scripts`] (the Lua scripts: append, snapshot), [`reader`] (the `XREAD` task),
//! [`entries`] (what a stream entry holds; replay), [`sessions`] (ended sessions' channel).
//! Publishing goes through the shared [`CoalescingPublisher`], which appends with
//! [`scripts`]'s publish script.

mod entries;
mod reader;
mod scripts;
mod sessions;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Client, Script};
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::{EventId, ProjectId};

use self::entries::Entry;
use self::reader::READ_BLOCK;
use crate::config::EventsConfig;
use crate::events::publisher::CoalescingPublisher;
use crate::events::{
    BusError, EventBus, Live, Publish, SESSION_NEWS_BACKLOG, SessionNews, Subscription,
};
use crate::metrics::Metrics;

/// How long any Redis command may take before the bus reports Redis unavailable.
const CALL_LIMIT: Duration = Duration::from_secs(2);

/// The pause before the reader, or the sessions' listener, tries a lost Redis again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// The key naming the current history.
const EPOCH_KEY: &str = "docpulse:epoch";

/// The Redis event bus; cheap to clone.
#[derive(Clone)]
pub struct RedisEventBus {
    inner: Arc<Inner>,
    publisher: Arc<CoalescingPublisher<Inner>>,
}

struct Inner {
    config: EventsConfig,
    /// Commands (publish, snapshot, `CLIENT UNBLOCK`); reconnects on its own.
    commands: ConnectionManager,
    publish_script: Script,
    snapshot_script: Script,
    /// The projects this instance has subscribers for, shared with the reader.
    projects: Mutex<HashMap<ProjectId, Arc<ProjectFeed>>>,
    /// Wakes the reader when a project gets its first subscriber.
    reader_wake: Notify,
    /// The reader connection's `CLIENT ID`, so a new project can unblock its `XREAD`.
    reader_client: Mutex<Option<i64>>,
    /// Ended sessions, as the subscription to [`sessions::SESSION_CHANNEL`] hears them.
    session_news: broadcast::Sender<SessionNews>,
}

/// A project's live frames on this instance.
struct ProjectFeed {
    /// Live frames; a receiver more than `subscriber_backlog` behind lags and resyncs.
    live: broadcast::Sender<Live>,
    /// Becomes true once the reader follows the project's stream.
    following: watch::Sender<bool>,
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
            commands,
            publish_script: Script::new(scripts::PUBLISH_SCRIPT),
            snapshot_script: Script::new(scripts::SNAPSHOT_SCRIPT),
            projects: Mutex::new(HashMap::new()),
            reader_wake: Notify::new(),
            reader_client: Mutex::new(None),
            session_news: broadcast::channel(SESSION_NEWS_BACKLOG).0,
        });
        tasks.spawn(sessions::hear_session_news(
            inner.clone(),
            client.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(reader::read_streams(
            inner.clone(),
            client,
            shutdown.clone(),
        ));
        let publisher =
            CoalescingPublisher::start(inner.clone(), &inner.config, metrics, tasks, &shutdown);
        Ok(Self { inner, publisher })
    }
}

impl Inner {
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

#[async_trait]
impl EventBus for RedisEventBus {
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
        let subscription = match resume.map(|id| entries::replay(&snapshot, &id, retain)) {
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
        let retained: Vec<Entry> = deadline(
            redis::cmd("XREVRANGE")
                .arg(stream_key(project))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(self.inner.config.retain_events.max(1))
                .query_async(&mut commands),
        )
        .await?;
        Ok(retained
            .iter()
            .flat_map(|(_, fields)| entries::origins_of(fields))
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
                .arg(sessions::SESSION_CHANNEL)
                .arg(sid)
                .query_async(&mut commands),
        )
        .await?;
        Ok(())
    }

    fn session_news(&self) -> broadcast::Receiver<SessionNews> {
        self.inner.session_news.subscribe()
    }

    fn publisher(&self) -> &dyn Publish {
        &*self.publisher
    }
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
