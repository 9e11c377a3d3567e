//! [`DocumentsTable`] and the live row state behind it, [`DocumentRows`].
//!
//! **Invariant:** an event changes only the row it names, and in that row only the cells
//! whose fields it carries (each cell reads its own signal); the list itself changes only
//! when a document is created or deleted, and then `<For>` inserts or removes that one row.
//! Only the rows in view (plus a margin) are in the DOM, each [`ROW_HEIGHT_PX`] high, so the
//! cost of a frame does not grow with the number of documents; only those rows have signals.
//! A row out of view keeps its values as plain fields, which an event for it writes, and
//! shows them when it scrolls in. Sorting by a column orders the whole list, not only the
//! rows in view, and a live change of the sorted field moves its row.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::embedding_progress::{Progress, ProgressBar};
use crate::components::page_book::PageBook;
use crate::components::windowing::track_scroll_top;
use crate::data_updates::{Applied, LiveRows};
use crate::error::AppError;
use crate::pages::document::{DocumentRoute, document_address};
use crate::pages::fetch_ahead;
use crate::protocol::{DocumentChange, EntityEvent, EventType};
#[cfg(feature = "hydrate")]
use crate::resources::DOCUMENTS_PAGE;
use crate::resources::{Document, DocumentList, DocumentStatus, MAX_TITLE_CHARS};

/// The height of every body row, in CSS pixels (the stylesheet sets the same).
pub const ROW_HEIGHT_PX: usize = 52;
/// Rows rendered from the first one in view: enough for a viewport of this many rows.
const RENDERED_ROWS: usize = 40;
/// Rows rendered above the first one in view, so a small scroll shows rows at once.
const MARGIN_ROWS: usize = 10;

/// The column the table is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// The order documents were added in (the server's newest first).
    Added,
    /// Title, without regard to case.
    Title,
    /// Processing status: queued, embedding, ready, failed.
    Status,
    /// Size in bytes.
    Size,
    /// Time of the last change.
    Updated,
}

/// The table's order: a column and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortOrder {
    /// The column.
    pub key: SortKey,
    /// Largest (or latest, or last) first.
    pub descending: bool,
}

impl Default for SortOrder {
    /// Newest first, as the server lists documents.
    fn default() -> Self {
        Self {
            key: SortKey::Added,
            descending: true,
        }
    }
}

impl SortOrder {
    /// The order after a click on `key`'s header: the same column flips its direction; a new
    /// column starts in its natural direction (names A to Z, sizes and times largest first).
    pub fn toggled(self, key: SortKey) -> Self {
        if self.key == key {
            return Self {
                key,
                descending: !self.descending,
            };
        }
        let descending = matches!(key, SortKey::Added | SortKey::Size | SortKey::Updated);
        Self { key, descending }
    }

    /// The `aria-sort` of `key`'s header.
    fn aria_sort(self, key: SortKey) -> &'static str {
        match (self.key == key, self.descending) {
            (false, _) => "none",
            (true, true) => "descending",
            (true, false) => "ascending",
        }
    }
}

/// A row's value in the sorted column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Number(u64),
    Text(String),
}

/// `order` (ids newest first) sorted by `value_of` each id, in `sort`'s direction; rows with
/// equal values keep their newest-first order.
fn sorted_ids(
    order: &[String],
    sort: SortOrder,
    value_of: impl Fn(&str) -> Option<SortValue>,
) -> Vec<String> {
    if sort.key == SortKey::Added {
        let mut ids = order.to_vec();
        if !sort.descending {
            ids.reverse();
        }
        return ids;
    }
    let mut keyed: Vec<(Option<SortValue>, usize)> = order
        .iter()
        .enumerate()
        .map(|(position, id)| (value_of(id), position))
        .collect();
    keyed.sort_by(|(a, a_position), (b, b_position)| {
        let by_value = if sort.descending { b.cmp(a) } else { a.cmp(b) };
        by_value.then(a_position.cmp(b_position))
    });
    keyed
        .into_iter()
        .map(|(_, position)| order[position].clone())
        .collect()
}

/// Where a status sorts: in the order documents go through them.
fn status_rank(status: DocumentStatus) -> u64 {
    match status {
        DocumentStatus::Queued => 0,
        DocumentStatus::Embedding => 1,
        DocumentStatus::Ready => 2,
        DocumentStatus::Failed => 3,
    }
}

/// One row: its values, and while a view shows it, the signals its cells read.
///
/// The values are plain fields, so an event for a row out of view (almost every event of a
/// long list) costs a map lookup and a few field writes: no signal, no reactive graph. The
/// signals exist only while the row is rendered ([`DocumentRows::show`]).
#[derive(Clone)]
struct DocumentRow {
    id: String,
    /// Larger for newer rows: the tie-break of every sort (newest first).
    seq: u64,
    size_bytes: u64,
    title: String,
    status: DocumentStatus,
    progress: Progress,
    error: Option<String>,
    updated_at: String,
    /// The signals of the row's cells while a view shows it; `None` out of view.
    cells: Option<RowCells>,
}

/// The signals a rendered row's cells read, made from the row's values when it comes into
/// view and owned by its view, which drops them when the row leaves the window.
#[derive(Clone, Copy, PartialEq)]
struct RowCells {
    title: RwSignal<String>,
    status: RwSignal<DocumentStatus>,
    progress: RwSignal<Progress>,
    error: RwSignal<Option<String>>,
    updated_at: RwSignal<String>,
}

impl RowCells {
    /// Cells showing `row`'s values, owned by the current owner (the row's view).
    fn new(row: &DocumentRow) -> Self {
        Self {
            title: RwSignal::new(row.title.clone()),
            status: RwSignal::new(row.status),
            progress: RwSignal::new(row.progress),
            error: RwSignal::new(row.error.clone()),
            updated_at: RwSignal::new(row.updated_at.clone()),
        }
    }

