//! [`EmbeddingProgress`]: one document's embedding progress as a progress bar, kept live by
//! the `document:<id>` events; [`ProgressBar`] draws it; [`Progress`] is the state.

use leptos::prelude::*;

use crate::data_updates::{Pattern, use_data_updates};
use crate::protocol::{DocumentChange, EntityId, EntityKind, EventType};
use crate::resources::{Document, DocumentStatus};

/// What the bar shows: embedded and total chunks, and whether the document is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Chunks embedded so far.
    pub embedded: u32,
    /// Chunks in all (0 until the document is split).
    pub chunks: u32,
    /// Where the document is.
    pub status: DocumentStatus,
}

impl Progress {
    /// The progress of `document` as loaded.
    pub fn of(document: &Document) -> Self {
        Self {
            embedded: document.embedded_chunks,
            chunks: document.chunks,
            status: document.status,
        }
    }

    /// Takes the fields a change carries.
    pub fn apply(&mut self, change: &DocumentChange) {
        if let Some(embedded) = change.embedded_chunks {
            self.embedded = embedded;
        }
        if let Some(chunks) = change.chunks {
            self.chunks = chunks;
        }
        if let Some(status) = change.status {
            self.status = status;
        }
    }

    /// Whole percent done; a ready document is 100 % whatever its counts.
    pub fn percent(&self) -> u32 {
        if self.status == DocumentStatus::Ready {
            return 100;
        }
        if self.chunks == 0 {
            return 0;
        }
        let percent = u64::from(self.embedded.min(self.chunks)) * 100 / u64::from(self.chunks);
        u32::try_from(percent).unwrap_or(100)
    }
}

/// One document's progress bar, kept live by the `document:<id>` events: for a document
/// shown on its own. [`DocumentsTable`](crate::components::documents_table::DocumentsTable)
/// keeps the progress of all its rows itself and draws [`ProgressBar`]s.
#[component]
pub fn EmbeddingProgress(
    /// The document as loaded.
    document: Document,
) -> impl IntoView {
    let progress = RwSignal::new(Progress::of(&document));
    if let Ok(id) = document.id.parse::<EntityId>() {
        use_data_updates().subscribe(Pattern::Entity(EntityKind::Document, id), move |event| {
            if event.event_type == EventType::Updated
                && let Some(change) = event.document()
            {
                progress.update(|progress| progress.apply(&change));
            }
        });
    }
    view! { <ProgressBar progress=progress.into() title=document.title /> }
}

/// A `role="progressbar"` with `aria-valuenow` (embedded chunks), `aria-valuemax` (chunks)
/// and the percentage as `aria-valuetext`.
#[component]
pub fn ProgressBar(
    /// What to show.
    progress: Signal<Progress>,
    /// The document's title, for the accessible name "Embedding of <title>".
    #[prop(into)]
    title: Signal<String>,
) -> impl IntoView {
    let label = move || format!("Embedding of {}", title.get());
    let percent = move || progress.get().percent();
    let max = move || progress.get().chunks.max(1);
    let now = move || {
        let progress = progress.get();
        if progress.status == DocumentStatus::Ready {
            progress.chunks.max(1)
        } else {
            progress.embedded.min(progress.chunks)
        }
    };
    let text = move || format!("{} %", percent());
    view! {
        <div class="progress">
            <div
                class="progress-track"
                role="progressbar"
                aria-label=label
                aria-valuemin="0"
                aria-valuemax=max
                aria-valuenow=now
                aria-valuetext=text
            >
                <div class="progress-fill" style:width=move || format!("{}%", percent())></div>
            </div>
            <span class="progress-text" aria-hidden="true">
                {text}
            </span>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_takes_the_fields_an_update_names_and_keeps_the_others() {
        let mut progress = Progress {
            embedded: 0,
            chunks: 0,
            status: DocumentStatus::Queued,
        };
        progress.apply(&DocumentChange {
            chunks: Some(4),
            status: Some(DocumentStatus::Embedding),
            ..DocumentChange::default()
        });
        assert_eq!(progress.percent(), 0);
        progress.apply(&DocumentChange {
            embedded_chunks: Some(3),
            ..DocumentChange::default()
        });
        assert_eq!(
            (progress.embedded, progress.chunks, progress.percent()),
            (3, 4, 75)
        );
        progress.apply(&DocumentChange {
            status: Some(DocumentStatus::Ready),
            title: Some("x".to_owned()),
            ..DocumentChange::default()
        });
        assert_eq!(progress.percent(), 100);
    }
}
