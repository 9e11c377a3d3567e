//! Documents: their text, title and processing state.

use super::{DbConnection, Pool};

use app::resources::{Document, DocumentDetail, DocumentStatus};

/// The columns of a [`Document`], in the order [`DocumentRow`] reads them.
const DOCUMENT_COLUMNS: &str = "id, project_id, title, status, chunks, embedded_chunks, error, \
     octet_length(content) AS size_bytes, created_at, updated_at";

/// A `documents` row without the text.
#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: String,
    project_id: String,
    title: String,
    status: String,
    chunks: i64,
    embedded_chunks: i64,
    error: Option<String>,
    size_bytes: i64,
    created_at: String,
    updated_at: String,
}

/// A `documents` row with the text.
#[derive(sqlx::FromRow)]
struct DetailRow {
    #[sqlx(flatten)]
    document: DocumentRow,
    content: String,
}

impl DocumentRow {
    fn into_document(self) -> Document {
        Document {
            id: self.id,
            project_id: self.project_id,
            title: self.title,
            // The CHECK constraint admits only the four names.
            status: DocumentStatus::from_name(&self.status).unwrap_or(DocumentStatus::Failed),
            chunks: count(self.chunks),
            embedded_chunks: count(self.embedded_chunks),
            error: self.error,
            size_bytes: u64::try_from(self.size_bytes).unwrap_or(0),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Inserts a queued document.
///
/// # Errors
///
/// The database fails (for instance, the project does not exist).
pub async fn insert_document(
    connection: &mut DbConnection,
    id: &str,
    project_id: &str,
    title: &str,
    content: &str,
) -> sqlx::Result<Document> {
    let now = super::now();
    let row: DocumentRow = sqlx::query_as(&format!(
        "INSERT INTO documents (id, project_id, title, content, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $5) RETURNING {DOCUMENT_COLUMNS}"
    ))
    .bind(id)
    .bind(project_id)
    .bind(title)
    .bind(content)
    .bind(&now)
    .fetch_one(connection)
    .await?;
    Ok(row.into_document())
}

/// Where a page of the documents list ends: the last row's place in the list's order
/// (`created_at`, then the insertion order), written into the answer as an opaque `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    created_at: String,
    position: i64,
}

impl ListCursor {
    /// Longest `created_at` a cursor may carry: a timestamp is about 30 bytes.
    const MAX_TIMESTAMP: usize = 64;

    /// The cursor as the answer's `next` gives it.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.position, self.created_at)
    }

    /// A cursor as a client sends it back; `None` for anything [`ListCursor::encode`] does
    /// not write.
    pub fn parse(text: &str) -> Option<Self> {
        let (position, created_at) = text.split_once('_')?;
        let valid_timestamp = !created_at.is_empty()
            && created_at.len() <= Self::MAX_TIMESTAMP
            && created_at
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-:.+".contains(&byte));
        if !valid_timestamp {
            return None;
        }
        Some(Self {
            created_at: created_at.to_owned(),
            position: position.parse().ok()?,
        })
    }
}

/// A `documents` row with its place in the list's order.
#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    document: DocumentRow,
    list_position: i64,
}

/// The project's documents, newest first, from after `after` (or from the newest): all of
/// them, or at most `limit` with the cursor of the next page when more follow. A document
/// created or deleted between two pages moves no other across the cut: pages are cut at a
/// row's place, not at a count.
///
/// # Errors
///
/// The database fails.
pub async fn list_documents(
    pool: &Pool,
    project_id: &str,
    limit: Option<usize>,
    after: Option<&ListCursor>,
) -> sqlx::Result<(Vec<Document>, Option<ListCursor>)> {
    // One more than asked says whether another page follows.
    let fetch = limit.map_or(i64::MAX, |limit| {
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
    });
    let select = format!("SELECT {DOCUMENT_COLUMNS}, rowid AS list_position FROM documents");
    let order = "ORDER BY created_at DESC, rowid DESC LIMIT";
    let mut rows: Vec<ListedRow> = match after {
        None => {
            sqlx::query_as(&format!("{select} WHERE project_id = $1 {order} $2"))
                .bind(project_id)
                .bind(fetch)
                .fetch_all(pool)
                .await?
        }
        Some(cursor) => {
            sqlx::query_as(&format!(
                "{select} WHERE project_id = $1 AND (created_at < $2 \
                 OR (created_at = $2 AND rowid < $3)) {order} $4"
            ))
            .bind(project_id)
            .bind(&cursor.created_at)
            .bind(cursor.position)
            .bind(fetch)
            .fetch_all(pool)
            .await?
        }
    };
    let next = match limit {
        Some(limit) if rows.len() > limit => {
            rows.truncate(limit);
            rows.last().map(|last| ListCursor {
                created_at: last.document.created_at.clone(),
                position: last.list_position,
            })
        }
        _ => None,
    };
    let documents = rows
        .into_iter()
        .map(|row| row.document.into_document())
        .collect();
    Ok((documents, next))
}

/// How many documents the project has (an index count: `documents_by_project`).
///
/// # Errors
///
/// The database fails.
pub async fn count_documents(pool: &Pool, project_id: &str) -> sqlx::Result<u64> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE project_id = $1")
        .bind(project_id)
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// One of the project's documents; `None` when it does not exist in that project.
///
/// # Errors
///
/// The database fails.
pub async fn find_document(
    pool: &Pool,
    project_id: &str,
    id: &str,
) -> sqlx::Result<Option<Document>> {
    let row: Option<DocumentRow> = sqlx::query_as(&format!(
        "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE project_id = $1 AND id = $2"
    ))
    .bind(project_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(DocumentRow::into_document))
}

