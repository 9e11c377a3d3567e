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
//! /// How many times document `doc_1` changed since the page loaded.
//! #[component]
//! fn ChangeCounter() -> impl IntoView {
//!     let changes = RwSignal::new(0_u32);
//!     use_data_updates()
//!         .subscribe(
//!             "document:doc_1".parse().expect("a valid pattern"),
//!             move |_event| changes.update(|count| *count += 1),
//!         )
//!         .keep_while_mounted();
//!     view! { <p>{move || format!("{} changes", changes.get())}</p> }
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
