//! [`ConnectionIndicator`]: where the live updates stand, in words, in the app shell.
//!
//! **Invariant:** whenever updates are not live while a project is shown, the reader is
//! told so and gets a manual refresh control; the page itself keeps working.

use leptos::prelude::*;

use crate::data_updates::{ConnectionState, use_data_updates};

/// A `role="status"` live region naming the connection state, with a "Refresh" button while
/// updates are paused.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let updates = use_data_updates();
    let state = updates.connection_state();
    let label = move || match state.get() {
        ConnectionState::Connecting => "Connecting…".to_owned(),
        ConnectionState::Open => "Live".to_owned(),
        ConnectionState::Reconnecting { attempt, retry_in } => format!(
            "Updates paused · reconnecting in {} s (attempt {attempt})",
            retry_in.as_secs().max(1)
        ),
        ConnectionState::Unauthorized => "Updates stopped · sign in again".to_owned(),
        ConnectionState::Closed => "Not connected".to_owned(),
    };
    let state_name = move || match state.get() {
        ConnectionState::Connecting => "connecting",
        ConnectionState::Open => "open",
        ConnectionState::Reconnecting { .. } => "reconnecting",
        ConnectionState::Unauthorized => "unauthorized",
        ConnectionState::Closed => "closed",
    };
    let paused = move || {
        matches!(
            state.get(),
            ConnectionState::Reconnecting { .. } | ConnectionState::Unauthorized
        )
    };

    view! {
        <div class="connection" data-state=state_name>
            <span class="connection-dot" aria-hidden="true"></span>
            <span role="status" aria-live="polite" data-testid="connection-state">
                {label}
            </span>
            <Show when=paused>
                <button
                    type="button"
                    class="button small secondary"
                    on:click=move |_| updates.request_resync()
                >
                    "Refresh"
                </button>
            </Show>
        </div>
    }
}
