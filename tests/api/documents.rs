//! `/api/documents` and `/api/search`: membership, project isolation, the events each
//! change publishes, uploads and their limits.

use app::protocol::{EntityKind, EventType, StreamMessage};
use app::resources::{Document, DocumentList};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::{EventReader, TestApp, expect_error, notification};

/// A text of `paragraphs` paragraphs of about 300 characters, naming a few people and
/// places so that extraction finds something.
pub fn long_text(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|index| {
            format!(
                "Paragraph {index} tells how Ada Lovelace wrote to Charles Babbage in London \
                 about the Analytical Engine. She described how the engine could compute \
                 Bernoulli numbers, and how it might one day compose music. Babbage answered \
                 from his house in Marylebone, and the two kept writing for many years."
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Reads events until every document of `ids` has said it is ready.
async fn wait_until_ready(reader: &mut EventReader, ids: &[&str]) {
    let mut waiting: Vec<&str> = ids.to_vec();
    while !waiting.is_empty() {
        let (_, event) = reader.next_entity().await;
        let is_ready = event.entity == EntityKind::Document
            && event.data.as_ref().and_then(|data| data.get("status")) == Some(&json!("ready"));
        if let (true, Some(id)) = (is_ready, event.id.as_ref()) {
            waiting.retain(|waiting_id| *waiting_id != id.as_str());
        }
    }
}

#[tokio::test]
async fn membership_is_enforced_on_every_document_route() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let document = app.create_document("proj_a", "Notes", "Some text.").await;
    let item = format!("/api/documents/{}", document.id);
    let routes = [
        (Method::GET, "/api/documents"),
        (Method::POST, "/api/documents"),
        (Method::GET, item.as_str()),
        (Method::PATCH, item.as_str()),
        (Method::DELETE, item.as_str()),
        (Method::GET, "/api/search?q=notes"),
    ];
    let outsider = app.token_for(&["proj_b"]);
    let member = app.token_for(&["proj_a"]);

    // (token, X-Project-Id, expected status and code)
    let refusals = [
        (None, Some("proj_a"), 401, "missing_token"),
        (Some(&outsider), Some("proj_a"), 403, "forbidden_project"),
        (Some(&member), None, 400, "missing_project"),
    ];

    for (method, path) in routes {
        let url = format!("{}{path}", app.address);
        for (token, project, status, code) in refusals {
            let mut request = app.client.request(method.clone(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(project) = project {
                request = request.header("X-Project-Id", project);
            }
            let response = request.send().await.expect("the server answers");
            expect_error(response, status, code).await;
        }
    }
    let still_there = app
        .api(Method::GET, &item, "proj_a")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(
        still_there.status(),
        200,
        "no refused request changed anything"
    );
}

#[tokio::test]
async fn a_document_of_another_project_is_not_found_from_it() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_project("proj_b", "Beta").await;
    let document = app
        .create_document("proj_a", "Secret", "Only for Alpha.")
        .await;
    let item = format!("/api/documents/{}", document.id);

    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let response = app
            .api(method, &item, "proj_b")
            .json(&json!({ "title": "Taken" }))
            .send()
            .await
            .expect("the server answers");
        let message = expect_error(response, 404, "not_found").await;
        assert_eq!(message, "document not found");
    }
    assert!(app.list_documents("proj_b").await.documents.is_empty());
    let detail: Value = app
        .api(Method::GET, &item, "proj_a")
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a document");
    assert_eq!(detail["title"], "Secret");
    assert_eq!(detail["content"], "Only for Alpha.");
}

#[tokio::test]
async fn creating_a_document_streams_its_progress_to_ready_then_its_extraction_and_nothing_elsewhere()
 {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_project("proj_b", "Beta").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let mut other_stream = app.open_stream("proj_b", None).await;

    let document = app
        .create_document("proj_a", "Letters", &long_text(8))
        .await;

    let (_, created) = stream.next_entity().await;
    assert_eq!(created.event_type, EventType::Created);
    assert_eq!(created.entity, EntityKind::Document);
    assert_eq!(
        created.id.as_ref().map(|id| id.as_str()),
        Some(document.id.as_str())
    );
    let data = created.data.expect("the new document");
    assert_eq!(data["title"], "Letters");
    assert_eq!(data["status"], "queued");

    // Order holds per entity (API.md's coalescing merges updates of one entity only): the
    // document's progress only grows and ends ready; the extraction job is created only
    // once every chunk is embedded; its objects come between its creation and its end.
    let mut embedded = 0;
    let mut ready = false;
    let mut chunks_embedded = 0;
    let mut job_states: Vec<String> = Vec::new();
    let mut graph_objects = 0;
    while !ready || job_states.last().map(String::as_str) != Some("done") {
        let (_, event) = stream.next_entity().await;
        let data = event.data.clone().unwrap_or_default();
        match event.entity {
            EntityKind::Document => {
                assert_eq!(event.event_type, EventType::Updated);
                assert!(!ready, "nothing follows ready: {data:?}");
                if let Some(count) = data.get("embeddedChunks").and_then(Value::as_u64) {
                    assert!(count >= embedded, "progress never goes back");
                    embedded = count;
                }
                if data.get("status") == Some(&json!("ready")) {
                    assert_eq!(data.get("chunks").and_then(Value::as_u64), Some(embedded));
                    ready = true;
                }
            }
            EntityKind::Chunk if event.event_type == EventType::Updated => {
                assert!(job_states.is_empty(), "extraction waits for every chunk");
                chunks_embedded += 1;
            }
            EntityKind::ExtractionJob => {
                assert_eq!(data["documentId"], document.id.as_str());
                job_states.push(data["status"].as_str().expect("a status").to_owned());
                if data["status"] == "done" {
                    assert!(data["entities"].as_u64().expect("a count") >= 3);
                }
            }
            EntityKind::GraphObject => {
                assert_eq!(event.event_type, EventType::Batch);
                assert!(
                    !job_states.is_empty() && job_states.last().map(String::as_str) != Some("done"),
                    "graph objects come after the job's creation and before its end"
                );
                graph_objects += event.ids.expect("batch ids").len();
            }
            _ => {}
        }
    }
    assert!(
        embedded >= 4,
        "eight paragraphs make several chunks, got {embedded}"
    );
    assert_eq!(chunks_embedded, embedded, "one chunk event per chunk");
    assert_eq!(job_states.first().map(String::as_str), Some("queued"));
    assert!(
        job_states == ["queued", "running", "done"] || job_states == ["queued", "done"],
        "the job goes queued, running (unless merged into its end), done: {job_states:?}"
    );
    assert!(graph_objects >= 3, "entities and relations were created");

    // The other project's stream carries none of it: the first thing on it is a sentinel
    // published after all of the above.
    app.publish_ok(&notification("proj_b", "sentinel")).await;
    match other_stream.next().await {
        StreamMessage::Entity { event, .. } => {
            assert_eq!(event.id.as_ref().map(|id| id.as_str()), Some("sentinel"));
        }
        other => panic!("expected the sentinel, got {other:?}"),
    }

    let detail: Document = app
        .api(
            Method::GET,
            &format!("/api/documents/{}", document.id),
            "proj_a",
        )
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a document");
    assert_eq!(detail.chunks, u32::try_from(embedded).expect("small"));
    assert_eq!(detail.embedded_chunks, detail.chunks);
}

#[tokio::test]
async fn the_list_gives_a_last_event_id_from_which_the_stream_replays_later_changes() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let first = app.create_document("proj_a", "First", "One.").await;
    let before = app.list_documents("proj_a").await;
    assert_eq!(before.documents.len(), 1);
    assert_eq!(before.documents[0].id, first.id);

    let renamed = app
        .api(
            Method::PATCH,
            &format!("/api/documents/{}", first.id),
            "proj_a",
        )
        .json(&json!({ "title": "Renamed" }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(renamed.status(), 200);

    // Connecting with the list's id replays the rename made after the list was read.
    let mut stream = app
        .open_stream("proj_a", Some(before.last_event_id.as_str()))
        .await;
    loop {
        let (_, event) = stream.next_entity().await;
        if event.event_type == EventType::Updated
            && event.data.as_ref().and_then(|data| data.get("title")) == Some(&json!("Renamed"))
        {
            break;
        }
    }
    let after = app.list_documents("proj_a").await;
    assert_eq!(after.documents[0].title, "Renamed");
}

/// `GET /api/documents` with `query` in `project`: the page, asserting a `200`.
async fn list_page(app: &TestApp, project: &str, query: &str) -> DocumentList {
    let response = app
        .api(Method::GET, &format!("/api/documents?{query}"), project)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a document list")
}

/// The ids of `documents`, in order.
fn ids_of(documents: &[Document]) -> Vec<String> {
    documents
        .iter()
        .map(|document| document.id.clone())
        .collect()
}

#[tokio::test]
async fn the_list_comes_in_pages_that_a_creation_or_a_deletion_between_them_does_not_shift() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    for index in 0..7 {
        app.create_document("proj_a", &format!("Doc {index}"), "Text.")
            .await;
    }
    let whole = ids_of(&app.list_documents("proj_a").await.documents);
    let list = app.list_documents("proj_a").await;
    assert!(list.next.is_none(), "the whole list has no next");
    assert_eq!(list.total, None, "nor a count: it is all there");
    let all_in_one = list_page(&app, "proj_a", "limit=20").await;
    assert_eq!(
        all_in_one.total, None,
        "a first page that holds all counts nothing"
    );

    let first = list_page(&app, "proj_a", "limit=3").await;
    assert_eq!(ids_of(&first.documents), whole[..3]);
    assert!(!first.last_event_id.is_empty());
    assert_eq!(first.total, Some(7), "the first page counts the whole list");
    let next = first.next.expect("more follow");
    // A document created and one of the next page deleted between the two reads: the
    // next page starts where the first ended all the same.
    app.create_document("proj_a", "Newer", "Text.").await;
    let deleted = app.delete_document("proj_a", &whole[4]).await;
    assert_eq!(deleted.status(), 204);

    let second = list_page(&app, "proj_a", &format!("limit=3&after={next}")).await;
    assert_eq!(
        ids_of(&second.documents),
        [whole[3].clone(), whole[5].clone(), whole[6].clone()]
    );
    assert!(second.next.is_none(), "the last page says so");
    assert_eq!(second.total, None, "only a first page counts");

    // `after` alone reads the rest of the list (the newer document is first now).
    let first = list_page(&app, "proj_a", "limit=4").await;
    assert_eq!(ids_of(&first.documents[1..]), whole[..3]);
    let next = first.next.expect("more follow");
    let rest = list_page(&app, "proj_a", &format!("after={next}")).await;
    assert_eq!(
        ids_of(&rest.documents),
        [whole[3].clone(), whole[5].clone(), whole[6].clone()]
    );
    assert!(rest.next.is_none());
}

#[tokio::test]
async fn a_page_asked_wrongly_is_refused_with_a_clear_error() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    for query in [
        "limit=0",
        "limit=10001",
        "limit=ten",
        "limit=-1",
        "after=nonsense",
        "after=12_2026-12-07T00:00:00.000Z%3Cscript%3E",
        "limit=2&after=x_2026-12-07T00:00:00.000Z",
    ] {
        let response = app
            .api(Method::GET, &format!("/api/documents?{query}"), "proj_a")
            .send()
            .await
            .expect("the server answers");
        let message = expect_error(response, 400, "invalid_request").await;
        assert!(
            message.contains("limit") || message.contains("after"),
            "{query}: {message}"
        );
    }
    let largest = list_page(&app, "proj_a", "limit=10000").await;
    assert!(largest.documents.is_empty());
}

#[tokio::test]
async fn deleting_a_document_publishes_it_and_removes_it() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let document = app.create_document("proj_a", "Doomed", "Soon gone.").await;
    let last = app.list_documents("proj_a").await.last_event_id;
    let mut stream = app.open_stream("proj_a", Some(last.as_str())).await;

    let response = app.delete_document("proj_a", &document.id).await;

    assert_eq!(response.status(), 204);
    loop {
        let (_, event) = stream.next_entity().await;
        if event.event_type == EventType::Deleted {
            assert_eq!(event.entity, EntityKind::Document);
            assert_eq!(
                event.id.as_ref().map(|id| id.as_str()),
                Some(document.id.as_str())
            );
            break;
        }
    }
    assert!(app.list_documents("proj_a").await.documents.is_empty());
    let again = app.delete_document("proj_a", &document.id).await;
    expect_error(again, 404, "not_found").await;
}

