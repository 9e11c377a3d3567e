//! The `data` of each entity's events, typed: what the server writes and the browser reads.
//!
//! On the wire, `data` is a JSON object and a partial update: a key that is absent did not
//! change. So every field of a change is optional, and a field whose value may be `null`
//! (a document's `error`) tells "cleared" (`Some(None)`) from "unchanged" (`None`).
//!
//! | entity | data | sent when |
//! | --- | --- | --- |
//! | `document` | [`DocumentChange`] | created (the whole document), renamed (`title`, `updatedAt`), split and embedding (`status`, `chunks`, `embeddedChunks`, `updatedAt`), failed (`status`, `error`, `updatedAt`) |
//! | `chunk` | [`ChunkChange`] | split (`entity.batch`: `documentId`, `status: pending`), embedded (`documentId`, `position`, `status: embedded`) |
//! | `extraction_job` | [`ExtractionJobChange`] | queued, running, done (with `entities`, `relations` and, when a cap cut it short, `truncated`), failed (with `error`) |
//! | `graph_object` | [`GraphObjectChange`] | stored by an extraction (`entity.batch`: `documentId`, `jobId`) |
//! | `notification` | [`Notification`] | for people; every member of the project sees it |
//!
//! Example frames, as a stream delivers them:
//!
//! ```text
//! event: entity.updated
//! data: {"type":"entity.updated","entity":"document","id":"doc_1","projectId":"proj_1","data":{"chunks":12,"embeddedChunks":5,"status":"embedding","updatedAt":"2026-11-29T12:00:00.000Z"},"timestamp":"2026-11-29T12:00:00.000Z"}
//!
//! event: entity.batch
//! data: {"type":"entity.batch","entity":"chunk","id":null,"ids":["chunk_1","chunk_2"],"projectId":"proj_1","data":{"documentId":"doc_1","status":"pending"},"timestamp":"2026-11-29T12:00:00.000Z"}
//!
//! event: entity.updated
//! data: {"type":"entity.updated","entity":"chunk","id":"chunk_1","projectId":"proj_1","data":{"documentId":"doc_1","position":0,"status":"embedded"},"timestamp":"2026-11-29T12:00:00.000Z"}
//!
//! event: entity.updated
//! data: {"type":"entity.updated","entity":"extraction_job","id":"job_1","projectId":"proj_1","data":{"documentId":"doc_1","entities":50,"relations":100,"status":"done"},"timestamp":"2026-11-29T12:00:00.000Z"}
//!
//! event: entity.batch
//! data: {"type":"entity.batch","entity":"graph_object","id":null,"ids":["g_1","g_2"],"projectId":"proj_1","data":{"documentId":"doc_1","jobId":"job_1"},"timestamp":"2026-11-29T12:00:00.000Z"}
//!
//! event: entity.created
//! data: {"type":"entity.created","entity":"notification","id":"note_1","projectId":"proj_1","data":{"level":"success","link":"/documents/doc_1","title":"Notes.md is ready"},"timestamp":"2026-11-29T12:00:00.000Z"}
//! ```
//!
//! **Invariant:** the keys of an event's `data` are named here and nowhere else (through
//! the serde derives); other publishers may add keys, which a reader ignores.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::EntityKind;
use crate::resources::{Document, DocumentStatus};

/// The `data` of one entity kind's events.
pub trait EntityData: Serialize + DeserializeOwned {
    /// The kind of entity whose events carry it.
    const ENTITY: EntityKind;

    /// The JSON object the event carries.
    fn to_data(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("entity data are structs of strings, numbers and enums"),
        }
    }

    /// Reads `data` in place (nothing of it is copied but the values kept); `None` when it
    /// is not this shape (a value of the wrong type).
    fn from_data(data: &Map<String, Value>) -> Option<Self> {
        Self::deserialize(data).ok()
    }
}

/// A chunk's place in its document's embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkStatus {
    /// Stored, not embedded yet.
    Pending,
    /// Its embedding is stored.
    Embedded,
}

