//! Documents and the work on them: [`DocumentService`] creates, renames and deletes
//! documents; [`WorkProgress`], the one owner of job rows, records the workers' progress;
//! `announce` writes the events of both into the outbox; [`chunking`] splits text.
//!
//! **Invariant:** every change is published as an `API.md` event after its transaction
//! commits, so a client that refetches on an event always sees the change.

mod announce;
pub mod chunking;
mod progress;
mod service;

pub use crate::storage::jobs::{ClaimedJob, JobKind};
pub use progress::{ChunkRecorded, JobSignal, WorkProgress};
pub use service::{DocumentError, DocumentService, MAX_TITLE_CHARS};
