//! [`ChunkTable`] and its live rows, [`ChunkRows`]: a document's chunks in order, windowed,
//! each turning from Pending to Embedded live.
//!
//! **Invariant:** a chunk's status change writes that chunk's signal and the embedded count,
//! nothing else: its cost does not grow with the document. Only the rows in view (and a
//! margin) are in the page, each [`CHUNK_ROW_PX`] high.

use std::collections::HashMap;

use leptos::prelude::*;

use crate::components::windowing::track_scroll_top;
use crate::protocol::ChunkStatus;
use crate::resources::ChunkSummary;

/// The height of a chunk row, in CSS pixels (`.chunks tr` in main.css).
const CHUNK_ROW_PX: usize = 44;
/// Chunk rows rendered: enough to fill the chunk list's height, plus a margin each side.
const CHUNK_ROWS_RENDERED: usize = 16;
const CHUNK_MARGIN_ROWS: usize = 4;

/// One chunk's row: its fixed text and its live status.
#[derive(Clone)]
struct ChunkRow {
    position: u32,
    excerpt: String,
    status: RwSignal<ChunkStatus>,
}

/// A document's chunks as live rows, in order. `Copy`. The number of chunks is bounded by
/// the server's document size limit.
#[derive(Clone, Copy)]
pub struct ChunkRows {
    /// Chunk ids in order; changes only when the chunks are read again.
    order: RwSignal<Vec<String>>,
    rows: StoredValue<HashMap<String, ChunkRow>>,
    /// How many are embedded.
    embedded: RwSignal<usize>,
}

impl ChunkRows {
    /// Rows for `chunks`, in their order.
    pub fn new(chunks: Vec<ChunkSummary>) -> Self {
        let rows = Self {
            order: RwSignal::new(Vec::new()),
            rows: StoredValue::new(HashMap::new()),
            embedded: RwSignal::new(0),
        };
        rows.replace(chunks);
        rows
    }

    /// Replaces the rows with `chunks` (a reload): chunks that stay keep their signals.
    pub fn replace(&self, chunks: Vec<ChunkSummary>) {
        let mut old = self
            .rows
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        let order: Vec<String> = chunks.iter().map(|chunk| chunk.id.clone()).collect();
        let embedded = chunks
            .iter()
            .filter(|chunk| chunk.status == ChunkStatus::Embedded)
            .count();
        let rows = chunks
            .into_iter()
            .map(|chunk| {
                let status = match old.remove(&chunk.id) {
                    Some(row) => {
                        if row.status.get_untracked() != chunk.status {
                            row.status.set(chunk.status);
                        }
                        row.status
                    }
                    None => RwSignal::new(chunk.status),
                };
                let row = ChunkRow {
                    position: chunk.position,
                    excerpt: chunk.excerpt,
                    status,
                };
                (chunk.id, row)
            })
            .collect();
        self.rows.set_value(rows);
        if self.embedded.get_untracked() != embedded {
            self.embedded.set(embedded);
        }
        if self.order.with_untracked(|shown| *shown != order) {
            self.order.set(order);
        }
    }

    /// Sets chunk `id`'s status; `false` when there is no such chunk here.
    pub fn set_status(&self, id: &str, status: ChunkStatus) -> bool {
        let Some(signal) = self
            .rows
            .with_value(|rows| rows.get(id).map(|row| row.status))
        else {
            return false;
        };
        let before = signal.get_untracked();
        if before != status {
            signal.set(status);
            self.embedded.update(|embedded| match status {
                ChunkStatus::Embedded => *embedded += 1,
                ChunkStatus::Pending => *embedded = embedded.saturating_sub(1),
            });
        }
        true
    }

    /// "· 3 of 10 embedded", or "" before the split (tracked).
    pub fn count_label(&self) -> String {
        match self.order.with(Vec::len) {
            0 => String::new(),
            total => format!("· {} of {total} embedded", self.embedded.get()),
        }
    }

    fn row(&self, id: &str) -> Option<ChunkRow> {
        self.rows.with_value(|rows| rows.get(id).cloned())
    }
}

