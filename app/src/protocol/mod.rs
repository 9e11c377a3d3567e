//! The wire types shared by the server (which encodes them) and the browser (which decodes them).
//!
//! **Invariant:** each JSON shape the two sides exchange is defined here once, and every
//! string that reaches an SSE field line is validated or generated so that it cannot carry a
//! CR or LF (no client can inject SSE fields).

pub mod data;
pub mod sse;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use data::{
    ChunkChange, ChunkStatus, DocumentChange, EntityData, ExtractionJobChange, ExtractionStatus,
    GraphObjectChange, Notification, NotificationLevel,
};

/// The path of the event stream, `GET`.
pub const EVENT_STREAM_PATH: &str = "/api/events/stream";
/// The path of the publish endpoint, `POST`.
pub const PUBLISH_PATH: &str = "/api/events/publish";
/// The header that names a request's project (lowercase, as HTTP/2 and `http` spell it).
pub const PROJECT_HEADER: &str = "x-project-id";

/// The body of `GET /healthz` when the server is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Always `"ok"` in a 200 answer.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// Why a value from the wire was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An identifier is empty, too long or holds a character it may not.
    #[error("{what} must be 1 to {max} {allowed}, got {value:?}")]
    BadIdentifier {
        /// Which identifier (`project id`, `entity id`, `event id`).
        what: &'static str,
        /// Its longest allowed length.
        max: usize,
        /// The characters it may hold, in words.
        allowed: &'static str,
        /// The refused value, for the message.
        value: String,
    },
    /// An event's `id`/`ids` do not fit its type.
    #[error("{0}")]
    BadShape(&'static str),
    /// An `entity.batch` event without ids or with more than [`MAX_BATCH_IDS`].
    #[error("an entity.batch event needs `ids` with 1 to {MAX_BATCH_IDS} entity ids")]
    BadBatchSize,
    /// A frame's `data` is not the JSON its `event` name announces.
    #[error("the data of a `{event}` frame is not valid: {reason}")]
    BadFrame {
        /// The frame's `event` field.
        event: String,
        /// What the JSON decoder said.
        reason: String,
    },
}

/// Longest project id.
pub const MAX_PROJECT_ID_LEN: usize = 128;
/// Longest entity id.
pub const MAX_ENTITY_ID_LEN: usize = 256;
/// Most ids in one `entity.batch` event.
pub const MAX_BATCH_IDS: usize = 1000;

/// True when `value` is 1 to `max` bytes, each one `allowed` says.
fn is_identifier(value: &str, max: usize, allowed: fn(&u8) -> bool) -> bool {
    !value.is_empty() && value.len() <= max && value.bytes().all(|byte| allowed(&byte))
}

/// A project id's characters: letters, digits, `_` and `-`. So `*`, which grants every
/// project in a token's claims, is never a project.
fn is_project_id_byte(byte: &u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-')
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $allowed:expr, $allowed_words:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ProtocolError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                if is_identifier(&value, $max, $allowed) {
                    Ok(Self(value))
                } else {
                    Err(ProtocolError::BadIdentifier {
                        what: $what,
                        max: $max,
                        allowed: $allowed_words,
                        value,
                    })
                }
            }
        }

        impl FromStr for $name {
            type Err = ProtocolError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A project id, such as `proj_123`: 1 to 128 letters, digits, `_` or `-`.
    ProjectId,
    "project id",
    MAX_PROJECT_ID_LEN,
    is_project_id_byte,
    "letters, digits, _ or -"
);

identifier!(
    /// An entity id, such as `doc_456`: 1 to 256 printable ASCII characters, no spaces, so
    /// no CR or LF can reach an SSE field line or a header.
    EntityId,
    "entity id",
    MAX_ENTITY_ID_LEN,
    u8::is_ascii_graphic,
    "printable characters without spaces"
);