    /// Sets the cells to `row`'s values, writing only those whose value changed.
    fn set_to(&self, row: &DocumentRow) {
        fn set_if_changed<T: Clone + PartialEq + Send + Sync + 'static>(
            signal: RwSignal<T>,
            value: &T,
        ) {
            // One write access, and the old value's buffer reused (`clone_from`).
            signal.maybe_update(|current| {
                let changed = current != value;
                if changed {
                    current.clone_from(value);
                }
                changed
            });
        }
        set_if_changed(self.title, &row.title);
        set_if_changed(self.status, &row.status);
        set_if_changed(self.progress, &row.progress);
        set_if_changed(self.error, &row.error);
        set_if_changed(self.updated_at, &row.updated_at);
    }
}

impl DocumentRow {
    /// The row's value in `key`'s column.
    fn sort_value(&self, key: SortKey) -> Option<SortValue> {
        match key {
            SortKey::Added => None,
            SortKey::Title => Some(SortValue::Text(self.title.to_lowercase())),
            SortKey::Status => Some(SortValue::Number(status_rank(self.status))),
            SortKey::Size => Some(SortValue::Number(self.size_bytes)),
            SortKey::Updated => Some(SortValue::Text(self.updated_at.clone())),
        }
    }

    fn new(document: Document, seq: u64) -> Self {
        Self {
            seq,
            progress: Progress::of(&document),
            title: document.title,
            status: document.status,
            error: document.error,
            updated_at: document.updated_at,
            id: document.id,
            size_bytes: document.size_bytes,
            cells: None,
        }
    }

    /// Takes the fields `change` carries, and shows them when the row is in view.
    fn apply(&mut self, change: &DocumentChange) {
        if let Some(title) = &change.title {
            self.title.clone_from(title);
        }
        if let Some(status) = change.status {
            self.status = status;
        }
        if let Some(error) = &change.error {
            self.error.clone_from(error);
        }
        if let Some(updated_at) = &change.updated_at {
            self.updated_at.clone_from(updated_at);
        }
        self.progress.apply(change);
        if let Some(cells) = &self.cells {
            cells.set_to(self);
        }
    }
}

/// The documents of one project as live rows, newest first, kept live by a
/// [`LiveList`](crate::data_updates::LiveList) of `document:*`. `Copy`: the page, the upload
/// zone and the table share it.
///
/// **Invariant:** an event that changes a row's value in the sorted column moves that row
/// alone (a binary search in the shown order); only a new sort, or a row that comes or goes,
/// sorts the whole list again.
#[derive(Clone, Copy)]
pub struct DocumentRows {
    /// The project the rows are of: events of another are not theirs.
    project: StoredValue<String>,
    /// Row ids newest first; changes only when a row comes or goes.
    order: RwSignal<Vec<String>>,
    /// The rows by id.
    rows: StoredValue<HashMap<String, DocumentRow>>,
    /// The order the table shows them in.
    sort: RwSignal<SortOrder>,
    /// The next row's `seq`.
    next_seq: StoredValue<u64>,
    /// Rows whose value in the sorted column changed since the table last placed them; at
    /// most one entry per row before the table sorts the whole list instead.
    moved: StoredValue<Vec<String>>,
    /// Ticks when a row is added to `moved`.
    moves: RwSignal<u64>,
    /// The sort the shown order was made with, and whether a row came or went since.
    shown: StoredValue<(Option<SortOrder>, bool)>,
    /// The smallest `seq` given: a page of older rows numbers its rows below it.
    oldest_seq: StoredValue<u64>,
    /// While the rest of the list loads in pages: the events since it started. Tracked
    /// when it comes and goes (the page says it is loading more), not as events are booked.
    pages: RwSignal<Option<PageBook>>,
    /// The number of the current load of pages: a reload, which replaces every row, ends it.
    pages_load: StoredValue<u64>,
}

/// The `seq`s of a snapshot of `count` rows, oldest first: they start high enough to leave
/// numbers below them for the older rows that pages bring later.
fn snapshot_seqs(count: usize) -> RangeInclusive<u64> {
    let oldest = (1 << 32) + 1;
    oldest..=oldest + u64::try_from(count).unwrap_or(u32::MAX.into()) - 1
}

impl DocumentRows {
    /// Rows for `project`'s `documents`, in their order.
    pub fn new(project: &str, documents: Vec<Document>) -> Self {
        let order = documents
            .iter()
            .map(|document| document.id.clone())
            .collect();
        let seqs = snapshot_seqs(documents.len());
        // Newest first: the first document has the largest `seq`.
        let rows = documents
            .into_iter()
            .zip(seqs.clone().rev())
            .map(|(document, seq)| (document.id.clone(), DocumentRow::new(document, seq)))
            .collect();
        Self {
            project: StoredValue::new(project.to_owned()),
            order: RwSignal::new(order),
            rows: StoredValue::new(rows),
            sort: RwSignal::new(SortOrder::default()),
            next_seq: StoredValue::new(seqs.end() + 1),
            moved: StoredValue::new(Vec::new()),
            moves: RwSignal::new(0),
            shown: StoredValue::new((None, false)),
            oldest_seq: StoredValue::new(*seqs.start()),
            pages: RwSignal::new(None),
            pages_load: StoredValue::new(0),
        }
    }

    /// The rows are the first page of a longer list: from now on, events are booked for the
    /// pages to come ([`DocumentRows::add_page`]) until [`DocumentRows::pages_done`]. Returns
    /// the load's number.
    pub fn expect_more(&self) -> u64 {
        self.pages.set(Some(PageBook::default()));
        self.pages_load
            .try_update_value(|load| {
                *load += 1;
                *load
            })
            .unwrap_or_default()
    }

    /// Whether load `load` of pages is still the current one.
    fn loading_pages(&self, load: u64) -> bool {
        self.pages_load.try_get_value() == Some(load)
            && self
                .pages
                .try_with_untracked(Option::is_some)
                .unwrap_or(false)
    }

