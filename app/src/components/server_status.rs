//! A card that asks the server whether it is healthy, on demand.
//!
//! During SSR it renders its idle state with the button disabled; the button comes alive
//! once the page has hydrated, so a click never goes unanswered.

use leptos::prelude::*;

use crate::protocol::HealthReport;

/// What the last check found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    NotChecked,
    Checking,
    Healthy { version: String },
    Failed(String),
}

/// The "Server status" card with its "Check now" button.
#[component]
pub fn ServerStatus() -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| set_hydrated.set(true));

    let (check, set_check) = signal(Check::NotChecked);
    let run_check = move |_| {
        set_check.set(Check::Checking);
        leptos::task::spawn_local(async move {
            set_check.set(match fetch_health().await {
                Ok(report) => Check::Healthy {
                    version: report.version,
                },
                Err(reason) => Check::Failed(reason),
            });
        });
    };
    let busy = move || !hydrated.get() || check.get() == Check::Checking;
    let message = move || match check.get() {
        Check::NotChecked => "Not checked yet.".to_owned(),
        Check::Checking => "Checking…".to_owned(),
        Check::Healthy { version } => format!("The server is healthy (version {version})."),
        Check::Failed(reason) => format!("Check failed: {reason}."),
    };
    let state_class = move || match check.get() {
        Check::Healthy { .. } => "status-message healthy",
        Check::Failed(_) => "status-message failed",
        Check::NotChecked | Check::Checking => "status-message",
    };

    view! {
        <section class="card status-card" aria-labelledby="server-status-heading">
            <div>
                <h2 id="server-status-heading">"Server status"</h2>
                <p class=state_class role="status" data-testid="server-status">
                    {message}
                </p>
            </div>
            <button type="button" class="button" on:click=run_check disabled=busy>
                "Check now"
            </button>
        </section>
    }
}

/// Asks `GET /healthz`; the error is a reason fit to show to the user.
#[cfg(feature = "hydrate")]
async fn fetch_health() -> Result<HealthReport, String> {
    let response = gloo_net::http::Request::get("/healthz")
        .send()
        .await
        .map_err(|_| "the server could not be reached".to_owned())?;
    if !response.ok() {
        return Err(format!("the server answered HTTP {}", response.status()));
    }
    response
        .json::<HealthReport>()
        .await
        .map_err(|_| "the server's answer was not understood".to_owned())
}

/// The server never runs the check: the button only works in the browser.
#[cfg(not(feature = "hydrate"))]
async fn fetch_health() -> Result<HealthReport, String> {
    Err("the check runs in the browser".to_owned())
}
