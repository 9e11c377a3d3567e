//! The site's static files and how browsers may cache them.
//!
//! The app's code and style live under `/pkg/`. A release build (`cargo leptos build
//! --release --precompress`) writes a brotli (`.br`) and a gzip (`.gz`) copy of each beside
//! it, and `ServeDir` sends the smallest one the request's `Accept-Encoding` allows, with its
//! `Content-Encoding`. With `hash-files`, their names carry a hash of their content (cargo-leptos
//! writes the hashes to `hash.txt` beside the server binary), so a name never names two
//! contents and the browser may keep the file for a year without asking again.
//!
//! **Invariant:** a response under `/pkg/` says `Vary: Accept-Encoding`, and is `immutable`
//! only when its name is content-hashed; every HTML page is `no-cache`, so a deploy reaches the
//! next page load, which then names the new files.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::http::{HeaderValue, Response};
use axum::middleware::Next;
use leptos::prelude::LeptosOptions;
use tower_http::services::ServeDir;

/// How long a browser keeps a content-hashed file: a year, the most RFC 9111 advises.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Use a stored copy only after the server confirms it.
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("accept-encoding");

/// Whether the site's files are content-hashed: cargo-leptos wrote their hashes beside this
/// binary. The server then names the hashed files in its pages whether or not it was started
/// by cargo-leptos (which would say so in `LEPTOS_HASH_FILES`).
pub fn hashed_site(options: &LeptosOptions) -> bool {
    options.hash_files
        || std::env::current_exe().ok().is_some_and(|binary| {
            binary
                .parent()
                .is_some_and(|folder| folder.join(&*options.hash_file).is_file())
        })
}

/// `GET /pkg/…`: the app's code and style, precompressed when a copy exists, cached for a year
/// when their names are hashed and revalidated otherwise.
pub fn pkg_router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let folder = Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    let files = ServeDir::new(folder)
        .precompressed_br()
        .precompressed_gzip();
    let cache_control = if options.hash_files {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    Router::new()
        .nest_service(&format!("/{}", options.site_pkg_dir), files)
        .layer(axum::middleware::map_response(
            move |mut response: Response<axum::body::Body>| {
                let cache_control = cache_control.clone();
                async move {
                    let headers = response.headers_mut();
                    headers.insert(VARY, ACCEPT_ENCODING);
                    if response.status().is_success() || response.status().is_redirection() {
                        response.headers_mut().insert(CACHE_CONTROL, cache_control);
                    }
                    response
                }
            },
        ))
}

/// Marks HTML responses `no-cache` unless their handler said otherwise.
pub async fn html_is_not_cached(request: Request, next: Next) -> axum::response::Response {
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if is_html && !response.headers().contains_key(CACHE_CONTROL) {
        response.headers_mut().insert(CACHE_CONTROL, NO_CACHE);
    }
    response
}