/// What happened to the entity, the `type` of an event and the `event:` name of its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// `entity.created`
    #[serde(rename = "entity.created")]
    Created,
    /// `entity.updated`: `data` is a partial update.
    #[serde(rename = "entity.updated")]
    Updated,
    /// `entity.deleted`
    #[serde(rename = "entity.deleted")]
    Deleted,
    /// `entity.batch`: `ids` names several entities, `id` is null.
    #[serde(rename = "entity.batch")]
    Batch,
}

impl EventType {
    /// The wire name, e.g. `entity.updated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "entity.created",
            Self::Updated => "entity.updated",
            Self::Deleted => "entity.deleted",
            Self::Batch => "entity.batch",
        }
    }

    /// The type whose wire name is `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Deleted, Self::Batch]
            .into_iter()
            .find(|event_type| event_type.as_str() == name)
    }
}

/// The kind of entity an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A document of the project.
    Document,
    /// A chunk of a document.
    Chunk,
    /// A job extracting graph objects from a document.
    ExtractionJob,
    /// A node or edge of the project's graph.
    GraphObject,
    /// A message for the project's users.
    Notification,
}

impl EntityKind {
    /// Every kind, in wire order.
    pub const ALL: [Self; 5] = [
        Self::Document,
        Self::Chunk,
        Self::ExtractionJob,
        Self::GraphObject,
        Self::Notification,
    ];

    /// The wire name, e.g. `extraction_job`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::Chunk => "chunk",
            Self::ExtractionJob => "extraction_job",
            Self::GraphObject => "graph_object",
            Self::Notification => "notification",
        }
    }

    /// The kind whose wire name is `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// The id of a stream event, `<epoch>:<seq>`.
///
/// `seq` grows by one per event of a project; `epoch` names the history it belongs to and
/// changes when that history is lost. Clients treat the text as opaque; only the server
/// compares ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventId {
    /// Names the history; letters, digits, `-` and `_` only.
    pub epoch: String,
    /// Position in the project's history, from 1.
    pub seq: u64,
}

impl EventId {
    /// The id of event `seq` of history `epoch`.
    ///
    /// # Errors
    ///
    /// `epoch` is empty, longer than 64 characters, or holds a character other than
    /// letters, digits, `-` and `_`.
    pub fn new(epoch: impl Into<String>, seq: u64) -> Result<Self, ProtocolError> {
        let epoch = epoch.into();
        let valid = !epoch.is_empty()
            && epoch.len() <= 64
            && epoch
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if valid {
            Ok(Self { epoch, seq })
        } else {
            Err(ProtocolError::BadIdentifier {
                what: "event id epoch",
                max: 64,
                allowed: "letters, digits, _ or -",
                value: epoch,
            })
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.epoch, self.seq)
    }
}

impl FromStr for EventId {
    type Err = ProtocolError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let refuse = || ProtocolError::BadIdentifier {
            what: "event id",
            max: 128,
            allowed: "characters of <epoch>:<sequence>",
            value: value.to_owned(),
        };
        let (epoch, seq) = value.split_once(':').ok_or_else(refuse)?;
        let seq = if seq.bytes().all(|byte| byte.is_ascii_digit()) {
            seq.parse().map_err(|_| refuse())?
        } else {
            return Err(refuse());
        };
        Self::new(epoch, seq).map_err(|_| refuse())
    }
}

/// The fields every event carries, except `timestamp`: what a publisher sends.
///
/// `POST /api/events/publish` takes this as its body; the server adds the timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// What kind of entity it happened to.
    pub entity: EntityKind,
    /// The entity; `None` for `entity.batch`.
    #[serde(default)]
    pub id: Option<EntityId>,
    /// The entities of an `entity.batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<EntityId>>,
    /// The project whose streams carry the event.
    pub project_id: ProjectId,
    /// A partial update of the entity; absent when there is nothing to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Ignored when publishing: the server sets the time.
    #[serde(default, skip_serializing)]
    pub timestamp: Option<String>,
    /// The server's outbox rows this event announces (several when coalescing merged their
    /// updates), so that a relay resuming after a crash can tell which rows were published.
    /// Never on the wire.
    #[serde(skip)]
    pub origins: Vec<i64>,
}

