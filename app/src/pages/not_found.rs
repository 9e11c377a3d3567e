//! The page for any path the router does not know.

use leptos::prelude::*;
use leptos_router::components::A;

/// Makes the server-rendered answer a `404` (in the browser, nothing): for pages of
/// something that does not exist.
pub fn answer_not_found() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
}

/// Tells the reader the page does not exist and answers HTTP 404 during SSR.
#[component]
pub fn NotFound() -> impl IntoView {
    answer_not_found();
    view! {
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <A href="/">"Back to the start page"</A>
        </section>
    }
}
