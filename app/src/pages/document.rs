//! The document page (`/documents/{id}`): the document's status and embedding progress, its
//! text, its chunks (windowed), its extraction job and the entity graph extraction found,
//! all live.
//!
//! **Invariant:** what the page shows converges on the server's: an update of the document
//! or of one of its chunks applies in place; any other event about it (chunks split, its
//! extraction job, its graph objects), an update of a chunk the page does not have yet, an
//! event that came while the page loaded, and a `resync` each reload the page's data, at
//! most once per [`RELOAD_PAUSE`]; a reload replaces the data in place, so the page does
//! not jump. A deletion is shown at once and reloads nothing.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::ActiveProject;
use crate::components::embedding_progress::{Progress, ProgressBar};
use crate::components::entity_graph::EntityGraph;
use crate::components::windowing::track_scroll_top;
use crate::data_updates::{throttled, use_data_updates};
use crate::error::AppError;
use crate::page_data::document_page_resource;
use crate::protocol::{
    ChunkStatus, EntityEvent, EntityKind, EventType, ExtractionStatus, ProjectId,
};
use crate::resources::{ChunkSummary, DocumentPipeline, DocumentStatus};
use crate::session::SessionGate;

/// The shortest time between two reloads of the page's data under a burst of events.
const RELOAD_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
/// The height of a chunk row, in CSS pixels (`.chunks tr` in main.css).
const CHUNK_ROW_PX: usize = 44;
/// Chunk rows rendered: enough to fill the chunk list's height, plus a margin each side.
const CHUNK_ROWS_RENDERED: usize = 16;
const CHUNK_MARGIN_ROWS: usize = 4;

