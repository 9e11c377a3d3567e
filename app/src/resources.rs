//! The JSON shapes of the REST resources (session, projects, documents, search), shared by
//! the server that writes them and the browser that reads them.
//!
//! **Invariant:** field names are camelCase on the wire, as in `API.md`'s event payload, so
//! a document in a list and the `data` of its events use the same names.

use serde::{Deserialize, Serialize};

use crate::protocol::{ChunkStatus, ExtractionStatus};

/// Where a document is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    /// Stored; its embedding job has not started.
    Queued,
    /// Split into chunks, which are being embedded.
    Embedding,
    /// Every chunk is embedded; the document is searchable.
    Ready,
    /// Processing stopped; `error` says why.
    Failed,
}

impl DocumentStatus {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Embedding => "embedding",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// The status named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Queued, Self::Embedding, Self::Ready, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// A document without its text, as lists and events show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Its id, `doc_` and 16 hex digits.
    pub id: String,
    /// The project it belongs to.
    pub project_id: String,
    /// Its title (from the upload's file name unless given).
    pub title: String,
    /// Where its processing is.
    pub status: DocumentStatus,
    /// How many chunks it was split into (0 until split).
    pub chunks: u32,
    /// How many of those chunks are embedded.
    pub embedded_chunks: u32,
    /// Why processing failed, when it did.
    pub error: Option<String>,
    /// The size of its text in bytes.
    pub size_bytes: u64,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// One document with its text: `GET /api/documents/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentDetail {
    /// The document.
    #[serde(flatten)]
    pub document: Document,
    /// Its full text.
    pub content: String,
}

/// One chunk of a document as its page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkSummary {
    /// Its id, `chk_` and 16 hex digits.
    pub id: String,
    /// Its place in the document, from 0.
    pub position: u32,
    /// Whether it is embedded yet.
    pub status: ChunkStatus,
    /// Its first [`CHUNK_EXCERPT_CHARS`] characters.
    pub excerpt: String,
}

/// How much of a chunk's text its summary carries.
pub const CHUNK_EXCERPT_CHARS: usize = 120;

/// A document's latest extraction job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractionSummary {
    /// The job's id.
    pub id: String,
    /// Where it is.
    pub status: ExtractionStatus,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// An entity extraction found, with how often the document names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphEntity {
    /// Its name.
    pub name: String,
    /// How often the document names it.
    pub mentions: u64,
}

/// A relation between two entities: they are named in the same sentences `weight` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphRelation {
    /// One entity's name.
    pub source: String,
    /// The other's.
    pub target: String,
    /// How many sentences name both.
    pub weight: u64,
}

/// Everything a document's page shows: `GET /api/documents/{id}/pipeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentPipeline {
    /// The document with its text.
    pub document: DocumentDetail,
    /// Its chunks in order.
    pub chunks: Vec<ChunkSummary>,
    /// Its latest extraction job, once one was queued.
    pub extraction: Option<ExtractionSummary>,
    /// The entities extraction found, most mentioned first; at most [`MAX_GRAPH_ITEMS`].
    pub entities: Vec<GraphEntity>,
    /// The relations between them, strongest first; at most [`MAX_GRAPH_ITEMS`].
    pub relations: Vec<GraphRelation>,
    /// The project's last event id when this was read (see [`DocumentList`]).
    pub last_event_id: String,
}

/// The most entities, and the most relations, a document's page lists.
pub const MAX_GRAPH_ITEMS: usize = 500;

/// A project's documents with the event id to resume its stream from:
/// `GET /api/documents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentList {
    /// Newest first.
    pub documents: Vec<Document>,
    /// The project's last event id when the list was read: connect the stream with it as
    /// `Last-Event-ID` and no change made after the read is missed.
    pub last_event_id: String,
    /// Where the rest of the list starts, when a page was asked (`?limit=`) and more
    /// documents follow: `?after=<next>` reads the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// How many documents the project had at the read, on the first page of a list that
    /// has more (`?limit=` without `after`, and a `next`): what the page counts its loading
    /// towards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// The documents the server renders with the documents page: a screenful and then some. The
/// rest loads in pages of [`DOCUMENTS_PAGE`] once the page is live.
pub const FIRST_SCREEN_DOCUMENTS: usize = 100;