#[tokio::test]
async fn an_upload_of_several_text_files_creates_one_document_per_file_titled_by_its_name() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let form = Form::new()
        .part(
            "file",
            Part::text("# Plans\n\nBuild it.").file_name("plans.md"),
        )
        .part(
            "file",
            Part::bytes(b"\xef\xbb\xbfNotes with a BOM.".to_vec()).file_name("notes.TXT"),
        );

    let response = app
        .api(Method::POST, "/api/documents", "proj_a")
        .multipart(form)
        .send()
        .await
        .expect("the server answers");

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a JSON body");
    let titles: Vec<&str> = body["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|document| document["title"].as_str().expect("a title"))
        .collect();
    assert_eq!(titles, ["plans.md", "notes.TXT"]);
    let id = body["documents"][1]["id"].as_str().expect("an id");
    let detail: Value = app
        .api(Method::GET, &format!("/api/documents/{id}"), "proj_a")
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a document");
    assert_eq!(detail["content"], "Notes with a BOM.");
}

#[tokio::test]
async fn a_bad_upload_is_refused_with_a_clear_error_and_creates_nothing() {
    let app = TestApp::spawn_with_env(&[("MAX_DOCUMENT_BYTES", "1000")]).await;
    app.create_project("proj_a", "Alpha").await;
    let good = || Part::text("Fine text.").file_name("good.txt");
    let cases: [(Part, u16, &str, &str); 4] = [
        (
            Part::text("x".repeat(1001)).file_name("big.txt"),
            413,
            "payload_too_large",
            "big.txt is over the limit of 1000 bytes",
        ),
        (
            Part::bytes(vec![0x66, 0x6f, 0xff, 0xfe]).file_name("latin.txt"),
            400,
            "invalid_document",
            "latin.txt is not UTF-8 text",
        ),
        (
            Part::text(" \n\n ").file_name("blank.md"),
            400,
            "invalid_document",
            "blank.md has no text",
        ),
        (
            Part::bytes(vec![0x25, 0x50, 0x44, 0x46]).file_name("paper.pdf"),
            400,
            "invalid_document",
            "paper.pdf is not a text file: upload .txt or .md files",
        ),
    ];

    for (bad, status, code, expected_message) in cases {
        let form = Form::new().part("file", good()).part("file", bad);
        let response = app
            .api(Method::POST, "/api/documents", "proj_a")
            .multipart(form)
            .send()
            .await
            .expect("the server answers");
        let message = expect_error(response, status, code).await;
        assert_eq!(message, expected_message);
    }

    let too_long_json = app
        .api(Method::POST, "/api/documents", "proj_a")
        .json(&json!({ "title": "Big", "content": "y".repeat(1001) }))
        .send()
        .await
        .expect("the server answers");
    expect_error(too_long_json, 413, "payload_too_large").await;
    let empty_title = app
        .api(Method::POST, "/api/documents", "proj_a")
        .json(&json!({ "title": " ", "content": "text" }))
        .send()
        .await
        .expect("the server answers");
    expect_error(empty_title, 400, "invalid_document").await;
    let not_a_document = app
        .api(Method::POST, "/api/documents", "proj_a")
        .header("Content-Type", "text/plain")
        .body("plain text")
        .send()
        .await
        .expect("the server answers");
    expect_error(not_a_document, 415, "unsupported_media_type").await;

    assert!(
        app.list_documents("proj_a").await.documents.is_empty(),
        "not even the good files of the refused uploads were kept"
    );
}

