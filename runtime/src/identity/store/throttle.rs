//! `auth.login_throttle`: the counter row (sign-in failures and rate limits share it) and the
//! statements that count, lock, clear and list. How many failures lock for how long is the
//! `Throttle` service's.

use serde::Serialize;
use sqlx::Row;

use crate::storage::{rfc3339, Db, Page, Timestamp};
use crate::with_pool;

#[derive(Debug, Clone, Serialize)]
pub struct Counter {
    pub key: String,
    pub failures: i64,
    pub window_started_at: String,
    pub last_failure_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
}

#[derive(Clone)]
pub struct ThrottleStore {
    db: Db,
}

impl ThrottleStore {
    pub fn new(db: Db) -> ThrottleStore {
        ThrottleStore { db }
    }

    /// `None` when `key` has no row; `Some(None)` when it has one without a lock.
    pub async fn locked_until(&self, key: &str) -> Result<Option<Option<Timestamp>>, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_scalar("SELECT locked_until FROM auth.login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await)
    }

    /// Counts an attempt in a fixed window from the first (a fresh one when the last started
    /// before `window_start`); returns the count and when its window started.
    pub async fn hit(&self, key: &str, now: Timestamp, window_start: Timestamp) -> Result<(i64, Timestamp), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_as(
            "INSERT INTO auth.login_throttle AS t (key, failures, window_started_at, last_failure_at) VALUES ($1, 1, $2, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.window_started_at < $3 THEN 1 ELSE t.failures + 1 END, \
               window_started_at = CASE WHEN t.window_started_at < $3 THEN $2 ELSE t.window_started_at END, \
               last_failure_at = $2 \
             RETURNING failures, window_started_at")
            .bind(key)
            .bind(now)
            .bind(window_start)
            .fetch_one(pool)
            .await)
    }

    /// One more failure (a fresh count, and no lock, when the last failure was before
    /// `window_start`); returns the count.
    pub async fn bump(&self, key: &str, now: Timestamp, window_start: Timestamp) -> Result<i64, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_scalar(
            "INSERT INTO auth.login_throttle AS t (key, failures, window_started_at, last_failure_at) VALUES ($1, 1, $2, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.last_failure_at < $3 THEN 1 ELSE t.failures + 1 END, \
               window_started_at = CASE WHEN t.last_failure_at < $3 THEN $2 ELSE t.window_started_at END, \
               locked_until = CASE WHEN t.last_failure_at < $3 THEN NULL ELSE t.locked_until END, \
               last_failure_at = $2 \
             RETURNING failures")
            .bind(key)
            .bind(now)
            .bind(window_start)
            .fetch_one(pool)
            .await)
    }

    pub async fn lock(&self, key: &str, until: Timestamp) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.login_throttle SET locked_until = $2 WHERE key = $1")
            .bind(key)
            .bind(until)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Returns how many rows went.
    pub async fn clear(&self, key: &str) -> Result<u64, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.login_throttle WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    }

    /// Counters with a failure since `window_start` or a lock past `now`, by key, after the
    /// `cursor` key; a lock already over reads as none.
    pub async fn list(
        &self,
        window_start: Timestamp,
        now: Timestamp,
        limit: i64,
        cursor: Option<&str>,
    ) -> Result<Page<Counter>, sqlx::Error> {
        let entries = with_pool!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT key, failures, window_started_at, last_failure_at, locked_until FROM auth.login_throttle \
                 WHERE (last_failure_at >= $1 OR locked_until > $2) AND ($3 IS NULL OR key > $3) ORDER BY key LIMIT $4")
                .bind(window_start)
                .bind(now)
                .bind(cursor)
                .bind(limit + 1)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let locked: Option<Timestamp> = r.try_get("locked_until")?;
                    Ok(Counter {
                        key: r.try_get("key")?,
                        failures: r.try_get("failures")?,
                        window_started_at: rfc3339(r.try_get("window_started_at")?),
                        last_failure_at: rfc3339(r.try_get("last_failure_at")?),
                        locked_until: locked.filter(|l| *l > now).map(rfc3339),
                    })
                })
                .collect::<Result<Vec<Counter>, sqlx::Error>>()?
        });
        Ok(Page::from_overfetch("entries", entries, limit, |e| e.key.clone()))
    }
}
