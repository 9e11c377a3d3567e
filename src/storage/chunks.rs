//! Chunks: a document's text in order, and each chunk's embedding once computed.
//!
//! **Invariant:** a chunk's embedding is written at most once ([`store_embedding`] only
//! fills an empty one), so a resumed job never embeds a chunk twice.

use futures_util::stream::BoxStream;

use app::protocol::ChunkStatus;
use app::resources::{CHUNK_EXCERPT_CHARS, ChunkSummary};

use super::{DbConnection, Pool};

/// A chunk still waiting for its embedding.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingChunk {
    /// `chk_` and 16 hex digits.
    pub id: String,
    /// Its place in the document, from 0.
    pub position: i64,
    /// Its text.
    pub text: String,
}

/// What a search result shows of a chunk.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChunkHit {
    /// The chunk.
    pub id: String,
    /// Its document.
    pub document_id: String,
    /// The document's title.
    pub document_title: String,
    /// Its text.
    pub text: String,
}

/// Inserts a document's chunks in order and returns their ids.
///
/// # Errors
///
/// The database fails.
pub async fn insert_chunks(
    connection: &mut DbConnection,
    document_id: &str,
    project_id: &str,
    texts: &[String],
) -> sqlx::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(texts.len());
    for (position, text) in texts.iter().enumerate() {
        let id = super::new_id("chk");
        sqlx::query(
            "INSERT INTO chunks (id, document_id, project_id, position, text) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(document_id)
        .bind(project_id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(text)
        .execute(&mut *connection)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// How many chunks the document has (0 before it is split).
///
/// # Errors
///
/// The database fails.
pub async fn count_chunks(pool: &Pool, document_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM chunks WHERE document_id = $1")
        .bind(document_id)
        .fetch_one(pool)
        .await
}

/// The document's chunks in order, each with the start of its text (a document's size
/// limit bounds how many there are).
///
/// # Errors
///
/// The database fails.
pub async fn document_chunks(pool: &Pool, document_id: &str) -> sqlx::Result<Vec<ChunkSummary>> {
    let rows: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT id, position, SUBSTR(text, 1, {CHUNK_EXCERPT_CHARS}), embedded_at FROM chunks \
         WHERE document_id = $1 ORDER BY position"
    ))
    .bind(document_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, position, excerpt, embedded_at)| ChunkSummary {
            id,
            position: u32::try_from(position).unwrap_or(u32::MAX),
            status: if embedded_at.is_some() {
                ChunkStatus::Embedded
            } else {
                ChunkStatus::Pending
            },
            excerpt,
        })
        .collect())
}

/// The document's chunks without an embedding, in order.
///
/// # Errors
///
/// The database fails.
pub async fn pending_chunks(pool: &Pool, document_id: &str) -> sqlx::Result<Vec<PendingChunk>> {
    sqlx::query_as(
        "SELECT id, position, text FROM chunks WHERE document_id = $1 AND embedding IS NULL \
         ORDER BY position",
    )
    .bind(document_id)
    .fetch_all(pool)
    .await
}

/// Stores a chunk's embedding; `false` when the chunk is gone or already has one.
///
/// # Errors
///
/// The database fails.
pub async fn store_embedding(
    connection: &mut DbConnection,
    chunk_id: &str,
    embedding: &[u8],
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE chunks SET embedding = $2, embedded_at = $3 WHERE id = $1 AND embedding IS NULL",
    )
    .bind(chunk_id)
    .bind(embedding)
    .bind(super::now())
    .execute(connection)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The id and stored embedding of every embedded chunk of the project, one row at a time,
/// for a search to score without holding them all.
pub fn embeddings<'a>(
    pool: &'a Pool,
    project_id: &'a str,
) -> BoxStream<'a, sqlx::Result<(String, Vec<u8>)>> {
    sqlx::query_as(
        "SELECT id, embedding FROM chunks WHERE project_id = $1 AND embedding IS NOT NULL",
    )
    .bind(project_id)
    .fetch(pool)
}

/// What a search result shows of the project's chunks `ids` (at most a search's hits).
///
/// # Errors
///
/// The database fails.
pub async fn chunk_hits(
    pool: &Pool,
    project_id: &str,
    ids: &[String],
) -> sqlx::Result<Vec<ChunkHit>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..ids.len())
        .map(|index| format!("${}", index + 2))
        .collect();
    let sql = format!(
        "SELECT c.id, c.document_id, d.title AS document_title, c.text \
         FROM chunks c JOIN documents d ON d.id = c.document_id \
         WHERE c.project_id = $1 AND c.id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(&sql).bind(project_id);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(pool).await
}