/// The title of document `id`, if it exists.
///
/// # Errors
///
/// The database fails.
pub async fn title_of(connection: &mut DbConnection, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT title FROM documents WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
}

/// The project of document `id`, if it exists.
///
/// # Errors
///
/// The database fails.
pub async fn project_of(pool: &Pool, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT project_id FROM documents WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// One of the project's documents with its text.
///
/// # Errors
///
/// The database fails.
pub async fn find_document_detail(
    pool: &Pool,
    project_id: &str,
    id: &str,
) -> sqlx::Result<Option<DocumentDetail>> {
    let row: Option<DetailRow> = sqlx::query_as(&format!(
        "SELECT {DOCUMENT_COLUMNS}, content FROM documents WHERE project_id = $1 AND id = $2"
    ))
    .bind(project_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| DocumentDetail {
        document: row.document.into_document(),
        content: row.content,
    }))
}

/// The text of a document, whatever its project; `None` once it is deleted.
///
/// # Errors
///
/// The database fails.
pub async fn document_content(pool: &Pool, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT content FROM documents WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Renames one of the project's documents; `None` when it does not exist there.
///
/// # Errors
///
/// The database fails.
pub async fn rename_document(
    connection: &mut DbConnection,
    project_id: &str,
    id: &str,
    title: &str,
) -> sqlx::Result<Option<Document>> {
    let row: Option<DocumentRow> = sqlx::query_as(&format!(
        "UPDATE documents SET title = $3, updated_at = $4 WHERE project_id = $1 AND id = $2 \
         RETURNING {DOCUMENT_COLUMNS}"
    ))
    .bind(project_id)
    .bind(id)
    .bind(title)
    .bind(super::now())
    .fetch_optional(connection)
    .await?;
    Ok(row.map(DocumentRow::into_document))
}

/// Deletes one of the project's documents with its chunks, jobs and graph objects;
/// `false` when it does not exist there.
///
/// The rows go in the order a worker's transactions lock them (its job, then its chunks
/// or graph objects, then the document), not by the document's cascade, which would lock
/// the document first: on PostgreSQL, a delete beside a running job would otherwise
/// deadlock with it. The first statement writes, so that SQLite takes its write lock (and
/// waits for it) at once: a transaction that read first could not upgrade once another
/// connection had written.
///
/// Runs in the caller's transaction, which should begin with it.
///
/// # Errors
///
/// The database fails.
pub async fn delete_document(
    connection: &mut DbConnection,
    project_id: &str,
    id: &str,
) -> sqlx::Result<bool> {
    for table in ["jobs", "graph_objects", "chunks"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE document_id = $1 AND project_id = $2"
        ))
        .bind(id)
        .bind(project_id)
        .execute(&mut *connection)
        .await?;
    }
    let result = sqlx::query("DELETE FROM documents WHERE project_id = $1 AND id = $2")
        .bind(project_id)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that the document was split into `chunks` chunks and is being embedded;
/// `None` when the document is gone.
///
/// # Errors
///
/// The database fails.
pub async fn start_embedding(
    connection: &mut DbConnection,
    id: &str,
    chunks: u32,
) -> sqlx::Result<Option<Document>> {
    update_returning(
        connection,
        "status = 'embedding', chunks = $2, embedded_chunks = 0, error = NULL",
        id,
        Some(i64::from(chunks)),
    )
    .await
}

/// Counts one more embedded chunk; `None` when the document is gone.
///
/// # Errors
///
/// The database fails.
pub async fn count_embedded_chunk(
    connection: &mut DbConnection,
    id: &str,
) -> sqlx::Result<Option<Document>> {
    update_returning(
        connection,
        "embedded_chunks = embedded_chunks + 1",
        id,
        None::<i64>,
    )
    .await
}

/// Marks the document ready; `None` when it is gone.
///
/// # Errors
///
/// The database fails.
pub async fn mark_ready(connection: &mut DbConnection, id: &str) -> sqlx::Result<Option<Document>> {
    update_returning(
        connection,
        "status = 'ready', error = NULL",
        id,
        None::<i64>,
    )
    .await
}

/// Marks the document failed with `reason`; `None` when it is gone.
///
/// # Errors
///
/// The database fails.
pub async fn mark_failed(
    connection: &mut DbConnection,
    id: &str,
    reason: &str,
) -> sqlx::Result<Option<Document>> {
    update_returning(
        connection,
        "status = 'failed', error = $2",
        id,
        Some(reason.to_owned()),
    )
    .await
}

/// Runs `UPDATE documents SET <assignments>, updated_at = now WHERE id = $1` and returns the
/// row; `value` binds `$2` when the assignments use it.
async fn update_returning<V>(
    connection: &mut DbConnection,
    assignments: &str,
    id: &str,
    value: Option<V>,
) -> sqlx::Result<Option<Document>>
where
    V: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
{
    let sql = format!(
        "UPDATE documents SET {assignments}, updated_at = $3 WHERE id = $1 \
         RETURNING {DOCUMENT_COLUMNS}"
    );
    let row: Option<DocumentRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(value)
        .bind(super::now())
        .fetch_optional(connection)
        .await?;
    Ok(row.map(DocumentRow::into_document))
}
