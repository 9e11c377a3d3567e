//! `GET /api/search?q=...&limit=...`: the project's chunks closest in meaning to a query.

use std::sync::Arc;

use crate::storage::Pool;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use app::resources::SearchResults;

use crate::auth::ProjectAccess;
use crate::error::ApiError;
use crate::search::{self, DEFAULT_HITS, MAX_HITS, MAX_QUERY_CHARS};
use crate::workers::embedder::Embedder;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
}

/// Ranks the project's embedded chunks by cosine similarity to the query's embedding.
pub async fn search_chunks(
    access: ProjectAccess,
    State(pool): State<Pool>,
    State(embedder): State<Arc<dyn Embedder>>,
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
    let hits = search::rank_chunks(&pool, embedder, &access.project, &text, limit).await?;
    Ok(Json(SearchResults { query: text, hits }))
}
