//! The database: connecting, migrating and checking it, and one module of queries per
//! table group. SQL only, no HTTP types.
//!
//! **Invariant:** a pool handed out by [`connect`] runs against a fully migrated schema.

pub mod chunks;
pub mod documents;
pub mod graph;
pub mod jobs;
pub mod projects;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::StorageConfig;

/// How long a writer waits for SQLite's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the database and applies every pending migration.
///
/// # Errors
///
/// The data folder cannot be created, the URL is malformed, the file cannot be opened, or a
/// migration fails.
pub async fn connect(config: &StorageConfig) -> anyhow::Result<SqlitePool> {
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .with_context(|| format!("cannot create DATA_DIR {}", config.data_dir.display()))?;
    let options = SqliteConnectOptions::from_str(&config.database_url)
        .with_context(|| format!("cannot parse DATABASE_URL {}", config.database_url))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL syncs at checkpoints rather than at every commit: a commit
        // survives a crash of the process (which is what restarts and leases are about),
        // and only an OS crash or power loss can take back the last few.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("cannot apply the database migrations")?;
    tracing::info!(database = %config.database_url, "database ready");
    Ok(pool)
}

/// Checks that the database answers a query.
///
/// # Errors
///
/// The database cannot be reached or the query fails.
pub async fn ping(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// A new random id: `prefix`, an underscore and 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", crate::random::random_hex::<8>())
}

/// A migrated database in a new temporary folder, for tests of the modules that query it.
#[cfg(test)]
pub(crate) async fn test_pool() -> (SqlitePool, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let pool = connect(&StorageConfig {
        data_dir: data_dir.path().to_owned(),
        database_url: format!("sqlite://{}", data_dir.path().join("test.db").display()),
    })
    .await
    .expect("the database opens");
    (pool, data_dir)
}

/// The current time as stored: RFC 3339 with milliseconds, in UTC.
fn now() -> String {
    crate::events::timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(data_dir: &std::path::Path) -> StorageConfig {
        StorageConfig {
            data_dir: data_dir.to_owned(),
            database_url: format!("sqlite://{}", data_dir.join("test.db").display()),
        }
    }

    async fn table_names(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .expect("the schema can be read")
    }

    #[tokio::test]
    async fn connect_creates_the_database_and_applies_the_migrations() {
        let data_dir = tempfile::tempdir().expect("a temporary folder");
        let config = config_in(&data_dir.path().join("fresh"));

        let pool = connect(&config).await.expect("a fresh database opens");

        assert!(config.data_dir.join("test.db").is_file());
        assert_eq!(
            table_names(&pool).await,
            [
                "chunks",
                "documents",
                "graph_objects",
                "jobs",
                "memberships",
                "projects",
                "users"
            ]
        );
        ping(&pool).await.expect("the database answers");
    }

    #[tokio::test]
    async fn connecting_again_keeps_the_data() {
        let data_dir = tempfile::tempdir().expect("a temporary folder");
        let config = config_in(data_dir.path());
        let pool = connect(&config).await.expect("first start");
        sqlx::query("INSERT INTO projects (id, name) VALUES ('proj_1', 'Kept')")
            .execute(&pool)
            .await
            .expect("insert");
        pool.close().await;

        let pool = connect(&config).await.expect("second start");

        let name: String = sqlx::query_scalar("SELECT name FROM projects WHERE id = 'proj_1'")
            .fetch_one(&pool)
            .await
            .expect("the row survived the restart");
        assert_eq!(name, "Kept");
    }
}