    /// Adds a page of `documents`, older than every row, to load `load` of pages; then applies
    /// the events booked about them. Rows already here (created meanwhile) stay as they are.
    /// `false` when that load ended (a reload replaced the rows, or the table is gone).
    fn add_page(&self, load: u64, documents: Vec<Document>) -> bool {
        if !self.loading_pages(load) {
            return false;
        }
        let mut added = Vec::with_capacity(documents.len());
        self.rows.update_value(|rows| {
            self.oldest_seq.update_value(|oldest| {
                for document in documents {
                    if rows.contains_key(&document.id) {
                        continue;
                    }
                    *oldest -= 1;
                    added.push(document.id.clone());
                    rows.insert(document.id.clone(), DocumentRow::new(document, *oldest));
                }
            });
        });
        let replays = self
            .pages
            .try_with_untracked(|book| {
                let ids = added.iter().map(String::as_str).collect();
                book.as_ref().map(|book| book.replays(&ids))
            })
            .flatten()
            .unwrap_or_default();
        self.shown.update_value(|shown| shown.1 = true);
        self.order.update(|order| order.extend(added));
        for event in &replays {
            self.follow(event);
        }
        true
    }

    /// Load `load` of pages is over; `true` when events were dropped meanwhile, so the
    /// whole list must be read again.
    fn pages_done(&self, load: u64) -> bool {
        if self.pages_load.try_get_value() != Some(load) {
            return false;
        }
        self.pages
            .try_update(Option::take)
            .flatten()
            .is_some_and(|book| book.overflowed())
    }

    /// One page of [`DOCUMENTS_PAGE`] rows of the project's list, from after `after` (a
    /// page's `next`) or from the newest (browser only).
    #[cfg(feature = "hydrate")]
    pub async fn fetch_page(self, after: Option<String>) -> Result<DocumentList, AppError> {
        let project = self.project.get_value();
        crate::rest::list_documents_page(&project, DOCUMENTS_PAGE, after.as_deref()).await
    }

    /// Whether older rows are still loading (tracked).
    pub fn loading_more(&self) -> bool {
        self.pages.with(Option::is_some)
    }

    /// Loads the rest of the list after the first page's `next`, one page at a time from
    /// `fetch_page(after)` (`GET /api/documents?limit=&after=`: each page a few milliseconds
    /// of the main thread), for load `load` ([`DocumentRows::expect_more`]). `true` when the
    /// list must then be read whole: a page failed, or too many events came meanwhile.
    pub async fn load_rest<F, Page>(&self, load: u64, next: String, fetch_page: F) -> bool
    where
        F: Fn(String) -> Page,
        Page: Future<Output = Result<DocumentList, AppError>>,
    {
        let mut after = next;
        loop {
            match fetch_page(after).await {
                Ok(page) => {
                    if !self.add_page(load, page.documents) {
                        return false;
                    }
                    match page.next {
                        Some(next) => after = next,
                        None => return self.pages_done(load),
                    }
                }
                // Read the whole list instead, unless a reload already replaced the rows.
                Err(_) => {
                    let current = self.loading_pages(load);
                    self.pages_done(load);
                    return current;
                }
            }
        }
    }

    /// The row ids in the table's order, the whole list sorted (tracked: follows new rows
    /// and the sort).
    fn displayed(&self) -> Vec<String> {
        let sort = self.sort.get();
        self.order.with(|order| {
            sorted_ids(order, sort, |id| {
                self.with_row(id, |row| row.sort_value(sort.key)).flatten()
            })
        })
    }

    /// The table's order after `previous`, and whether it changed: with the same sort and
    /// the same rows, `previous` with only the moved rows placed again; otherwise the whole
    /// list sorted (tracked: follows new rows, the sort, and moves in the sorted column).
    fn displayed_after(&self, previous: Option<Vec<String>>) -> (Vec<String>, bool) {
        self.moves.track();
        let sort = self.sort.get();
        self.order.track();
        let moved = self
            .moved
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        let (shown_sort, reshaped) = self
            .shown
            .try_update_value(|shown| std::mem::replace(shown, (Some(sort), false)))
            .unwrap_or((None, true));
        match previous {
            Some(mut ids) if shown_sort == Some(sort) && !reshaped => {
                let mut changed = false;
                for id in &moved {
                    changed |= self.place_again(&mut ids, id, sort);
                }
                (ids, changed)
            }
            _ => (self.displayed(), true),
        }
    }

    /// Moves `id` within `ids` (sorted by `sort` but for it) to where its value now sorts;
    /// `true` when its place changed.
    fn place_again(&self, ids: &mut Vec<String>, id: &str, sort: SortOrder) -> bool {
        let Some(from) = ids.iter().position(|shown| shown == id) else {
            return false;
        };
        let id = ids.remove(from);
        let key_of = |id: &str| self.with_row(id, |row| (row.sort_value(sort.key), row.seq));
        let Some((value, seq)) = key_of(&id) else {
            return true;
        };
        let to = ids.partition_point(|other| {
            key_of(other).is_some_and(|(other_value, other_seq)| {
                // Before `id`: a value that sorts first in the sort's direction, or an equal
                // one on a newer row.
                let by_value = if sort.descending {
                    value.cmp(&other_value)
                } else {
                    other_value.cmp(&value)
                };
                by_value.then(seq.cmp(&other_seq)) == std::cmp::Ordering::Less
            })
        });
        ids.insert(to, id);
        to != from
    }

    /// Applies `change` to the row of `id`, if there is one, noting the row as moved when its
    /// value in the sorted column changed.
    fn update(&self, id: &str, change: &DocumentChange) {
        let key = self.sort.with_untracked(|sort| sort.key);
        let moved = self
            .rows
            .try_update_value(|rows| {
                let row = rows.get_mut(id)?;
                if matches!(key, SortKey::Added | SortKey::Size) {
                    row.apply(change);
                    return Some(false);
                }
                let before = row.sort_value(key);
                row.apply(change);
                Some(row.sort_value(key) != before)
            })
            .flatten()
            .unwrap_or(false);
        if moved {
            self.note_moved(id);
        }
    }

    /// Notes that the row of `id` changed its value in the sorted column.
    fn note_moved(&self, id: &str) {
        let rows = self.rows.with_value(HashMap::len);
        self.moved.update_value(|moved| {
            if !moved.iter().any(|known| known == id) {
                moved.push(id.to_owned());
            }
            if moved.len() > rows {
                moved.clear();
                self.shown.update_value(|shown| shown.1 = true);
            }
        });
        self.moves.update(|moves| *moves = moves.wrapping_add(1));
    }

