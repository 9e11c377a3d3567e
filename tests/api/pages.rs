//! Server-rendered pages: the start page, the 404 page, and the pages that need a session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_start_page_is_rendered_on_the_server_with_its_hydration_script() {
    let app = TestApp::spawn().await;

    let response = app.get("/").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("ASCII header")
            .starts_with("text/html")
    );
    let html = response.text().await.expect("a body");
    assert!(
        html.contains("Every change, live."),
        "the page content is server-rendered"
    );
    assert!(
        html.contains("/pkg/docpulse.css"),
        "the stylesheet is linked in the head"
    );
    assert!(
        html.contains("/pkg/docpulse.js"),
        "the hydration script is preloaded"
    );
    assert!(html.contains("/pkg/docpulse.wasm"), "the WASM is preloaded");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_unknown_page_answers_404_with_a_readable_page() {
    let app = TestApp::spawn().await;

    let response = app.get("/no/such/page").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = response.text().await.expect("a body");
    assert!(html.contains("Page not found"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_page_that_needs_a_session_sends_a_signed_out_reader_to_sign_in_and_back() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{}{path}", app.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    for token in [None, Some("not-a-token")] {
        let response = get("/documents?project=proj_a", token)
            .await
            .expect("the server answers");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{token:?}");
        assert_eq!(
            response.headers()[reqwest::header::LOCATION],
            "/login?next=/documents%3Fproject%3Dproj_a"
        );
    }

    let token = app.token_for(&["proj_a"]);
    let signed_in = get("/documents?project=proj_a", Some(&token))
        .await
        .expect("the server answers");
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert!(signed_in.text().await.expect("a body").contains("Alpha"));
    for open_to_all in ["/", "/login?next=/documents"] {
        let response = get(open_to_all, None).await.expect("the server answers");
        assert_eq!(response.status(), StatusCode::OK, "{open_to_all}");
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_document_page_names_its_document_only_to_members_of_its_project() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_project("proj_b", "Beta").await;
    let document = app
        .create_document("proj_a", "Secret plans", "Some text.")
        .await;
    let page = |token: String| {
        app.client
            .get(format!("{}/documents/{}", app.address, document.id))
            .bearer_auth(token)
            .send()
    };

    let member = page(app.token_for(&["proj_a"]))
        .await
        .expect("the server answers");
    assert_eq!(member.status(), StatusCode::OK);
    assert!(
        member
            .text()
            .await
            .expect("a body")
            .contains("Secret plans")
    );

    let outsider = page(app.token_for(&["proj_b"]))
        .await
        .expect("the server answers");
    assert_eq!(outsider.status(), StatusCode::NOT_FOUND);
    let html = outsider.text().await.expect("a body");
    assert!(html.contains("This document is gone"));
    assert!(!html.contains("Secret plans"), "the title stays hidden");
    app.stop().await.expect("clean stop");
}

/// Clears its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_other_servers_of_the_process_start() {
    // Leptos suppresses resource loads process-wide while it lists a server's routes; a page
    // whose data started loading then never rendered (leptos issue #4773). Without the list
    // made once per process, a page hung within these 300 in each run.
    const PAGES: usize = 300;
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let token = app.token_for(&["proj_a"]);
    let rendering = Arc::new(AtomicBool::new(true));
    // Stops the starting thread however the test ends: a failed test must not leave it
    // starting servers under the rest of the suite.
    let _stop_starting = StopOnDrop(Arc::clone(&rendering));
    let starting = std::thread::spawn({
        let rendering = Arc::clone(&rendering);
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut started = 0;
                while rendering.load(Ordering::Relaxed) {
                    TestApp::spawn().await.stop().await.expect("clean stop");
                    started += 1;
                }
                started
            })
        }
    });

    for _ in 0..PAGES {
        let page = tokio::time::timeout(
            Duration::from_secs(10),
            app.client
                .get(format!("{}/documents", app.address))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .expect("the page renders within 10 s")
        .expect("the server answers");
        assert_eq!(page.status(), StatusCode::OK);
    }
    rendering.store(false, Ordering::Relaxed);
    let started = starting
        .join()
        .expect("the other servers started and stopped");
    assert!(started > 1, "servers started while pages rendered");
    app.stop().await.expect("clean stop");
}
