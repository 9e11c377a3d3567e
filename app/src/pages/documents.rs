//! The documents page: the project's documents, live, with upload (file picker and
//! drag-and-drop), deletion, the project switcher and logout.
//!
//! **Invariant:** the first data comes from the server with its `lastEventId`, and the
//! stream of that project resumes from that id, so nothing changed between the load and the
//! connect is missed; the rows are a [`LiveList`], so the events that come during a load
//! (the first, or a reload after a `resync` or the manual refresh) apply on top of it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::ActiveProject;
use crate::components::documents_table::{DocumentRows, DocumentsTable};
use crate::components::project_switcher::ProjectSwitcher;
use crate::counts::{counted, grouped};
use crate::data_updates::{LiveList, use_data_updates};
use crate::error::AppError;
use crate::page_data::{DocumentsPageData, documents_page_resource};
use crate::protocol::ProjectId;
use crate::session::{SessionGate, use_signed_in};

/// The shortest time between two reloads of the list (a `resync`, a partial creation).
const RELOAD_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// `/documents?project=<id>`: the documents of the project named (or the first one).
#[component]
pub fn DocumentsPage() -> impl IntoView {
    let gate = SessionGate::new();
    if let Some(redirect) = gate.signed_out() {
        return redirect;
    }
    let query = use_query_map();
    let requested = Memo::new(move |_| query.with(|query| query.get("project")));
    let data = documents_page_resource(requested);
    // Made before the first load is in: the events that come meanwhile (the stream may be
    // open on this project already, after client-side navigation) are kept for it.
    let list = LiveList::new("document:*", RELOAD_PAUSE);

    view! {
        <Title text="Documents · docpulse" />
        <Transition fallback=|| {
            view! { <p class="muted">"Loading documents…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <DocumentsView data list /> }.into_any(),
                    Err(AppError::Unauthorized) => gate.session_ended(),
                    Err(error) => {
                        view! {
                            <section class="card narrow" role="alert">
                                <h1>"Documents"</h1>
                                <p>{format!("The documents could not be loaded: {error}.")}</p>
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

/// The loaded page.
#[component]
fn DocumentsView(data: DocumentsPageData, list: LiveList<DocumentRows>) -> impl IntoView {
    let DocumentsPageData {
        projects,
        project,
        list: documents,
    } = data;
    let active = expect_context::<ActiveProject>();
    let updates = use_data_updates();
    // Counted at the first page's read: what the rest loads towards.
    let total = documents.total;
    let rows = DocumentRows::new(&project.id, documents.documents);
    // A long list came as its first screen: the rest loads in pages once this is live.
    let more = documents.next.map(|next| (rows.expect_more(), next));
    list.attach(rows);
    #[cfg(feature = "hydrate")]
    if let Some((load, next)) = more {
        leptos::task::spawn_local(async move {
            let fetch_page = move |after| rows.fetch_page(Some(after));
            if rows.load_rest(load, next, fetch_page).await {
                list.reload();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = more;

    // Browser only: follow this project's stream from the id the list was read at.
    let project_id = project.id.parse::<ProjectId>().ok();
    let last_event_id = documents.last_event_id;
    Effect::new(move |_| {
        if let Some(project_id) = project_id.clone()
            && active.0.get_untracked().as_ref() != Some(&project_id)
        {
            updates.resume_from(&project_id, last_event_id.clone());
            active.0.set(Some(project_id));
        }
    });

    let notice = RwSignal::new(None::<String>);
    let failure = RwSignal::new(None::<String>);
    let project_for_delete = project.id.clone();
    let on_delete = Callback::new(move |id: String| {
        failure.set(None);
        #[cfg(feature = "hydrate")]
        {
            let project = project_for_delete.clone();
            leptos::task::spawn_local(async move {
                match crate::rest::delete_document(&project, &id).await {
                    Ok(()) => rows.remove(&id),
                    Err(error) => failure.set(Some(format!("Could not delete: {error}."))),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, &project_for_delete);
    });

    let project_for_rename = project.id.clone();
    let on_rename = Callback::new(move |(id, title): (String, String)| {
        failure.set(None);
        #[cfg(feature = "hydrate")]
        {
            let project = project_for_rename.clone();
            leptos::task::spawn_local(async move {
                if let Err(error) = crate::rest::rename_document(&project, &id, &title).await {
                    failure.set(Some(format!("Could not rename: {error}.")));
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, title, &project_for_rename);
    });

    let navigate = use_navigate();
    let signed_in = use_signed_in();
    let log_out = move |_| {
        // Closing the stream first means the server never sees it without a session.
        active.0.set(None);
        signed_in.set(false);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            #[cfg(feature = "hydrate")]
            let _ = crate::rest::log_out().await;
            navigate("/login", Default::default());
        });
    };

    let count = move || {
        let loaded = rows.len() as u64;
        if !rows.loading_more() {
            return counted(loaded, "document", "documents");
        }
        // Documents created meanwhile may take the list past the count of the read.
        match total.map(|total| total.max(loaded)) {
            Some(total) => format!(
                "{} of {}, loading more…",
                grouped(loaded),
                counted(total, "document", "documents")
            ),
            None => format!(
                "{}, loading more…",
                counted(loaded, "document", "documents")
            ),
        }
    };
    let caption = format!("Documents of {}", project.name);

    view! {
        <section class="page-head">
            <div>
                <h1>"Documents"</h1>
                <p class="muted" data-testid="document-count">
                    {project.name.clone()}
                    " · "
                    {count}
                </p>
            </div>
            <div class="page-tools">
                <ProjectSwitcher projects current=project.id.clone() />
                <button type="button" class="button secondary" on:click=log_out>
                    "Log out"
                </button>
            </div>
        </section>
        <UploadZone project=project.id.clone() rows notice failure />
        <p class="notice" role="status">
            {move || notice.get()}
        </p>
        <p class="form-error" role="alert">
            {move || failure.get()}
        </p>
        <DocumentsTable rows caption on_delete on_rename />
    }
    .into_any()
}

/// Upload by file picker or by dropping files; each created document appears at once and
/// its progress follows live.
#[component]
fn UploadZone(
    project: String,
    rows: DocumentRows,
    notice: RwSignal<Option<String>>,
    failure: RwSignal<Option<String>>,
) -> impl IntoView {
    let dragging = RwSignal::new(false);
    let busy = RwSignal::new(false);
    // The picker comes alive with the page: a file chosen before hydration would be lost.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    #[cfg(feature = "hydrate")]
    let upload = {
        let project = project.clone();
        move |files: Vec<web_sys::File>| {
            if files.is_empty() {
                return;
            }
            busy.set(true);
            notice.set(None);
            failure.set(None);
            let project = project.clone();
            leptos::task::spawn_local(async move {
                match crate::rest::upload_documents(&project, &files).await {
                    Ok(created) => {
                        let count = created.documents.len() as u64;
                        for document in created.documents {
                            rows.insert(document);
                        }
                        notice.set(Some(format!(
                            "Uploaded {}.",
                            counted(count, "document", "documents")
                        )));
                    }
                    Err(error) => failure.set(Some(format!("Upload failed: {error}."))),
                }
                busy.set(false);
            });
        }
    };
    #[cfg(not(feature = "hydrate"))]
    let _ = (&project, rows, notice, failure);

    #[cfg(feature = "hydrate")]
    let upload_dropped = upload.clone();
    let on_pick = move |_event: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = _event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let files = input.files().map(file_list).unwrap_or_default();
            // Clearing lets the same file be chosen again.
            input.set_value("");
            upload(files);
        }
    };
    let on_drop = move |event: leptos::ev::DragEvent| {
        event.prevent_default();
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        {
            let files = event
                .data_transfer()
                .and_then(|transfer| transfer.files())
                .map(file_list)
                .unwrap_or_default();
            upload_dropped(files);
        }
    };
    let on_drag_over = move |event: leptos::ev::DragEvent| {
        event.prevent_default();
        dragging.set(true);
    };

    view! {
        <section
            class="card upload"
            class:dragging=move || dragging.get()
            aria-labelledby="upload-heading"
            data-testid="upload-zone"
            on:dragover=on_drag_over
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            <div>
                <h2 id="upload-heading">"Add documents"</h2>
                <p class="muted">
                    "Drop .txt or .md files here, or choose them. Each is split, embedded and searchable in moments."
                </p>
            </div>
            <label
                class="button file-button"
                class:busy=move || busy.get() || !hydrated.get()
            >
                "Choose files"
                <input
                    type="file"
                    class="visually-hidden"
                    disabled=move || !hydrated.get()
                    multiple
                    accept=".txt,.md,.markdown,text/plain,text/markdown"
                    on:change=on_pick
                />
            </label>
        </section>
    }
    .into_any()
}

/// The files of a `FileList`, in order.
#[cfg(feature = "hydrate")]
fn file_list(list: web_sys::FileList) -> Vec<web_sys::File> {
    (0..list.length())
        .filter_map(|index| list.get(index))
        .collect()
}