/// `/documents/{id}`.
#[component]
pub fn DocumentPage() -> impl IntoView {
    let gate = SessionGate::new();
    if let Some(redirect) = gate.signed_out() {
        return redirect;
    }
    let params = use_params_map();
    let query = use_query_map();
    let active = expect_context::<ActiveProject>();
    let id = Memo::new(move |_| params.with(|params| params.get("id").unwrap_or_default()));
    let project = Memo::new(move |_| {
        query.with(|query| query.get("project")).or_else(|| {
            active
                .0
                .get_untracked()
                .map(|project| project.as_str().to_owned())
        })
    });
    let data = document_page_resource(id, project);
    // Events of this document that come while the page loads: the page reloads once shown.
    let missed = StoredValue::new(false);
    use_data_updates().subscribe("*", move |event| {
        if about_document(event, &id.get_untracked()) {
            missed.set_value(true);
        }
    });

    view! {
        <Title text="Document · docpulse" />
        <Transition fallback=|| view! { <p class="muted">"Loading the document…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(pipeline) => {
                        view! { <DocumentView pipeline missed /> }.into_any()
                    }
                    Err(AppError::Unauthorized) => gate.session_ended(),
                    Err(AppError::NotFound) => view! { <Gone /> }.into_any(),
                    Err(error) => {
                        view! {
                            <section class="card narrow" role="alert">
                                <h1>"Document"</h1>
                                <p>{format!("The document could not be loaded: {error}.")}</p>
                                <A href="/documents">"Back to the documents"</A>
                            </section>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
    .into_any()
}

/// What a reader sees of a document that does not exist (any more).
#[component]
fn Gone() -> impl IntoView {
    view! {
        <section class="card narrow" role="alert" data-testid="document-gone">
            <h1>"This document is gone"</h1>
            <p>"It was deleted, or it never existed in your projects."</p>
            <A href="/documents" attr:class="button">
                "Back to the documents"
            </A>
        </section>
    }
}

/// Whether `event` is about document `id` or one of its parts.
fn about_document(event: &EntityEvent, id: &str) -> bool {
    match event.entity {
        EntityKind::Document => event
            .id
            .as_ref()
            .is_some_and(|event_id| event_id.as_str() == id),
        EntityKind::Chunk => event
            .chunk()
            .is_some_and(|change| change.document_id.as_deref() == Some(id)),
        EntityKind::ExtractionJob => event
            .extraction_job()
            .is_some_and(|change| change.document_id.as_deref() == Some(id)),
        EntityKind::GraphObject => event
            .graph_object()
            .is_some_and(|change| change.document_id.as_deref() == Some(id)),
        EntityKind::Notification => false,
    }
}

/// The loaded page; `pipeline` is replaced in place by each reload.
#[component]
fn DocumentView(pipeline: DocumentPipeline, missed: StoredValue<bool>) -> impl IntoView {
    let active = expect_context::<ActiveProject>();
    let updates = use_data_updates();
    let id = pipeline.document.document.id.clone();
    let project = pipeline.document.document.project_id.clone();
    // Browser only: follow the document's project from the id its data was read at.
    if let Ok(project_id) = project.parse::<ProjectId>() {
        let last_event_id = pipeline.last_event_id.clone();
        Effect::new(move |_| {
            if active.0.get_untracked().as_ref() != Some(&project_id) {
                updates.resume_from(&project_id, last_event_id.clone());
                active.0.set(Some(project_id.clone()));
            }
        });
    }
    let data = RwSignal::new(pipeline);
    let deleted = RwSignal::new(false);
    let reload = throttled_reload(project.clone(), id.clone(), data, deleted);
    let document_id = id.clone();
    // Progress of the document and of its chunks applies in place; what changes the page's
    // structure (chunks split, the extraction job, graph objects) reloads it.
    updates.subscribe("*", move |event| {
        if !about_document(event, &document_id) {
            return;
        }
        match (event.entity, event.event_type) {
            (EntityKind::Document, EventType::Deleted) => deleted.set(true),
            (EntityKind::Document, EventType::Updated) => {
                if let Some(change) = event.document() {
                    data.update(|data| change.apply_to(&mut data.document.document));
                }
            }
            (EntityKind::Chunk, EventType::Updated) => {
                let status = event.chunk().and_then(|change| change.status);
                let applied = match (&event.id, status) {
                    (Some(chunk_id), Some(status)) => data
                        .try_update(|data| {
                            data.chunks
                                .iter_mut()
                                .find(|chunk| chunk.id == chunk_id.as_str())
                                .map(|chunk| chunk.status = status)
                                .is_some()
                        })
                        .unwrap_or(false),
                    _ => false,
                };
                if !applied {
                    reload();
                }
            }
            _ => reload(),
        }
    });
    let resyncs = updates.resyncs();
    Effect::new(move |previous: Option<u64>| {
        let count = resyncs.get();
        if previous.is_some_and(|previous| previous != count) || missed.get_value() {
            missed.set_value(false);
            reload();
        }
        count
    });

    let title = Signal::derive(move || data.with(|data| data.document.document.title.clone()));
    let status = move || data.with(|data| data.document.document.status);
    let progress = Signal::derive(move || data.with(|data| Progress::of(&data.document.document)));
    let back = format!("/documents?project={project}");
    let back_from_gone = back.clone();
    view! {
        <Title text=move || format!("{} · docpulse", title.get()) />
        <Show when=move || deleted.get()>
            <p class="card notice-gone" role="alert" data-testid="document-deleted">
                "This document was deleted in another window. "
                <A href=back_from_gone.clone()>"Back to the documents"</A>
            </p>
        </Show>
        <section class="page-head">
            <div>
                <p class="muted">
                    <A href=back>"← Documents"</A>
                </p>
                <h1 class="document-title">{move || title.get()}</h1>
                <p class="muted document-meta">
                    <span class="badge" data-status=move || status().as_str() data-testid="document-status">
                        {move || status_label(status())}
                    </span>
                    {move || data.with(|data| data.document.document.error.clone()).map(|error| format!(" {error}"))}
                </p>
            </div>
        </section>
        <section class="card" aria-labelledby="progress-heading">
            <h2 id="progress-heading">"Embedding"</h2>
            <ProgressBar progress title />
        </section>
        <div class="document-columns">
            <section class="card" aria-labelledby="chunks-heading">
                <h2 id="chunks-heading">
                    "Chunks "
                    <span class="muted" data-testid="chunk-count">
                        {move || chunk_count_label(data.with(|data| data.chunks.clone()).as_slice())}
                    </span>
                </h2>
                <ChunkTable chunks=Signal::derive(move || data.with(|data| data.chunks.clone())) />
            </section>
            <ExtractionPanel data />
        </div>
        <section class="card" aria-labelledby="content-heading">
            <h2 id="content-heading">"Text"</h2>
            <div class="document-content">{move || data.with(|data| data.document.content.clone())}</div>
        </section>
    }
}

/// The extraction job's state and the graph it found.
#[component]
fn ExtractionPanel(data: RwSignal<DocumentPipeline>) -> impl IntoView {
    let job_status = move || data.with(|data| data.extraction.as_ref().map(|job| job.status));
    let label = move || match job_status() {
        None => "Waits for the embedding".to_owned(),
        Some(ExtractionStatus::Queued) => "Queued".to_owned(),
        Some(ExtractionStatus::Running) => "Running…".to_owned(),
        Some(ExtractionStatus::Done) => data.with(|data| {
            format!(
                "Done · {} entities, {} relations",
                data.entities.len(),
                data.relations.len()
            )
        }),
        Some(ExtractionStatus::Failed) => data.with(|data| {
            format!(
                "Failed: {}",
                data.extraction
                    .as_ref()
                    .and_then(|job| job.error.clone())
                    .unwrap_or_else(|| "no reason given".to_owned())
            )
        }),
    };
    let state = move || match job_status() {
        None => "waiting",
        Some(ExtractionStatus::Queued) => "queued",
        Some(ExtractionStatus::Running) => "running",
        Some(ExtractionStatus::Done) => "done",
        Some(ExtractionStatus::Failed) => "failed",
    };
    view! {
        <section class="card" aria-labelledby="extraction-heading">
            <h2 id="extraction-heading">"Entities"</h2>
            <p class="extraction-state" data-state=state data-testid="extraction-state" role="status">
                {label}
            </p>
            <EntityGraph
                entities=Signal::derive(move || data.with(|data| data.entities.clone()))
                relations=Signal::derive(move || data.with(|data| data.relations.clone()))
            />
        </section>
    }
}

/// The chunks, windowed: only the rows in view (and a margin) are in the page.
#[component]
fn ChunkTable(chunks: Signal<Vec<ChunkSummary>>) -> impl IntoView {
    let scroll_top = RwSignal::new(0_usize);
    let window = Memo::new(move |_| {
        let first = (scroll_top.get() / CHUNK_ROW_PX).saturating_sub(CHUNK_MARGIN_ROWS);
        chunks.with(|chunks| {
            let start = first.min(chunks.len());
            let end = (start + CHUNK_ROWS_RENDERED + 2 * CHUNK_MARGIN_ROWS).min(chunks.len());
            (start, chunks.len(), chunks[start..end].to_vec())
        })
    });
    let on_scroll = track_scroll_top(scroll_top);
    view! {
        <div class="chunks-wrap" on:scroll=on_scroll data-testid="chunks-scroller">
            <table class="chunks" aria-rowcount=move || chunks.with(Vec::len) + 1>
                <caption class="visually-hidden">"Chunks of the document"</caption>
                <thead>
                    <tr aria-rowindex="1">
                        <th scope="col" class="col-position">"#"</th>
                        <th scope="col">"Text"</th>
                        <th scope="col" class="col-chunk-status">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    <Show when=move || chunks.with(Vec::is_empty)>
                        <tr class="empty">
                            <td colspan="3">"Not split into chunks yet."</td>
                        </tr>
                    </Show>
                    <tr class="spacer" aria-hidden="true" style:height=move || format!("{}px", window.with(|(start, _, _)| start * CHUNK_ROW_PX))>
                        <td colspan="3"></td>
                    </tr>
                    <For
                        each=move || window.get().2
                        key=|chunk| (chunk.id.clone(), chunk.status)
                        children=move |chunk| {
                            let status = chunk.status;
                            view! {
                                <tr data-testid="chunk-row" data-status=chunk_status_name(status) aria-rowindex=chunk.position + 2>
                                    <td class="col-position">{chunk.position + 1}</td>
                                    <td class="chunk-excerpt">{chunk.excerpt}</td>
                                    <td class="col-chunk-status">
                                        <span class="badge" data-status=chunk_badge(status)>
                                            {chunk_status_label(status)}
                                        </span>
                                    </td>
                                </tr>
                            }
                        }
                    />
                    <tr class="spacer" aria-hidden="true" style:height=move || format!("{}px", window.with(|(start, total, rows)| (total - start - rows.len()) * CHUNK_ROW_PX))>
                        <td colspan="3"></td>
                    </tr>
                </tbody>
            </table>
        </div>
    }
}

fn status_label(status: DocumentStatus) -> &'static str {
    match status {
        DocumentStatus::Queued => "Queued",
        DocumentStatus::Embedding => "Embedding",
        DocumentStatus::Ready => "Ready",
        DocumentStatus::Failed => "Failed",
    }
}

fn chunk_status_name(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Pending => "pending",
        ChunkStatus::Embedded => "embedded",
    }
}

fn chunk_status_label(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Pending => "Pending",
        ChunkStatus::Embedded => "Embedded",
    }
}

