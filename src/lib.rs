//! docpulse server: document processing whose every change reaches the browser live.
//!
//! Code map, in reading order:
//!
//! - [`config`]: the environment variables, parsed and validated once at start.
//! - [`clock`]: the wall clock as the server writes it.
//! - [`telemetry`]: tracing subscriber set-up.
//! - [`startup`]: [`startup::Application`] builds the router and owns shutdown.
//! - [`serve`]: the listener and its connection limits; event-stream connections directly,
//!   the rest through hyper.
//! - [`state`]: [`state::AppState`], the cheap handles every handler may extract.
//! - [`error`]: [`error::ApiError`], the error table of `API.md` as a type.
//! - [`auth`]: JWT claims and keys, and the extractors that say who calls.
//! - [`events`]: the [`events::EventBus`] publishers and streams share.
//! - [`stream`]: `GET /api/events/stream`, Server-Sent Events of one project.
//! - [`limits`]: bounds on work anyone can ask for (a gate, a rate limiter).
//! - [`metrics`]: counters of the event path and the connections, for `GET /metrics`.
//! - [`random`]: random hex for ids and epochs.
//! - [`outbox`]: the transactional outbox and its relay: every change's events, written with
//!   it and published after.
//! - [`documents`]: [`documents::DocumentService`], the one writer of documents, and
//!   [`documents::chunking`], which cuts their text into chunks.
//! - [`workers`]: the job pool that chunks and embeds documents and extracts entity graphs.
//! - [`search`]: ranks a project's chunks by similarity to a query.
//! - [`api`]: thin HTTP handlers, one module per resource.
//! - [`page_access`]: which pages need a session; a reader without one is sent to sign in.
//! - [`page_data`]: the data server-rendered pages load, through the API's extractors.
//! - [`storage`]: the database connection, its migrations and queries; SQL only.
//! - [`demo`]: the demo account seeded on first start.
//! - [`admin`]: `docpulse admin`, which creates projects and users.
//!
//! The Leptos components and everything shared with the browser live in the
//! `app` crate; the WASM entry point is the `frontend` crate.

pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod documents;
pub mod error;
pub mod events;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod page_access;
pub mod page_data;
pub mod random;
pub mod search;
pub mod serve;
pub mod startup;
pub mod state;
pub mod storage;
pub mod stream;
pub mod telemetry;
pub mod workers;