    /// Adds `document` at the top, or updates its row when it is there already (the upload's
    /// answer and the `entity.created` event may come in either order).
    pub fn insert(&self, document: Document) {
        if self.rows.with_value(|rows| rows.contains_key(&document.id)) {
            self.update(&document.id, &DocumentChange::created(&document));
            return;
        }
        let id = document.id.clone();
        let seq = self
            .next_seq
            .try_update_value(|next| {
                *next += 1;
                *next - 1
            })
            .unwrap_or_default();
        self.rows.update_value(|rows| {
            rows.insert(id.clone(), DocumentRow::new(document, seq));
        });
        self.shown.update_value(|shown| shown.1 = true);
        self.order.update(|order| order.insert(0, id));
    }

    /// Replaces the rows with `documents` (a reload): rows that stay keep their cells and
    /// take the new values, so only what changed is drawn again.
    fn replace_all(&self, documents: Vec<Document>) {
        let mut old = self
            .rows
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        // Every row is here: a load of pages under way ends.
        self.pages.set(None);
        self.pages_load.update_value(|load| *load += 1);
        let seqs = snapshot_seqs(documents.len());
        let order = documents
            .iter()
            .map(|document| document.id.clone())
            .collect();
        let rows = documents
            .into_iter()
            .zip(seqs.clone().rev())
            .map(|(document, seq)| {
                let row = match old.remove(&document.id) {
                    Some(mut row) => {
                        row.apply(&DocumentChange::created(&document));
                        DocumentRow { seq, ..row }
                    }
                    None => DocumentRow::new(document, seq),
                };
                (row.id.clone(), row)
            })
            .collect();
        self.rows.set_value(rows);
        self.next_seq.set_value(seqs.end() + 1);
        self.oldest_seq.set_value(*seqs.start());
        self.shown.update_value(|shown| shown.1 = true);
        self.order.set(order);
    }

    /// Removes the row of `id`, if there is one.
    pub fn remove(&self, id: &str) {
        let removed = self.rows.try_update_value(|rows| rows.remove(id)).flatten();
        if removed.is_some() {
            self.shown.update_value(|shown| shown.1 = true);
            self.order
                .update(|order| order.retain(|row_id| row_id != id));
        }
    }

    /// How many rows there are (tracked).
    pub fn len(&self) -> usize {
        self.order.with(Vec::len)
    }

    /// True when there is no row (tracked).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one `document` event of the rows' project.
    fn apply_event(&self, event: &EntityEvent) -> Applied {
        if self
            .project
            .with_value(|project| event.project_id.as_str() != project)
        {
            return Applied::Followed;
        }
        self.pages.update_untracked(|book| {
            if let Some(book) = book {
                book.record(event);
            }
        });
        self.follow(event)
    }

    /// Applies one `document` event of the rows' project to the rows it names.
    fn follow(&self, event: &EntityEvent) -> Applied {
        let change = event.document();
        match event.event_type {
            EventType::Created => match change.and_then(DocumentChange::into_document) {
                Some(document) => self.insert(document),
                None => return Applied::Reload,
            },
            EventType::Updated => {
                if let (Some(id), Some(change)) = (&event.id, change) {
                    self.update(id.as_str(), &change);
                }
            }
            EventType::Deleted => {
                if let Some(id) = &event.id {
                    self.remove(id.as_str());
                }
            }
            EventType::Batch => {
                if let (Some(ids), Some(change)) = (&event.ids, change) {
                    for id in ids {
                        self.update(id.as_str(), &change);
                    }
                }
            }
        }
        Applied::Followed
    }

    /// `f` of the row of `id`, if there is one.
    fn with_row<T>(&self, id: &str, f: impl FnOnce(&DocumentRow) -> T) -> Option<T> {
        self.rows.with_value(|rows| rows.get(id).map(f))
    }

    /// The row of `id` for a view that shows it: its size, and the signals of its cells, made
    /// now and owned by the current owner (the view), which lets them go on cleanup. One view
    /// per row at a time: a second view of the same row would take over its cells.
    fn show(&self, id: &str) -> Option<(u64, RowCells)> {
        let shown = self
            .rows
            .try_update_value(|rows| {
                let row = rows.get_mut(id)?;
                let cells = RowCells::new(row);
                row.cells = Some(cells);
                Some((row.size_bytes, cells))
            })
            .flatten()?;
        let rows = *self;
        let id = id.to_owned();
        let cells = shown.1;
        on_cleanup(move || {
            rows.rows.try_update_value(|rows| {
                if let Some(row) = rows.get_mut(&id)
                    && row.cells == Some(cells)
                {
                    row.cells = None;
                }
            });
        });
        Some(shown)
    }
}

impl LiveRows for DocumentRows {
    type Snapshot = DocumentList;

    fn apply(&self, event: &EntityEvent) -> Applied {
        self.apply_event(event)
    }

    fn replace(&self, list: DocumentList) {
        self.replace_all(list.documents);
    }

    /// The whole list, read in pages: each page is decoded in its own task, so a list of
    /// 100,000 documents costs no 22 MB decode in one long task (the rows are replaced once,
    /// and the events of the whole read apply on top).
    #[cfg(feature = "hydrate")]
    async fn reload(&self) -> Result<DocumentList, AppError> {
        let mut list = self.fetch_page(None).await?;
        while let Some(after) = list.next.take() {
            let page = self.fetch_page(Some(after)).await?;
            list.documents.extend(page.documents);
            list.next = page.next;
        }
        Ok(list)
    }
}

