//! `GET /api/search?q=...&limit=...`: the project's chunks closest in meaning to a query.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use app::resources::SearchResults;

use crate::auth::ProjectAccess;
use crate::error::ApiError;
use crate::search::Search;

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
    let results = search
        .search(&access.project, query.q.unwrap_or_default(), query.limit)
        .await?;
    Ok(Json(results))
}
