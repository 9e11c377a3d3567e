//! Hostile input against the real server: login floods, an extraction bomb, oversized bodies
//! and fields, slow and idle connections, too many connections and streams. Each test asserts
//! the refusal API.md names, that `/healthz` still answers promptly, and that another user's
//! requests still succeed meanwhile.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use app::protocol::{EntityKind, EventType};

use crate::helpers::{
    FRAME_LIMIT, TestApp, connected, expect_error, read_until, read_until_closed,
};

/// How long `/healthz` may take during an attack and still count as prompt.
const PROMPT: Duration = Duration::from_millis(500);

/// Asserts the server is still of use to others: `/healthz` answers within [`PROMPT`] and
/// another user's request succeeds.
async fn assert_serving_others(app: &TestApp) {
    let started = tokio::time::Instant::now();
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < PROMPT,
        "/healthz took {:?} during the attack",
        started.elapsed()
    );
    let projects = app
        .client
        .get(format!("{}/api/projects", app.address))
        .bearer_auth(app.token_of("user_bystander", &["proj_other"]))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(projects.status(), 200, "another user's request failed");
}

/// `POST /api/auth/login` as the client at `address` (through `X-Real-IP`, which the test
/// server trusts), with `device` as the device cookie.
async fn log_in_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
    device: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .header("X-Real-IP", address)
        .json(&json!({ "email": email, "password": password }));
    if let Some(device) = device {
        request = request.header("Cookie", format!("docpulse_device={device}"));
    }
    request.send().await.expect("the server answers")
}

/// The `Retry-After` of `response` in seconds; fails when it has none.
fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a refusal says when to try again")
}

/// The statuses of `responses`, counted: `(status, how many)`, by status.
fn tally(statuses: impl IntoIterator<Item = u16>) -> Vec<(u16, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(status).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

#[tokio::test]
async fn a_login_flood_from_one_address_is_throttled_while_others_sign_in() {
    let app = TestApp::spawn_with_env(&[
        ("CLIENT_IP_HEADER", "X-Real-IP"),
        ("LOGIN_ATTEMPTS_PER_ADDRESS", "5"),
    ])
    .await;
    app.create_project("proj_a", "Alpha").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;

    let app = &app;
    let flood = join_all((0..60).map(|n| async move {
        let email = format!("victim{n}@example.com");
        log_in_from(app, "198.51.100.1", &email, "wrong", None).await
    }));
    let during = async {
        assert_serving_others(app).await;
        log_in_from(app, "203.0.113.9", "ada@example.com", "analytical", None).await
    };
    let (responses, legitimate) = tokio::join!(flood, during);

    assert_eq!(
        legitimate.status(),
        200,
        "another address signs in meanwhile"
    );
    let mut statuses = Vec::new();
    for response in responses {
        if response.status() == 429 {
            assert!(retry_after(&response) >= 1);
            expect_error(response, 429, "rate_limited").await;
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(tally(statuses), [(401, 5), (429, 55)]);
    assert_serving_others(app).await;
}

#[tokio::test]
async fn password_hashing_beyond_its_queue_is_refused_as_overloaded() {
    let app = TestApp::spawn_with_env(&[
        ("CLIENT_IP_HEADER", "X-Real-IP"),
        ("LOGIN_HASH_CONCURRENCY", "1"),
        ("LOGIN_HASH_QUEUE", "2"),
    ])
    .await;
    // Forty addresses, forty emails: only the hashing gate holds them back.
    let app = &app;
    let flood = join_all((0..40).map(|n| async move {
        let (address, email) = (format!("198.51.100.{n}"), format!("user{n}@example.com"));
        log_in_from(app, &address, &email, "wrong", None).await
    }));
    let (responses, ()) = tokio::join!(flood, assert_serving_others(app));

    let mut statuses = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        if status == 503 {
            assert_eq!(retry_after(&response), 1);
            let message = expect_error(response, 503, "overloaded").await;
            assert!(message.contains("password checks"), "{message}");
        }
        statuses.push(status);
    }
    let counts = tally(statuses);
    assert_eq!(counts.len(), 2, "only 401 and 503: {counts:?}");
    let (refused, checked) = (counts[1], counts[0]);
    assert_eq!((checked.0, refused.0), (401, 503));
    assert!(
        checked.1 >= 3,
        "the gate and its queue were used: {counts:?}"
    );
    assert!(refused.1 >= 10, "much of the burst was refused: {counts:?}");
}

#[tokio::test]
async fn failed_logins_throttle_an_account_but_not_its_owners_browser() {
    let app = TestApp::spawn_with_env(&[
        ("CLIENT_IP_HEADER", "X-Real-IP"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "3"),
    ])
    .await;
    app.create_project("proj_a", "Alpha").await;
    app.create_user("ada@example.com", "analytical", &["proj_a"])
        .await;
    let owner = log_in_from(&app, "203.0.113.9", "ada@example.com", "analytical", None).await;
    assert_eq!(owner.status(), 200);
    let device = owner
        .cookies()
        .find(|cookie| cookie.name() == "docpulse_device")
        .map(|cookie| {
            assert!(cookie.http_only(), "the device cookie is HttpOnly");
            cookie.value().to_owned()
        })
        .expect("a successful login marks the browser");

    for attacker in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        for email in ["ada@example.com", "nobody@example.com"] {
            expect_error(
                log_in_from(&app, attacker, email, "guess", None).await,
                401,
                "invalid_credentials",
            )
            .await;
        }
    }
    for email in ["ada@example.com", "nobody@example.com"] {
        let refused = log_in_from(&app, "198.51.100.4", email, "guess", None).await;
        assert!(retry_after(&refused) >= 1);
        expect_error(refused, 429, "rate_limited").await;
    }
    let new_browser = log_in_from(&app, "203.0.113.9", "ada@example.com", "analytical", None).await;
    expect_error(new_browser, 429, "rate_limited").await;

    let owners_browser = log_in_from(
        &app,
        "203.0.113.9",
        "ada@example.com",
        "analytical",
        Some(&device),
    )
    .await;
    assert_eq!(
        owners_browser.status(),
        200,
        "the browser that signed in before is not locked out"
    );
    let forged = log_in_from(
        &app,
        "203.0.113.9",
        "ada@example.com",
        "analytical",
        Some("not.a.token"),
    )
    .await;
    expect_error(forged, 429, "rate_limited").await;
}

#[tokio::test]
async fn oversized_login_fields_and_bodies_are_refused_before_any_hashing() {
    let app = TestApp::spawn().await;
    let long_password = app.log_in("ada@example.com", &"p".repeat(2000)).await;
    expect_error(long_password, 400, "invalid_request").await;
    let huge_body = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"email\":\"a@b\",\"password\":\"{}\"}}",
            "p".repeat(100 * 1024)
        ))
        .send()
        .await
        .expect("the server answers");
    expect_error(huge_body, 413, "payload_too_large").await;
    assert_serving_others(&app).await;
}

