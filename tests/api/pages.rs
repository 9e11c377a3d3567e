//! Server-rendered pages: the start page and the 404 page.

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