#[tokio::test]
async fn search_ranks_the_chunks_of_the_relevant_document_first() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let rockets = app
        .create_document(
            "proj_a",
            "Rockets",
            "The Saturn V rocket carried astronauts to the Moon. Its first stage burned \
             kerosene and liquid oxygen in five engines.",
        )
        .await;
    let bread = app
        .create_document(
            "proj_a",
            "Bread",
            "Knead the dough for ten minutes, let it rise for an hour, and bake the bread \
             in a hot oven until the crust is brown.",
        )
        .await;
    wait_until_ready(&mut stream, &[&rockets.id, &bread.id]).await;

    let response = app
        .api(
            Method::GET,
            "/api/search?q=rocket+engines+to+the+moon",
            "proj_a",
        )
        .send()
        .await
        .expect("the server answers");

    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.expect("a JSON body");
    let hits = results["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["documentId"], rockets.id.as_str());
    assert_eq!(hits[0]["documentTitle"], "Rockets");
    assert!(hits[0]["score"].as_f64() > hits[1]["score"].as_f64());

    let no_query = app
        .api(Method::GET, "/api/search?q=", "proj_a")
        .send()
        .await
        .expect("the server answers");
    expect_error(no_query, 400, "invalid_request").await;
}

#[tokio::test]
async fn the_projects_overview_counts_the_documents_of_the_callers_projects_by_state() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    app.create_project("proj_b", "Beta").await;
    app.create_project("proj_c", "Hidden").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let ready = app.create_document("proj_a", "Ready", "Some text.").await;
    wait_until_ready(&mut stream, &[&ready.id]).await;
    app.create_document("proj_c", "Not yours", "Some text.")
        .await;

    let response = app
        .client
        .get(format!("{}/api/projects/overview", app.address))
        .bearer_auth(app.token_for(&["proj_a", "proj_b"]))
        .send()
        .await
        .expect("the server answers");

    assert_eq!(response.status(), 200);
    let overview: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        overview,
        json!({ "projects": [
            { "id": "proj_a", "name": "Alpha",
              "documents": { "total": 1, "inProgress": 0, "ready": 1, "failed": 0 } },
            { "id": "proj_b", "name": "Beta",
              "documents": { "total": 0, "inProgress": 0, "ready": 0, "failed": 0 } },
        ]})
    );
    expect_error(
        app.get("/api/projects/overview").await,
        401,
        "missing_token",
    )
    .await;
}

