//! docpulse's user interface and the code shared by the server and the browser.
//!
//! Code map, in reading order:
//!
//! - [`protocol`]: the wire types both sides agree on.
//! - [`resources`]: the JSON shapes of the REST resources (documents, projects, session).
//! - [`data_updates`]: live updates in the browser (patterns, registry, backoff so far).
//! - [`components`]: reusable pieces of the pages.
//! - [`pages`]: one module per route.
//! - this file: [`shell`] (the HTML document the server renders) and [`App`] (the router).
//!
//! Feature `ssr` builds the server side, `hydrate` the browser side; pure modules need
//! neither and test natively.

pub mod components;
pub mod data_updates;
pub mod pages;
pub mod protocol;
pub mod resources;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::StaticSegment;
use leptos_router::components::{A, Route, Router, Routes};

use crate::pages::home::HomePage;
use crate::pages::not_found::NotFound;

/// The HTML document around [`App`], rendered by the server for every page.
///
/// The stylesheet is linked in the head so the first paint is already styled.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <link rel="stylesheet" href=stylesheet />
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

/// The application: the page frame and the router.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="docpulse" />
        <Router>
            <header class="app-header">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "docpulse"
                </A>
            </header>
            <main class="app-main">
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage />
                </Routes>
            </main>
            <footer class="app-footer">
                "docpulse · documents whose every change reaches you live"
            </footer>
        </Router>
    }
}
