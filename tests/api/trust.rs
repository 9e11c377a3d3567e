//! Sessions that end when they should, safe defaults in production, requests from other
//! sites, and project ids: against the real server, on the in-memory bus and (with
//! `TEST_BUS=redis`) on Redis, and across two instances on one Redis and one database.

use serde_json::{Value, json};

use docpulse::config::{Config, Secret};

use crate::helpers::{
    TestApp, connected, expect_auth_expired, expect_error, fresh_postgres_database,
    fresh_redis_database, projects_with, request_stream,
};

/// Logs `email` in with `password` and returns the token of the session.
async fn token_of_login(app: &TestApp, email: &str, password: &str) -> String {
    let response = app.log_in(email, password).await;
    assert_eq!(response.status(), 200, "the login succeeds");
    let body: Value = response.json().await.expect("a session");
    body["token"].as_str().expect("a token").to_owned()
}

/// A user `ada@example.com` (password `analytical`) of `proj_a` on `app`.
async fn ada(app: &TestApp) {
    app.create_project("proj_a", "Alpha").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;
}

#[tokio::test]
async fn logout_ends_the_session_its_tokens_and_its_open_streams() {
    let app = TestApp::spawn().await;
    ada(&app).await;
    let token = token_of_login(&app, "ada@example.com", "analytical").await;
    let other_session = token_of_login(&app, "ada@example.com", "analytical").await;
    assert_eq!(projects_with(&app, &token).await.status(), 200);
    let mut stream = connected(app.stream_request(&token, "proj_a", None).await, "proj_a").await;

    let logout = app
        .client
        .post(format!("{}/api/auth/logout", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(logout.status(), 204);

    expect_auth_expired(&mut stream).await;
    expect_error(projects_with(&app, &token).await, 401, "session_ended").await;
    expect_error(
        app.stream_request(&token, "proj_a", None).await,
        401,
        "session_ended",
    )
    .await;
    assert_eq!(
        projects_with(&app, &other_session).await.status(),
        200,
        "another session of the same user lives on"
    );
    assert_eq!(
        app.client
            .post(format!("{}/api/auth/logout", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the server answers")
            .status(),
        204,
        "logging out twice is harmless"
    );
}

#[tokio::test]
async fn a_session_ended_on_one_instance_ends_on_the_other_within_a_second() {
    let (redis, postgres) = (
        fresh_redis_database().await,
        fresh_postgres_database().await,
    );
    let secret = Secret::generate().expect("randomness");
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("DATABASE_URL", postgres.as_str()),
        ("JWT_SECRET", secret.expose()),
    ];
    let first = TestApp::spawn_with_env(&shared).await;
    let second = TestApp::spawn_with_env(&shared).await;
    ada(&first).await;
    let token = token_of_login(&first, "ada@example.com", "analytical").await;
    assert_eq!(projects_with(&second, &token).await.status(), 200);
    let mut on_second = connected(
        second.stream_request(&token, "proj_a", None).await,
        "proj_a",
    )
    .await;

    let logout = first
        .client
        .post(format!("{}/api/auth/logout", first.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(logout.status(), 204);

    expect_auth_expired(&mut on_second).await;
    expect_error(projects_with(&second, &token).await, 401, "session_ended").await;
}

#[tokio::test]
async fn an_operator_ends_a_users_sessions_or_membership_and_their_streams_end() {
    let app = TestApp::spawn().await;
    ada(&app).await;
    for command in [
        vec!["end-sessions", "ada@example.com"],
        vec!["remove-member", "ada@example.com", "proj_a"],
    ] {
        let token = token_of_login(&app, "ada@example.com", "analytical").await;
        let mut stream =
            connected(app.stream_request(&token, "proj_a", None).await, "proj_a").await;
        let arguments: Vec<String> = command.iter().map(|word| (*word).to_owned()).collect();
        let said = docpulse::admin::run(app.config(), &arguments)
            .await
            .expect("the command runs");
        assert!(said.contains("ended 1 session"), "{said}");
        expect_auth_expired(&mut stream).await;
        expect_error(projects_with(&app, &token).await, 401, "session_ended").await;
    }
    let after = app.log_in("ada@example.com", "analytical").await;
    let body: Value = after.json().await.expect("a session");
    assert_eq!(body["projects"], json!([]), "the membership is gone");
}

#[tokio::test]
async fn a_tokens_session_is_checked_without_a_database_round_trip_once_known() {
    let app = TestApp::spawn().await;
    ada(&app).await;
    let token = token_of_login(&app, "ada@example.com", "analytical").await;
    assert_eq!(projects_with(&app, &token).await.status(), 200);
    // With the sessions table gone, only the memory of this session can let it through.
    sqlx::query("ALTER TABLE sessions RENAME TO sessions_away")
        .execute(&app.pool)
        .await
        .expect("renamed");
    for _ in 0..3 {
        assert_eq!(projects_with(&app, &token).await.status(), 200);
    }
    sqlx::query("ALTER TABLE sessions_away RENAME TO sessions")
        .execute(&app.pool)
        .await
        .expect("renamed back");
}

#[tokio::test]
async fn an_unsafe_request_with_the_cookie_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    ada(&app).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let login = browser
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "email": "ada@example.com", "password": "analytical" }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(login.status(), 200);
    let token: Value = login.json().await.expect("a session");
    let token = token["token"].as_str().expect("a token").to_owned();
    let upload = |client: &reqwest::Client, headers: &[(&str, &str)]| {
        let mut request = client
            .post(format!("{}/api/documents?projectId=proj_a", app.address))
            .multipart(reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::text("Some text.").file_name("a.txt"),
            ));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };

    // A form of another site posts with the cookie: refused, nothing stored.
    for headers in [
        [("Origin", "https://evil.example")],
        [("Sec-Fetch-Site", "cross-site")],
        [("Origin", "null")],
    ] {
        let refused = upload(&browser, &headers).await.expect("answers");
        expect_error(refused, 403, "cross_site").await;
    }
    assert!(app.list_documents("proj_a").await.documents.is_empty());
    let deleted_from_elsewhere = browser
        .delete(format!(
            "{}/api/documents/doc_x?projectId=proj_a",
            app.address
        ))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("answers");
    expect_error(deleted_from_elsewhere, 403, "cross_site").await;

    // The app's own pages, and a bearer token from anywhere, go through.
    let own_origin = app.address.clone();
    let same_site = upload(
        &browser,
        &[
            ("Origin", own_origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    )
    .await
    .expect("answers");
    assert_eq!(same_site.status(), 201);
    let bearer = app
        .client
        .post(format!("{}/api/documents?projectId=proj_a", app.address))
        .bearer_auth(&token)
        .header("Origin", "https://tool.example")
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({ "title": "From a tool", "content": "Text." }))
        .send()
        .await
        .expect("answers");
    assert_eq!(bearer.status(), 201);
    // Reading is not changing: a cross-site GET with the cookie is answered.
    let read = browser
        .get(format!("{}/api/projects", app.address))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("answers");
    assert_eq!(read.status(), 200);
}

#[tokio::test]
async fn production_seeds_no_demo_account_and_sets_host_prefixed_secure_cookies() {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let secret = Secret::generate().expect("randomness");
    let data_dir_text = data_dir.path().display().to_string();
    let config = Config::from_lookup(|name| match name {
        "DOCPULSE_ENV" => Some("production".to_owned()),
        "JWT_SECRET" => Some(secret.expose().to_owned()),
        "LEPTOS_SITE_ADDR" => Some("127.0.0.1:0".to_owned()),
        "DATA_DIR" => Some(data_dir_text.clone()),
        _ => None,
    })
    .expect("a valid production configuration");
    assert!(!config.demo_user);
    let app = TestApp::spawn_with(config, data_dir).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users", &[]).await,
        0,
        "no demo account"
    );
    expect_error(
        app.log_in("demo@docpulse.local", "demo").await,
        401,
        "invalid_credentials",
    )
    .await;

    ada(&app).await;
    let login = app.log_in("ada@example.com", "analytical").await;
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().expect("text").to_owned())
        .collect();
    for name in [
        "__Host-docpulse_session=",
        "__Host-docpulse_refresh=",
        "__Host-docpulse_device=",
    ] {
        let cookie = cookies
            .iter()
            .find(|cookie| cookie.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(cookie.contains("; Path=/"), "{cookie}");
        assert!(!cookie.contains("Domain"), "{cookie}");
    }
    let token: Value = login.json().await.expect("a session");
    let token = token["token"].as_str().expect("a token");
    let by_host_cookie = app
        .client
        .get(format!("{}/api/projects", app.address))
        .header("Cookie", format!("__Host-docpulse_session={token}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(by_host_cookie.status(), 200);
    let by_plain_cookie = app
        .client
        .get(format!("{}/api/projects", app.address))
        .header("Cookie", format!("docpulse_session={token}"))
        .send()
        .await
        .expect("answers");
    expect_error(by_plain_cookie, 401, "missing_token").await;
}

#[tokio::test]
async fn star_is_never_a_project_at_any_entry() {
    let app = TestApp::spawn().await;
    let refused = docpulse::admin::run(
        app.config(),
        &[
            "create-project".to_owned(),
            "*".to_owned(),
            "All".to_owned(),
        ],
    )
    .await
    .expect_err("refused");
    assert!(
        refused.to_string().contains("not a valid project id"),
        "{refused}"
    );

    // Even a `*` row planted in the database is never issued as a claim.
    ada(&app).await;
    sqlx::query("INSERT INTO projects (id, name) VALUES ('*', 'Everything')")
        .execute(&app.pool)
        .await
        .expect("planted");
    sqlx::query(
        "INSERT INTO memberships (user_id, project_id) \
         SELECT id, '*' FROM users WHERE email = 'ada@example.com'",
    )
    .execute(&app.pool)
    .await
    .expect("planted");
    let login = app.log_in("ada@example.com", "analytical").await;
    let body: Value = login.json().await.expect("a session");
    assert_eq!(body["projects"], json!([{"id": "proj_a", "name": "Alpha"}]));
    let token = body["token"].as_str().expect("a token");
    let other = app
        .client
        .get(format!("{}/api/documents", app.address))
        .bearer_auth(token)
        .header("X-Project-Id", "proj_other")
        .send()
        .await
        .expect("answers");
    expect_error(other, 403, "forbidden_project").await;
    let starred = request_stream(&app.stream_client, &app.address, token, "*", None).await;
    expect_error(starred, 403, "forbidden_project").await;
    let published = app
        .publish(&json!({"type": "entity.created", "entity": "notification", "id": "n", "projectId": "*"}))
        .await;
    expect_error(published, 400, "invalid_event").await;
}