#[tokio::test]
async fn a_documents_pipeline_shows_its_chunks_extraction_and_graph() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let document = app
        .create_document(
            "proj_a",
            "Letters",
            "Ada Lovelace wrote to Charles Babbage from London. Charles Babbage answered \
             Ada Lovelace from London.",
        )
        .await;
    loop {
        let (_, event) = stream.next_entity().await;
        if event.entity == EntityKind::ExtractionJob
            && event.data.as_ref().and_then(|data| data.get("status")) == Some(&json!("done"))
        {
            break;
        }
    }

    let path = format!("/api/documents/{}/pipeline", document.id);
    let response = app
        .api(Method::GET, &path, "proj_a")
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    let pipeline: Value = response.json().await.expect("a JSON body");
    assert_eq!(pipeline["document"]["title"], "Letters");
    assert_eq!(pipeline["document"]["status"], "ready");
    let chunks = pipeline["chunks"].as_array().expect("chunks");
    assert!(!chunks.is_empty());
    assert!(chunks.iter().all(|chunk| chunk["status"] == "embedded"));
    assert_eq!(pipeline["extraction"]["status"], "done");
    let entities: Vec<&str> = pipeline["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter_map(|entity| entity["name"].as_str())
        .collect();
    assert!(entities.contains(&"Ada Lovelace"), "{entities:?}");
    assert!(
        !pipeline["relations"]
            .as_array()
            .expect("relations")
            .is_empty()
    );
    assert!(pipeline["lastEventId"].is_string());

    let unknown = app
        .api(
            Method::GET,
            "/api/documents/doc_0000000000000000/pipeline",
            "proj_a",
        )
        .send()
        .await
        .expect("the server answers");
    expect_error(unknown, 404, "not_found").await;
    app.create_project("proj_b", "Beta").await;
    let elsewhere = app
        .api(Method::GET, &path, "proj_b")
        .send()
        .await
        .expect("the server answers");
    expect_error(elsewhere, 404, "not_found").await;
}

