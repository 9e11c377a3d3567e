//! The bus's two Lua scripts and the calls that run them: appending an event (the bus's
//! [`Append`]) and reading a project's snapshot.

use std::time::SystemTime;

use app::protocol::{EventId, NewEvent, ProjectId};

use super::entries::{Entry, unix_micros};
use super::{EPOCH_KEY, Inner, deadline, seq_key, stream_key};
use crate::events::publisher::Append;
use crate::events::{BusError, encode_frame, new_epoch};

/// Increments the project's sequence and appends the frame under it, atomically.
///
/// KEYS: epoch, seq, stream. ARGV: a new epoch should none exist, `MAXLEN ~` bound, the frame
/// without its `id:` line, the publisher's clock in Unix microseconds (field `t`, so that the
/// receiving instances measure delivery latency from the publish), the outbox rows the event
/// announces, comma-separated (field `o`, see
/// [`EventBus::published_origins`](crate::events::EventBus::published_origins)). Returns
/// `{epoch, seq}`.
pub(super) const PUBLISH_SCRIPT: &str = r"
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
pub(super) const SNAPSHOT_SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[1]) or (redis.call('SET', KEYS[1], ARGV[1]) and ARGV[1])
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = {}
if ARGV[2] == epoch then
  entries = redis.call('XRANGE', KEYS[3], (tonumber(ARGV[3]) + 1) .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, seq, entries}
";

/// What the snapshot script returned.
pub(super) struct Snapshot {
    pub epoch: String,
    pub last_seq: u64,
    pub entries: Vec<Entry>,
}

impl Append for Inner {
    /// Runs [`PUBLISH_SCRIPT`] with the frame, serialized once, without its `id:` line.
    async fn append(&self, event: NewEvent) -> Result<EventId, BusError> {
        let project = event.project_id.clone();
        let origins: Vec<String> = event.origins.iter().map(ToString::to_string).collect();
        // The id line is written by the script, once the sequence is known.
        let frame_rest = encode_frame(event, None);
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
        Ok(EventId { epoch, seq })
    }
}

impl Inner {
    /// Runs [`SNAPSHOT_SCRIPT`]: the epoch and last sequence of `project`, and the retained
    /// entries after `resume` when it names the current epoch.
    pub(super) async fn snapshot(
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
}
