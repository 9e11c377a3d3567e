//! The document page (`/documents/{id}`): the document's status and embedding progress, its
//! text, its chunks (windowed), its extraction job and the entity graph extraction found,
//! all live.
//!
//! **Invariant:** what the page shows converges on the server's. The page is a
//! [`LiveList`] of the document's events: an update of the document or of one of its chunks
//! applies in place; any other event about it (chunks split, its extraction job, its graph
//! objects), an update of a chunk the page does not have yet, and a `resync` reload the
//! page's data, at most once per [`RELOAD_PAUSE`], with the events of the meantime applied
//! on top; a reload replaces each part in place, so the page does not jump. A deletion is
//! shown at once and reloads nothing.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::ActiveProject;
use crate::components::chunk_table::{ChunkRows, ChunkTable};
use crate::components::embedding_progress::{Progress, ProgressBar};
use crate::components::entity_graph::EntityGraph;
use crate::counts::counted;
use crate::data_updates::{Applied, LiveList, LiveRows, use_data_updates};
use crate::error::AppError;
use crate::page_data::document_page_resource;
use crate::protocol::{EntityEvent, EntityKind, EventType, ExtractionStatus, ProjectId};
use crate::resources::{
    Document, DocumentPipeline, DocumentStatus, ExtractionSummary, GraphEntity, GraphRelation,
};
use crate::session::SessionGate;

/// The shortest time between two reloads of the page's data under a burst of events.
const RELOAD_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

lazy_page!(
    /// The `/documents/{id}` route.
    DocumentRoute,
    document_page,
    DocumentPage
);

/// The first path segment of the documents page (`/documents`) and of a document's page
/// (`/documents/{id}`, [`DocumentRoute`]): the router's routes and [`document_address`]
/// share it, so a link cannot drift from the route it leads to.
pub const DOCUMENTS_SEGMENT: &str = "documents";

/// The address of document `id`'s page: the links of the table, of search hits and of the
/// server's notifications.
pub fn document_address(id: impl std::fmt::Display) -> String {
    format!("/{DOCUMENTS_SEGMENT}/{id}")
}

