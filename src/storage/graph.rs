//! Graph objects: what extraction derived from a document.

use app::resources::{GraphEntity, GraphRelation, MAX_GRAPH_ITEMS};

use super::{DbConnection, Pool};

/// The most graph rows one document's read loads (extraction's limits keep far below).
const MAX_GRAPH_ROWS: i64 = 20_000;

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

/// The entities of `document_id`, most mentioned first, and the relations between them,
/// strongest first; at most [`MAX_GRAPH_ITEMS`] of each.
///
/// # Errors
///
/// The database fails.
pub async fn document_graph(
    pool: &Pool,
    document_id: &str,
) -> sqlx::Result<(Vec<GraphEntity>, Vec<GraphRelation>)> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT kind, name, properties FROM graph_objects WHERE document_id = $1 LIMIT $2",
    )
    .bind(document_id)
    .bind(MAX_GRAPH_ROWS)
    .fetch_all(pool)
    .await?;
    let mut entities = Vec::new();
    let mut relations = Vec::new();
    for (kind, name, properties) in rows {
        let properties: serde_json::Value = serde_json::from_str(&properties).unwrap_or_default();
        let number = |key: &str| properties[key].as_u64().unwrap_or(0);
        let text = |key: &str| properties[key].as_str().unwrap_or_default().to_owned();
        if kind == "entity" {
            entities.push(GraphEntity {
                name,
                mentions: number("mentions"),
            });
        } else {
            relations.push(GraphRelation {
                source: text("source"),
                target: text("target"),
                weight: number("weight"),
            });
        }
    }
    entities.sort_by(|a, b| {
        b.mentions
            .cmp(&a.mentions)
            .then_with(|| a.name.cmp(&b.name))
    });
    entities.truncate(MAX_GRAPH_ITEMS);
    relations.sort_by(|a, b| {
        b.weight
            .cmp(&a.weight)
            .then_with(|| (&a.source, &a.target).cmp(&(&b.source, &b.target)))
    });
    relations.truncate(MAX_GRAPH_ITEMS);
    Ok((entities, relations))
}