/// The project's documents as a table: title, status, embedding progress, size, last
/// change, and a delete button per row. Live as its rows are; only the rows in view are
/// rendered, and `aria-rowcount` / `aria-rowindex` tell assistive technology where
/// they sit in the whole list.
#[component]
pub fn DocumentsTable(
    /// The rows, kept live by the page.
    rows: DocumentRows,
    /// The caption, naming the project.
    caption: String,
    /// Called with the id of a document the user asked to delete.
    on_delete: Callback<String>,
    /// Called with the id and the new title of a document the user renamed.
    on_rename: Callback<(String, String)>,
) -> impl IntoView {
    let scroll_top = RwSignal::new(0_usize);
    let first_in_view = Memo::new(move |_| scroll_top.get() / ROW_HEIGHT_PX);
    // Owning: the previous order is moved in, not copied, and not compared row by row.
    let displayed = Memo::new_owning(move |previous| rows.displayed_after(previous));
    // The rendered slice: its start, and its ids with their positions in the whole list.
    let window = Memo::new(move |_| {
        let start = first_in_view.get().saturating_sub(MARGIN_ROWS);
        displayed.with(|order| {
            let start = start.min(order.len());
            let end = (start + MARGIN_ROWS + RENDERED_ROWS).min(order.len());
            (start, order.len(), order[start..end].to_vec())
        })
    });
    let space_above = move || window.with(|(start, _, _)| start * ROW_HEIGHT_PX);
    let space_below =
        move || window.with(|(start, total, ids)| (total - start - ids.len()) * ROW_HEIGHT_PX);
    let on_scroll = track_scroll_top(scroll_top);

    view! {
        <div
            class="table-wrap"
            data-testid="documents-scroller"
            {..fetch_ahead::<DocumentRoute>()}
            on:scroll=on_scroll
        >
            <table
                class="documents"
                data-testid="documents-table"
                aria-rowcount=move || rows.len() + 1
                aria-busy=move || rows.loading_more().then_some("true")
            >
                <caption class="visually-hidden">{caption}</caption>
                <thead>
                    <tr aria-rowindex="1">
                        <SortableHeader rows key=SortKey::Title label="Title" class="col-title" />
                        <SortableHeader rows key=SortKey::Status label="Status" class="col-status" />
                        <th scope="col" class="col-progress">"Embedding"</th>
                        <SortableHeader rows key=SortKey::Size label="Size" class="col-size" />
                        <SortableHeader rows key=SortKey::Updated label="Updated" class="col-updated" />
                        <th scope="col" class="col-actions">
                            <span class="visually-hidden">"Actions"</span>
                        </th>
                    </tr>
                </thead>
                <tbody>
                    <Show when=move || rows.is_empty()>
                        <tr class="empty">
                            <td colspan="6">"No documents yet. Upload a .txt or .md file."</td>
                        </tr>
                    </Show>
                    <tr class="spacer" aria-hidden="true" style:height=move || format!("{}px", space_above())>
                        <td colspan="6"></td>
                    </tr>
                    <For
                        each=move || window.get().2
                        key=|id| id.clone()
                        children=move |id| {
                            rows.show(&id)
                                .map(|(size_bytes, cells)| {
                                    view! {
                                        <DocumentRowView id size_bytes cells displayed on_delete on_rename />
                                    }
                                        .into_any()
                                })
                        }
                    />
                    <tr class="spacer" aria-hidden="true" style:height=move || format!("{}px", space_below())>
                        <td colspan="6"></td>
                    </tr>
                </tbody>
            </table>
        </div>
    }
}

/// A column header that sorts the table by its column; a second click reverses the order.
#[component]
fn SortableHeader(
    rows: DocumentRows,
    key: SortKey,
    label: &'static str,
    class: &'static str,
) -> AnyView {
    let sort = rows.sort;
    let mark = move || match sort.get().aria_sort(key) {
        "ascending" => "▲",
        "descending" => "▼",
        _ => "",
    };
    // Erased, so that the table's view type stays shallow enough for the compiler.
    view! {
        <th scope="col" class=class aria-sort=move || sort.get().aria_sort(key)>
            <button
                type="button"
                class="sort"
                on:click=move |_| sort.update(|order| *order = order.toggled(key))
            >
                {label}
                <span class="sort-mark" aria-hidden="true">
                    {mark}
                </span>
            </button>
        </th>
    }
    .into_any()
}

#[component]
fn DocumentRowView(
    id: String,
    size_bytes: u64,
    cells: RowCells,
    displayed: Memo<Vec<String>>,
    on_delete: Callback<String>,
    on_rename: Callback<(String, String)>,
) -> impl IntoView {
    let RowCells {
        title,
        status,
        progress,
        error,
        updated_at,
    } = cells;
    let size = format_size(size_bytes);
    let status_name = move || status.get().as_str();
    let status_label = move || match status.get() {
        DocumentStatus::Queued => "Queued",
        DocumentStatus::Embedding => "Embedding",
        DocumentStatus::Ready => "Ready",
        DocumentStatus::Failed => "Failed",
    };
    let time = move || updated_at.with(|updated_at| clock_time(updated_at).to_owned());
    let delete_label = move || format!("Delete {}", title.get());
    let row_index = {
        let id = id.clone();
        move || {
            displayed.with(|order| {
                order
                    .iter()
                    .position(|row_id| *row_id == id)
                    .map(|position| position + 2)
            })
        }
    };
    let delete_id = id.clone();
    let editing = RwSignal::new(false);
    let title_cell = view! { <TitleCell id=id.clone() title editing on_rename /> };
    let rename_label = move || format!("Rename {}", title.get());
    view! {
        <tr data-testid="document-row" data-document-id=id aria-rowindex=row_index data-status=status_name>
            <th scope="row" class="col-title">
                {title_cell}
            </th>
            <td class="col-status">
                <span class="badge" data-status=status_name title=move || error.get()>
                    {status_label}
                </span>
            </td>
            <td class="col-progress">
                <ProgressBar progress=progress.into() title=title />
            </td>
            <td class="col-size">{size}</td>
            <td class="col-updated">
                <time datetime=move || updated_at.get()>{time}</time>
            </td>
            <td class="col-actions">
                <button
                    type="button"
                    class="icon-button"
                    aria-label=rename_label
                    title="Rename"
                    on:click=move |_| editing.set(true)
                >
                    "✎"
                </button>
                <button
                    type="button"
                    class="button small danger"
                    aria-label=delete_label
                    on:click=move |_| on_delete.run(delete_id.clone())
                >
                    <span class="delete-text">"Delete"</span>
                    <span class="delete-icon" aria-hidden="true">
                        "✕"
                    </span>
                </button>
            </td>
        </tr>
    }
}