impl NewEvent {
    /// An event about one entity (any type but `entity.batch`).
    pub fn single(
        event_type: EventType,
        entity: EntityKind,
        id: EntityId,
        project_id: ProjectId,
        data: Option<Map<String, Value>>,
    ) -> Self {
        Self {
            event_type,
            entity,
            id: Some(id),
            ids: None,
            project_id,
            data,
            timestamp: None,
            origins: Vec::new(),
        }
    }

    /// An event about one entity, whose `data` says what changed (its kind is the data's).
    pub fn about<D: EntityData>(
        event_type: EventType,
        id: EntityId,
        project_id: ProjectId,
        data: &D,
    ) -> Self {
        Self::single(event_type, D::ENTITY, id, project_id, Some(data.to_data()))
    }

    /// `entity.batch` events naming `ids` (as many events as [`MAX_BATCH_IDS`] needs), each
    /// with `data`.
    pub fn batches_about<D: EntityData>(
        ids: &[EntityId],
        project_id: &ProjectId,
        data: &D,
    ) -> Vec<Self> {
        let data = data.to_data();
        ids.chunks(MAX_BATCH_IDS)
            .map(|batch| {
                Self::batch(
                    D::ENTITY,
                    batch.to_vec(),
                    project_id.clone(),
                    Some(data.clone()),
                )
            })
            .collect()
    }

    /// An `entity.batch` event about several entities.
    pub fn batch(
        entity: EntityKind,
        ids: Vec<EntityId>,
        project_id: ProjectId,
        data: Option<Map<String, Value>>,
    ) -> Self {
        Self {
            event_type: EventType::Batch,
            entity,
            id: None,
            ids: Some(ids),
            project_id,
            data,
            timestamp: None,
            origins: Vec::new(),
        }
    }

    /// Checks that `id` and `ids` fit the type: a batch has 1 to [`MAX_BATCH_IDS`] `ids` and
    /// no `id`; every other type has an `id` and no `ids`.
    ///
    /// # Errors
    ///
    /// The shape does not fit, with a message that says how.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match (self.event_type, &self.id, &self.ids) {
            (EventType::Batch, None, Some(ids))
                if !ids.is_empty() && ids.len() <= MAX_BATCH_IDS =>
            {
                Ok(())
            }
            (EventType::Batch, Some(_), _) => Err(ProtocolError::BadShape(
                "an entity.batch event names its entities in `ids`; `id` must be null",
            )),
            (EventType::Batch, None, _) => Err(ProtocolError::BadBatchSize),
            (_, Some(_), None) => Ok(()),
            (_, None, _) => Err(ProtocolError::BadShape("this event type needs an `id`")),
            (_, Some(_), Some(_)) => Err(ProtocolError::BadShape(
                "only entity.batch events carry `ids`",
            )),
        }
    }

    /// The event as the stream carries it, stamped with `timestamp`.
    pub fn into_event(self, timestamp: String) -> EntityEvent {
        EntityEvent {
            event_type: self.event_type,
            entity: self.entity,
            id: self.id,
            ids: self.ids,
            project_id: self.project_id,
            data: self.data,
            timestamp,
        }
    }
}

/// An entity event as a stream delivers it: the payload of API.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// What kind of entity it happened to.
    pub entity: EntityKind,
    /// The entity; null for `entity.batch`.
    pub id: Option<EntityId>,
    /// The entities of an `entity.batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<EntityId>>,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// A partial update; the newest value of each key wins when events are merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// ISO 8601, set by the server.
    pub timestamp: String,
}

