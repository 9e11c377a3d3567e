//! [`Search`]: ranks a project's embedded chunks by cosine similarity to the embedding of a
//! query, so the stored embeddings serve a purpose.
//!
//! **Invariant:** a search holds at most its `limit` best candidates while it scans the
//! project's embeddings row by row, reads the text of those only, and at most
//! `SEARCH_CONCURRENCY` searches scan at once (`SEARCH_QUEUE` more wait; beyond that,
//! `503 overloaded`): memory per search is bounded whatever the project's size.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use anyhow::Context;
use futures_util::TryStreamExt;

use app::protocol::ProjectId;
use app::resources::{SearchHit, SearchResults};

use crate::config::SearchConfig;
use crate::error::ApiError;
use crate::limits::Gate;
use crate::storage::{Pool, chunks};
use crate::workers::embedder::{EmbedError, Embedder, Embedding};

/// Hits returned when the request does not say.
pub const DEFAULT_HITS: usize = 10;
/// Most hits one search returns.
pub const MAX_HITS: usize = 50;
/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;

/// Searches the chunks of a project; cheap to clone.
#[derive(Clone)]
pub struct Search {
    pool: Pool,
    embedder: Arc<dyn Embedder>,
    gate: Gate,
}

impl Search {
    /// Searches over `pool`'s chunks, embedding queries with `embedder`, within `config`'s
    /// concurrency.
    pub fn new(pool: Pool, embedder: Arc<dyn Embedder>, config: &SearchConfig) -> Self {
        Self {
            pool,
            embedder,
            gate: Gate::new(config.concurrency, config.queue, "searches"),
        }
    }

    /// A search as `GET /api/search` takes it: `query` must have 1 to [`MAX_QUERY_CHARS`]
    /// characters; `limit` defaults to [`DEFAULT_HITS`] and is kept within 1 to [`MAX_HITS`].
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidRequest`] for a blank or overlong query, and those of
    /// [`Search::rank_chunks`].
    pub async fn search(
        &self,
        project: &ProjectId,
        query: String,
        limit: Option<usize>,
    ) -> Result<SearchResults, ApiError> {
        if query.trim().is_empty() {
            return Err(ApiError::InvalidRequest(
                "the query parameter q is required".to_owned(),
            ));
        }
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "the query is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let limit = limit.unwrap_or(DEFAULT_HITS).clamp(1, MAX_HITS);
        let hits = self.rank_chunks(project, &query, limit).await?;
        Ok(SearchResults { query, hits })
    }

    /// The `limit` chunks of `project` most similar to `query`, best first.
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidRequest`] when the query has no words; [`ApiError::Overloaded`]
    /// when too many searches wait; internal errors when the database fails.
    pub async fn rank_chunks(
        &self,
        project: &ProjectId,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchHit>, ApiError> {
        let _pass = self.gate.enter().await?;
        let query_text = query.to_owned();
        let embedder = self.embedder.clone();
        let query_embedding = tokio::task::spawn_blocking(move || embedder.embed(&query_text))
            .await
            .context("embedding the query panicked")?
            .map_err(|error| match error {
                EmbedError::NoFeatures => {
                    ApiError::InvalidRequest("the query has no words to search for".to_owned())
                }
                other => ApiError::Internal(anyhow::Error::new(other)),
            })?;

        let mut best = BestChunks::new(limit);
        let mut rows = chunks::embeddings(&self.pool, project.as_str());
        while let Some((id, bytes)) = rows.try_next().await? {
            // A chunk whose stored bytes are malformed is skipped.
            if let Ok(embedding) = Embedding::from_bytes(&bytes) {
                best.offer(query_embedding.cosine(&embedding), id);
            }
        }
        drop(rows);

        let ranked = best.into_sorted();
        let ids: Vec<String> = ranked.iter().map(|(_, id)| id.clone()).collect();
        let mut shown: HashMap<String, chunks::ChunkHit> =
            chunks::chunk_hits(&self.pool, project.as_str(), &ids)
                .await?
                .into_iter()
                .map(|hit| (hit.id.clone(), hit))
                .collect();
        // A chunk deleted since the scan is left out.
        Ok(ranked
            .into_iter()
            .filter_map(|(score, id)| {
                let hit = shown.remove(&id)?;
                Some(SearchHit {
                    score,
                    chunk_id: hit.id,
                    document_id: hit.document_id,
                    document_title: hit.document_title,
                    text: hit.text,
                })
            })
            .collect())
    }
}

/// A candidate: its score, then its id (the smaller id wins a tie).
#[derive(Debug, PartialEq)]
struct Candidate {
    score: f32,
    id: Reverse<String>,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// The best `limit` candidates seen so far: a min-heap whose top is the worst one kept.
struct BestChunks {
    heap: BinaryHeap<Reverse<Candidate>>,
    limit: usize,
}

impl BestChunks {
    fn new(limit: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(limit + 1),
            limit,
        }
    }

    fn offer(&mut self, score: f32, id: String) {
        let candidate = Candidate {
            score,
            id: Reverse(id),
        };
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(candidate));
        } else if self
            .heap
            .peek()
            .is_some_and(|Reverse(worst)| candidate > *worst)
        {
            self.heap.pop();
            self.heap.push(Reverse(candidate));
        }
    }

    /// The kept candidates, best first.
    fn into_sorted(self) -> Vec<(f32, String)> {
        let mut kept: Vec<Candidate> = self.heap.into_iter().map(|Reverse(c)| c).collect();
        kept.sort_by(|a, b| b.cmp(a));
        kept.into_iter()
            .map(|candidate| (candidate.score, candidate.id.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_best_are_kept_best_first_with_ties_by_id() {
        let mut best = BestChunks::new(3);
        for (score, id) in [
            (0.1, "chk_a"),
            (0.9, "chk_b"),
            (0.5, "chk_c"),
            (0.5, "chk_0"),
            (0.2, "chk_d"),
            (0.95, "chk_e"),
        ] {
            best.offer(score, id.to_owned());
        }
        assert_eq!(best.heap.len(), 3, "never more than the limit");
        assert_eq!(
            best.into_sorted(),
            [
                (0.95, "chk_e".to_owned()),
                (0.9, "chk_b".to_owned()),
                (0.5, "chk_0".to_owned()),
            ]
        );
    }
}
