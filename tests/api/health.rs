//! `GET /healthz` and the JSON envelope of unknown API routes.

use app::protocol::HealthReport;
use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_answers_ok_when_the_database_is_ready() {
    let app = TestApp::spawn().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), StatusCode::OK);
    let report: HealthReport = response.json().await.expect("a JSON health report");
    assert_eq!(report.status, "ok");
    assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_unknown_api_route_answers_the_json_error_envelope() {
    let app = TestApp::spawn().await;

    for (method, path) in [
        (reqwest::Method::GET, "/api/no-such-thing"),
        (reqwest::Method::POST, "/api/documents/nested/unknown"),
        (reqwest::Method::GET, "/api"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("the server answers");

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
        assert_eq!(content_type, "application/json", "{method} {path}");
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "not_found", "{method} {path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{method} {path}: the envelope has a message"
        );
    }
    app.stop().await.expect("clean stop");
}
