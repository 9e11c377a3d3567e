//! docpulse server: document processing whose every change reaches the browser live.
//!
//! Code map, in reading order:
//!
//! - [`config`]: the environment variables, parsed and validated once at start.
//! - [`telemetry`]: tracing subscriber set-up.
//! - [`startup`]: [`startup::Application`] builds the router and owns shutdown.
//! - [`state`]: [`state::AppState`], the cheap handles every handler may extract.
//! - [`error`]: [`error::ApiError`], the error table of `API.md` as a type.
//! - [`api`]: thin HTTP handlers, one module per resource.
//! - [`storage`]: the database connection and its migrations; SQL only.
//!
//! The Leptos components and everything shared with the browser live in the
//! `app` crate; the WASM entry point is the `frontend` crate.

pub mod api;
pub mod config;
pub mod error;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