/// The chunks, windowed: only the rows in view (and a margin) are in the page.
#[component]
pub fn ChunkTable(rows: ChunkRows) -> impl IntoView {
    let scroll_top = RwSignal::new(0_usize);
    let window = Memo::new(move |_| {
        let first = (scroll_top.get() / CHUNK_ROW_PX).saturating_sub(CHUNK_MARGIN_ROWS);
        rows.order.with(|order| {
            let start = first.min(order.len());
            let end = (start + CHUNK_ROWS_RENDERED + 2 * CHUNK_MARGIN_ROWS).min(order.len());
            (start, order.len(), order[start..end].to_vec())
        })
    });
    let on_scroll = track_scroll_top(scroll_top);
    view! {
        <div class="chunks-wrap" on:scroll=on_scroll data-testid="chunks-scroller">
            <table class="chunks" aria-rowcount=move || rows.order.with(Vec::len) + 1>
                <caption class="visually-hidden">"Chunks of the document"</caption>
                <thead>
                    <tr aria-rowindex="1">
                        <th scope="col" class="col-position">"#"</th>
                        <th scope="col">"Text"</th>
                        <th scope="col" class="col-chunk-status">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    <Show when=move || rows.order.with(Vec::is_empty)>
                        <tr class="empty">
                            <td colspan="3">"Not split into chunks yet."</td>
                        </tr>
                    </Show>
                    <tr class="spacer" aria-hidden="true" style:height=move || format!("{}px", window.with(|(start, _, _)| start * CHUNK_ROW_PX))>
                        <td colspan="3"></td>
                    </tr>
                    <For
                        each=move || window.get().2
                        key=|id| id.clone()
                        children=move |id| rows.row(&id).map(|row| view! { <ChunkRowView row /> })
                    />
                    <tr class="spacer" aria-hidden="true" style:height=move || format!("{}px", window.with(|(start, total, shown)| (total - start - shown.len()) * CHUNK_ROW_PX))>
                        <td colspan="3"></td>
                    </tr>
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn ChunkRowView(row: ChunkRow) -> impl IntoView {
    let status = row.status;
    view! {
        <tr data-testid="chunk-row" data-status=move || status_name(status.get()) aria-rowindex=row.position + 2>
            <td class="col-position">{row.position + 1}</td>
            <td class="chunk-excerpt">{row.excerpt}</td>
            <td class="col-chunk-status">
                <span class="badge" data-status=move || badge(status.get())>
                    {move || label(status.get())}
                </span>
            </td>
        </tr>
    }
}

fn status_name(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Pending => "pending",
        ChunkStatus::Embedded => "embedded",
    }
}

fn label(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Pending => "Pending",
        ChunkStatus::Embedded => "Embedded",
    }
}

/// The badge colour of a chunk's status, named as a document's.
fn badge(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Pending => "embedding",
        ChunkStatus::Embedded => "ready",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &str, position: u32, status: ChunkStatus) -> ChunkSummary {
        ChunkSummary {
            id: id.to_owned(),
            position,
            status,
            excerpt: format!("text {position}"),
        }
    }

    #[test]
    fn a_status_change_writes_its_row_and_the_count_only() {
        Owner::new().with(|| {
            let rows = ChunkRows::new(vec![
                chunk("chk_a", 0, ChunkStatus::Embedded),
                chunk("chk_b", 1, ChunkStatus::Pending),
            ]);
            assert_eq!(rows.count_label(), "· 1 of 2 embedded");

            assert!(rows.set_status("chk_b", ChunkStatus::Embedded));
            assert!(rows.set_status("chk_b", ChunkStatus::Embedded), "twice");
            assert!(!rows.set_status("chk_x", ChunkStatus::Embedded));

            assert_eq!(rows.count_label(), "· 2 of 2 embedded");
            assert_eq!(
                rows.row("chk_b").map(|row| row.status.get_untracked()),
                Some(ChunkStatus::Embedded)
            );
            assert_eq!(rows.order.get_untracked(), ["chk_a", "chk_b"]);
        });
    }

    #[test]
    fn a_reload_keeps_the_signals_of_the_chunks_that_stay() {
        Owner::new().with(|| {
            let rows = ChunkRows::new(vec![chunk("chk_a", 0, ChunkStatus::Pending)]);
            let status_of_a = rows.row("chk_a").map(|row| row.status);

            rows.replace(vec![
                chunk("chk_a", 0, ChunkStatus::Embedded),
                chunk("chk_b", 1, ChunkStatus::Pending),
            ]);

            assert_eq!(rows.row("chk_a").map(|row| row.status), status_of_a);
            assert_eq!(rows.order.get_untracked(), ["chk_a", "chk_b"]);
            assert_eq!(rows.count_label(), "· 1 of 2 embedded");
        });
    }
}
