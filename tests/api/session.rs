//! Login, logout and the caller's projects; the demo account.

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error};

#[tokio::test]
async fn login_with_the_right_password_returns_a_token_for_the_users_projects_and_a_cookie() {
    let app = TestApp::spawn().await;
    app.create_project("proj_b", "Beta").await;
    app.create_project("proj_a", "Alpha").await;
    app.create_project("proj_c", "Not hers").await;
    let user_id = app
        .create_user("ada@example.com", "analytical", &["proj_a", "proj_b"])
        .await;

    let response = app.log_in("Ada@Example.com", "analytical").await;

    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .expect("text")
        .to_owned();
    let session: Value = response.json().await.expect("a JSON body");
    let token = session["token"].as_str().expect("a token");
    assert!(cookie.starts_with(&format!("docpulse_session={token};")));
    assert!(cookie.contains("HttpOnly"), "cookie: {cookie}");
    assert!(cookie.contains("SameSite=Strict"), "cookie: {cookie}");
    assert!(cookie.contains("Path=/"), "cookie: {cookie}");

    let claims = app.keys.verify(token).expect("the token verifies");
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.projects, ["proj_a", "proj_b"]);
    assert_eq!(claims.role, None);
    assert_eq!(session["expiresAt"], claims.exp);
    assert_eq!(session["email"], "ada@example.com");
    assert_eq!(
        session["projects"],
        json!([{"id": "proj_a", "name": "Alpha"}, {"id": "proj_b", "name": "Beta"}])
    );
}

#[tokio::test]
async fn login_with_a_wrong_password_is_refused_without_a_cookie() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;

    let response = app.log_in("ada@example.com", "Analytical").await;

    assert!(response.headers().get("set-cookie").is_none());
    expect_error(response, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn login_with_an_unknown_email_is_refused_like_a_wrong_password() {
    let app = TestApp::spawn().await;

    let response = app.log_in("nobody@example.com", "analytical").await;

    assert!(response.headers().get("set-cookie").is_none());
    expect_error(response, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn a_login_body_that_is_not_json_credentials_is_refused_without_a_cookie() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;
    let log_in = |content_type: &'static str, body: String| {
        app.client
            .post(format!("{}/api/auth/login", app.address))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let credentials = json!({"email": "ada@example.com", "password": "analytical"}).to_string();

    // What a cross-site HTML form can send without a preflight: never a session.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = log_in(content_type, credentials.clone())
            .await
            .expect("the server answers");
        assert!(response.headers().get("set-cookie").is_none());
        expect_error(response, 415, "unsupported_media_type").await;
    }
    let not_credentials = log_in("application/json", "{\"email\": 1}".to_owned())
        .await
        .expect("the server answers");
    expect_error(not_credentials, 400, "invalid_request").await;
    let credentials = log_in("application/json", credentials)
        .await
        .expect("the server answers");
    assert_eq!(credentials.status(), 200);
}

#[tokio::test]
async fn the_session_cookie_opens_the_users_projects_and_logout_clears_it() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_project("proj_c", "Not hers").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;
    let cookie_client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let login = cookie_client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "email": "ada@example.com", "password": "analytical" }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(login.status(), 200);

    let projects: Value = cookie_client
        .get(format!("{}/api/projects", app.address))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON body");
    assert_eq!(
        projects,
        json!({"projects": [{"id": "proj_a", "name": "Alpha"}]})
    );
    let documents = cookie_client
        .get(format!("{}/api/documents", app.address))
        .header("X-Project-Id", "proj_a")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(documents.status(), 200);
    let other_project = cookie_client
        .get(format!("{}/api/documents", app.address))
        .header("X-Project-Id", "proj_c")
        .send()
        .await
        .expect("the server answers");
    expect_error(other_project, 403, "forbidden_project").await;

    let logout = cookie_client
        .post(format!("{}/api/auth/logout", app.address))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(logout.status(), 204);
    let cleared = logout
        .headers()
        .get("set-cookie")
        .expect("a clearing cookie")
        .to_str()
        .expect("text");
    assert!(
        cleared.starts_with("docpulse_session=;"),
        "cookie: {cleared}"
    );
    assert!(cleared.contains("Max-Age=0"), "cookie: {cleared}");
    let after = cookie_client
        .get(format!("{}/api/projects", app.address))
        .send()
        .await
        .expect("the server answers");
    expect_error(after, 401, "missing_token").await;
}

#[tokio::test]
async fn projects_needs_a_token() {
    let app = TestApp::spawn().await;

    expect_error(app.get("/api/projects").await, 401, "missing_token").await;
}

#[tokio::test]
async fn the_demo_user_is_seeded_on_first_start_with_two_projects_of_documents() {
    let app = TestApp::spawn_with_env(&[("DEMO_USER", "true")]).await;

    let response = app.log_in("demo@docpulse.local", "demo").await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.expect("a JSON body");
    let projects = session["projects"].as_array().expect("projects");
    assert_eq!(projects.len(), 2);
    for project in projects {
        let id = project["id"].as_str().expect("an id");
        let documents = app.list_documents(id).await.documents;
        assert!(documents.len() >= 2, "{id} has documents: {documents:?}");
    }

    // A second start finds the user and creates nothing twice.
    let app = app.restart().await;
    let users = app.count("SELECT COUNT(*) FROM users", &[]).await;
    let documents = app.count("SELECT COUNT(*) FROM documents", &[]).await;
    assert_eq!(users, 1);
    assert_eq!(documents, 5);
}