/// The badge colour of a chunk's status, named as a document's.
fn chunk_badge(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Pending => "embedding",
        ChunkStatus::Embedded => "ready",
    }
}

/// "3 of 10 embedded", or "" before the split.
fn chunk_count_label(chunks: &[ChunkSummary]) -> String {
    if chunks.is_empty() {
        return String::new();
    }
    let embedded = chunks
        .iter()
        .filter(|chunk| chunk.status == ChunkStatus::Embedded)
        .count();
    format!("· {embedded} of {} embedded", chunks.len())
}

/// Reloads the page's data into `data` at most once per [`RELOAD_PAUSE`]; a reload that
/// finds the document gone marks it `deleted`, and a deleted document reloads no more.
fn throttled_reload(
    project: String,
    id: String,
    data: RwSignal<DocumentPipeline>,
    deleted: RwSignal<bool>,
) -> impl Fn() + Copy + Send + Sync + 'static {
    let target = StoredValue::new((project, id));
    let reload = throttled(RELOAD_PAUSE, move || {
        #[cfg(feature = "hydrate")]
        {
            let (project, id) = target.get_value();
            leptos::task::spawn_local(async move {
                match crate::rest::document_pipeline(&project, &id).await {
                    Ok(pipeline) => data.set(pipeline),
                    Err(AppError::NotFound) => deleted.set(true),
                    // The next event or resync tries again; the page keeps what it has.
                    Err(_) => {}
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (target, data);
    });
    move || {
        if !deleted.get_untracked() {
            reload();
        }
    }
}
