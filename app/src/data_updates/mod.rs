//! Live data updates in the browser: which events a component wants ([`pattern`]), who gets
//! each event ([`registry`]), how long to wait before reconnecting ([`backoff`]), the
//! connection itself (`client`, hydrate only) and the Leptos surface ([`provider`]:
//! [`DataUpdatesProvider`], [`use_data_updates`], [`DataUpdates`], [`Subscription`]).
//!
//! **Invariant:** [`pattern`], [`registry`] and [`backoff`] are pure (no Leptos, no
//! `web_sys`), so `cargo test -p app` checks them natively.
//!
//! A live component in full:
//!
//! ```
//! use leptos::prelude::*;
//! use app::data_updates::use_data_updates;
//!
//! /// Document `doc_1`'s status, live: the typed change of each of its events.
//! #[component]
//! fn StatusOfDoc1() -> impl IntoView {
//!     let status = RwSignal::new(None);
//!     use_data_updates()
//!         .subscribe("document:doc_1".parse().expect("a valid pattern"), move |event| {
//!             if let Some(new_status) = event.document().and_then(|change| change.status) {
//!                 status.set(Some(new_status));
//!             }
//!         })
//!         .keep_while_mounted();
//!     view! { <p>{move || status.get().map(|status| status.as_str())}</p> }
//! }
//! ```
//!
//! The component must sit inside a [`DataUpdatesProvider`]; during SSR it renders and never
//! receives an event.

pub mod backoff;
#[cfg(feature = "hydrate")]
mod client;
pub mod pattern;
pub mod provider;
pub mod registry;

pub use pattern::{Pattern, PatternError};
pub use provider::{
    ConnectionState, DataUpdates, DataUpdatesProvider, StreamOptions, Subscription,
    use_data_updates,
};
