//! Embedded, versioned, idempotent migrations with a ledger in `engine.migrations`.
//!
//! Files live in `migrations/{sqlite,postgres}/NNNN_name.sql` and are compiled into the binary.
//! Each migration is applied in its own transaction together with its ledger row, under a lock
//! that every engine on the database takes: a PostgreSQL transaction-scoped advisory lock, or
//! SQLite's `BEGIN IMMEDIATE` (which takes the write lock on every attached database). Inside
//! the lock the ledger is read again, so two engines starting at once never both apply one.

use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use super::{Db, StorageError, Timestamp};

#[derive(RustEmbed)]
#[folder = "../migrations/"]
#[include = "*.sql"]
struct MigrationFiles;

/// The advisory lock every assay-engine takes for migrations (the key is arbitrary but fixed).
const PG_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(7021802887455)";

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub sql: String,
    pub checksum: String,
}

/// The migrations this binary carries for one backend, in version order.
pub fn embedded(backend: &str) -> Vec<Migration> {
    let prefix = format!("{backend}/");
    let mut out: Vec<Migration> = MigrationFiles::iter()
        .filter_map(|path| {
            let file = path.strip_prefix(&prefix)?.to_string();
            let stem = file.strip_suffix(".sql")?;
            let (num, name) = stem.split_once('_')?;
            let version = num.parse::<i64>().ok()?;
            let data = MigrationFiles::get(&path)?;
            let sql = String::from_utf8_lossy(&data.data).into_owned();
            let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
            Some(Migration { version, name: name.to_string(), sql, checksum })
        })
        .collect();
    out.sort_by_key(|m| m.version);
    out
}

/// What `migrate` did.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub applied: Vec<(i64, String)>,
    pub already: usize,
}

// DIALECT: ledger bootstrap. SQLite has its `engine` and `auth` databases from ATTACH.
const PG_BOOTSTRAP: &str = "CREATE SCHEMA IF NOT EXISTS engine; CREATE SCHEMA IF NOT EXISTS auth; \
    CREATE TABLE IF NOT EXISTS engine.migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
    checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)";
const SQLITE_BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS engine.migrations (version INTEGER PRIMARY KEY, \
    name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// DIALECT: how a migration transaction starts and takes the cross-engine lock.
struct Dialect {
    begin: &'static str,
    lock: Option<&'static str>,
    bootstrap: &'static str,
}

const PG_DIALECT: Dialect = Dialect {
    begin: "BEGIN",
    // Transaction-scoped, so a crashed engine can never leave it held.
    lock: Some(PG_LOCK_SQL),
    bootstrap: PG_BOOTSTRAP,
};
const SQLITE_DIALECT: Dialect = Dialect { begin: "BEGIN IMMEDIATE", lock: None, bootstrap: SQLITE_BOOTSTRAP };

const SELECT_APPLIED: &str = "SELECT checksum FROM engine.migrations WHERE version = $1";
const INSERT_APPLIED: &str = "INSERT INTO engine.migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)";

impl Db {
    /// Applies every embedded migration not yet in the ledger. Safe to run at every start and
    /// from several engines at once.
    pub async fn migrate(&self) -> Result<MigrateReport, StorageError> {
        let migrations = embedded(self.backend_name());
        match self {
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                run::<sqlx::Postgres>(&mut *conn, &PG_DIALECT, &migrations).await
            }
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                run::<sqlx::Sqlite>(&mut *conn, &SQLITE_DIALECT, &migrations).await
            }
        }
    }

    /// True when every migration this binary carries is in the ledger (a newer engine may have
    /// added more: that does not make this one unready).
    pub async fn migrations_current(&self) -> Result<bool, sqlx::Error> {
        let known = embedded(self.backend_name());
        let applied: Vec<i64> = crate::with_pool!(self, pool => {
            sqlx::query("SELECT version FROM engine.migrations")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("version"))
                .collect::<Result<_, _>>()?
        });
        Ok(known.iter().all(|m| applied.contains(&m.version)))
    }
}

/// Bootstraps the ledger, then applies each pending migration in its own locked transaction.
async fn run<DB>(conn: &mut DB::Connection, dialect: &Dialect, migrations: &[Migration]) -> Result<MigrateReport, StorageError>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    Timestamp: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut report = MigrateReport::default();
    let mut tx = conn.begin_with(dialect.begin).await?;
    if let Some(lock) = dialect.lock {
        sqlx::raw_sql(lock).execute(&mut *tx).await?;
    }
    sqlx::raw_sql(dialect.bootstrap).execute(&mut *tx).await?;
    tx.commit().await?;
    for m in migrations {
        let mut tx = conn.begin_with(dialect.begin).await?;
        if let Some(lock) = dialect.lock {
            sqlx::raw_sql(lock).execute(&mut *tx).await?;
        }
        // Read again under the lock: another engine may have applied it meanwhile.
        let applied: Option<String> = sqlx::query_scalar(SELECT_APPLIED).bind(m.version).fetch_optional(&mut *tx).await?;
        if let Some(sum) = applied {
            check_sum(m, sum)?;
            report.already += 1;
            continue; // dropping `tx` rolls back the read-only transaction
        }
        apply(&mut tx, m).await?;
        tx.commit().await.map_err(|source| failed(m, source))?;
        report.applied.push((m.version, m.name.clone()));
    }
    Ok(report)
}

fn check_sum(m: &Migration, applied: String) -> Result<(), StorageError> {
    if applied == m.checksum {
        Ok(())
    } else {
        Err(StorageError::ChecksumMismatch { version: m.version, name: m.name.clone(), applied, embedded: m.checksum.clone() })
    }
}

fn failed(m: &Migration, source: sqlx::Error) -> StorageError {
    StorageError::Migration { version: m.version, name: m.name.clone(), source }
}

/// The migration's SQL and its ledger row, in the caller's transaction.
async fn apply<'c, DB>(tx: &mut sqlx::Transaction<'c, DB>, m: &Migration) -> Result<(), StorageError>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Timestamp: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    sqlx::raw_sql(&m.sql).execute(&mut **tx).await.map_err(|source| failed(m, source))?;
    sqlx::query(INSERT_APPLIED)
        .bind(m.version)
        .bind(m.name.clone())
        .bind(m.checksum.clone())
        .bind(Timestamp::now())
        .execute(&mut **tx)
        .await
        .map_err(|source| failed(m, source))?;
    tracing::info!(version = m.version, name = %m.name, "applied migration");
    Ok(())
}
