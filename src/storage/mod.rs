//! The database: connecting, migrating and checking it, and one module of queries per
//! table group. SQL only, no HTTP types.
//!
//! **Invariant:** a pool handed out by [`connect`] runs against a fully migrated schema.

pub mod chunks;
pub mod documents;
pub mod graph;
pub mod jobs;
pub mod outbox;
pub mod projects;
pub mod sessions;

use std::str::FromStr;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use crate::config::{StorageConfig, redact_url};

/// The pool every query runs on: SQLite or PostgreSQL, chosen by `DATABASE_URL`.
///
/// The SQL in this module's children is written once for both: `$n` parameters, no
/// functions only one of them has, and [`Backend`] where they must differ (job claims).
pub type Pool = AnyPool;

/// One connection of a [`Pool`], or a transaction on one.
pub type DbConnection = AnyConnection;

/// SQLite's schema history, applied to a `sqlite:` database.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The same schema for PostgreSQL, applied to a `postgres:` database.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The database behind a [`Pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local file: one instance.
    Sqlite,
    /// A server shared by several instances.
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names, if it is one of ours.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// The backend `pool` was opened on.
    pub fn of(pool: &Pool) -> Self {
        if pool.connect_options().database_url.scheme() == "sqlite" {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }
}

/// Opens (creating it if needed, for SQLite) the database and applies every pending
/// migration.
///
/// # Errors
///
/// The data folder cannot be created, the URL is malformed, the database cannot be reached,
/// or a migration fails.
pub async fn connect(config: &StorageConfig) -> anyhow::Result<Pool> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(&config.database_url).with_context(|| {
        format!(
            "DATABASE_URL {} is not sqlite: or postgres:",
            config.database_url
        )
    })?;
    let url = match backend {
        Backend::Sqlite => {
            tokio::fs::create_dir_all(&config.data_dir)
                .await
                .with_context(|| format!("cannot create DATA_DIR {}", config.data_dir.display()))?;
            creating_sqlite_url(&config.database_url)
        }
        Backend::Postgres => config.database_url.clone(),
    };
    let options = AnyConnectOptions::from_str(&url)
        .with_context(|| format!("cannot parse DATABASE_URL {}", config.database_url))?;
    // One connection first: a pool retries for its whole acquire timeout (30 s) and then
    // reports only that it timed out, hiding why (refused, wrong password, no database).
    AnyConnection::connect_with(&options)
        .await
        .with_context(|| {
            format!(
                "cannot connect to DATABASE_URL {}",
                redact_url(&config.database_url)
            )
        })?
        .close()
        .await
        .context("cannot close the first database connection")?;
    let pool = AnyPoolOptions::new()
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    configure_sqlite(connection).await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redact_url(&config.database_url)
            )
        })?;
    let migrations = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrations
        .run(&pool)
        .await
        .context("cannot apply the database migrations")?;
    tracing::info!(database = %redact_url(&config.database_url), "database ready");
    Ok(pool)
}

/// `url` with `mode=rwc` (create the file if missing) unless it already says a mode.
fn creating_sqlite_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Per-connection SQLite settings. WAL lets readers run beside the one writer. With WAL,
/// `synchronous = NORMAL` syncs at checkpoints rather than at every commit: a commit
/// survives a crash of the process (which is what restarts and leases are about), and only
/// an OS crash or power loss can take back the last few. sqlx already turns foreign keys on
/// and waits 5 s for a busy lock.
async fn configure_sqlite(connection: &mut AnyConnection) -> sqlx::Result<()> {
    connection
        .execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .await
        .map(|_| ())
}

/// Checks that the database answers a query.
///
/// # Errors
///
/// The database cannot be reached or the query fails.
pub async fn ping(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// A new random id: `prefix`, an underscore and 16 hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", crate::random::random_hex::<8>())
}

/// A migrated database in a new temporary folder, for tests of the modules that query it.
#[cfg(test)]
pub(crate) async fn test_pool() -> (Pool, tempfile::TempDir) {
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
    crate::clock::timestamp()
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

    async fn table_names(pool: &Pool) -> Vec<String> {
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
                "outbox",
                "outbox_owners",
                "projects",
                "sessions",
                "sqlite_sequence",
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
