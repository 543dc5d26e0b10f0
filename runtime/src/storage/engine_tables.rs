//! The engine's own rows: module switches and generated admin API keys.

use sqlx::Row;

use super::{Db, Timestamp};
use crate::with_pool;

impl Db {
    /// Every module row: (name, enabled).
    pub async fn modules(&self) -> Result<Vec<(String, bool)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("SELECT name, enabled FROM engine.modules ORDER BY name")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("name")?, r.try_get("enabled")?)))
                .collect()
        })
    }

    /// Enables each named module that has no row yet. A module an operator switched off in
    /// `engine.modules` stays off: the table, not the config, is the runtime truth.
    pub async fn auto_enable_modules(&self, names: &[String]) -> Result<(), sqlx::Error> {
        for name in names {
            with_pool!(self, pool => sqlx::query(
                "INSERT INTO engine.modules (name, enabled, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(true)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    pub async fn set_module(&self, name: &str, enabled: bool) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO engine.modules (name, enabled, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(enabled)
        .bind(Timestamp::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a generated admin key's hash under `name` unless one with that name exists.
    /// Returns whether this call inserted it (so exactly one of several engines starting at
    /// once writes the key file).
    pub async fn insert_admin_key_once(&self, id: &str, name: &str, key_hash: &str) -> Result<bool, sqlx::Error> {
        let done = with_pool!(self, pool => sqlx::query(
            "INSERT INTO engine.admin_api_keys (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(key_hash)
        .bind(Timestamp::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    pub async fn delete_admin_key(&self, id: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("DELETE FROM engine.admin_api_keys WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The name of the generated admin key whose SHA-256 is `key_hash`, if there is one.
    pub async fn admin_key_name(&self, key_hash: &str) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar("SELECT name FROM engine.admin_api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(pool)
            .await)
    }
}