/// A row's title, or while `editing` (the row's "Rename" button) a field: Enter (or
/// leaving the field) saves, Escape cancels. The row shows the new title when the server's
/// `entity.updated` arrives, as every other tab does.
#[component]
fn TitleCell(
    id: String,
    title: RwSignal<String>,
    editing: RwSignal<bool>,
    on_rename: Callback<(String, String)>,
) -> AnyView {
    let id = StoredValue::new(id);
    let field = NodeRef::<leptos::html::Input>::new();
    // Each time the field appears (not once: `NodeRef::on_load` runs a single time).
    Effect::new(move |_| {
        if let Some(input) = field.get() {
            let _ = input.focus();
            input.select();
        }
    });
    let save = move || {
        if !editing.get_untracked() {
            return;
        }
        editing.set(false);
        let Some(input) = field.get_untracked() else {
            return;
        };
        let new_title = input.value().trim().to_owned();
        if !new_title.is_empty() && new_title != title.get_untracked() {
            on_rename.run((id.get_value(), new_title));
        }
    };
    // Erased, so that the row's view type stays shallow enough for the compiler.
    view! {
        <Show
            when=move || editing.get()
            fallback=move || {
                view! {
                    <A href=document_address(id.get_value()) attr:class="title">
                        {move || title.get()}
                    </A>
                }
            }
        >
            <form
                class="rename-form"
                on:submit=move |event: leptos::ev::SubmitEvent| {
                    event.prevent_default();
                    save();
                }
            >
                <input
                    node_ref=field
                    class="rename-field"
                    aria-label="New title"
                    required
                    maxlength=MAX_TITLE_CHARS
                    prop:value=move || title.get_untracked()
                    on:blur=move |_| save()
                    on:keydown=move |event: leptos::ev::KeyboardEvent| {
                        if event.key() == "Escape" {
                            editing.set(false);
                        }
                    }
                />
            </form>
        </Show>
    }
    .into_any()
}

/// `2026-11-27T00:00:01.000Z` → `00:00:01`; anything else as it is.
fn clock_time(timestamp: &str) -> &str {
    timestamp.get(11..19).unwrap_or(timestamp)
}