/// Whether `address` is a document's page.
pub fn is_document_address(address: &str) -> bool {
    address
        .strip_prefix('/')
        .and_then(|rest| rest.strip_prefix(DOCUMENTS_SEGMENT))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// `/documents/{id}`.
#[component]
fn DocumentPage() -> impl IntoView {
    let gate = SessionGate::new();
    if let Some(redirect) = gate.signed_out() {
        return redirect;
    }
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|params| params.get("id").unwrap_or_default()));
    let project = ActiveProject::requested();
    let data = document_page_resource(id, project);
    // Made before the first load is in: the events that come meanwhile are kept for it.
    let list = LiveList::new("*", RELOAD_PAUSE);

    view! {
        <Title text="Document · docpulse" />
        <Transition fallback=|| view! { <p class="muted">"Loading the document…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(pipeline) => {
                        view! { <DocumentView pipeline list /> }.into_any()
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

/// What a reader sees of a document that does not exist (any more), or not in their
/// projects: a `404`, like the API's.
#[component]
fn Gone() -> impl IntoView {
    crate::pages::not_found::answer_not_found();
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

/// The page's live state, each part in its own signal so an event redraws only its part.
#[derive(Clone, Copy)]
struct PipelineRows {
    /// The project and the document, for reloads.
    target: StoredValue<(String, String)>,
    document: RwSignal<Document>,
    content: RwSignal<String>,
    chunks: ChunkRows,
    extraction: RwSignal<Option<ExtractionSummary>>,
    entities: RwSignal<Vec<GraphEntity>>,
    relations: RwSignal<Vec<GraphRelation>>,
    /// Deleted in another window: the page says so and reloads no more.
    deleted: RwSignal<bool>,
}

impl PipelineRows {
    fn new(pipeline: DocumentPipeline) -> Self {
        let document = &pipeline.document.document;
        let rows = Self {
            target: StoredValue::new((document.project_id.clone(), document.id.clone())),
            document: RwSignal::new(document.clone()),
            content: RwSignal::new(String::new()),
            chunks: ChunkRows::new(Vec::new()),
            extraction: RwSignal::new(None),
            entities: RwSignal::new(Vec::new()),
            relations: RwSignal::new(Vec::new()),
            deleted: RwSignal::new(false),
        };
        rows.replace(pipeline);
        rows
    }
}

/// Sets `signal` to `value` unless it holds it already.
fn set_if_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
    if signal.with_untracked(|current| *current != value) {
        signal.set(value);
    }
}

impl LiveRows for PipelineRows {
    type Snapshot = DocumentPipeline;

    /// The document's and its chunks' updates apply in place (nearly all the events of an
    /// embedding); what changes the page's structure (chunks split, the extraction job,
    /// graph objects, a chunk not shown yet) reloads it.
    fn apply(&self, event: &EntityEvent) -> Applied {
        if self.deleted.get_untracked() {
            return Applied::Followed;
        }
        // A chunk's update, nearly every event of an embedding, has its data read once.
        if (event.entity, event.event_type) == (EntityKind::Chunk, EventType::Updated) {
            let Some(change) = event.chunk() else {
                return Applied::Followed;
            };
            let ours = self
                .target
                .with_value(|(_, id)| change.document_id.as_deref() == Some(id.as_str()));
            if !ours {
                return Applied::Followed;
            }
            let applied = match (&event.id, change.status) {
                (Some(chunk), Some(status)) => self.chunks.set_status(chunk.as_str(), status),
                _ => false,
            };
            return if applied {
                Applied::Followed
            } else {
                Applied::Reload
            };
        }
        if !self.target.with_value(|(_, id)| about_document(event, id)) {
            return Applied::Followed;
        }
        match (event.entity, event.event_type) {
            (EntityKind::Document, EventType::Deleted) => self.deleted.set(true),
            (EntityKind::Document, EventType::Updated) => {
                if let Some(change) = event.document() {
                    self.document.update(|document| change.apply_to(document));
                }
            }
            _ => return Applied::Reload,
        }
        Applied::Followed
    }

    fn replace(&self, pipeline: DocumentPipeline) {
        let DocumentPipeline {
            document,
            chunks,
            extraction,
            entities,
            relations,
            last_event_id: _,
        } = pipeline;
        set_if_changed(self.document, document.document);
        set_if_changed(self.content, document.content);
        self.chunks.replace(chunks);
        set_if_changed(self.extraction, extraction);
        set_if_changed(self.entities, entities);
        set_if_changed(self.relations, relations);
    }

    #[cfg(feature = "hydrate")]
    async fn reload(&self) -> Result<DocumentPipeline, AppError> {
        let (project, id) = self.target.get_value();
        crate::rest::document_pipeline(&project, &id).await
    }

    fn reload_failed(&self, error: &AppError) {
        if *error == AppError::NotFound {
            self.deleted.set(true);
        }
    }
}

/// The loaded page; each reload replaces its parts in place.
#[component]
fn DocumentView(pipeline: DocumentPipeline, list: LiveList<PipelineRows>) -> impl IntoView {
    let active = expect_context::<ActiveProject>();
    let updates = use_data_updates();
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
    let rows = PipelineRows::new(pipeline);
    list.attach(rows);

    let document = rows.document;
    let title = Signal::derive(move || document.with(|document| document.title.clone()));
    let status = move || document.with(|document| document.status);
    let progress = Signal::derive(move || document.with(Progress::of));
    let back = format!("/documents?project={project}");
    let back_from_gone = back.clone();
    view! {
        <Title text=move || format!("{} · docpulse", title.get()) />
        <Show when=move || rows.deleted.get()>
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
                    {move || document.with(|document| document.error.clone()).map(|error| format!(" {error}"))}
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
                        {move || rows.chunks.count_label()}
                    </span>
                </h2>
                <ChunkTable rows=rows.chunks />
            </section>
            <ExtractionPanel rows />
        </div>
        <section class="card" aria-labelledby="content-heading">
            <h2 id="content-heading">"Text"</h2>
            <DocumentText content=rows.content />
        </section>
    }
}

/// Characters of a document's text shown until the reader asks for the rest: a long text
/// in full would weigh on the page's HTML and on every frame's layout.
const TEXT_PREVIEW_CHARS: usize = 5_000;

/// The document's text: its first [`TEXT_PREVIEW_CHARS`], and a button for the rest.
#[component]
fn DocumentText(content: RwSignal<String>) -> impl IntoView {
    let whole = RwSignal::new(false);
    let length = Memo::new(move |_| content.with(|text| text.chars().count()));
    let shown = move || {
        content.with(|text| {
            if whole.get() {
                text.clone()
            } else {
                preview(text, TEXT_PREVIEW_CHARS)
            }
        })
    };
    let cut = move || !whole.get() && length.get() > TEXT_PREVIEW_CHARS;
    view! {
        <div class="document-content" data-testid="document-text">{shown}</div>
        <Show when=cut>
            <button type="button" class="button secondary show-text" on:click=move |_| whole.set(true)>
                {move || format!("Show the whole text ({})", counted(length.get() as u64, "character", "characters"))}
            </button>
        </Show>
    }
}

/// The first `chars` characters of `text`, with "…" when there is more.
fn preview(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The extraction job's state and the graph it found.
#[component]
fn ExtractionPanel(rows: PipelineRows) -> impl IntoView {
    let PipelineRows {
        extraction,
        entities,
        relations,
        ..
    } = rows;
    let job_status = move || extraction.with(|job| job.as_ref().map(|job| job.status));
    let label = move || match job_status() {
        None => "Waits for the embedding".to_owned(),
        Some(ExtractionStatus::Queued) => "Queued".to_owned(),
        Some(ExtractionStatus::Running) => "Running…".to_owned(),
        Some(ExtractionStatus::Done) => format!(
            "Done · {}, {}",
            counted(entities.with(Vec::len) as u64, "entity", "entities"),
            counted(relations.with(Vec::len) as u64, "relation", "relations")
        ),
        Some(ExtractionStatus::Failed) => format!(
            "Failed: {}",
            extraction
                .with(|job| job.as_ref().and_then(|job| job.error.clone()))
                .unwrap_or_else(|| "no reason given".to_owned())
        ),
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
            <EntityGraph entities=entities.into() relations=relations.into() />
        </section>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_page_address_is_recognised_and_nothing_else() {
        assert_eq!(document_address("doc_1"), "/documents/doc_1");
        assert!(is_document_address(&document_address("doc_1")));
        for other in [
            "/documents",
            "/documents/",
            "/documents/doc_1/more",
            "/search",
            "/",
        ] {
            assert!(!is_document_address(other), "{other}");
        }
    }

    #[test]
    fn a_preview_cuts_at_a_character_and_says_there_is_more() {
        assert_eq!(preview("héllo wörld", 5), "héllo…");
        assert_eq!(preview("héllo", 5), "héllo");
        assert_eq!(preview("", 5), "");
    }
}
