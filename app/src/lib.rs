//! docpulse's user interface and the code shared by the server and the browser.
//!
//! Code map, in reading order:
//!
//! - [`protocol`]: the wire types both sides agree on.
//! - [`resources`]: the JSON shapes of the REST resources (documents, projects, session).
//! - [`error`]: [`error::AppError`], what a page shows when something fails.
//! - [`data_updates`]: live updates in the browser: patterns, registry, backoff, the stream
//!   client, [`data_updates::DataUpdatesProvider`] and [`data_updates::use_data_updates`].
//! - [`page_data`]: the first data of a page, loaded during SSR and refetched in the browser.
//! - [`session`]: whether the reader is signed in, and where signing in leads back to.
//! - `rest` (hydrate only): the browser's REST calls.
//! - [`components`]: reusable pieces of the pages.
//! - [`pages`]: one module per route.
//! - this file: [`shell`] (the HTML document the server renders), [`App`] (the shell and
//!   the router) and [`ActiveProject`].
//!
//! Feature `ssr` builds the server side, `hydrate` the browser side; pure modules need
//! neither and test natively.

pub mod components;
mod counts;
pub mod data_updates;
pub mod error;
pub mod page_data;
pub mod pages;
pub mod protocol;
pub mod resources;
#[cfg(feature = "hydrate")]
mod rest;
pub mod session;
#[cfg(feature = "hydrate")]
mod session_renewal;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{Lazy, ParamSegment, SsrMode, StaticSegment};

use crate::components::connection_indicator::ConnectionIndicator;
use crate::components::notifications::Notifications;
use crate::data_updates::{DataUpdatesProvider, StreamOptions};
use crate::pages::document::{DOCUMENTS_SEGMENT, DocumentRoute};
use crate::pages::documents::DocumentsPage;
use crate::pages::fetch_ahead;
use crate::pages::home::HomeRoute;
use crate::pages::login::LoginPage;
use crate::pages::not_found::NotFound;
use crate::pages::search::SearchRoute;
use crate::protocol::ProjectId;
use crate::session::SignedIn;

/// The project whose events the app's stream follows; the documents page sets it once its
/// data is loaded, logout clears it.
#[derive(Debug, Clone, Copy)]
pub struct ActiveProject(pub RwSignal<Option<ProjectId>>);

impl ActiveProject {
    /// The project a page is about: the address's `?project=`, else the one the app follows
    /// (read once: a page does not move when the followed project changes under it).
    pub fn requested() -> Memo<Option<String>> {
        let query = leptos_router::hooks::use_query_map();
        let active = expect_context::<ActiveProject>();
        Memo::new(move |_| {
            query.with(|query| query.get("project")).or_else(|| {
                active
                    .0
                    .get_untracked()
                    .map(|project| project.as_str().to_owned())
            })
        })
    }
}

/// The HTML document around [`App`], rendered by the server for every page.
///
/// The stylesheet is linked in the head so the first paint is already styled; its name, like
/// the scripts', carries its content hash in a release build.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <HashedStylesheet options=options.clone() />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: the page frame, the event stream and the router.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let active_project = ActiveProject(RwSignal::new(None));
    provide_context(active_project);
    let signed_in = SignedIn::provide();
    view! {
        <Title text="docpulse" />
        <Router>
            <DataUpdatesProvider project=active_project.0 options=StreamOptions::of_rendering_server()>
                <header class="app-header">
                    <A href="/" attr:class="brand" {..fetch_ahead::<HomeRoute>()}>
                        <span class="brand-mark" aria-hidden="true"></span>
                        "docpulse"
                    </A>
                    <nav class="app-nav" aria-label="Main">
                        <A href="/documents">"Documents"</A>
                        <A href="/search" {..fetch_ahead::<SearchRoute>()}>
                            "Search"
                        </A>
                        <Show when=move || !signed_in.get()>
                            <A href="/login">"Sign in"</A>
                        </Show>
                    </nav>
                    <div class="header-tools">
                        <Show when=move || signed_in.get()>
                            <Notifications />
                        </Show>
                        <ConnectionIndicator />
                    </div>
                </header>
                <main class="app-main">
                    <Routes fallback=NotFound>
                        <Route path=StaticSegment("") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async />
                        <Route path=StaticSegment("login") view=LoginPage />
                        <Route
                            path=StaticSegment(DOCUMENTS_SEGMENT)
                            view=DocumentsPage
                            ssr=SsrMode::Async
                        />
                        <Route path=StaticSegment("search") view={Lazy::<SearchRoute>::new()} ssr=SsrMode::Async />
                        <Route
                            path=(StaticSegment(DOCUMENTS_SEGMENT), ParamSegment("id"))
                            view={Lazy::<DocumentRoute>::new()}
                            ssr=SsrMode::Async
                        />
                    </Routes>
                </main>
                <footer class="app-footer">
                    "docpulse · documents whose every change reaches you live"
                </footer>
            </DataUpdatesProvider>
        </Router>
    }
}
