//! Projects and the users who are members of them.

use super::Pool;

use std::collections::HashMap;

use app::resources::{
    DocumentCounts, DocumentStatus, MAX_OVERVIEW_PROJECTS, Project, ProjectOverview,
    ProjectsOverview,
};

/// A user as stored, with the hash the login checks.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// `user_` and 16 hex digits.
    pub id: String,
    /// As given at creation; compared without regard to case.
    pub email: String,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// Creates a project; `Ok(false)` when one with that id exists already.
///
/// # Errors
///
/// The database fails.
pub async fn create_project(pool: &Pool, id: &str, name: &str) -> sqlx::Result<bool> {
    let result =
        sqlx::query("INSERT INTO projects (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(name)
            .execute(pool)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether the project exists.
///
/// # Errors
///
/// The database fails.
pub async fn project_exists(pool: &Pool, id: &str) -> sqlx::Result<bool> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(count > 0)
}

/// The projects among `ids`, or every project when `ids` is `None`, sorted by name.
///
/// # Errors
///
/// The database fails.
pub async fn list_projects(pool: &Pool, ids: Option<&[String]>) -> sqlx::Result<Vec<Project>> {
    first_projects(pool, ids, None).await
}

/// The first `limit` (all when `None`) projects among `ids`, or of every project when `ids`
/// is `None`, sorted by name; the limit is the query's, so a service token that opens
/// every project reads no more rows than asked for.
async fn first_projects(
    pool: &Pool,
    ids: Option<&[String]>,
    limit: Option<usize>,
) -> sqlx::Result<Vec<Project>> {
    let mut sql = String::from("SELECT id, name FROM projects");
    if let Some(ids) = ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        sql.push_str(&format!(" WHERE id IN ({})", placeholders.join(", ")));
    }
    sql.push_str(" ORDER BY name, id");
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let mut query = sqlx::query_as(&sql);
    for id in ids.unwrap_or_default() {
        query = query.bind(id);
    }
    let rows: Vec<(String, String)> = query.fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Project { id, name })
        .collect())
}

/// The document counts of each of `ids` that has documents (one grouped query; the caller
/// bounds `ids`).
///
/// # Errors
///
/// The database fails.
pub async fn document_counts(
    pool: &Pool,
    ids: &[String],
) -> sqlx::Result<HashMap<String, DocumentCounts>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT project_id, status, COUNT(*) FROM documents WHERE project_id IN ({}) \
         GROUP BY project_id, status",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for id in ids {
        query = query.bind(id);
    }
    let rows: Vec<(String, String, i64)> = query.fetch_all(pool).await?;
    let mut counts: HashMap<String, DocumentCounts> = HashMap::new();
    for (project, status, count) in rows {
        let status = DocumentStatus::from_name(&status).unwrap_or(DocumentStatus::Failed);
        counts
            .entry(project)
            .or_default()
            .add(status, u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

/// The overview of the first [`MAX_OVERVIEW_PROJECTS`] projects among `ids` (of every
/// project when `None`), by name.
///
/// # Errors
///
/// The database fails.
pub async fn overview(pool: &Pool, ids: Option<&[String]>) -> sqlx::Result<ProjectsOverview> {
    let projects = first_projects(pool, ids, Some(MAX_OVERVIEW_PROJECTS)).await?;
    let ids: Vec<String> = projects.iter().map(|project| project.id.clone()).collect();
    let mut counts = document_counts(pool, &ids).await?;
    Ok(ProjectsOverview {
        projects: projects
            .into_iter()
            .map(|project| ProjectOverview {
                documents: counts.remove(&project.id).unwrap_or_default(),
                id: project.id,
                name: project.name,
            })
            .collect(),
    })
}

/// Creates a user; `Ok(false)` when the email is taken.
///
/// # Errors
///
/// The database fails.
pub async fn create_user(
    pool: &Pool,
    id: &str,
    email: &str,
    password_hash: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .bind(super::now())
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The user with this email, in any case.
///
/// # Errors
///
/// The database fails.
pub async fn find_user_by_email(pool: &Pool, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT id, email, password_hash FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(pool)
        .await
}

/// The email of user `id`, if the user exists.
///
/// # Errors
///
/// The database fails.
pub async fn user_email(pool: &Pool, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Makes the user a member of the project (nothing changes when it already is).
///
/// # Errors
///
/// The database fails, or the user or project does not exist.
pub async fn add_member(pool: &Pool, user_id: &str, project_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO memberships (user_id, project_id) VALUES ($1, $2) \
         ON CONFLICT (user_id, project_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(project_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends the user's membership of the project; `false` when it was not a member.
///
/// # Errors
///
/// The database fails.
pub async fn remove_member(pool: &Pool, user_id: &str, project_id: &str) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND project_id = $2")
        .bind(user_id)
        .bind(project_id)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The projects the user is a member of, sorted by name.
///
/// # Errors
///
/// The database fails.
pub async fn member_projects(pool: &Pool, user_id: &str) -> sqlx::Result<Vec<Project>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.id, p.name FROM projects p JOIN memberships m ON m.project_id = p.id \
         WHERE m.user_id = $1 ORDER BY p.name, p.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Project { id, name })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage;

    #[tokio::test]
    async fn an_overview_reads_at_most_its_bound_of_projects_first_by_name() {
        let (pool, _data_dir) = storage::test_pool().await;
        for index in 0..=MAX_OVERVIEW_PROJECTS {
            create_project(&pool, &format!("proj_{index:03}"), &format!("P{index:03}"))
                .await
                .expect("a project");
        }

        let overview = overview(&pool, None).await.expect("the database answers");

        assert_eq!(overview.projects.len(), MAX_OVERVIEW_PROJECTS);
        assert_eq!(overview.projects[0].name, "P000");
        assert_eq!(
            overview
                .projects
                .last()
                .map(|project| project.name.as_str()),
            Some("P099")
        );
        assert_eq!(
            list_projects(&pool, None)
                .await
                .expect("every project")
                .len(),
            MAX_OVERVIEW_PROJECTS + 1,
            "the plain list is not cut"
        );
    }
}
