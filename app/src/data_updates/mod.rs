//! Live data updates in the browser: which events a component wants ([`pattern`]), who gets
//! each event ([`registry`]), and how long to wait before reconnecting ([`backoff`]).
//!
//! **Invariant:** these modules are pure (no Leptos, no `web_sys`), so `cargo test -p app`
//! checks them natively.

pub mod backoff;
pub mod pattern;
pub mod registry;
