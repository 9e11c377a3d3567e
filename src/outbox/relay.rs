//! [`Relay`]: publishes this instance's outbox rows on the event bus and deletes them, keeps
//! its lease, adopts the rows of dead instances, and sends `resync` to the streams of projects
//! whose announcements are late.
//!
//! A round reads the instance's rows in order after a cursor and offers each to the bus
//! without waiting (coalescing may hold an update back for its window); a row is deleted
//! once the event that carries it went out. Rows become visible in id order (on PostgreSQL
//! the writers take a lock from their insert to their commit: see
//! [`crate::storage::outbox::insert`]), so the cursor passes no row still to come; rows
//! offered again after a failure, taken over from another instance or left waiting are
//! behind it, so at least every [`SWEEP_INTERVAL`] a round reads from the start instead,
//! skipping the rows already offered. When the bus fails, the relay cannot know whether the
//! failing append took effect: it offers again every row not known to be out, once it has
//! asked the bus which of them its history announces.
//!
//! **Invariant:** a project's rows are offered in id order across instances: a row waits
//! while an older row of its project belongs to another owner, which is how the rows of a
//! killed instance, adopted only when its lease runs out, still go out before the newer rows
//! of the instance that took its work over.
//! **Invariant:** a row is deleted only after the bus appended an event that names it.
//! **Invariant:** rows taken over (adopted, or after a failure) are checked against the bus's
//! history before they are offered, so a row is announced once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::{NewEvent, ProjectId};

use crate::clock::{millis, unix_millis};
use crate::events::{BusError, EventBus, Publication};
use crate::outbox::Outbox;
use crate::storage::{Pool, outbox};

/// Rows read per query.
const BATCH: i64 = 256;
/// How soon the relay looks again at events that coalescing held back.
const SETTLE_PAUSE: Duration = Duration::from_millis(20);
/// How soon the relay looks again at rows that wait for another instance's older rows.
const WAIT_PAUSE: Duration = Duration::from_millis(100);
/// The longest time between two sweeps that read the outbox from the start.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// How long published rows may wait to be deleted together: on SQLite a delete is a write
/// that the workers' transactions queue behind, so one per published row halved their pace.
const DELETE_PAUSE: Duration = Duration::from_millis(50);
/// The longest time between two looks at leases, orphans and late projects.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The pause after a failed round before the next.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What a [`Relay`] needs to know.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// How long this instance's rows stay its own without news (`JOB_LEASE_SECS`).
    pub lease: Duration,
    /// Age of an unpublished row past which its project's streams resync (`OUTBOX_LATE_SECS`).
    pub late_after: Duration,
}

/// Why a round stopped early.
enum Stop {
    /// The bus is shutting down.
    Closed,
    /// The bus or the database failed; try again after a pause.
    Failed,
}

/// The relay of one instance.
pub struct Relay {
    pool: Pool,
    event_bus: Arc<dyn EventBus>,
    outbox: Outbox,
    config: RelayConfig,
    /// The highest row offered with none before it left to offer: most rounds read after it.
    cursor: i64,
    /// A sweep must read from the start (after a failure, a takeover, or rows that wait).
    sweep_now: bool,
    /// When the last sweep read from the start.
    last_sweep: tokio::time::Instant,
    /// Rows were committed since the last sweep: one is due even if nothing else happens.
    unswept: bool,
    /// Rows offered whose events have not gone out yet, in order; at most [`BATCH`].
    in_flight: VecDeque<(i64, Publication)>,
    /// Rows whose events went out, to delete (at most [`BATCH`], or after [`DELETE_PAUSE`]).
    published: Vec<i64>,
    /// When published rows were last deleted.
    last_delete: tokio::time::Instant,
    /// While rows are taken over, what the bus's history announces, per project (asked once
    /// per project); `None` once the relay has caught up.
    bus_check: Option<HashMap<String, HashSet<i64>>>,
    /// Projects whose streams were told to resync for late announcements, until on time.
    late: HashSet<String>,
    /// Some rows wait for another owner's: look again soon.
    waiting: bool,
}

