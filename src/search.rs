//! Semantic search: ranks a project's embedded chunks by cosine similarity to the
//! embedding of a query, so the stored embeddings serve a purpose.

use std::sync::Arc;

use crate::storage::Pool;
use anyhow::Context;

use app::protocol::ProjectId;
use app::resources::SearchHit;

use crate::error::ApiError;
use crate::storage::chunks;
use crate::workers::embedder::{EmbedError, Embedder, Embedding};

/// Hits returned when the request does not say.
pub const DEFAULT_HITS: usize = 10;
/// Most hits one search returns.
pub const MAX_HITS: usize = 50;
/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;

/// The `limit` chunks of `project` most similar to `query`, best first.
///
/// # Errors
///
/// [`ApiError::InvalidRequest`] when the query has no words; internal errors when the
/// database fails.
pub async fn rank_chunks(
    pool: &Pool,
    embedder: Arc<dyn Embedder>,
    project: &ProjectId,
    query: &str,
    limit: usize,
) -> Result<Vec<SearchHit>, ApiError> {
    let query_text = query.to_owned();
    let query_embedding = tokio::task::spawn_blocking(move || embedder.embed(&query_text))
        .await
        .context("embedding the query panicked")?
        .map_err(|error| match error {
            EmbedError::NoFeatures => {
                ApiError::InvalidRequest("the query has no words to search for".to_owned())
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        })?;
    let candidates = chunks::embedded_chunks(pool, project.as_str()).await?;
    let ranked = tokio::task::spawn_blocking(move || rank(&query_embedding, candidates, limit))
        .await
        .context("ranking panicked")?;
    Ok(ranked)
}

/// Scores every candidate and keeps the best `limit`; a candidate whose stored bytes are
/// malformed is skipped.
fn rank(query: &Embedding, candidates: Vec<chunks::EmbeddedChunk>, limit: usize) -> Vec<SearchHit> {
    let mut hits: Vec<SearchHit> = candidates
        .into_iter()
        .filter_map(|chunk| {
            let embedding = Embedding::from_bytes(&chunk.embedding).ok()?;
            Some(SearchHit {
                score: query.cosine(&embedding),
                chunk_id: chunk.id,
                document_id: chunk.document_id,
                document_title: chunk.document_title,
                text: chunk.text,
            })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.chunk_id.cmp(&b.chunk_id))
    });
    hits.truncate(limit);
    hits
}