impl EntityEvent {
    /// The typed `data` of an event about a `D::ENTITY`; `None` for another kind, no data,
    /// or data not of that shape. Keys other publishers added are ignored.
    pub fn data_as<D: EntityData>(&self) -> Option<D> {
        if self.entity != D::ENTITY {
            return None;
        }
        D::from_data(self.data.as_ref()?)
    }

    /// What changed, when the event is about a document.
    pub fn document(&self) -> Option<DocumentChange> {
        self.data_as()
    }

    /// What changed, when the event is about a chunk.
    pub fn chunk(&self) -> Option<ChunkChange> {
        self.data_as()
    }

    /// What changed, when the event is about an extraction job.
    pub fn extraction_job(&self) -> Option<ExtractionJobChange> {
        self.data_as()
    }

    /// What changed, when the event is about graph objects.
    pub fn graph_object(&self) -> Option<GraphObjectChange> {
        self.data_as()
    }

    /// The notification, when the event is one.
    pub fn notification(&self) -> Option<Notification> {
        self.data_as()
    }
}

/// The data of the `connected` frame, the first of every stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    /// Names this connection in the server's logs.
    pub connection_id: String,
    /// The project the stream carries.
    pub project_id: ProjectId,
}

/// The data of a `heartbeat` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// ISO 8601 time of the heartbeat.
    pub timestamp: String,
}

/// The data of a `resync` or `auth_expired` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Why, in words meant for logs.
    pub reason: String,
}

/// The `event:` names of the frames that are not entity events.
pub mod control {
    /// The first frame of every stream.
    pub const CONNECTED: &str = "connected";
    /// Sent every `HEARTBEAT_SECS`.
    pub const HEARTBEAT: &str = "heartbeat";
    /// The client must refetch its data: events were lost to it.
    pub const RESYNC: &str = "resync";
    /// The token expired; the stream ends after this frame.
    pub const AUTH_EXPIRED: &str = "auth_expired";
}

/// One frame of `GET /api/events/stream`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// The first frame.
    Connected(Connected),
    /// The connection is alive.
    Heartbeat(Heartbeat),
    /// Refetch: the stream could not carry every event.
    Resync(Notice),
    /// The token expired and the stream ends.
    AuthExpired(Notice),
    /// An entity event with its stream id.
    Entity {
        /// The frame's `id:`, `<epoch>:<seq>`.
        id: String,
        /// The payload.
        event: EntityEvent,
    },
}

