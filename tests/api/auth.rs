//! Every row of API.md's error table, over real HTTP, plus where tokens may come from.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, error_of, expect_error, notification, unix_now};

#[tokio::test]
async fn a_stream_without_a_token_is_missing_token_even_with_one_in_the_query() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&["proj_1"]);
    let response = app
        .stream_get(&format!(
            "?projectId=proj_1&token={token}&access_token={token}"
        ))
        .send()
        .await
        .expect("answers");
    expect_error(response, 401, "missing_token").await;
}

#[tokio::test]
async fn bad_tokens_are_invalid_token() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn().await;
    let good = app.token_for(&["proj_1"]);
    let payload = good
        .split('.')
        .nth(1)
        .expect("a JWT has three parts")
        .to_owned();
    let cases = [
        ("a foreign signature", other.token_for(&["proj_1"])),
        ("malformed", "not-a-jwt".to_owned()),
        (
            "expired",
            app.token_expiring_at(&["proj_1"], None, unix_now() - 1),
        ),
        // {"alg":"none","typ":"JWT"} with no signature.
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."),
        ),
        // {"alg":"HS512","typ":"JWT"} with the HS256 signature.
        (
            "another algorithm",
            format!(
                "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{payload}.{}",
                good.split('.').nth(2).expect("signature")
            ),
        ),
    ];
    for (case, token) in cases {
        let response = app.stream_request(&token, "proj_1", None).await;
        let (status, body) = error_of(response).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{case}");
    }
    let basic = app
        .stream_get("")
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .header("X-Project-Id", "proj_1")
        .send()
        .await
        .expect("answers");
    expect_error(basic, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_stream_without_a_project_is_missing_project() {
    let app = TestApp::spawn().await;
    let response = app
        .stream_get("")
        .bearer_auth(app.token_for(&["proj_1"]))
        .send()
        .await
        .expect("answers");
    expect_error(response, 400, "missing_project").await;
}

#[tokio::test]
async fn a_project_outside_the_token_is_forbidden_project() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&["proj_1"]);
    expect_error(
        app.stream_request(&token, "proj_2", None).await,
        403,
        "forbidden_project",
    )
    .await;

    let by_query = app
        .stream_get("?projectId=proj_2")
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    expect_error(by_query, 403, "forbidden_project").await;

    let publisher_of_one = app.token(&["proj_1"], Some("publisher"), Duration::from_secs(60));
    let response = app
        .publish_as(&publisher_of_one, &notification("proj_2", "n_1"))
        .await;
    expect_error(response, 403, "forbidden_project").await;
}

#[tokio::test]
async fn the_session_cookie_and_the_project_query_parameter_open_a_stream() {
    let app = TestApp::spawn().await;
    let response = app
        .stream_get("?projectId=proj_1")
        .header(
            "Cookie",
            format!(
                "theme=dark; docpulse_session={}",
                app.token_for(&["proj_1"])
            ),
        )
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn publishing_without_the_publisher_role_is_not_publisher() {
    let app = TestApp::spawn().await;
    let user = app.token_for(&["*"]);
    let response = app.publish_as(&user, &notification("proj_1", "n_1")).await;
    expect_error(response, 403, "not_publisher").await;

    let response = app
        .client
        .post(format!("{}/api/events/publish", app.address))
        .json(&notification("proj_1", "n_1"))
        .send()
        .await
        .expect("answers");
    expect_error(response, 401, "missing_token").await;
}

#[tokio::test]
async fn bodies_that_are_not_events_are_invalid_event() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({"type": "entity.exploded", "entity": "document", "id": "d", "projectId": "p"}),
        json!({"type": "entity.created", "entity": "spaceship", "id": "d", "projectId": "p"}),
        json!({"type": "entity.created", "entity": "document", "projectId": "p"}),
        json!({"type": "entity.batch", "entity": "document", "id": "d", "projectId": "p"}),
        json!({"type": "entity.created", "entity": "document", "id": "d\r\nevent: x", "projectId": "p"}),
        json!(["not", "an", "object"]),
    ];
    for event in cases {
        let (status, body) = error_of(app.publish(&event).await).await;
        assert_eq!(status, 400, "{event}: {body}");
        assert_eq!(body["error"]["code"], "invalid_event", "{event}");
    }
    let not_json = app
        .client
        .post(format!("{}/api/events/publish", app.address))
        .bearer_auth(app.publisher_token())
        .header("Content-Type", "application/json")
        .body("{ not json")
        .send()
        .await
        .expect("answers");
    expect_error(not_json, 400, "invalid_event").await;
    let not_declared_json = app
        .client
        .post(format!("{}/api/events/publish", app.address))
        .bearer_auth(app.publisher_token())
        .header("Content-Type", "text/plain")
        .body(notification("proj_1", "n_1").to_string())
        .send()
        .await
        .expect("answers");
    expect_error(not_declared_json, 415, "unsupported_media_type").await;

    let no_project = json!({"type": "entity.created", "entity": "document", "id": "d"});
    expect_error(app.publish(&no_project).await, 400, "missing_project").await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_payload_too_large_and_one_just_under_is_accepted() {
    let app = TestApp::spawn().await;
    let mut event = notification("proj_1", "n_1");
    let envelope_len =
        serde_json::to_string(&event).expect("json").len() + r#","data":{"x":""}"#.len();
    event["data"] = json!({ "x": "a".repeat(64 * 1024 - envelope_len) });
    assert_eq!(
        serde_json::to_string(&event).expect("json").len(),
        64 * 1024
    );
    assert_eq!(
        app.publish(&event).await.status(),
        202,
        "exactly 64 KiB fits"
    );

    event["data"] = json!({ "x": "a".repeat(64 * 1024) });
    expect_error(app.publish(&event).await, 413, "payload_too_large").await;

    // Without a Content-Length the limit still holds.
    let chunks =
        futures_util::stream::iter((0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let streamed = app
        .client
        .post(format!("{}/api/events/publish", app.address))
        .bearer_auth(app.publisher_token())
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("answers");
    expect_error(streamed, 413, "payload_too_large").await;
}