/// Where an extraction job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractionStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is extracting.
    Running,
    /// Its graph objects are stored.
    Done,
    /// It stopped; `error` says why.
    Failed,
}

/// How a notification should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationLevel {
    /// Neutral news.
    Info,
    /// Something finished well.
    Success,
    /// Something needs a look.
    Warning,
    /// Something failed.
    Error,
}

/// The changed fields of a document (all of them when it was created).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentChange {
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Its title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where its processing is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DocumentStatus>,
    /// How many chunks it was split into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u32>,
    /// How many of them are embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded_chunks: Option<u32>,
    /// Why processing failed; `Some(None)` is `null`, no error.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    pub error: Option<Option<String>>,
    /// The size of its text in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl EntityData for DocumentChange {
    const ENTITY: EntityKind = EntityKind::Document;
}

impl DocumentChange {
    /// The whole document: the data of `entity.created`.
    pub fn created(document: &Document) -> Self {
        Self {
            id: Some(document.id.clone()),
            project_id: Some(document.project_id.clone()),
            title: Some(document.title.clone()),
            size_bytes: Some(document.size_bytes),
            created_at: Some(document.created_at.clone()),
            error: Some(document.error.clone()),
            ..Self::progress(document)
        }
    }

    /// Sets the fields this change names on `document` (the others stay), as a view that
    /// holds a whole document applies an `entity.updated`.
    pub fn apply_to(&self, document: &mut Document) {
        let Self {
            id: _,
            project_id: _,
            title,
            status,
            chunks,
            embedded_chunks,
            error,
            size_bytes,
            created_at,
            updated_at,
        } = self;
        if let Some(title) = title {
            document.title.clone_from(title);
        }
        if let Some(status) = status {
            document.status = *status;
        }
        if let Some(chunks) = chunks {
            document.chunks = *chunks;
        }
        if let Some(embedded_chunks) = embedded_chunks {
            document.embedded_chunks = *embedded_chunks;
        }
        if let Some(error) = error {
            document.error.clone_from(error);
        }
        if let Some(size_bytes) = size_bytes {
            document.size_bytes = *size_bytes;
        }
        if let Some(created_at) = created_at {
            document.created_at.clone_from(created_at);
        }
        if let Some(updated_at) = updated_at {
            document.updated_at.clone_from(updated_at);
        }
    }

    /// A new title.
    pub fn renamed(document: &Document) -> Self {
        Self {
            title: Some(document.title.clone()),
            updated_at: Some(document.updated_at.clone()),
            ..Self::default()
        }
    }

    /// The fields its processing changes.
    pub fn progress(document: &Document) -> Self {
        Self {
            status: Some(document.status),
            chunks: Some(document.chunks),
            embedded_chunks: Some(document.embedded_chunks),
            updated_at: Some(document.updated_at.clone()),
            ..Self::default()
        }
    }

    /// Its processing failed.
    pub fn failed(document: &Document) -> Self {
        Self {
            status: Some(document.status),
            error: Some(document.error.clone()),
            updated_at: Some(document.updated_at.clone()),
            ..Self::default()
        }
    }

    /// The document, when the change carries all of it (as `entity.created` does).
    pub fn into_document(self) -> Option<Document> {
        Some(Document {
            id: self.id?,
            project_id: self.project_id?,
            title: self.title?,
            status: self.status?,
            chunks: self.chunks?,
            embedded_chunks: self.embedded_chunks?,
            error: self.error?,
            size_bytes: self.size_bytes?,
            created_at: self.created_at?,
            updated_at: self.updated_at?,
        })
    }
}

/// The changed fields of a chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkChange {
    /// The chunk's document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Its place in the document, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// Whether it is embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChunkStatus>,
}

impl EntityData for ChunkChange {
    const ENTITY: EntityKind = EntityKind::Chunk;
}