impl StreamMessage {
    /// Decodes a parsed frame; `None` for an event name this version does not know, which a
    /// client must skip rather than fail on.
    ///
    /// # Errors
    ///
    /// The frame's data is not the JSON its name announces.
    pub fn from_frame(frame: &sse::SseFrame) -> Result<Option<Self>, ProtocolError> {
        fn decode<T: serde::de::DeserializeOwned>(
            frame: &sse::SseFrame,
        ) -> Result<T, ProtocolError> {
            serde_json::from_str(&frame.data).map_err(|error| ProtocolError::BadFrame {
                event: frame.event.clone(),
                reason: error.to_string(),
            })
        }
        let message = match frame.event.as_str() {
            control::CONNECTED => Self::Connected(decode(frame)?),
            control::HEARTBEAT => Self::Heartbeat(decode(frame)?),
            control::RESYNC => Self::Resync(decode(frame)?),
            control::AUTH_EXPIRED => Self::AuthExpired(decode(frame)?),
            name if EventType::from_name(name).is_some() => Self::Entity {
                id: frame.id.clone().unwrap_or_default(),
                event: decode(frame)?,
            },
            _ => return Ok(None),
        };
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_report_round_trips_through_json() {
        let report = HealthReport {
            status: "ok".to_owned(),
            version: "0.1.0".to_owned(),
        };
        let json = serde_json::to_string(&report).expect("serializable");
        assert_eq!(json, r#"{"status":"ok","version":"0.1.0"}"#);
        let back: HealthReport = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(back, report);
    }

    #[test]
    fn an_event_is_camel_case_on_the_wire_as_api_md_shows() {
        let event = NewEvent::single(
            EventType::Updated,
            EntityKind::Document,
            "doc_456".parse().expect("valid"),
            "proj_123".parse().expect("valid"),
            serde_json::from_str(r#"{"chunks":10,"embeddedChunks":5}"#).expect("an object"),
        )
        .into_event("2025-12-04T12:00:00Z".to_owned());
        let json = serde_json::to_string(&event).expect("serializable");
        assert_eq!(
            json,
            r#"{"type":"entity.updated","entity":"document","id":"doc_456","projectId":"proj_123","data":{"chunks":10,"embeddedChunks":5},"timestamp":"2025-12-04T12:00:00Z"}"#
        );
        let back: EntityEvent = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(back, event);
    }

    #[test]
    fn a_batch_has_a_null_id_and_its_ids() {
        let event = NewEvent::batch(
            EntityKind::GraphObject,
            vec!["g_1".parse().expect("valid"), "g_2".parse().expect("valid")],
            "proj_1".parse().expect("valid"),
            None,
        );
        event.validate().expect("a valid batch");
        let json = serde_json::to_string(&event.into_event("t".to_owned())).expect("json");
        assert_eq!(
            json,
            r#"{"type":"entity.batch","entity":"graph_object","id":null,"ids":["g_1","g_2"],"projectId":"proj_1","timestamp":"t"}"#
        );
    }

    #[test]
    fn typed_data_names_its_entity_and_reads_back_only_from_that_entity() {
        let change = ChunkChange {
            document_id: Some("doc_1".to_owned()),
            position: Some(2),
            status: Some(ChunkStatus::Embedded),
        };
        let event = NewEvent::about(
            EventType::Updated,
            "chunk_1".parse().expect("valid"),
            "proj_1".parse().expect("valid"),
            &change,
        )
        .into_event("t".to_owned());
        assert_eq!(event.entity, EntityKind::Chunk);
        assert_eq!(event.chunk(), Some(change));
        assert_eq!(
            event.document(),
            None,
            "a chunk event is no document's change"
        );
        let deleted = NewEvent::single(
            EventType::Deleted,
            EntityKind::Chunk,
            "chunk_1".parse().expect("valid"),
            "proj_1".parse().expect("valid"),
            None,
        )
        .into_event("t".to_owned());
        assert_eq!(deleted.chunk(), None, "no data, no change");
    }

    #[test]
    fn batches_about_split_at_the_batch_limit_and_each_carry_the_data() {
        let ids: Vec<EntityId> = (0..=MAX_BATCH_IDS)
            .map(|n| format!("g_{n}").parse().expect("valid"))
            .collect();
        let data = GraphObjectChange {
            document_id: Some("doc_1".to_owned()),
            job_id: Some("job_1".to_owned()),
        };
        let events = NewEvent::batches_about(&ids, &"proj_1".parse().expect("valid"), &data);
        let sizes: Vec<usize> = events
            .iter()
            .map(|event| event.ids.as_ref().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [MAX_BATCH_IDS, 1]);
        for event in events {
            event.validate().expect("a valid batch");
            assert_eq!(
                event.into_event("t".to_owned()).graph_object(),
                Some(data.clone())
            );
        }
    }

    #[track_caller]
    fn check_refused(body: &str, expected_in_message: &str) {
        let outcome = serde_json::from_str::<NewEvent>(body)
            .map_err(|error| error.to_string())
            .and_then(|event| event.validate().map_err(|error| error.to_string()));
        match outcome {
            Ok(()) => panic!("{body} was accepted"),
            Err(message) => assert!(
                message.contains(expected_in_message),
                "{message:?} does not mention {expected_in_message:?}"
            ),
        }
    }

    #[test]
    fn bad_publish_bodies_are_refused_with_a_reason() {
        check_refused(
            r#"{"type":"entity.exploded","entity":"document","id":"d","projectId":"p"}"#,
            "unknown variant `entity.exploded`",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"spaceship","id":"d","projectId":"p"}"#,
            "unknown variant `spaceship`",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"document","projectId":"p"}"#,
            "needs an `id`",
        );
        check_refused(
            r#"{"type":"entity.batch","entity":"document","id":"d","projectId":"p"}"#,
            "`id` must be null",
        );
        check_refused(
            r#"{"type":"entity.batch","entity":"document","ids":[],"projectId":"p"}"#,
            "needs `ids`",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"document","id":"d","ids":["e"],"projectId":"p"}"#,
            "only entity.batch",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"document","id":"d\r\nevent: evil","projectId":"p"}"#,
            "entity id must be",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"document","id":"d","projectId":"p\n"}"#,
            "project id must be",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"document","id":"d","projectId":"p","data":[1]}"#,
            "invalid type",
        );
        check_refused(
            r#"{"type":"entity.created","entity":"document","id":"d","projectId":"p","extra":1}"#,
            "unknown field `extra`",
        );
    }

    #[test]
    fn a_batch_over_the_limit_is_refused_with_the_limit_in_the_message() {
        let ids: Vec<String> = (0..=MAX_BATCH_IDS).map(|n| format!("g_{n}")).collect();
        let body = serde_json::json!({
            "type": "entity.batch", "entity": "graph_object", "ids": ids, "projectId": "p",
        });
        check_refused(&body.to_string(), "1 to 1000 entity ids");
    }

    #[test]
    fn a_publisher_timestamp_is_accepted_but_never_sent() {
        let event: NewEvent = serde_json::from_str(
            r#"{"type":"entity.deleted","entity":"chunk","id":"c","projectId":"p","timestamp":"x"}"#,
        )
        .expect("a timestamp is tolerated");
        event.validate().expect("valid");
        let stamped = event.into_event("server time".to_owned());
        assert_eq!(stamped.timestamp, "server time");
    }

    #[test]
    fn a_project_id_is_letters_digits_underscores_and_dashes_only() {
        for good in [
            "proj_123",
            "Team-Notes",
            "a",
            &"x".repeat(MAX_PROJECT_ID_LEN),
        ] {
            assert!(good.parse::<ProjectId>().is_ok(), "{good}");
        }
        for bad in [
            "*",
            "proj_*",
            "a b",
            "proj.1",
            "proj/1",
            "é",
            "",
            &"x".repeat(129),
        ] {
            let error = bad.parse::<ProjectId>().expect_err(bad);
            assert!(
                error.to_string().contains("letters, digits, _ or -"),
                "{error}"
            );
        }
        assert!(
            "doc.1:*".parse::<EntityId>().is_ok(),
            "entity ids stay printable ASCII"
        );
    }

    #[test]
    fn event_ids_round_trip_and_refuse_garbage() {
        let id: EventId = "a1b2:42".parse().expect("valid");
        assert_eq!(id, EventId::new("a1b2", 42).expect("valid"));
        assert_eq!(id.to_string(), "a1b2:42");
        for bad in [
            "",
            "42",
            ":1",
            "e:",
            "e:-1",
            "e:+1",
            "e:1x",
            "e\n:1",
            "e:99999999999999999999999",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?} was accepted");
        }
        assert!(EventId::new("has:colon", 1).is_err());
    }

    #[test]
    fn wire_names_match_serde_names() {
        for kind in EntityKind::ALL {
            let json = serde_json::to_string(&kind).expect("json");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(EntityKind::from_name(kind.as_str()), Some(kind));
        }
        for event_type in [
            EventType::Created,
            EventType::Updated,
            EventType::Deleted,
            EventType::Batch,
        ] {
            let json = serde_json::to_string(&event_type).expect("json");
            assert_eq!(json, format!("\"{}\"", event_type.as_str()));
            assert_eq!(EventType::from_name(event_type.as_str()), Some(event_type));
        }
    }
}