/// The documents one page of the rest of the list holds: about 1 MB of JSON, which the
/// browser decodes and adds in a few milliseconds.
pub const DOCUMENTS_PAGE: usize = 5_000;

/// The most documents `GET /api/documents?limit=` answers in one page.
pub const MAX_DOCUMENTS_PAGE: usize = 10_000;

/// Documents created by one request: the answer to a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDocuments {
    /// In the order the files came.
    pub documents: Vec<Document>,
}

/// The body of `POST /api/documents` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDocument {
    /// Its title.
    pub title: String,
    /// Its text.
    pub content: String,
}

/// Longest accepted document title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// The body of `PATCH /api/documents/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentChanges {
    /// The new title.
    pub title: String,
}

/// A project a user may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Its id, as in tokens and `X-Project-Id`.
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// The caller's projects: `GET /api/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectList {
    /// Sorted by name.
    pub projects: Vec<Project>,
}

/// How many of a project's documents are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentCounts {
    /// Every document.
    pub total: u64,
    /// Queued or being embedded.
    pub in_progress: u64,
    /// Ready to search.
    pub ready: u64,
    /// Whose processing failed.
    pub failed: u64,
}

impl DocumentCounts {
    /// Counts one document in `status`.
    pub fn add(&mut self, status: DocumentStatus, count: u64) {
        self.total += count;
        match status {
            DocumentStatus::Queued | DocumentStatus::Embedding => self.in_progress += count,
            DocumentStatus::Ready => self.ready += count,
            DocumentStatus::Failed => self.failed += count,
        }
    }
}

/// A project with how its documents stand, as the start page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectOverview {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its documents, by state.
    pub documents: DocumentCounts,
}

/// The caller's projects with their document counts: `GET /api/projects/overview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectsOverview {
    /// Sorted by name; at most [`MAX_OVERVIEW_PROJECTS`].
    pub projects: Vec<ProjectOverview>,
}

/// The most projects an overview counts (a service token may open every project).
pub const MAX_OVERVIEW_PROJECTS: usize = 100;

/// The body of `POST /api/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The user's email address (case does not matter).
    pub email: String,
    /// The user's password.
    pub password: String,
}

/// A successful login or renewal: the access token (also set as the access cookie) and what
/// it opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The JWT, for `Authorization: Bearer`.
    pub token: String,
    /// When it expires, in seconds since the Unix epoch (its `exp` claim).
    pub expires_at: u64,
    /// Seconds from the answer until it expires, as the server counts them: what a client
    /// whose clock is wrong schedules its renewal by.
    pub expires_in: u64,
    /// The signed-in user's id.
    pub user_id: String,
    /// The signed-in user's email address.
    pub email: String,
    /// The projects the token opens, sorted by name.
    pub projects: Vec<Project>,
}

/// One chunk that matches a search, best first: `GET /api/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// The chunk.
    pub chunk_id: String,
    /// The document it belongs to.
    pub document_id: String,
    /// That document's title.
    pub document_title: String,
    /// The chunk's text.
    pub text: String,
    /// Cosine similarity to the query, from -1 to 1.
    pub score: f32,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// The query as given.
    pub query: String,
    /// Best first.
    pub hits: Vec<SearchHit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_detail_is_the_document_plus_its_content() {
        let detail = DocumentDetail {
            document: Document {
                id: "doc_1".to_owned(),
                project_id: "proj_1".to_owned(),
                title: "Notes".to_owned(),
                status: DocumentStatus::Embedding,
                chunks: 4,
                embedded_chunks: 1,
                error: None,
                size_bytes: 12,
                created_at: "2026-11-27T00:00:00.000Z".to_owned(),
                updated_at: "2026-11-27T00:00:01.000Z".to_owned(),
            },
            content: "Hello there.".to_owned(),
        };

        let json = serde_json::to_value(&detail).expect("serializes");

        assert_eq!(json["embeddedChunks"], 1);
        assert_eq!(json["status"], "embedding");
        assert_eq!(json["content"], "Hello there.");
        assert_eq!(json["projectId"], "proj_1");
        let back: DocumentDetail = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, detail);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            DocumentStatus::Queued,
            DocumentStatus::Embedding,
            DocumentStatus::Ready,
            DocumentStatus::Failed,
        ] {
            assert_eq!(DocumentStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(DocumentStatus::from_name("done"), None);
    }
}
