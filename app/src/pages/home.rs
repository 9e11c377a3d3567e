//! The start page: what docpulse does, and whether its server is up.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::server_status::ServerStatus;

/// The start page.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"Every change, live."</h1>
            <p class="lead">
                "docpulse splits your documents into chunks, embeds them and extracts their \
                 entities in the background. Every step shows up in every open browser of the \
                 project within milliseconds, with no refresh."
            </p>
            <A href="/documents" attr:class="button">
                "Open your documents"
            </A>
        </section>
        <section class="features" aria-label="What docpulse does">
            <article class="card">
                <h2>"Live documents"</h2>
                <p>"Uploads, edits and deletions appear for everyone on the project at once."</p>
            </article>
            <article class="card">
                <h2>"Background processing"</h2>
                <p>"Chunking, embedding and extraction run in workers and report their progress."</p>
            </article>
            <article class="card">
                <h2>"Scoped to a project"</h2>
                <p>"A project's updates reach only the people who may see that project."</p>
            </article>
        </section>
        <ServerStatus />
    }
}
