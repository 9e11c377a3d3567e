//! docpulse server: document processing whose every change reaches the browser live.
//!
//! Code map, in reading order:
//!
//! - [`config`]: the environment variables, parsed and validated once at start.
//! - [`telemetry`]: tracing subscriber set-up.
//! - [`startup`]: [`startup::Application`] builds the router and owns shutdown.
//! - [`serve`]: the listener; event-stream connections directly, the rest through hyper.
//! - [`state`]: [`state::AppState`], the cheap handles every handler may extract.
//! - [`error`]: [`error::ApiError`], the error table of `API.md` as a type.
//! - [`auth`]: JWT claims and keys, and the extractors that say who calls.
//! - [`events`]: the [`events::EventBus`] publishers and streams share.
//! - [`stream`]: `GET /api/events/stream`, Server-Sent Events of one project.
//! - [`metrics`]: counters of the event path, for `GET /metrics`.
//! - [`api`]: thin HTTP handlers, one module per resource.
//! - [`documents`]: documents and their text; [`documents::chunking`] cuts it into chunks.
//! - [`workers`]: background work on documents: embeddings and entity graphs.
//! - [`storage`]: the database connection and its migrations; SQL only.
//!
//! The Leptos components and everything shared with the browser live in the
//! `app` crate; the WASM entry point is the `frontend` crate.

pub mod api;
pub mod auth;
pub mod config;
pub mod documents;
pub mod error;
pub mod events;
pub mod metrics;
pub mod serve;
pub mod startup;
pub mod state;
pub mod storage;
pub mod stream;
pub mod telemetry;
pub mod workers;