impl Relay {
    /// Registers this instance's lease, so that its rows are its own from the first write.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn register(pool: &Pool, outbox: &Outbox, config: RelayConfig) -> sqlx::Result<()> {
        outbox::renew_owner(pool, outbox.owner(), config.lease).await
    }

    /// Starts the relay on `tasks`, until `shutdown`.
    pub fn start(
        pool: Pool,
        event_bus: Arc<dyn EventBus>,
        outbox: Outbox,
        config: RelayConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        let relay = Self {
            pool,
            event_bus,
            outbox,
            config,
            cursor: 0,
            sweep_now: true,
            last_sweep: tokio::time::Instant::now(),
            unswept: false,
            in_flight: VecDeque::new(),
            published: Vec::new(),
            last_delete: tokio::time::Instant::now(),
            // Rows left by an earlier run of this instance were adopted, not written by it.
            bus_check: Some(HashMap::new()),
            late: HashSet::new(),
            waiting: false,
        };
        tasks.spawn(relay.run(shutdown));
    }

    async fn run(mut self, shutdown: CancellationToken) {
        // Often enough to renew the lease, and to take over a stopped instance's rows soon.
        let mut upkeep = tokio::time::interval((self.config.lease / 3).min(UPKEEP_INTERVAL));
        let wake = self.outbox.wake.clone();
        loop {
            let look_again = if !self.in_flight.is_empty() {
                SETTLE_PAUSE
            } else if !self.published.is_empty() {
                DELETE_PAUSE
            } else {
                WAIT_PAUSE
            };
            // Rows the cursor passed are swept up even when nothing else wakes the relay.
            let settling = !self.in_flight.is_empty()
                || !self.published.is_empty()
                || self.waiting
                || self.unswept;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = upkeep.tick() => self.keep_up().await,
                () = wake.notified() => self.unswept = true,
                () = tokio::time::sleep(look_again), if settling => {}
            }
            match self.round().await {
                Ok(()) => {}
                Err(Stop::Closed) => break,
                Err(Stop::Failed) => {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
        if let Err(error) = outbox::delete(&self.pool, self.outbox.owner(), &self.published).await {
            tracing::warn!(%error, "cannot delete published outbox rows at shutdown");
        }
        // What is left is adopted at the next start at once, not when the lease runs out.
        if let Err(error) = outbox::release_owner(&self.pool, self.outbox.owner()).await {
            tracing::warn!(%error, "cannot give the outbox back at shutdown");
        }
    }

    /// Renews the lease, adopts the rows of dead instances and resyncs late projects.
    async fn keep_up(&mut self) {
        let owner = self.outbox.owner();
        if let Err(error) = outbox::renew_owner(&self.pool, owner, self.config.lease).await {
            tracing::warn!(%error, "cannot renew the outbox lease");
        }
        match outbox::adopt_orphans(&self.pool, owner).await {
            Ok(0) => {}
            Ok(adopted) => {
                tracing::info!(adopted, "took over the outbox rows of a stopped instance");
                // They may be older than the cursor, and partly published already.
                self.bus_check = Some(HashMap::new());
                self.sweep_now = true;
            }
            Err(error) => tracing::warn!(%error, "cannot adopt outbox rows"),
        }
        let before = unix_millis().saturating_sub(millis(self.config.late_after));
        match outbox::late_projects(&self.pool, before).await {
            Ok(projects) => {
                let now_late: HashSet<String> = projects.into_iter().collect();
                for project in now_late.difference(&self.late) {
                    if let Ok(project) = project.parse::<ProjectId>() {
                        tracing::warn!(%project, "announcements are late; its streams resync");
                        self.event_bus.resync_local(
                            &project,
                            "announcements of this project are late; refetch",
                        );
                    }
                }
                self.late = now_late;
            }
            Err(error) => tracing::warn!(%error, "cannot look for late announcements"),
        }
    }

    /// Publishes and deletes rows until none is left to offer or something fails.
    async fn round(&mut self) -> Result<(), Stop> {
        loop {
            self.settle();
            let due = self.last_delete.elapsed() >= DELETE_PAUSE;
            if self.published.len() >= BATCH as usize || (due && !self.published.is_empty()) {
                outbox::delete(&self.pool, self.outbox.owner(), &self.published)
                    .await
                    .map_err(|error| failed("cannot delete published outbox rows", &error))?;
                self.published.clear();
                self.last_delete = tokio::time::Instant::now();
            }
            let room = BATCH - self.in_flight.len() as i64;
            if room <= 0 {
                // Coalescing holds enough back; the next settle makes room.
                return Ok(());
            }
            // Most rounds read only the rows after the cursor. A sweep reads from the start,
            // past the rows in flight and those published but not deleted yet, to find rows
            // the cursor passed: rows offered again after a failure, rows taken over, and rows
            // that waited.
            let sweep = self.sweep_now || self.last_sweep.elapsed() >= SWEEP_INTERVAL;
            let (after, limit) = if sweep {
                let known = self.in_flight.len() + self.published.len();
                (0, room + known as i64)
            } else {
                (self.cursor, room)
            };
            let rows = outbox::pending(&self.pool, self.outbox.owner(), after, limit)
                .await
                .map_err(|error| failed("cannot read the outbox", &error))?;
            if sweep {
                self.sweep_now = false;
                self.unswept = false;
                self.last_sweep = tokio::time::Instant::now();
            }
            let known: HashSet<i64> = self
                .in_flight
                .iter()
                .map(|(id, _)| *id)
                .chain(self.published.iter().copied())
                .collect();
            let mut offered = 0;
            let mut waiting: HashSet<String> = HashSet::new();
            for row in rows {
                if known.contains(&row.id) {
                    if waiting.is_empty() {
                        self.cursor = self.cursor.max(row.id);
                    }
                    continue;
                }
                // A row waits for another instance's older row of its project; the cursor
                // stays before it, and the sweeps find it again.
                if row.waits != 0 {
                    waiting.insert(row.project_id);
                    continue;
                }
                offered += 1;
                if waiting.is_empty() {
                    self.cursor = self.cursor.max(row.id);
                }
                if self.already_published(&row).await? {
                    self.published.push(row.id);
                    continue;
                }
                let mut event: NewEvent = match serde_json::from_str(&row.event) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::error!(%error, id = row.id, "an outbox row is not an event; dropped");
                        self.published.push(row.id);
                        continue;
                    }
                };
                event.origins = vec![row.id];
                match self.event_bus.publish_nowait(event).await {
                    Ok(publication) => self.in_flight.push_back((row.id, publication)),
                    Err(BusError::Closed) => return Err(Stop::Closed),
                    Err(error) => {
                        self.rewind(row.id);
                        return Err(failed("cannot publish an outbox row", &error));
                    }
                }
            }
            self.waiting = !waiting.is_empty();
            if offered == 0 {
                // Caught up: every row from here on is this instance's own, offered once.
                if self.in_flight.is_empty() && !self.waiting {
                    self.bus_check = None;
                }
                return Ok(());
            }
        }
    }

    /// Whether the bus's history already announces `row`, while rows are taken over.
    async fn already_published(&mut self, row: &outbox::OutboxRow) -> Result<bool, Stop> {
        let Some(known) = self.bus_check.as_mut() else {
            return Ok(false);
        };
        if !known.contains_key(&row.project_id) {
            let origins = match row.project_id.parse::<ProjectId>() {
                Ok(project) => self
                    .event_bus
                    .published_origins(&project)
                    .await
                    .map_err(|error| failed("cannot ask the bus what it published", &error))?,
                Err(_) => HashSet::new(),
            };
            known.insert(row.project_id.clone(), origins);
        }
        Ok(known
            .get(&row.project_id)
            .is_some_and(|origins| origins.contains(&row.id)))
    }

    /// Moves the rows whose events went out to `published`; goes back to the first row whose
    /// event was lost.
    fn settle(&mut self) {
        let mut lost = None;
        self.in_flight
            .retain(|(id, publication)| match publication {
                Publication::Sent(_) => {
                    self.published.push(*id);
                    false
                }
                Publication::Merged(receiver) => {
                    if receiver.borrow().is_some() {
                        self.published.push(*id);
                        false
                    } else if receiver.has_changed().is_err() {
                        lost = Some(lost.map_or(*id, |lost: i64| lost.min(*id)));
                        false
                    } else {
                        true
                    }
                }
            });
        if let Some(id) = lost {
            tracing::warn!(id, "a coalesced announcement was lost; publishing it again");
            self.rewind(id);
        }
    }

    /// Offers rows again from `id` on (they are still in the outbox), once the bus has said
    /// which it already announces.
    fn rewind(&mut self, id: i64) {
        self.in_flight.retain(|(in_flight, _)| *in_flight < id);
        self.bus_check = Some(HashMap::new());
        self.sweep_now = true;
    }
}

fn failed(what: &str, error: &dyn std::fmt::Display) -> Stop {
    tracing::warn!(%error, "{what}");
    Stop::Failed
}
