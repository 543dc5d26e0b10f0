//! Storage: one connection pool per engine, PostgreSQL or SQLite.
//!
//! Both backends expose the same qualified names (`auth.users`, `engine.migrations`): on
//! PostgreSQL they are schemas; on SQLite every pooled connection ATTACHes `engine.db` as
//! `engine` and `auth.db` as `auth` (its own `main` is SQLite's private temporary database, which
//! holds nothing). Statements use `$1` placeholders, which both drivers accept, so one SQL string
//! serves both; code that is generic over the driver is written once inside [`with_pool!`].
//! The few places where the dialects differ are marked `DIALECT` and live in this module and
//! in `migrate.rs`.

pub mod engine_tables;
pub mod migrate;
mod page;
mod timestamp;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::ConnectOptions;

pub use page::{Page, MAX_PAGE};
pub use timestamp::{rfc3339, Timestamp};

use crate::config::{BackendConfig, BackendType};

/// A pool on one of the two backends. Cloning is cheap (the pools are `Arc`s).
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's concrete pool. The body is compiled once per
/// backend, so one piece of SQL and row-reading code serves both.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($pool) => $body,
            $crate::storage::Db::Postgres($pool) => $body,
        }
    };
}

/// A connection inside a transaction another service opened, on either backend: how a service
/// adds its own statements to that transaction without the two knowing each other's tables
/// (e.g. `identity::sessions::EndHook`).
pub enum Conn<'a> {
    Sqlite(&'a mut sqlx::SqliteConnection),
    Postgres(&'a mut sqlx::PgConnection),
}

impl<'a> From<&'a mut sqlx::SqliteConnection> for Conn<'a> {
    fn from(c: &'a mut sqlx::SqliteConnection) -> Self {
        Conn::Sqlite(c)
    }
}

impl<'a> From<&'a mut sqlx::PgConnection> for Conn<'a> {
    fn from(c: &'a mut sqlx::PgConnection) -> Self {
        Conn::Postgres(c)
    }
}

/// [`with_pool!`] for a [`Conn`]: `$body` compiled once per backend, `$c` the connection.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::storage::Conn::Sqlite($c) => $body,
            $crate::storage::Conn::Postgres($c) => $body,
        }
    };
}

/// Turns for write transactions on SQLite, shared by the services that write on hot paths.
/// SQLite has one writer at a time, and a second one that finds the write lock taken sleeps
/// in SQLite's busy handler (milliseconds at a time); writers that take turns here queue in
/// this process without sleeping. PostgreSQL needs no turn, so on it there is no lock.
#[derive(Clone)]
pub struct WriteTurns(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl WriteTurns {
    pub fn for_db(db: &Db) -> WriteTurns {
        WriteTurns(matches!(db, Db::Sqlite(_)).then(Default::default))
    }

    pub async fn take(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

/// A JSON column's value, or a decode error naming the column: a corrupt row is an error, never
/// an empty value (a `roles` column that does not parse must not read as "no roles").
pub fn json_column<T: serde::de::DeserializeOwned>(column: &'static str, text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::ColumnDecode { index: column.to_string(), source: Box::new(e) })
}

/// [`json_column`] of a nullable column.
pub fn json_column_opt<T: serde::de::DeserializeOwned>(column: &'static str, text: Option<String>) -> Result<Option<T>, sqlx::Error> {
    text.map(|t| json_column(column, &t)).transpose()
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot connect to {backend}: {source}")]
    Connect { backend: &'static str, source: sqlx::Error },
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: i64, name: String, source: sqlx::Error },
    #[error("migration {version} ({name}) was applied with different contents (checksum {applied}, this binary has {embedded}); refusing to continue")]
    ChecksumMismatch { version: i64, name: String, applied: String, embedded: String },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl Db {
    pub async fn connect(cfg: &BackendConfig) -> Result<Db, StorageError> {
        match cfg.kind {
            BackendType::Sqlite => connect_sqlite(&cfg.data_dir, cfg.max_connections).await,
            BackendType::Postgres => {
                let url = cfg.url.as_ref().map(|u| u.expose()).unwrap_or_default();
                connect_postgres(url, cfg.max_connections).await
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Creates `dir` (mode 0700 when new: it will hold key material) if missing.
pub fn ensure_data_dir(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StorageError::DataDir { path: dir.to_path_buf(), source })
}

// DIALECT: how each backend is opened.

async fn connect_sqlite(data_dir: &Path, max_connections: u32) -> Result<Db, StorageError> {
    ensure_data_dir(data_dir)?;
    let quote = |p: PathBuf| p.to_string_lossy().replace('\'', "''");
    let engine_db = quote(data_dir.join("engine.db"));
    let auth_db = quote(data_dir.join("auth.db"));
    let attach = format!(
        "ATTACH DATABASE '{engine_db}' AS engine; ATTACH DATABASE '{auth_db}' AS auth; \
         PRAGMA engine.journal_mode = WAL; PRAGMA auth.journal_mode = WAL; \
         PRAGMA engine.synchronous = NORMAL; PRAGMA auth.synchronous = NORMAL; \
         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;"
    );
    // The main database is "" (SQLite's private temporary database, empty and unused). Not
    // ":memory:": an in-memory main makes every ATTACHed database in-memory too, and the data
    // would never reach the disk.
    let options = SqliteConnectOptions::new()
        .filename("")
        .shared_cache(false)
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .disable_statement_logging();
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        // A ping before each checkout buys nothing for a file that cannot go away.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            let attach = attach.clone();
            Box::pin(async move {
                // A plain &str runs every statement in it (SQLite executes the whole string).
                sqlx::Executor::execute(&mut *conn, attach.as_str()).await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|source| StorageError::Connect { backend: "sqlite", source })?;
    Ok(Db::Sqlite(pool))
}

async fn connect_postgres(url: &str, max_connections: u32) -> Result<Db, StorageError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|source| StorageError::Connect { backend: "postgres", source })?
        .application_name("assay-engine")
        .disable_statement_logging();
    // No ping before each checkout (sqlx's default): it is a round trip per statement, and
    // the token endpoint's profile showed it. A connection the server dropped fails its next
    // statement instead and is replaced; connections are recycled after half an hour anyway.
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .max_lifetime(Duration::from_secs(1800))
        .connect_with(options)
        .await
        .map_err(|source| StorageError::Connect { backend: "postgres", source })?;
    Ok(Db::Postgres(pool))
}
