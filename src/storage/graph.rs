//! Graph objects: what extraction derived from a document.

use super::DbConnection;

/// A graph object to store.
#[derive(Debug, Clone)]
pub struct NewGraphObject {
    /// `entity` or `relation`.
    pub kind: &'static str,
    /// The entity's name, or `source → target` for a relation.
    pub name: String,
    /// Its other properties, as a JSON object.
    pub properties: serde_json::Value,
}

/// Replaces what the job stored before (a resumed job starts over) with `objects`, and
/// returns their ids in order.
///
/// # Errors
///
/// The database fails.
pub async fn replace_job_objects(
    connection: &mut DbConnection,
    project_id: &str,
    document_id: &str,
    job_id: &str,
    objects: &[NewGraphObject],
) -> sqlx::Result<Vec<String>> {
    sqlx::query("DELETE FROM graph_objects WHERE job_id = $1")
        .bind(job_id)
        .execute(&mut *connection)
        .await?;
    let now = super::now();
    let mut ids = Vec::with_capacity(objects.len());
    for object in objects {
        let id = super::new_id("obj");
        sqlx::query(
            "INSERT INTO graph_objects \
                 (id, project_id, document_id, job_id, kind, name, properties, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(project_id)
        .bind(document_id)
        .bind(job_id)
        .bind(object.kind)
        .bind(&object.name)
        .bind(object.properties.to_string())
        .bind(&now)
        .execute(&mut *connection)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}
