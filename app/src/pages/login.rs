//! The login page: email and password; a successful login sets the HttpOnly session cookie
//! and opens the page named by `next` (the one that sent the reader here), else the
//! documents page.
//!
//! The form only submits once the page has hydrated, so the password never goes into an
//! address as a plain HTML form would put it. The fields are read when the form is submitted,
//! not bound to signals, so what was typed before hydration is kept.

use leptos::prelude::*;
use leptos_meta::Title;
#[cfg(feature = "hydrate")]
use leptos_router::hooks::use_navigate;
use leptos_router::hooks::use_query_map;

#[cfg(feature = "hydrate")]
use crate::error::AppError;
#[cfg(feature = "hydrate")]
use crate::resources::Credentials;
use crate::session::{safe_next, use_signed_in};

/// The sign-in form.
#[component]
pub fn LoginPage() -> impl IntoView {
    let (hydrated, set_hydrated) = signal(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| set_hydrated.set(true));

    let email = NodeRef::<leptos::html::Input>::new();
    let password = NodeRef::<leptos::html::Input>::new();
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let query = use_query_map();
    // Where to go once signed in: the page that sent the reader here, if it is ours.
    let next = move || query.with_untracked(|query| safe_next(query.get_str("next")).to_owned());
    let signed_in = use_signed_in();
    #[cfg(feature = "hydrate")]
    let navigate = use_navigate();
    #[cfg(not(feature = "hydrate"))]
    let _ = (next, signed_in);

    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        busy.set(true);
        failure.set(None);
        #[cfg(feature = "hydrate")]
        {
            let value = |field: NodeRef<leptos::html::Input>| {
                field
                    .get_untracked()
                    .map(|input| input.value())
                    .unwrap_or_default()
            };
            let credentials = Credentials {
                email: value(email),
                password: value(password),
            };
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                match crate::rest::log_in(&credentials).await {
                    Ok(session) => {
                        crate::session_renewal::renew_before_expiry(session.expires_in);
                        signed_in.set(true);
                        navigate(&next(), Default::default());
                    }
                    Err(AppError::Unauthorized) => {
                        failure.set(Some("Wrong email or password.".to_owned()));
                    }
                    Err(error) => failure.set(Some(format!("Could not sign in: {error}."))),
                }
                busy.set(false);
            });
        }
    };

    view! {
        <Title text="Sign in · docpulse" />
        <section class="card narrow login" aria-labelledby="login-heading">
            <h1 id="login-heading">"Sign in"</h1>
            <p class="muted">"Your projects' documents, live."</p>
            <form class="form" on:submit=submit>
                <div class="field">
                    <label for="login-email">"Email"</label>
                    <input
                        id="login-email"
                        type="email"
                        name="email"
                        autocomplete="username"
                        required
                        node_ref=email
                    />
                </div>
                <div class="field">
                    <label for="login-password">"Password"</label>
                    <input
                        id="login-password"
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required
                        node_ref=password
                    />
                </div>
                <p class="form-error" role="alert">
                    {move || failure.get()}
                </p>
                <button
                    type="submit"
                    class="button"
                    disabled=move || !hydrated.get() || busy.get()
                >
                    "Sign in"
                </button>
            </form>
        </section>
    }
}