#[tokio::test]
async fn the_projects_people_are_notified_when_a_document_is_ready_and_its_entities_found() {
    let app = TestApp::spawn().await;
    app.create_project("proj_a", "Alpha").await;
    let mut stream = app.open_stream("proj_a", None).await;
    let document = app
        .create_document(
            "proj_a",
            "Letters",
            "Ada Lovelace wrote to Charles Babbage from London.",
        )
        .await;

    let mut notifications = Vec::new();
    while notifications.len() < 2 {
        let (_, event) = stream.next_entity().await;
        if event.entity == EntityKind::Notification {
            assert_eq!(event.event_type, EventType::Created);
            assert!(event.id.is_some_and(|id| id.as_str().starts_with("ntf_")));
            notifications.push(event.data.expect("data"));
        }
    }

    let link = json!(format!("/documents/{}", document.id));
    assert_eq!(notifications[0]["level"], "success");
    assert_eq!(notifications[0]["title"], "Letters is ready");
    assert_eq!(notifications[0]["link"], link);
    assert_eq!(notifications[1]["level"], "info");
    assert_eq!(notifications[1]["title"], "Entities found in Letters");
    assert!(
        notifications[1]["body"]
            .as_str()
            .is_some_and(|body| body.ends_with("relations.")),
        "{:?}",
        notifications[1]
    );
    assert_eq!(notifications[1]["link"], link);
}