/// One sentence naming `count` distinct capitalised names: `Qaaa, Qaab, ...`.
fn name_bomb(count: usize) -> String {
    let names: Vec<String> = (0..count)
        .map(|number| {
            let letters: String = [number / 676 % 26, number / 26 % 26, number % 26]
                .iter()
                .map(|&digit| char::from(b'a' + u8::try_from(digit).expect("below 26")))
                .collect();
            format!("Q{letters}")
        })
        .collect();
    format!("We met {}.", names.join(", "))
}

#[tokio::test]
async fn an_extraction_bomb_finishes_within_its_budget_without_losing_its_lease() {
    // A one-second lease and a longer extraction: without renewals, the second worker would
    // take the job over mid-way.
    let app = TestApp::spawn_with_env(&[
        ("WORKERS", "2"),
        ("JOB_LEASE_SECS", "1"),
        ("EXTRACTION_BUDGET_MS", "2500"),
        ("EXTRACTION_MAX_SENTENCE_CHARS", "100000"),
        ("EXTRACTION_MAX_NAMES_PER_SENTENCE", "100000"),
        ("EXTRACTION_MAX_PAIRS", "1000000"),
    ])
    .await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    // 17,576 names in one sentence: 154 million pairs with the caps lifted as above, far
    // more than the budget allows.
    let bomb = name_bomb(17_576);
    let document = app.create_document("proj_a", "bomb.txt", &bomb).await;

    let started = tokio::time::Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, event) = stream.next_entity().await;
            if event.entity == EntityKind::ExtractionJob
                && event.event_type == EventType::Updated
                && event.data.as_ref().and_then(|data| data.get("status")) == Some(&json!("done"))
            {
                return event;
            }
        }
    });
    let (done, ()) = tokio::join!(done, assert_serving_others(&app));
    let done = done.expect("the extraction finished");
    let data = done.data.expect("data");
    assert_eq!(data["truncated"], json!(true), "{data:?}");
    assert_eq!(data["entities"], json!(50));
    assert!(started.elapsed() < Duration::from_secs(20));
    let claims = app
        .count(
            "SELECT claims FROM jobs WHERE document_id = $1 AND kind = 'extraction'",
            &[&document.id],
        )
        .await;
    assert_eq!(claims, 1, "the lease was renewed: nobody else took the job");
}

