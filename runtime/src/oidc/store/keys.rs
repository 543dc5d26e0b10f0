//! `auth.jwks_keys`: the signing keys, their public JWKs and sealed private keys.

use serde::Serialize;
use sqlx::Row;

use crate::storage::rfc3339;
use crate::storage::{Db, Timestamp};
use crate::with_pool;

/// Which active key a new key retires first, in its transaction.
#[derive(Debug, Clone, Copy)]
pub enum RetireFirst {
    /// None: the new key is the algorithm's first.
    No,
    /// Those created at or before this instant (a rotation on demand passes now).
    Always(Timestamp),
    /// Those created at or before this cutoff; when there is none, another engine rotated
    /// already and no key is made.
    OlderThan(Timestamp),
}

#[derive(Clone)]
pub struct KeyStore {
    db: Db,
}

impl KeyStore {
    pub fn new(db: Db) -> KeyStore {
        KeyStore { db }
    }

    pub async fn active_kid(&self, alg: &str) -> Result<Option<String>, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_scalar("SELECT kid FROM auth.jwks_keys WHERE alg = $1 AND status = 'active'")
            .bind(alg)
            .fetch_optional(pool)
            .await)
    }

    /// The algorithms whose active key was made before `cutoff`.
    pub async fn algs_active_before(&self, cutoff: Timestamp) -> Result<Vec<String>, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT alg FROM auth.jwks_keys WHERE status = 'active' AND created_at < $1")
            .bind(cutoff)
            .fetch_all(pool)
            .await)
    }

    /// Deletes keys retired before `cutoff`; returns how many.
    pub async fn prune_retired(&self, cutoff: Timestamp) -> Result<u64, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query(
            "DELETE FROM auth.jwks_keys WHERE status = 'retired' AND retired_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    }

    /// Retires per `retire` and inserts the new active key, in one transaction; false when
    /// `RetireFirst::OlderThan` found nothing to retire (nothing is written then).
    pub async fn insert_active(
        &self,
        alg: &str,
        retire: RetireFirst,
        kid: &str,
        public_jwk: &str,
        sealed: &str,
        now: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let cutoff = match retire {
                RetireFirst::No => None,
                RetireFirst::Always(t) | RetireFirst::OlderThan(t) => Some(t),
            };
            if let Some(cutoff) = cutoff {
                let retired = sqlx::query("UPDATE auth.jwks_keys SET status = 'retired', retired_at = $2 WHERE alg = $1 AND status = 'active' AND created_at <= $3")
                    .bind(alg)
                    .bind(now)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if retired == 0 && matches!(retire, RetireFirst::OlderThan(_)) {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            sqlx::query("INSERT INTO auth.jwks_keys (kid, alg, status, public_jwk, private_key, created_at) VALUES ($1, $2, 'active', $3, $4, $5)")
                .bind(kid)
                .bind(alg)
                .bind(public_jwk)
                .bind(sealed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Every key not pruned, active first, newest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, sqlx::Error> {
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT kid, alg, status, public_jwk, created_at, retired_at FROM auth.jwks_keys \
                 ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, created_at DESC")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let jwk: String = r.try_get("public_jwk")?;
                    let retired: Option<Timestamp> = r.try_get("retired_at")?;
                    Ok(KeyInfo {
                        kid: r.try_get("kid")?,
                        alg: r.try_get("alg")?,
                        status: r.try_get("status")?,
                        created_at: rfc3339(r.try_get("created_at")?),
                        retired_at: retired.map(rfc3339),
                        public_jwk: crate::storage::json_column("jwks_keys.public_jwk", &jwk)?,
                    })
                })
                .collect::<Result<Vec<KeyInfo>, sqlx::Error>>()
        })
    }

    /// A key's algorithm and sealed private key.
    pub async fn sealed(&self, kid: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_as("SELECT alg, private_key FROM auth.jwks_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(pool)
            .await)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    pub public_jwk: serde_json::Value,
}