/// The changed fields of an extraction job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractionJobChange {
    /// The document it extracts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExtractionStatus>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many entities it found (when done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<u64>,
    /// How many relations it found (when done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relations: Option<u64>,
    /// `true` when a cap or the time budget cut it short (when done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

impl EntityData for ExtractionJobChange {
    const ENTITY: EntityKind = EntityKind::ExtractionJob;
}

/// The changed fields of graph objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphObjectChange {
    /// The document they were extracted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_id: Option<String>,
    /// The extraction job that stored them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

impl EntityData for GraphObjectChange {
    const ENTITY: EntityKind = EntityKind::GraphObject;
}

/// A message for the project's people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// How it should look.
    pub level: NotificationLevel,
    /// What happened, in a few words.
    pub title: String,
    /// More words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A path in the app to go to, such as `/documents/doc_456`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl EntityData for Notification {
    const ENTITY: EntityKind = EntityKind::Notification;
}

/// A field that may be absent (unchanged), `null` (cleared) or a value.
mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[expect(
        clippy::ref_option,
        reason = "serde's `with` passes the field by reference"
    )]
    pub fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Document {
        Document {
            id: "doc_1".to_owned(),
            project_id: "proj_1".to_owned(),
            title: "Notes.md".to_owned(),
            status: DocumentStatus::Embedding,
            chunks: 12,
            embedded_chunks: 5,
            error: None,
            size_bytes: 6000,
            created_at: "2026-11-29T11:00:00.000Z".to_owned(),
            updated_at: "2026-11-29T12:00:00.000Z".to_owned(),
        }
    }

    /// `data` on the wire is `json`, and reads back as `data`.
    #[track_caller]
    fn check_wire<D: EntityData + PartialEq + std::fmt::Debug>(data: &D, json: &str) {
        let wire = serde_json::to_string(&data.to_data()).expect("json");
        assert_eq!(wire, json);
        let map: Map<String, Value> = serde_json::from_str(json).expect("an object");
        assert_eq!(D::from_data(&map).as_ref(), Some(data));
    }

    #[test]
    fn document_changes_are_the_wire_of_each_step() {
        let mut document = document();
        check_wire(
            &DocumentChange::created(&document),
            r#"{"chunks":12,"createdAt":"2026-11-29T11:00:00.000Z","embeddedChunks":5,"error":null,"id":"doc_1","projectId":"proj_1","sizeBytes":6000,"status":"embedding","title":"Notes.md","updatedAt":"2026-11-29T12:00:00.000Z"}"#,
        );
        check_wire(
            &DocumentChange::progress(&document),
            r#"{"chunks":12,"embeddedChunks":5,"status":"embedding","updatedAt":"2026-11-29T12:00:00.000Z"}"#,
        );
        check_wire(
            &DocumentChange::renamed(&document),
            r#"{"title":"Notes.md","updatedAt":"2026-11-29T12:00:00.000Z"}"#,
        );
        document.status = DocumentStatus::Failed;
        document.error = Some("the embedder failed".to_owned());
        check_wire(
            &DocumentChange::failed(&document),
            r#"{"error":"the embedder failed","status":"failed","updatedAt":"2026-11-29T12:00:00.000Z"}"#,
        );
    }

    #[test]
    fn a_created_document_reads_back_whole_and_a_partial_one_does_not() {
        let document = document();
        assert_eq!(
            DocumentChange::created(&document).into_document(),
            Some(document.clone())
        );
        assert_eq!(DocumentChange::progress(&document).into_document(), None);
    }

    #[test]
    fn an_absent_error_is_unchanged_and_a_null_one_cleared() {
        let read = |json: &str| {
            DocumentChange::from_data(&serde_json::from_str(json).expect("an object"))
                .expect("a document change")
                .error
        };
        assert_eq!(read(r#"{"status":"ready"}"#), None);
        assert_eq!(read(r#"{"error":null}"#), Some(None));
        assert_eq!(read(r#"{"error":"x"}"#), Some(Some("x".to_owned())));
    }

    #[test]
    fn a_change_sets_only_the_fields_it_names_on_a_document() {
        let mut changed = document();
        DocumentChange {
            status: Some(DocumentStatus::Ready),
            embedded_chunks: Some(12),
            error: Some(None),
            ..DocumentChange::default()
        }
        .apply_to(&mut changed);
        assert_eq!(changed.status, DocumentStatus::Ready);
        assert_eq!(changed.embedded_chunks, 12);
        assert_eq!(
            Document {
                status: DocumentStatus::Embedding,
                embedded_chunks: 5,
                ..changed.clone()
            },
            document(),
            "nothing else changed"
        );

        let mut renamed = document();
        DocumentChange::renamed(&Document {
            title: "Minutes.md".to_owned(),
            ..document()
        })
        .apply_to(&mut renamed);
        assert_eq!(renamed.title, "Minutes.md");

        let mut whole = document();
        DocumentChange::created(&changed).apply_to(&mut whole);
        assert_eq!(whole, changed, "a created change carries every field");
    }

    #[test]
    fn chunk_job_graph_and_notification_data_are_the_documented_wire() {
        check_wire(
            &ChunkChange {
                document_id: Some("doc_1".to_owned()),
                status: Some(ChunkStatus::Pending),
                ..ChunkChange::default()
            },
            r#"{"documentId":"doc_1","status":"pending"}"#,
        );
        check_wire(
            &ChunkChange {
                document_id: Some("doc_1".to_owned()),
                position: Some(3),
                status: Some(ChunkStatus::Embedded),
            },
            r#"{"documentId":"doc_1","position":3,"status":"embedded"}"#,
        );
        for (status, json) in [
            (ExtractionStatus::Queued, "queued"),
            (ExtractionStatus::Running, "running"),
        ] {
            check_wire(
                &ExtractionJobChange {
                    document_id: Some("doc_1".to_owned()),
                    status: Some(status),
                    ..ExtractionJobChange::default()
                },
                &format!(r#"{{"documentId":"doc_1","status":"{json}"}}"#),
            );
        }
        check_wire(
            &ExtractionJobChange {
                document_id: Some("doc_1".to_owned()),
                status: Some(ExtractionStatus::Done),
                entities: Some(50),
                relations: Some(100),
                truncated: Some(true),
                ..ExtractionJobChange::default()
            },
            r#"{"documentId":"doc_1","entities":50,"relations":100,"status":"done","truncated":true}"#,
        );
        check_wire(
            &ExtractionJobChange {
                document_id: Some("doc_1".to_owned()),
                status: Some(ExtractionStatus::Failed),
                error: Some("the document was deleted".to_owned()),
                ..ExtractionJobChange::default()
            },
            r#"{"documentId":"doc_1","error":"the document was deleted","status":"failed"}"#,
        );
        check_wire(
            &GraphObjectChange {
                document_id: Some("doc_1".to_owned()),
                job_id: Some("job_1".to_owned()),
            },
            r#"{"documentId":"doc_1","jobId":"job_1"}"#,
        );
        check_wire(
            &Notification {
                level: NotificationLevel::Success,
                title: "Notes.md is ready".to_owned(),
                body: None,
                link: Some("/documents/doc_1".to_owned()),
            },
            r#"{"level":"success","link":"/documents/doc_1","title":"Notes.md is ready"}"#,
        );
    }

    #[test]
    fn keys_of_other_publishers_are_ignored_and_a_wrong_value_is_no_change() {
        let with_extra: Map<String, Value> =
            serde_json::from_str(r#"{"status":"ready","color":"blue"}"#).expect("an object");
        assert_eq!(
            DocumentChange::from_data(&with_extra).and_then(|change| change.status),
            Some(DocumentStatus::Ready)
        );
        let wrong: Map<String, Value> =
            serde_json::from_str(r#"{"status":"exploded"}"#).expect("an object");
        assert_eq!(DocumentChange::from_data(&wrong), None);
    }
}