#[tokio::test]
async fn a_name_bomb_under_the_default_caps_extracts_every_name_it_keeps() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    app.create_document("proj_a", "bomb.txt", &name_bomb(5_000))
        .await;
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, event) = stream.next_entity().await;
            if event.entity == EntityKind::ExtractionJob
                && event.data.as_ref().and_then(|data| data.get("status")) == Some(&json!("done"))
            {
                return event.data.expect("data");
            }
        }
    })
    .await
    .expect("the extraction finished");
    assert_eq!(done["entities"], json!(50));
    assert_eq!(done["relations"], json!(100));
    assert!(done.get("truncated").is_none(), "{done:?}");
    assert_serving_others(&app).await;
}

#[tokio::test]
async fn an_oversized_upload_field_or_body_is_refused_and_nothing_is_stored() {
    let app =
        TestApp::spawn_with_env(&[("MAX_DOCUMENT_BYTES", "1000"), ("MAX_UPLOAD_FILES", "2")]).await;
    app.create_project("proj_a", "Alpha").await;
    let upload = |form: reqwest::multipart::Form| {
        app.api(Method::POST, "/api/documents", "proj_a")
            .multipart(form)
            .send()
    };
    let file = || reqwest::multipart::Part::text("Some text.").file_name("a.txt");

    let big_title = reqwest::multipart::Form::new()
        .text("title", "t".repeat(10 * 1024))
        .part("file", file());
    let refused = upload(big_title).await.expect("the server answers");
    let message = expect_error(refused, 400, "invalid_request").await;
    assert!(message.contains("form field"), "{message}");

    let too_many_fields = (0..20).fold(reqwest::multipart::Form::new(), |form, n| {
        form.text(format!("extra{n}"), "x")
    });
    let refused = upload(too_many_fields.part("file", file()))
        .await
        .expect("the server answers");
    expect_error(refused, 400, "invalid_request").await;

    // A body declared larger than the whole upload may be is refused before it is read.
    let mut declared = raw_connection(
        &app,
        &format!(
            "POST /api/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             X-Project-Id: proj_a\r\nContent-Type: multipart/form-data; boundary=b\r\n\
             Content-Length: 50000000\r\n\r\n",
            app.token_for(&["proj_a"])
        ),
    )
    .await;
    let answer = read_until(&mut declared, "payload_too_large").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("the upload is over its limit of"),
        "{answer}"
    );

    // Sent in chunks with no declared length, past the limit before its first part: the
    // body's own limit stops it as it arrives.
    let chunks = std::iter::repeat_n(vec![b'x'; 1024], 200)
        .chain(std::iter::once(
            b"\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n\
              text\r\n--b--\r\n"
                .to_vec(),
        ))
        .map(Ok::<_, std::io::Error>);
    let streamed = app
        .api(Method::POST, "/api/documents", "proj_a")
        .header("Content-Type", "multipart/form-data; boundary=b")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("the server answers");
    let message = expect_error(streamed, 413, "payload_too_large").await;
    assert!(
        message.contains("the upload is over its limit of"),
        "{message}"
    );

    assert!(app.list_documents("proj_a").await.documents.is_empty());
    assert_serving_others(&app).await;
}

/// A raw connection to `app` that has sent `bytes`.
async fn raw_connection(app: &TestApp, bytes: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(app.socket_address())
        .await
        .expect("connects");
    tcp.write_all(bytes.as_bytes()).await.expect("sends");
    tcp
}

