//! Pages whose code is a WASM module of its own, fetched when the reader first goes to them.
//!
//! `cargo leptos build --split` cuts each page declared with [`lazy_page!`] (the start,
//! document and search pages) out of the main module. The documents page stays in it: a
//! session starts there (signing in leads to it) and spends its time there, so its code is
//! wanted on the first visit anyway, and from the main module it goes live sooner (no
//! second fetch and compile). The server names a page's modules in the HTML it renders
//! (`<link rel="preload">`), so on a first visit they load beside the main module; a page
//! reached by a link fetches its modules before it renders, and [`fetch_ahead`] starts that
//! fetch when the reader points at the link.
//!
//! **Invariant:** a module that cannot be fetched (the network failed, or a deploy replaced
//! the files an open tab's code names) never leaves a dead page: the browser loads the
//! page's address afresh from the server, whose HTML names the current files, at most once
//! per address every [`RELOAD_GUARD_MS`]; if the module fails again within that time, the
//! page says so.

use leptos::prelude::*;

/// Declares `$route`, the [`leptos_router::LazyRoute`] of the page component `$page`, whose
/// code is the WASM module `$module`.
macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident, $module:ident, $page:ident) => {
        $(#[$doc])*
        pub struct $route;

        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            async fn view(_route: Self) -> AnyView {
                // The server names the module in the page's preload links (what Leptos's own
                // `#[lazy]` does).
                #[cfg(feature = "ssr")]
                leptos::prefetch_lazy_fn_on_server(stringify!($module));
                let address = $crate::pages::lazy::page_address();
                match page_view().await {
                    Ok(view) => view,
                    Err(_) => $crate::pages::lazy::module_unavailable(address),
                }
            }

            async fn preload() {
                // A failure here is met again, and handled, when the page is shown.
                let _ = preload_page().await;
            }
        }

        #[leptos::wasm_split::wasm_split(
            $module,
            wasm_split_path = leptos::wasm_split,
            fallible,
            preload(preload_page)
        )]
        fn page_view() -> Result<AnyView, leptos::wasm_split::SplitLoaderError> {
            Ok(view! { <$page /> }.into_any())
        }
    };
}

/// Listeners to spread (`{..fetch_ahead::<R>()}`) onto a part of a page whose links lead to
/// `R`'s page: the pointer entering it, or the focus moving into it, starts fetching that
/// page's modules, so the fetch overlaps the time to click and the page renders without
/// waiting for it. The loader keeps what it fetched, so a second start is a task that
/// finishes at once; a failed fetch is met again, and handled, when the page is shown.
pub fn fetch_ahead<R: leptos_router::LazyRoute>() -> impl leptos::attr::Attribute {
    view! {
        <{..}
            on:pointerenter=|_| { leptos::task::spawn_local(R::preload()) }
            on:focusin=|_| { leptos::task::spawn_local(R::preload()) }
        />
    }
}

/// How long after reloading an address for its code a second failure shows the error
/// instead of reloading again (a module that is missing for good must not loop).
#[cfg(feature = "hydrate")]
const RELOAD_GUARD_MS: u64 = 30_000;

/// The address of the page being shown (the router's, which leads the address bar while a
/// link's page loads), read before its module is awaited.
pub fn page_address() -> String {
    leptos_router::hooks::use_url().with_untracked(|url| {
        let mut address = url.path().to_owned();
        if !url.search().is_empty() {
            address.push('?');
            address.push_str(url.search());
        }
        address.push_str(url.hash());
        address
    })
}

/// What a page whose module could not be fetched shows: a note while the browser loads
/// `address` afresh, or, when that was already tried within [`RELOAD_GUARD_MS`], the error.
pub fn module_unavailable(address: String) -> AnyView {
    #[cfg(feature = "hydrate")]
    if reload_once(&address) {
        return view! { <p class="muted" role="status">"Loading the page…"</p> }.into_any();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = address;
    view! {
        <section class="card narrow" role="alert">
            <h1>"This page could not load"</h1>
            <p>"Its code could not be fetched. Check your connection, then reload the page."</p>
        </section>
    }
    .into_any()
}

/// Sends the browser to `address` unless it was sent there for its code within
/// [`RELOAD_GUARD_MS`] (a mark in `sessionStorage`, one per tab); whether it did.
#[cfg(feature = "hydrate")]
fn reload_once(address: &str) -> bool {
    const MARK: &str = "docpulse.reloaded-for-code";
    let Some(window) = web_sys::window() else {
        return false;
    };
    // Whole milliseconds: parsing an integer back costs the WASM far less code than a float.
    let now = js_sys::Date::now() as u64;
    // Without storage (the reader disabled it) there is no guard, so no reload either: a
    // module missing for good would otherwise reload the page forever.
    let Some(storage) = window.session_storage().ok().flatten() else {
        return false;
    };
    let last = storage.get_item(MARK).ok().flatten().and_then(|mark| {
        let (at, marked) = mark.split_once(' ')?;
        (marked == address).then(|| at.parse::<u64>().ok())?
    });
    if last.is_some_and(|at| now.saturating_sub(at) < RELOAD_GUARD_MS)
        || storage.set_item(MARK, &format!("{now} {address}")).is_err()
    {
        return false;
    }
    window.location().assign(address).is_ok()
}