/// Bytes in the unit a reader expects.
fn format_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1_000.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::{EntityData, EntityId, EntityKind, NewEvent, ProjectId};

    fn document(id: &str, title: &str) -> Document {
        Document {
            id: id.to_owned(),
            project_id: "proj_1".to_owned(),
            title: title.to_owned(),
            status: DocumentStatus::Queued,
            chunks: 0,
            embedded_chunks: 0,
            error: None,
            size_bytes: 10,
            created_at: "2026-11-27T00:00:00.000Z".to_owned(),
            updated_at: "2026-11-27T00:00:00.000Z".to_owned(),
        }
    }

    /// A document event; `change` is its `data` (`None`: none, as a deletion has).
    fn event(event_type: EventType, id: &str, change: Option<DocumentChange>) -> EntityEvent {
        let id: EntityId = id.parse().expect("a valid id");
        let project: ProjectId = "proj_1".parse().expect("a valid project");
        let data = change.as_ref().map(EntityData::to_data);
        NewEvent::single(event_type, EntityKind::Document, id, project, data)
            .into_event("2026-11-27T00:00:01.000Z".to_owned())
    }

    /// Rows of two documents, `doc_b` (the newer) then `doc_a` (made in the current owner).
    fn rows_b_then_a() -> DocumentRows {
        DocumentRows::new(
            "proj_1",
            vec![document("doc_b", "b"), document("doc_a", "a")],
        )
    }

    /// A copy of the row of `id`, if there is one.
    fn row(rows: DocumentRows, id: &str) -> Option<DocumentRow> {
        rows.with_row(id, DocumentRow::clone)
    }

    #[test]
    fn events_create_update_and_delete_only_the_rows_they_name() {
        // With the `ssr` feature, signals live in the arena of an owner.
        Owner::new().with(|| {
            let rows = rows_b_then_a();
            let created = DocumentChange::created(&document("doc_c", "c"));

            rows.apply_event(&event(EventType::Created, "doc_c", Some(created)));
            rows.apply_event(&event(
                EventType::Updated,
                "doc_a",
                Some(DocumentChange {
                    status: Some(DocumentStatus::Embedding),
                    chunks: Some(4),
                    embedded_chunks: Some(2),
                    ..DocumentChange::default()
                }),
            ));
            rows.apply_event(&event(EventType::Deleted, "doc_b", None));
            // An update for a document that is not listed changes nothing.
            rows.apply_event(&event(
                EventType::Updated,
                "doc_x",
                Some(DocumentChange {
                    title: Some("x".to_owned()),
                    ..DocumentChange::default()
                }),
            ));

            assert_eq!(rows.order.get_untracked(), ["doc_c", "doc_a"]);
            let a = row(rows, "doc_a").expect("still listed");
            assert_eq!(a.status, DocumentStatus::Embedding);
            assert_eq!(a.progress.percent(), 50);
            assert_eq!(a.title, "a");
            assert_eq!(rows.displayed(), ["doc_c", "doc_a"]);
            assert!(row(rows, "doc_b").is_none());
        });
    }

    /// A page of the list; `next` names the page after it.
    fn page(documents: Vec<Document>, next: Option<&str>) -> DocumentList {
        DocumentList {
            documents,
            last_event_id: "0-0".to_owned(),
            next: next.map(str::to_owned),
            total: None,
        }
    }

    /// Runs `load_rest` over `pages` by their `after`, to its end (the pages are at hand, so
    /// it never waits); what it returned and the `after`s it asked for.
    fn load_pages(
        rows: DocumentRows,
        load: u64,
        pages: HashMap<&'static str, Result<DocumentList, AppError>>,
    ) -> (bool, Vec<String>) {
        let asked = std::cell::RefCell::new(Vec::new());
        let fetch_page = |after: String| {
            asked.borrow_mut().push(after.clone());
            std::future::ready(pages[after.as_str()].clone())
        };
        let reload = {
            let loading = std::pin::pin!(rows.load_rest(load, "p2".to_owned(), fetch_page));
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(reload) = loading.poll(&mut context) else {
                panic!("the pages were at hand");
            };
            reload
        };
        (reload, asked.into_inner())
    }

    #[test]
    fn pages_after_the_first_screen_come_below_it_with_the_events_made_while_they_loaded() {
        Owner::new().with(|| {
            let rows = DocumentRows::new("proj_1", vec![document("doc_e", "e")]);
            let load = rows.expect_more();
            assert!(rows.loading_more());
            // Events for rows of pages not in yet, one for a row on screen, and a document
            // created meanwhile that a page lists too.
            let renamed = |title: &str| DocumentChange {
                title: Some(title.to_owned()),
                ..DocumentChange::default()
            };
            rows.apply(&event(
                EventType::Updated,
                "doc_c",
                Some(renamed("c, renamed")),
            ));
            rows.apply(&event(
                EventType::Updated,
                "doc_e",
                Some(renamed("e, renamed")),
            ));
            rows.apply(&event(EventType::Deleted, "doc_b", None));
            let created = DocumentChange::created(&document("doc_f", "f"));
            rows.apply(&event(EventType::Created, "doc_f", Some(created)));

            let (reload, asked) = load_pages(
                rows,
                load,
                HashMap::from([
                    (
                        "p2",
                        Ok(page(
                            vec![document("doc_d", "d"), document("doc_c", "c")],
                            Some("p3"),
                        )),
                    ),
                    (
                        "p3",
                        Ok(page(
                            vec![
                                document("doc_f", "f, as read"),
                                document("doc_b", "b"),
                                document("doc_a", "a"),
                            ],
                            None,
                        )),
                    ),
                ]),
            );

            assert!(!reload, "nothing was dropped");
            assert_eq!(asked, ["p2", "p3"]);
            assert!(!rows.loading_more());
            assert_eq!(
                rows.displayed(),
                ["doc_f", "doc_e", "doc_d", "doc_c", "doc_a"],
                "newest first, the deleted row gone, the created one once"
            );
            let title = |id: &str| row(rows, id).expect("listed").title;
            assert_eq!(title("doc_c"), "c, renamed", "applied when its page came");
            assert_eq!(title("doc_e"), "e, renamed", "applied at once");
            assert_eq!(
                title("doc_f"),
                "f",
                "the live row kept, not the page's copy"
            );
            // Once the pages are in, events are no longer booked.
            rows.apply(&event(EventType::Updated, "doc_a", Some(renamed("a2"))));
            assert!(rows.pages.with_untracked(Option::is_none));
        });
    }

    #[test]
    fn a_reload_ends_the_pages_under_way_and_a_failed_page_asks_for_one() {
        Owner::new().with(|| {
            let rows = DocumentRows::new("proj_1", vec![document("doc_c", "c")]);
            let load = rows.expect_more();
            rows.replace(page(
                vec![document("doc_c", "c"), document("doc_b", "b")],
                None,
            ));
            let (reload, _) = load_pages(
                rows,
                load,
                HashMap::from([("p2", Ok(page(vec![document("doc_a", "a")], None)))]),
            );
            assert!(!reload);
            assert_eq!(
                rows.displayed(),
                ["doc_c", "doc_b"],
                "the stale page was dropped"
            );

            let load = rows.expect_more();
            let (reload, _) = load_pages(
                rows,
                load,
                HashMap::from([("p2", Err(AppError::Unavailable))]),
            );
            assert!(reload, "the list is read whole instead");
            assert!(!rows.loading_more());

            // A page that fails after a reload replaced the rows asks for nothing more.
            let load = rows.expect_more();
            rows.replace(page(vec![document("doc_c", "c")], None));
            let (reload, _) = load_pages(
                rows,
                load,
                HashMap::from([("p2", Err(AppError::Unavailable))]),
            );
            assert!(!reload);
        });
    }

    #[test]
    fn a_reload_replaces_the_rows_in_place_keeping_the_cells_of_those_in_view() {
        Owner::new().with(|| {
            let rows = rows_b_then_a();
            let (_, cells) = rows.show("doc_a").expect("listed");
            let mut renamed = document("doc_a", "a, renamed");
            renamed.status = DocumentStatus::Ready;

            rows.replace(page(vec![document("doc_c", "c"), renamed], None));

            assert_eq!(rows.order.get_untracked(), ["doc_c", "doc_a"]);
            assert!(row(rows, "doc_b").is_none());
            let a = row(rows, "doc_a").expect("still listed");
            assert!(a.cells == Some(cells), "the same cells, not a new row");
            assert_eq!(cells.title.get_untracked(), "a, renamed");
            assert_eq!(cells.status.get_untracked(), DocumentStatus::Ready);
            assert!(a.seq < row(rows, "doc_c").expect("added").seq);
        });
    }

    #[test]
    fn a_row_has_cells_only_while_a_view_shows_it_and_they_follow_its_events() {
        Owner::new().with(|| {
            let rows = rows_b_then_a();
            let titled = |title: &str, embedded: u32| {
                let change = DocumentChange {
                    title: Some(title.to_owned()),
                    chunks: Some(4),
                    embedded_chunks: Some(embedded),
                    ..DocumentChange::default()
                };
                event(EventType::Updated, "doc_a", Some(change))
            };

            // Out of view: the values change, and there are no cells.
            rows.apply_event(&titled("a1", 1));
            let a = row(rows, "doc_a").expect("listed");
            assert_eq!((a.title.as_str(), a.progress.percent()), ("a1", 25));
            assert!(a.cells.is_none());

            // In view: cells made from the values, and the next event reaches them.
            let view = Owner::new();
            let (size, cells) = view.with(|| rows.show("doc_a")).expect("listed");
            assert_eq!(size, 10);
            assert_eq!(cells.title.get_untracked(), "a1");
            rows.apply_event(&titled("a2", 2));
            assert_eq!(cells.title.get_untracked(), "a2");
            assert_eq!(cells.progress.get_untracked().percent(), 50);
            assert!(row(rows, "doc_b").expect("listed").cells.is_none());

            // Out of view again: the view's cleanup lets the cells go; the values stay live.
            view.cleanup();
            assert!(row(rows, "doc_a").expect("listed").cells.is_none());
            rows.apply_event(&titled("a3", 3));
            assert_eq!(row(rows, "doc_a").expect("listed").title, "a3");
        });
    }

    #[test]
    fn events_of_another_project_change_nothing_and_a_partial_creation_asks_a_reload() {
        Owner::new().with(|| {
            let rows = DocumentRows::new("proj_2", vec![document("doc_a", "a")]);
            let created = DocumentChange::created(&document("doc_c", "c"));

            let other = rows.apply(&event(EventType::Created, "doc_c", Some(created)));
            let partial = DocumentRows::new("proj_1", Vec::new()).apply(&event(
                EventType::Created,
                "doc_d",
                Some(DocumentChange {
                    title: Some("d".to_owned()),
                    ..DocumentChange::default()
                }),
            ));

            assert_eq!(other, Applied::Followed);
            assert_eq!(rows.order.get_untracked(), ["doc_a"]);
            assert_eq!(partial, Applied::Reload);
        });
    }

    #[test]
    fn a_document_created_twice_keeps_one_row_with_the_newer_fields() {
        // With the `ssr` feature, signals live in the arena of an owner.
        Owner::new().with(|| {
            let rows = DocumentRows::new("proj_1", Vec::new());
            rows.insert(document("doc_a", "a"));
            let mut newer = document("doc_a", "a, renamed");
            newer.status = DocumentStatus::Ready;
            rows.insert(newer);

            assert_eq!(rows.order.get_untracked(), ["doc_a"]);
            let a = row(rows, "doc_a").expect("listed");
            assert_eq!(a.title, "a, renamed");
            assert_eq!(a.progress.percent(), 100);
        });
    }

    #[test]
    fn sorting_orders_the_whole_list_and_follows_live_changes() {
        Owner::new().with(|| {
            let mut big = document("doc_big", "Zebra");
            big.size_bytes = 5_000;
            let mut small = document("doc_small", "apple");
            small.size_bytes = 5;
            let rows = DocumentRows::new("proj_1", vec![big, small, document("doc_mid", "Mango")]);
            let sorted = |sort: SortOrder| {
                rows.sort.set(sort);
                rows.displayed()
            };

            assert_eq!(
                sorted(SortOrder::default()),
                ["doc_big", "doc_small", "doc_mid"]
            );
            let by_title = SortOrder::default().toggled(SortKey::Title);
            assert_eq!(
                by_title,
                SortOrder {
                    key: SortKey::Title,
                    descending: false
                }
            );
            assert_eq!(sorted(by_title), ["doc_small", "doc_mid", "doc_big"]);
            assert_eq!(
                sorted(by_title.toggled(SortKey::Title)),
                ["doc_big", "doc_mid", "doc_small"]
            );
            let by_size = by_title.toggled(SortKey::Size);
            assert!(by_size.descending, "sizes start largest first");
            assert_eq!(sorted(by_size), ["doc_big", "doc_mid", "doc_small"]);
            let oldest_first = SortOrder {
                key: SortKey::Added,
                descending: false,
            };
            assert_eq!(sorted(oldest_first), ["doc_mid", "doc_small", "doc_big"]);

            // Sorted by status, a document that becomes ready moves after the queued ones.
            let by_status = SortOrder::default().toggled(SortKey::Status);
            assert_eq!(sorted(by_status), ["doc_big", "doc_small", "doc_mid"]);
            rows.apply_event(&event(
                EventType::Updated,
                "doc_big",
                Some(DocumentChange {
                    status: Some(DocumentStatus::Ready),
                    ..DocumentChange::default()
                }),
            ));
            assert_eq!(rows.displayed(), ["doc_small", "doc_mid", "doc_big"]);
        });
    }

    /// A change of a document's title and status, each when given.
    fn titled_and_status(title: Option<&str>, status: Option<DocumentStatus>) -> DocumentChange {
        DocumentChange {
            title: title.map(str::to_owned),
            status,
            ..DocumentChange::default()
        }
    }

    #[test]
    fn moving_only_the_changed_rows_gives_the_order_of_a_whole_sort() {
        Owner::new().with(|| {
            let titles = [
                "delta", "alpha", "echo", "bravo", "charlie", "alpha", "foxtrot",
            ];
            let documents = titles
                .iter()
                .enumerate()
                .map(|(index, title)| document(&format!("doc_{index}"), title))
                .collect();
            let rows = DocumentRows::new("proj_1", documents);
            let change = |id: &str, change: DocumentChange| {
                rows.apply_event(&event(EventType::Updated, id, Some(change)));
            };
            for sort in [
                SortOrder::default().toggled(SortKey::Title),
                SortOrder::default()
                    .toggled(SortKey::Title)
                    .toggled(SortKey::Title),
                SortOrder::default().toggled(SortKey::Status),
            ] {
                rows.sort.set(sort);
                let (mut shown, _) = rows.displayed_after(None);
                let steps = [
                    ("doc_0", titled_and_status(Some("aardvark"), None)),
                    (
                        "doc_6",
                        titled_and_status(None, Some(DocumentStatus::Ready)),
                    ),
                    ("doc_1", titled_and_status(Some("zulu"), None)),
                    (
                        "doc_3",
                        titled_and_status(None, Some(DocumentStatus::Embedding)),
                    ),
                    (
                        "doc_5",
                        titled_and_status(Some("alpha"), Some(DocumentStatus::Failed)),
                    ),
                ];
                for (id, step) in steps {
                    change(id, step);
                    shown = rows.displayed_after(Some(shown)).0;
                    assert_eq!(shown, rows.displayed(), "{sort:?} after a change of {id}");
                }
            }
        });
    }

    #[test]
    fn only_the_sorted_column_has_an_aria_sort_direction() {
        let by_title = SortOrder {
            key: SortKey::Title,
            descending: false,
        };
        assert_eq!(by_title.aria_sort(SortKey::Title), "ascending");
        assert_eq!(by_title.aria_sort(SortKey::Size), "none");
        assert_eq!(
            by_title.toggled(SortKey::Title).aria_sort(SortKey::Title),
            "descending"
        );
    }

    #[test]
    fn sizes_and_times_read_naturally() {
        assert_eq!(format_size(12), "12 B");
        assert_eq!(format_size(2_345), "2.3 kB");
        assert_eq!(format_size(3_400_000), "3.4 MB");
        assert_eq!(clock_time("2026-11-27T10:11:12.000Z"), "10:11:12");
        assert_eq!(clock_time("soon"), "soon");
    }
}