#[tokio::test]
async fn half_a_request_head_is_closed_at_the_header_timeout_on_either_path() {
    let app = TestApp::spawn_with_env(&[("HEADER_TIMEOUT_SECS", "1")]).await;
    for half_head in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "GET /api/events/stream HTTP/1.1\r\nHost: x\r\nX-Project-Id: p\r\n",
    ] {
        let mut slow = raw_connection(&app, half_head).await;
        let (answer, waited) = read_until_closed(&mut slow, FRAME_LIMIT).await;
        assert!(answer.is_empty(), "no answer to half a head: {answer}");
        assert!(
            waited >= Duration::from_millis(900),
            "closed after {waited:?}"
        );
    }
    assert_serving_others(&app).await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_when_idle_or_slow_with_its_next_head() {
    let app = TestApp::spawn_with_env(&[("IDLE_TIMEOUT_SECS", "1")]).await;
    for next in ["", "GET /healthz HTTP/1.1\r\n"] {
        let mut connection = raw_connection(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        read_until(&mut connection, "\"status\":\"ok\"").await;
        connection.write_all(next.as_bytes()).await.expect("sends");
        let (rest, waited) = read_until_closed(&mut connection, FRAME_LIMIT).await;
        assert!(!rest.contains("HTTP/1.1 200"), "{rest}");
        assert!(
            waited >= Duration::from_millis(900),
            "closed after {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_body_that_stalls_or_drips_is_answered_408() {
    let app =
        TestApp::spawn_with_env(&[("BODY_TIMEOUT_SECS", "1"), ("REQUEST_TIMEOUT_SECS", "3")]).await;
    let head = "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n";

    let mut stalled = raw_connection(&app, &format!("{head}{{\"email\"")).await;
    let answer = read_until(&mut stalled, "request_timeout").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A byte every half second never stalls for the body timeout, but the whole request
    // is cut at its deadline.
    let mut dripping = raw_connection(&app, head).await;
    let started = tokio::time::Instant::now();
    let drip = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if dripping.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), drip)
        .await
        .expect("the drip ends");
    let answer = read_until(&mut dripping, "request_timeout").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(2900));
    assert_serving_others(&app).await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_503_on_either_path() {
    let app = TestApp::spawn_with_env(&[("MAX_CONNECTIONS", "2")]).await;
    // Two streams hold the two connections (served directly).
    let first = app.open_stream("proj_1", None).await;
    let second = app.open_stream("proj_1", None).await;
    for request in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        format!(
            "GET /api/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             X-Project-Id: proj_1\r\n\r\n",
            app.token_for(&["proj_1"])
        ),
    ] {
        let mut refused = raw_connection(&app, &request).await;
        let (answer, _) = read_until_closed(&mut refused, FRAME_LIMIT).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
        assert!(answer.contains("\"code\":\"overloaded\""), "{answer}");
    }
    drop((first, second));
    let admitted = tokio::time::timeout(FRAME_LIMIT, async {
        loop {
            match app
                .client
                .get(format!("{}/healthz", app.address))
                .send()
                .await
            {
                Ok(response) if response.status() == 200 => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert!(admitted.is_ok(), "a closed connection makes room again");
    assert!(app.metric("docpulse_connections_refused_total").await >= 2.0);
}

#[tokio::test]
async fn streams_per_user_are_capped_on_either_path() {
    let app = TestApp::spawn_with_env(&[("MAX_STREAMS_PER_USER", "2")]).await;
    let token = app.token_of("user_greedy", &["proj_1"]);
    let open = |client: &reqwest::Client| {
        client
            .get(format!("{}/api/events/stream", app.address))
            .bearer_auth(&token)
            .header("X-Project-Id", "proj_1")
            .send()
    };
    let direct = connected(open(&app.stream_client).await.expect("answers"), "proj_1").await;
    // `client` reuses its connection: a request first, then the stream on it, through hyper.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let through_hyper = connected(open(&app.client).await.expect("answers"), "proj_1").await;

    for client in [&app.stream_client, &app.client] {
        let refused = open(client).await.expect("answers");
        assert_eq!(retry_after(&refused), 5);
        expect_error(refused, 429, "rate_limited").await;
    }
    let other_user = app
        .stream_request(&app.token_of("user_other", &["proj_1"]), "proj_1", None)
        .await;
    let _other_user = connected(other_user, "proj_1").await;

    drop((direct, through_hyper));
    app.wait_for_metric("docpulse_open_streams", 1.0).await;
    connected(open(&app.stream_client).await.expect("answers"), "proj_1").await;
}

#[tokio::test]
async fn new_streams_beyond_the_admission_rate_are_told_to_come_back_at_random_later() {
    // Two a second: one at once, then one a second.
    let app = TestApp::spawn_with_env(&[("STREAM_ADMISSION_RATE", "2")]).await;
    let _first = app.open_stream("proj_1", None).await;
    let token = app.token_of("user_late", &["proj_1"]);

    let refused = app.stream_request(&token, "proj_1", None).await;
    let refused_at = tokio::time::Instant::now();
    assert_eq!(retry_after(&refused), 1);
    expect_error(refused, 503, "overloaded").await;
    assert_eq!(app.metric("docpulse_streams_refused_total").await, 1.0);
    // Meanwhile the rest of the API answers.
    assert_eq!(app.get("/healthz").await.status(), 200);

    let admitted = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let response = app.stream_request(&token, "proj_1", None).await;
            if response.status() == 200 {
                return refused_at.elapsed();
            }
            assert_eq!(response.status(), 503);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("admitted again within three seconds");
    assert!(
        admitted >= Duration::from_millis(800),
        "admitted after {admitted:?}"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_past_its_deadline_for_a_hung_request() {
    let app =
        TestApp::spawn_with_env(&[("SHUTDOWN_TIMEOUT_SECS", "1"), ("BODY_TIMEOUT_SECS", "60")])
            .await;
    // A request whose body never comes: in flight until the server gives up on it.
    let mut hung = raw_connection(
        &app,
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{",
    )
    .await;
    // The hung connection, and the one that asks for the metric.
    app.wait_for_metric("docpulse_open_connections", 2.0).await;
    let started = tokio::time::Instant::now();
    app.stop_within(Duration::from_secs(3))
        .await
        .expect("a clean stop");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let (_, _) = read_until_closed(&mut hung, FRAME_LIMIT).await;
}
