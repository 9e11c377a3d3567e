//! The reader: one task per instance that follows, with `XREAD BLOCK`, the streams of the
//! projects with subscribers here and fans their frames out.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use redis::Client;
use redis::aio::MultiplexedConnection;
use tokio_util::sync::CancellationToken;

use app::protocol::ProjectId;

use super::entries::{Entry, frame_of};
use super::{
    CALL_LIMIT, EPOCH_KEY, Inner, ProjectFeed, RECONNECT_PAUSE, bounded, deadline, seq_key,
    stream_key,
};
use crate::events::{BusError, Live, new_epoch};

/// How long one `XREAD` blocks; also the longest delay before the reader notices a new epoch
/// or a project whose first subscriber arrived while it was blocked.
pub(super) const READ_BLOCK: Duration = Duration::from_millis(500);

/// Frames the reader takes per stream per `XREAD`.
const READ_COUNT: usize = 512;

/// The reader: follows the streams of every project with local subscribers and fans their
/// frames out; reconnects after errors and resyncs everyone when the history changed.
pub(super) async fn read_streams(inner: Arc<Inner>, client: Client, shutdown: CancellationToken) {
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
