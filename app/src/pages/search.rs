//! The search page (`/search?q=…`): a project's chunks closest in meaning to a query, each
//! with its document's title (a link to the document), its text with the query's words
//! marked, and its score.
//!
//! The query stands: the results are a [`LiveList`] of the project's chunks, and when one is
//! embedded the page asks again (at most once per [`REPEAT_PAUSE`]). Results never move
//! under the reader's eyes: new answers wait behind a "Show" button (announced in a live
//! region), and only scores of the same hits change in place.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::ActiveProject;
use crate::counts::counted;
use crate::data_updates::{Applied, LiveList, LiveRows};
use crate::error::AppError;
use crate::page_data::{SearchPageData, search_page_resource};
use crate::pages::document::{DocumentRoute, document_address};
use crate::pages::fetch_ahead;
use crate::protocol::{ChunkStatus, EntityEvent, ProjectId};
use crate::resources::{SearchHit, SearchResults};
use crate::session::{SessionGate, query_value};

/// The shortest time between two repeats of the standing query.
const REPEAT_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

lazy_page!(
    /// The `/search` route.
    SearchRoute,
    search_page,
    SearchPage
);

/// `/search?q=<query>&project=<id>`.
#[component]
fn SearchPage() -> impl IntoView {
    let gate = SessionGate::new();
    if let Some(redirect) = gate.signed_out() {
        return redirect;
    }
    let query_map = use_query_map();
    let requested = ActiveProject::requested();
    let query = Memo::new(move |_| query_map.with(|query| query.get("q").unwrap_or_default()));
    let data = search_page_resource(requested, query);
    // Made before the first answer is in: a chunk embedded meanwhile asks again.
    let list = LiveList::new("chunk:*", REPEAT_PAUSE);
    // A new query is a new address (so Back returns to the last one), kept in this project.
    let field = NodeRef::<leptos::html::Input>::new();
    let navigate = use_navigate();
    let on_search = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(input) = field.get_untracked() else {
            return;
        };
        let mut address = format!("/search?q={}", query_value(input.value().trim()));
        if let Some(project) = requested.get_untracked() {
            address.push_str(&format!("&project={}", query_value(&project)));
        }
        navigate(&address, Default::default());
    };

    view! {
        <Title text="Search · docpulse" />
        <section class="page-head">
            <div>
                <h1>"Search"</h1>
                <p class="muted">"Finds the passages closest in meaning to your words."</p>
            </div>
        </section>
        <form class="card search-form" role="search" on:submit=on_search>
            <label for="search-query">"Search the project's documents"</label>
            <div class="search-row">
                <input
                    id="search-query"
                    type="search"
                    name="q"
                    required
                    maxlength="1000"
                    node_ref=field
                    prop:value=move || query.get()
                />
                <button type="submit" class="button">"Search"</button>
            </div>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Searching…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Results data list /> }.into_any(),
                    Err(AppError::Unauthorized) => gate.session_ended(),
                    Err(error) => {
                        view! {
                            <p class="card" role="alert">{format!("The search failed: {error}.")}</p>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
    .into_any()
}

/// The results of one query, kept standing.
#[component]
fn Results(data: SearchPageData, list: LiveList<StandingQuery>) -> impl IntoView {
    let SearchPageData { project, results } = data;
    let Some(results) = results else {
        return view! { <p class="muted">"Type a few words and press Search."</p> }.into_any();
    };
    let active = expect_context::<ActiveProject>();
    let project_id = project.id.parse::<ProjectId>().ok();
    Effect::new(move |_| {
        if project_id.is_some() && active.0.get_untracked() != project_id {
            active.0.set(project_id.clone());
        }
    });
    let query = results.query.clone();
    let standing = StandingQuery::new(&project.id, results);
    list.attach(standing);
    let StandingQuery { shown, waiting, .. } = standing;
    let words = StoredValue::new(query_words(&query));
    let new_count = move || {
        waiting.with(|waiting| {
            waiting.as_ref().map_or(0, |hits| {
                shown.with(|shown| {
                    hits.iter()
                        .filter(|hit| !shown.iter().any(|old| old.chunk_id == hit.chunk_id))
                        .count()
                })
            })
        })
    };
    view! {
        <div class="search-summary" aria-live="polite">
        <p class="muted" data-testid="search-summary">
            {move || match shown.with(Vec::len) {
                0 => format!("Nothing in {} matches yet; new documents join as they are embedded.", project.name),
                count => format!("{} in {}", counted(count as u64, "passage", "passages"), project.name),
            }}
        </p>
            <Show when=move || waiting.with(Option::is_some)>
                <button
                    type="button"
                    class="button secondary"
                    on:click=move |_| {
                        if let Some(hits) = waiting.get_untracked() {
                            shown.set(hits);
                            waiting.set(None);
                        }
                    }
                >
                    {move || match new_count() {
                        0 => "Show the new ranking".to_owned(),
                        count => format!("Show {}", counted(count as u64, "new result", "new results")),
                    }}
                </button>
            </Show>
        </div>
        <ol
            class="search-results"
            data-testid="search-results"
            {..fetch_ahead::<DocumentRoute>()}
        >
            <For
                each=move || shown.get()
                key=|hit| hit.chunk_id.clone()
                children=move |hit| view! { <Hit hit words=words.get_value() /> }
            />
        </ol>
    }
    .into_any()
}

/// One result.
#[component]
fn Hit(hit: SearchHit, words: Vec<String>) -> impl IntoView {
    let marked = highlight(&hit.text, &words)
        .into_iter()
        .map(|(part, matched)| {
            if matched {
                view! { <mark>{part}</mark> }.into_any()
            } else {
                part.into_any()
            }
        })
        .collect_view();
    view! {
        <li class="card search-hit" data-testid="search-hit">
            <div class="search-hit-head">
                <A href=document_address(&hit.document_id)>{hit.document_title}</A>
                <span class="muted score" title="Similarity to the query, from -1 to 1">
                    {format!("score {:.2}", hit.score)}
                </span>
            </div>
            <p class="search-text">{marked}</p>
        </li>
    }
}

/// The query's words worth marking: lowercased, at least two letters long.
fn query_words(query: &str) -> Vec<String> {
    query
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| word.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

/// `text` in parts, each marked when it is a word of `words` (ignoring case) or starts
/// with one (so "rockets" is marked for "rocket").
fn highlight(text: &str, words: &[String]) -> Vec<(String, bool)> {
    let mut parts: Vec<(String, bool)> = Vec::new();
    let mut push = |part: &str, matched: bool| match parts.last_mut() {
        Some((last, last_matched)) if *last_matched == matched && !matched => last.push_str(part),
        _ => parts.push((part.to_owned(), matched)),
    };
    let mut start = 0;
    for (index, character) in text.char_indices().chain([(text.len(), ' ')]) {
        if character.is_alphanumeric() {
            continue;
        }
        if start < index {
            let word = &text[start..index];
            let lower = word.to_lowercase();
            push(
                word,
                words.iter().any(|query| lower.starts_with(query.as_str())),
            );
        }
        if index < text.len() {
            push(&text[index..index + character.len_utf8()], false);
        }
        start = index + character.len_utf8();
    }
    parts
}

/// The hits of a query as they stand: those shown, and a newer answer waiting for the
/// reader.
#[derive(Clone, Copy)]
struct StandingQuery {
    /// The project and the query, to ask again.
    target: StoredValue<(String, String)>,
    shown: RwSignal<Vec<SearchHit>>,
    waiting: RwSignal<Option<Vec<SearchHit>>>,
}

impl StandingQuery {
    fn new(project: &str, results: SearchResults) -> Self {
        Self {
            target: StoredValue::new((project.to_owned(), results.query)),
            shown: RwSignal::new(results.hits),
            waiting: RwSignal::new(None),
        }
    }
}

impl LiveRows for StandingQuery {
    type Snapshot = SearchResults;

    /// A chunk of the project embedded may answer the query: ask again.
    fn apply(&self, event: &EntityEvent) -> Applied {
        let embedded = event
            .chunk()
            .is_some_and(|change| change.status == Some(ChunkStatus::Embedded));
        let ours = self
            .target
            .with_value(|(project, _)| event.project_id.as_str() == project);
        if embedded && ours {
            Applied::Reload
        } else {
            Applied::Followed
        }
    }

    /// The same hits in the same order update in place; anything else waits.
    fn replace(&self, results: SearchResults) {
        let hits = results.hits;
        let same = self.shown.with_untracked(|shown| {
            shown.len() == hits.len()
                && shown
                    .iter()
                    .zip(&hits)
                    .all(|(old, new)| old.chunk_id == new.chunk_id)
        });
        if same {
            self.shown.set(hits);
            self.waiting.set(None);
        } else {
            self.waiting.set(Some(hits));
        }
    }

    #[cfg(feature = "hydrate")]
    async fn reload(&self) -> Result<SearchResults, AppError> {
        let (project, query) = self.target.get_value();
        crate::rest::search(&project, &query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_words_are_marked_in_the_text_whatever_their_case() {
        let words = query_words("Rocket engines, to the Moon!");
        assert_eq!(words, ["rocket", "engines", "to", "the", "moon"]);

        let parts = highlight(
            "Saturn V rockets reached the moon.",
            &query_words("rocket moon"),
        );

        assert_eq!(
            parts,
            [
                ("Saturn V ".to_owned(), false),
                ("rockets".to_owned(), true),
                (" reached the ".to_owned(), false),
                ("moon".to_owned(), true),
                (".".to_owned(), false),
            ]
        );
        let text: String = parts.iter().map(|(part, _)| part.as_str()).collect();
        assert_eq!(text, "Saturn V rockets reached the moon.");
    }

    #[test]
    fn text_without_the_words_is_one_unmarked_part() {
        assert_eq!(
            highlight("Knead the dough, é.", &query_words("rocket")),
            [("Knead the dough, é.".to_owned(), false)]
        );
        assert!(highlight("", &query_words("rocket")).is_empty());
    }
}
