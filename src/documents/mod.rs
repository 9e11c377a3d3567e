//! Documents: [`DocumentService`], the one writer of documents and their processing state,
//! and how text is split into chunks.
//!
//! **Invariant:** every change is published as an `API.md` event after its transaction
//! commits, so a client that refetches on an event always sees the change.

pub mod chunking;
mod service;

pub use service::{ChunkRecorded, DocumentError, DocumentService, JobSignal, MAX_TITLE_CHARS};
