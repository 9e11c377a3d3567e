//! The entries of a project's Redis stream: the frame and publish time an entry holds, the
//! outbox rows it announces, and the frames a resume replays from a snapshot.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::time::Instant;

use app::protocol::EventId;

use super::scripts::Snapshot;
use crate::events::Frame;

/// One stream entry as Redis returns it: its id and its field list (`f`, the frame).
pub(super) type Entry = (String, Vec<Vec<u8>>);

/// The outbox rows named by the `o` field of an entry's field list.
pub(super) fn origins_of(fields: &[Vec<u8>]) -> Vec<i64> {
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
pub(super) fn replay(
    snapshot: &Snapshot,
    id: &EventId,
    retain: u64,
) -> Result<Vec<Frame>, &'static str> {
    if id.epoch != snapshot.epoch {
        return Err("the event history was reset since the Last-Event-ID");
    }
    if id.seq > snapshot.last_seq {
        return Err("the Last-Event-ID is ahead of the event history");
    }
    if snapshot.last_seq - id.seq > retain {
        return Err("the Last-Event-ID is older than the retained history");
    }
    let frames: Vec<Frame> = snapshot
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
pub(super) fn frame_of(entry_id: &str, fields: Vec<Vec<u8>>) -> Option<Frame> {
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
    Some(Frame {
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

pub(super) fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
    })
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
