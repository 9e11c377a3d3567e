//! Short access tokens renewed from the session: `POST /api/auth/refresh` with the HttpOnly
//! refresh cookie, its rotation and the end of a session whose replaced cookie comes back,
//! logging out with an expired access token, page loads that renew, and a stream that
//! outlives its token.

use std::collections::HashMap;

use serde_json::Value;

use app::protocol::StreamMessage;

use crate::helpers::{
    TestApp, connected, expect_auth_expired, expect_error, notification, projects_with, unix_now,
};

/// The access cookie, the refresh cookie.
const ACCESS: &str = "docpulse_session";
const REFRESH: &str = "docpulse_refresh";

/// One `Set-Cookie`: its value and its attributes as written.
struct SetCookie {
    value: String,
    attributes: String,
}

/// The `Set-Cookie`s of `response` by cookie name.
fn set_cookies(response: &reqwest::Response) -> HashMap<String, SetCookie> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|header| header.to_str().expect("text"))
        .map(|header| {
            let (pair, attributes) = header.split_once(';').unwrap_or((header, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            (
                name.to_owned(),
                SetCookie {
                    value: value.to_owned(),
                    attributes: attributes.to_owned(),
                },
            )
        })
        .collect()
}

/// A user `ada@example.com` (password `analytical`) of `proj_a`, on a server whose access
/// tokens live `access_secs`.
async fn ada(access_secs: &str) -> TestApp {
    let app = TestApp::spawn_with_env(&[("ACCESS_TOKEN_SECS", access_secs)]).await;
    app.create_project("proj_a", "Alpha").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;
    app
}

/// Ada's login: its session body and its cookies.
async fn log_in(app: &TestApp) -> (Value, HashMap<String, SetCookie>) {
    let response = app.log_in("ada@example.com", "analytical").await;
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(&response);
    (response.json().await.expect("a session"), cookies)
}

/// `POST <path>` with `cookie` as the whole `Cookie` header.
async fn post_with_cookie(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("the server answers")
}

/// `POST /api/auth/refresh` with `cookie` as the whole `Cookie` header.
async fn renew(app: &TestApp, cookie: &str) -> reqwest::Response {
    post_with_cookie(app, "/api/auth/refresh", cookie).await
}

/// A renewal with refresh token `refresh` that must succeed: its body and cookies.
async fn renewed(app: &TestApp, refresh: &str) -> (Value, HashMap<String, SetCookie>) {
    let response = renew(app, &format!("{REFRESH}={refresh}")).await;
    assert_eq!(response.status(), 200, "the renewal succeeds");
    let cookies = set_cookies(&response);
    (response.json().await.expect("a session"), cookies)
}

/// `POST /api/auth/logout` with `cookie` as the whole `Cookie` header.
async fn log_out(app: &TestApp, cookie: &str) -> reqwest::Response {
    post_with_cookie(app, "/api/auth/logout", cookie).await
}

#[tokio::test]
async fn a_login_gives_a_short_access_token_and_a_refresh_cookie_living_as_long_as_the_session() {
    let app = ada("60").await;
    let before = unix_now();

    let (session, cookies) = log_in(&app).await;

    let token = session["token"].as_str().expect("a token");
    let claims = app.keys.verify(token).expect("the token verifies");
    assert!((before + 60..=unix_now() + 60).contains(&claims.exp));
    assert_eq!(session["expiresIn"], 60);
    let access = &cookies[ACCESS];
    assert_eq!(access.value, token);
    assert!(
        access.attributes.contains("Max-Age=60"),
        "{}",
        access.attributes
    );
    let refresh = &cookies[REFRESH];
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            refresh.attributes.contains(attribute),
            "{attribute} in {}",
            refresh.attributes
        );
    }
    let max_age: u64 = refresh
        .attributes
        .split("Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|age| age.parse().ok())
        .expect("a Max-Age");
    assert!(
        (12 * 3600 - 5..=12 * 3600).contains(&max_age),
        "the refresh cookie lives as long as the session: {max_age}"
    );
    assert_ne!(refresh.value, token);
    expect_error(
        projects_with(&app, &refresh.value).await,
        401,
        "invalid_token",
    )
    .await;
    let access_as_refresh = renew(&app, &format!("{REFRESH}={token}")).await;
    expect_error(access_as_refresh, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_renewal_rotates_the_cookie_lets_a_racing_tab_through_and_ends_a_session_whose_old_cookie_returns()
 {
    let app = ada("60").await;
    let (session, cookies) = log_in(&app).await;
    let first_token = session["token"].as_str().expect("a token").to_owned();
    let sid = app.keys.verify(&first_token).expect("verifies").sid;
    let first_refresh = cookies[REFRESH].value.clone();
    let mut stream = connected(
        app.stream_request(&first_token, "proj_a", None).await,
        "proj_a",
    )
    .await;

    let (session, cookies) = renewed(&app, &first_refresh).await;
    let second_token = session["token"].as_str().expect("a token").to_owned();
    assert_eq!(app.keys.verify(&second_token).expect("verifies").sid, sid);
    assert_eq!(session["email"], "ada@example.com");
    assert_eq!(session["projects"][0]["id"], "proj_a");
    assert_eq!(cookies[ACCESS].value, second_token);
    let second_refresh = cookies[REFRESH].value.clone();
    assert_ne!(second_refresh, first_refresh, "the refresh cookie rotates");
    assert_eq!(projects_with(&app, &second_token).await.status(), 200);

    // Another tab of the same browser renewed at the same moment, with the cookie just
    // replaced: it gets an access token, and no cookie that would undo the rotation.
    let (_, racing) = renewed(&app, &first_refresh).await;
    assert!(racing.contains_key(ACCESS));
    assert!(!racing.contains_key(REFRESH), "no second rotation");

    let (_, cookies) = renewed(&app, &second_refresh).await;
    let third_refresh = cookies[REFRESH].value.clone();

    // The first cookie is two rotations old: a copy. The session ends, with its stream.
    let copied = renew(&app, &format!("{REFRESH}={first_refresh}")).await;
    expect_error(copied, 401, "session_ended").await;
    expect_auth_expired(&mut stream).await;
    expect_error(
        projects_with(&app, &second_token).await,
        401,
        "session_ended",
    )
    .await;
    let latest = renew(&app, &format!("{REFRESH}={third_refresh}")).await;
    expect_error(latest, 401, "session_ended").await;
}

#[tokio::test]
async fn a_renewal_needs_the_cookie_and_is_refused_to_another_site() {
    let app = ada("60").await;
    let (_, cookies) = log_in(&app).await;
    let refresh = &cookies[REFRESH].value;

    expect_error(renew(&app, "theme=dark").await, 401, "missing_token").await;
    expect_error(
        renew(&app, &format!("{REFRESH}=not.a.token")).await,
        401,
        "invalid_token",
    )
    .await;
    let cross_site = app
        .client
        .post(format!("{}/api/auth/refresh", app.address))
        .header("Cookie", format!("{REFRESH}={refresh}"))
        .header("Origin", "https://elsewhere.example")
        .send()
        .await
        .expect("the server answers");
    expect_error(cross_site, 403, "cross_site").await;
    let (_, cookies) = renewed(&app, refresh).await;
    assert!(
        cookies.contains_key(REFRESH),
        "the refused attempts rotated nothing"
    );
}

#[tokio::test]
async fn logging_out_without_a_live_access_token_ends_the_session_by_its_refresh_cookie() {
    let app = ada("60").await;
    let (_, cookies) = log_in(&app).await;
    let refresh = cookies[REFRESH].value.clone();

    // The browser dropped the access cookie at its Max-Age; the refresh cookie remains.
    let logout = log_out(&app, &format!("{REFRESH}={refresh}")).await;

    assert_eq!(logout.status(), 204);
    let cleared = set_cookies(&logout);
    for name in [ACCESS, REFRESH] {
        assert_eq!(cleared[name].value, "", "{name}");
        assert!(cleared[name].attributes.contains("Max-Age=0"), "{name}");
    }
    expect_error(
        renew(&app, &format!("{REFRESH}={refresh}")).await,
        401,
        "session_ended",
    )
    .await;
}

#[tokio::test]
async fn a_page_load_without_a_live_access_token_renews_it_from_the_refresh_cookie() {
    let app = ada("60").await;
    let (_, cookies) = log_in(&app).await;
    let refresh = cookies[REFRESH].value.clone();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let page = |cookie: String| {
        browser
            .get(format!("{}/documents", app.address))
            .header("Cookie", cookie)
            .send()
    };

    let response = page(format!("{REFRESH}={refresh}; theme=dark"))
        .await
        .expect("the server answers");

    assert_eq!(response.status(), 200, "no detour to sign in");
    let cookies = set_cookies(&response);
    let token = &cookies[ACCESS].value;
    assert_eq!(projects_with(&app, token).await.status(), 200);
    let next_refresh = cookies[REFRESH].value.clone();
    assert_ne!(next_refresh, refresh, "the page's renewal rotated");
    let html = response.text().await.expect("a page");
    assert!(
        html.contains("Alpha"),
        "the page rendered the session's projects"
    );

    let signed_out = page("theme=dark".to_owned()).await.expect("answers");
    assert_eq!(signed_out.status(), 303);
    let logout = log_out(&app, &format!("{REFRESH}={next_refresh}")).await;
    assert_eq!(logout.status(), 204);
    let ended = page(format!("{REFRESH}={next_refresh}"))
        .await
        .expect("answers");
    assert_eq!(ended.status(), 303, "an ended session renews nothing");
}

#[tokio::test]
async fn a_stream_whose_access_token_expires_resumes_with_a_renewed_one_and_misses_nothing() {
    let app = ada("2").await;
    let (session, cookies) = log_in(&app).await;
    let token = session["token"].as_str().expect("a token").to_owned();
    let refresh = cookies[REFRESH].value.clone();
    let mut stream = connected(app.stream_request(&token, "proj_a", None).await, "proj_a").await;
    let before = app.publish_ok(&notification("proj_a", "ntf_before")).await;

    let mut last_seen = None;
    let reason = loop {
        match stream.next().await {
            StreamMessage::Entity { id, .. } => last_seen = Some(id),
            StreamMessage::AuthExpired(notice) => break notice.reason,
            StreamMessage::Heartbeat(_) => {}
            other => panic!("expected an event or auth_expired, got {other:?}"),
        }
    };
    assert_eq!(reason, "the access token expired");
    assert_eq!(last_seen.as_deref(), Some(before.as_str()));
    let during = app.publish_ok(&notification("proj_a", "ntf_during")).await;

    let (session, _) = renewed(&app, &refresh).await;
    let token = session["token"].as_str().expect("a token");
    let mut resumed = connected(
        app.stream_request(token, "proj_a", Some(&before)).await,
        "proj_a",
    )
    .await;
    let (id, event) = resumed.next_entity().await;
    assert_eq!(id, during);
    assert_eq!(event.id.as_ref().map(|id| id.as_str()), Some("ntf_during"));
}
