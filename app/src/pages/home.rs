//! The start page. Signed out, it says what docpulse does and invites to sign in; signed
//! in, it shows the reader's projects with how many documents each has and how many are in
//! progress, live for the project whose stream the app follows.
//!
//! **Invariant:** the followed project's counts converge on the server's: any document
//! event of it, the stream opening (events between the load and the connect) and a
//! `resync` each reload the overview, at most one reload per [`RELOAD_PAUSE`].

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::ActiveProject;
use crate::counts::{counted, grouped};
use crate::data_updates::{ConnectionState, throttled, use_data_updates};
use crate::error::AppError;
use crate::page_data::home_page_resource;
use crate::protocol::ProjectId;
use crate::resources::{ProjectOverview, ProjectsOverview};
use crate::session::use_signed_in;

/// The shortest time between two reloads of the overview under a burst of events.
const RELOAD_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

lazy_page!(
    /// The `/` route.
    HomeRoute,
    home_page,
    HomePage
);

/// The start page.
#[component]
fn HomePage() -> impl IntoView {
    let signed_in = use_signed_in();
    let data = home_page_resource(Signal::derive(move || signed_in.get()));
    view! {
        <Title text="docpulse" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(Some(overview)) => {
                        view! { <YourProjects overview reload=Callback::new(move |()| data.refetch()) /> }
                            .into_any()
                    }
                    Ok(None) => view! { <Welcome /> }.into_any(),
                    Err(AppError::Unauthorized) => {
                        signed_in.set(false);
                        view! { <Welcome /> }.into_any()
                    }
                    Err(error) => {
                        view! {
                            <section class="card narrow" role="alert">
                                <h1>"Your projects"</h1>
                                <p>{format!("Your projects could not be loaded: {error}.")}</p>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// What a signed-out reader sees.
#[component]
fn Welcome() -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"Every change, live."</h1>
            <p class="lead">
                "docpulse splits your documents into chunks, embeds them and extracts their \
                 entities in the background. Every step shows up in every open browser of the \
                 project within milliseconds, with no refresh."
            </p>
            <A href="/login" attr:class="button">
                "Sign in"
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
    }
}

/// A signed-in reader's projects; the followed one (the last one open, else the first)
/// live.
#[component]
fn YourProjects(overview: ProjectsOverview, reload: Callback<()>) -> impl IntoView {
    let active = expect_context::<ActiveProject>();
    let updates = use_data_updates();
    let followed = active.0.get_untracked().or_else(|| {
        overview
            .projects
            .first()
            .and_then(|project| project.id.parse::<ProjectId>().ok())
    });
    // Browser only: follow the project's stream.
    let to_follow = followed.clone();
    Effect::new(move |_| {
        if active.0.get_untracked() != to_follow {
            active.0.set(to_follow.clone());
        }
    });

    let schedule_reload = throttled(RELOAD_PAUSE, move || reload.run(()));
    updates.subscribe("document:*", move |_| {
        schedule_reload();
    });
    let state = updates.connection_state();
    let resyncs = updates.resyncs();
    // The stream opening (what changed between the load and the connect) or a `resync`.
    Effect::new(move |previous: Option<(bool, u64)>| {
        let now = (state.get() == ConnectionState::Open, resyncs.get());
        if previous.is_some_and(|(was_open, resynced)| (now.0 && !was_open) || now.1 != resynced) {
            schedule_reload();
        }
        now
    });

    let empty = overview.projects.is_empty();
    let cards = overview
        .projects
        .into_iter()
        .map(|project| {
            let live = followed
                .as_ref()
                .is_some_and(|id| id.as_str() == project.id);
            view! { <ProjectCard project live /> }
        })
        .collect_view();
    view! {
        <section class="page-head">
            <div>
                <h1>"Your projects"</h1>
                <p class="muted">"Open a project to see its documents change live."</p>
            </div>
        </section>
        <Show when=move || empty>
            <p class="card">"Your account has no project yet. An administrator can add you to one."</p>
        </Show>
        <ul class="project-grid" aria-label="Your projects">
            {cards}
        </ul>
    }
}

/// One project's card: its name (a link to its documents) and its document counts.
#[component]
fn ProjectCard(project: ProjectOverview, live: bool) -> impl IntoView {
    let counts = project.documents;
    let total = counted(counts.total, "document", "documents");
    let progress = if counts.in_progress == 0 {
        "Nothing in progress".to_owned()
    } else {
        format!("{} in progress", grouped(counts.in_progress))
    };
    let href = format!("/documents?project={}", project.id);
    view! {
        <li class="card project-card" data-testid="project-card">
            <h2>
                <A href=href>{project.name}</A>
            </h2>
            <p class="project-total" data-testid="project-total">
                {total}
            </p>
            <p class="muted" data-testid="project-progress">
                {progress}
                {format!(" · {} ready", grouped(counts.ready))}
                {(counts.failed > 0).then(|| format!(" · {} failed", grouped(counts.failed)))}
            </p>
            {live.then(|| view! { <span class="badge live-badge">"Live"</span> })}
        </li>
    }
}
