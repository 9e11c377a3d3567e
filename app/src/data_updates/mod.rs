//! Live data updates in the browser: which events a component wants ([`pattern`]), who gets
//! each event ([`registry`]), how long to wait before reconnecting ([`backoff`]), the
//! connection itself (`client`, hydrate only, which reads the stream in a worker:
//! `stream_worker`), the Leptos surface ([`provider`]:
//! [`DataUpdatesProvider`], [`use_data_updates`], [`DataUpdates`], [`Subscription`]) and the
//! live list every list page is built on ([`live_list`]: [`LiveList`], [`LiveRows`]).
//!
//! The tabs of a browser that show one project share one stream: what they tell each other is
//! [`tab_relay`], the browser's means of telling it `tabs` (hydrate only).
//!
//! **Invariant:** [`pattern`], [`registry`], [`backoff`] and [`tab_relay`] are pure (no
//! `web_sys`), so `cargo test -p app` checks them natively.
//!
//! A live component in full (typed event data, a pattern checked at the call, and a
//! subscription that lives as long as the component):
//!
//! ```
//! use app::data_updates::use_data_updates;
//! use leptos::prelude::*;
//!
//! #[component]
//! fn StatusOfDoc1() -> impl IntoView {
//!     let status = RwSignal::new(None);
//!     use_data_updates().subscribe("document:doc_1", move |event| {
//!         if let Some(new_status) = event.document().and_then(|change| change.status) {
//!             status.set(Some(new_status));
//!         }
//!     });
//!     view! { <p>{move || status.get().map(|status| status.as_str())}</p> }
//! }
//! ```
//!
//! The component must sit inside a [`DataUpdatesProvider`]; during SSR it renders and never
//! receives an event.

pub mod backoff;
#[cfg(feature = "hydrate")]
mod client;
pub mod live_list;
pub mod pattern;
pub mod provider;
pub mod registry;
pub mod silence;
#[cfg(feature = "hydrate")]
mod stream_worker;
pub mod tab_relay;
#[cfg(feature = "hydrate")]
mod tabs;
pub mod throttle;

pub use live_list::{Applied, LiveList, LiveRows};
pub use pattern::{IntoPattern, Pattern, PatternError};
pub use provider::{
    ConnectionState, DataUpdates, DataUpdatesProvider, ServerHeartbeat, StreamOptions,
    Subscription, use_data_updates,
};
pub use throttle::{Throttle, throttled};
