//! The embedding job: split the document into chunks, embed each chunk, record progress.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::documents::ChunkRecorded;
use crate::documents::ClaimedJob;
use crate::documents::chunking::{DEFAULT_CHUNK_CHARS, split_into_chunks};
use crate::storage::{chunks, documents};

use super::embedder::{Embedder, Embedding};
use super::{JobOutcome, MAX_CHUNK_ATTEMPTS, Workers};

/// Pause before retrying a chunk whose embedding failed, times the attempt number.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Runs an embedding job from wherever a previous run left it.
pub(super) async fn run(
    workers: &Workers,
    job: &ClaimedJob,
    lease: Duration,
    shutdown: &CancellationToken,
) -> anyhow::Result<JobOutcome> {
    let Some(content) = documents::document_content(&workers.pool, &job.document_id)
        .await
        .context("cannot read the document")?
    else {
        return Ok(JobOutcome::Cancelled);
    };
    let splitting =
        tokio::task::spawn_blocking(move || split_into_chunks(&content, DEFAULT_CHUNK_CHARS));
    let Some(texts) = workers.renewing_lease(job, lease, splitting).await? else {
        return Ok(JobOutcome::Cancelled);
    };
    let texts = texts.context("splitting the document panicked")?;
    if texts.is_empty() {
        return Ok(JobOutcome::Failed(
            "the document has no text to embed".to_owned(),
        ));
    }
    if !workers
        .progress
        .record_split(job, &texts, lease)
        .await
        .context("cannot store the chunks")?
    {
        return Ok(JobOutcome::Cancelled);
    }

    let pending = chunks::pending_chunks(&workers.pool, &job.document_id)
        .await
        .context("cannot read the chunks")?;
    for chunk in pending {
        if !workers.embed_delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(workers.embed_delay) => {}
                () = shutdown.cancelled() => return Ok(JobOutcome::Interrupted),
            }
        } else if shutdown.is_cancelled() {
            return Ok(JobOutcome::Interrupted);
        }
        let embedding = match embed_with_retries(&workers.embedder, &chunk.text).await {
            Ok(embedding) => embedding,
            Err(error) => {
                return Ok(JobOutcome::Failed(format!(
                    "chunk {} could not be embedded after {MAX_CHUNK_ATTEMPTS} attempts: {error}",
                    chunk.position + 1
                )));
            }
        };
        let recorded = workers
            .progress
            .record_embedding(job, &chunk.id, chunk.position, &embedding.to_bytes(), lease)
            .await
            .context("cannot store an embedding")?;
        if recorded == ChunkRecorded::Cancelled {
            return Ok(JobOutcome::Cancelled);
        }
    }

    if workers
        .progress
        .finish_embedding(job)
        .await
        .context("cannot finish the embedding job")?
    {
        Ok(JobOutcome::Done)
    } else {
        Ok(JobOutcome::Cancelled)
    }
}

/// Embeds `text` off the async threads, trying up to [`MAX_CHUNK_ATTEMPTS`] times.
///
/// # Errors
///
/// The last attempt's error, in words.
pub(super) async fn embed_with_retries(
    embedder: &Arc<dyn Embedder>,
    text: &str,
) -> Result<Embedding, String> {
    let mut attempt = 1;
    loop {
        let embedder = embedder.clone();
        let text = text.to_owned();
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || span.in_scope(|| embedder.embed(&text)))
            .await
            .map_err(|_| "the embedder panicked".to_owned())
            .and_then(|result| result.map_err(|error| error.to_string()));
        match result {
            Ok(embedding) => return Ok(embedding),
            Err(error) if attempt >= MAX_CHUNK_ATTEMPTS => return Err(error),
            Err(error) => {
                tracing::warn!(attempt, %error, "embedding a chunk failed; retrying");
                tokio::time::sleep(RETRY_PAUSE * attempt).await;
                attempt += 1;
            }
        }
    }
}
