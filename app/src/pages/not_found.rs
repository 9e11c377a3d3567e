//! The page for any path the router does not know.

use leptos::prelude::*;
use leptos_router::components::A;

/// Tells the reader the page does not exist and answers HTTP 404 during SSR.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <A href="/">"Back to the start page"</A>
        </section>
    }
}
