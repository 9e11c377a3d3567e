//! The database: connecting, migrating and checking it. SQL only, no HTTP types.
//!
//! **Invariant:** a pool handed out by [`connect`] runs against a fully migrated schema.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

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
