//! [`ConnectionIndicator`]: where the live updates stand, in words, in the app shell.
//!
//! **Invariant:** whenever updates are not live while a project is shown, the reader is
//! told so and gets a manual refresh control; the page itself keeps working. A page that
//! follows no stream (the start page, sign-in) shows no state at all: "not connected"
//! would alarm a reader about a connection the page never needed.

use leptos::prelude::*;

use crate::data_updates::{ConnectionState, use_data_updates};

/// A `role="status"` live region naming the connection state, with a "Refresh" button while
/// updates are paused; empty while no stream is wanted.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let updates = use_data_updates();
    let state = updates.connection_state();
    let seconds_left = reconnect_countdown(state);
    let label = move || match state.get() {
        ConnectionState::Connecting => "Connecting…".to_owned(),
        ConnectionState::Open => "Live".to_owned(),
        ConnectionState::Reconnecting { attempt, .. } => match seconds_left.get() {
            0 => format!("Updates paused · reconnecting… (attempt {attempt})"),
            seconds => format!("Updates paused · reconnecting in {seconds} s (attempt {attempt})"),
        },
        ConnectionState::Unauthorized => "Updates stopped · sign in again".to_owned(),
        ConnectionState::Closed => String::new(),
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

/// Whole seconds until the next reconnect attempt, counting down once a second while the
/// state is `Reconnecting`.
fn reconnect_countdown(state: ReadSignal<ConnectionState>) -> RwSignal<u64> {
    let seconds_left = RwSignal::new(0);
    Effect::new(move |_| {
        let ConnectionState::Reconnecting { retry_in, .. } = state.get() else {
            return;
        };
        // Rounded up, so the count reaches 0 only when the attempt is due.
        seconds_left.set(
            retry_in
                .as_millis()
                .div_ceil(1000)
                .try_into()
                .unwrap_or(u64::MAX),
        );
        #[cfg(feature = "hydrate")]
        if let Ok(ticker) = set_interval_with_handle(
            move || seconds_left.update(|seconds| *seconds = seconds.saturating_sub(1)),
            std::time::Duration::from_secs(1),
        ) {
            // The next state (or the next attempt's delay) stops this ticker.
            on_cleanup(move || ticker.clear());
        }
    });
    seconds_left
}
