//! `GET /api/search?q=...&limit=...`: the project's chunks closest in meaning to a query.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use app::resources::SearchResults;

use crate::auth::ProjectAccess;
use crate::error::ApiError;
use crate::search::{DEFAULT_HITS, MAX_HITS, MAX_QUERY_CHARS, Search};

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
}

/// Ranks the project's embedded chunks by cosine similarity to the query's embedding.
pub async fn search_chunks(
    access: ProjectAccess,
    State(search): State<Search>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let text = query.q.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::InvalidRequest(
            "the query parameter q is required".to_owned(),
        ));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::InvalidRequest(format!(
            "the query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_HITS).clamp(1, MAX_HITS);
    let hits = search.rank_chunks(&access.project, &text, limit).await?;
    Ok(Json(SearchResults { query: text, hits }))
}
