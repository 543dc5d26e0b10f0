//! `auth.oidc_grants`, `auth.oidc_refresh_tokens` (their reads and rotation; a grant's first
//! token is written with the code exchange in `requests.rs`), `auth.oidc_consents`, and the
//! revoked access tokens of `auth.oidc_revoked_tokens`.

use crate::identity::store::users::User;
use sqlx::Row;

use crate::storage::{Db, Timestamp};
use crate::with_pool;

/// A refresh-token row to insert; `created_at` is the moment it is written.
pub struct NewRefresh<'a> {
    pub token_hash: String,
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scopes: &'a str,
    pub session_id: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a str,
    pub acr: Option<&'a str>,
    pub claims: Option<&'a str>,
    pub expires_at: Timestamp,
}

#[derive(Clone)]
pub struct GrantStore {
    db: Db,
}

impl GrantStore {
    pub fn new(db: Db) -> GrantStore {
        GrantStore { db }
    }

    /// A refresh token with its grant's state and its user, in one query (a refresh is the
    /// token endpoint's hot path).
    pub async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>, sqlx::Error> {
        with_pool!(&self.db, pool => {
            match sqlx::query(
                "SELECT r.grant_id, r.client_id, r.user_id, r.scopes, r.session_id, r.auth_time, r.amr, r.acr, r.claims, r.expires_at, r.used_at, \
                 r.revoked, g.revoked_at, u.id, u.email, u.email_verified, u.display_name, u.disabled, u.roles, u.metadata, u.password_hash, \
                 u.created_at, u.updated_at FROM auth.oidc_refresh_tokens r JOIN auth.oidc_grants g ON g.id = r.grant_id \
                 JOIN auth.users u ON u.id = r.user_id WHERE r.token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
            {
                None => Ok(None),
                Some(r) => {
                    let scopes: String = r.try_get("scopes")?;
                    let amr: String = r.try_get("amr")?;
                    let claims: Option<String> = r.try_get("claims")?;
                    let grant_revoked: Option<Timestamp> = r.try_get("revoked_at")?;
                    let revoked: bool = r.try_get("revoked")?;
                    Ok(Some(RefreshRecord {
                        user: crate::identity::store::users::from_row(&r)?.0,
                        grant_id: r.try_get("grant_id")?,
                        client_id: r.try_get("client_id")?,
                        user_id: r.try_get("user_id")?,
                        scopes: crate::storage::json_column("oidc_grants.scopes", &scopes)?,
                        session_id: r.try_get("session_id")?,
                        auth_time: r.try_get("auth_time")?,
                        amr: crate::storage::json_column("oidc_grants.amr", &amr)?,
                        acr: r.try_get("acr")?,
                        claims: crate::storage::json_column_opt("oidc_grants.claims", claims)?,
                        expires_at: r.try_get("expires_at")?,
                        used_at: r.try_get("used_at")?,
                        revoked: revoked || grant_revoked.is_some(),
                    }))
                }
            }
        })
    }

    /// Revokes a grant and its refresh tokens in one transaction; returns how many live grants
    /// it revoked (0 or 1).
    pub async fn revoke(&self, grant_id: &str, now: Timestamp) -> Result<u64, sqlx::Error> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE auth.oidc_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(grant_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE auth.oidc_refresh_tokens SET revoked = TRUE WHERE grant_id = $1")
                .bind(grant_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// Spends the refresh token `spent_hash` (within the grace window it is spent already and
    /// stays so) and inserts `next`, atomically; false when no live token was spent (the family
    /// was revoked meanwhile) and nothing was written.
    pub async fn rotate_refresh(&self, spent_hash: &str, next: &NewRefresh<'_>, now: Timestamp) -> Result<bool, sqlx::Error> {
        // DIALECT: PostgreSQL does both in one statement (a data-modifying CTE), which saves
        // three round trips on the hottest path; SQLite has no such CTE and uses a transaction.
        match &self.db {
            Db::Postgres(pool) => {
                let n = sqlx::query(
                    "WITH spent AS (UPDATE auth.oidc_refresh_tokens SET used_at = COALESCE(used_at, $13) WHERE token_hash = $14 AND revoked = FALSE RETURNING 1) \
                     INSERT INTO auth.oidc_refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, session_id, auth_time, amr, acr, claims, created_at, expires_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM spent",
                )
                .bind(next.token_hash.as_str())
                .bind(next.grant_id)
                .bind(next.client_id)
                .bind(next.user_id)
                .bind(next.scopes)
                .bind(next.session_id)
                .bind(next.auth_time)
                .bind(next.amr)
                .bind(next.acr)
                .bind(next.claims)
                .bind(now)
                .bind(next.expires_at)
                .bind(now)
                .bind(spent_hash)
                .execute(pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let live = sqlx::query(
                    "UPDATE auth.oidc_refresh_tokens SET used_at = COALESCE(used_at, $2) WHERE token_hash = $1 AND revoked = FALSE",
                )
                .bind(spent_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if live == 1 {
                    insert_refresh!(tx, next)?;
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok(live == 1)
            }
        }
    }

    /// The `claims` request parameter stored with a grant, as text (`None` when the grant is
    /// gone or has none).
    pub async fn claims_request(&self, grant_id: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
        let text: Option<Option<String>> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT claims FROM auth.oidc_grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(pool)
            .await)?;
        crate::storage::json_column_opt("oidc_grants.claims", text.flatten())
    }

    /// For an access token: (times its jti was revoked, clients with its client_id, live grants
    /// with `grant_id`).
    pub async fn access_token_counts(&self, jti: &str, client_id: &str, grant_id: &str) -> Result<(i64, i64, i64), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM auth.oidc_revoked_tokens WHERE jti = $1), \
             (SELECT COUNT(*) FROM auth.oidc_clients WHERE client_id = $2), \
             (SELECT COUNT(*) FROM auth.oidc_grants WHERE id = $3 AND revoked_at IS NULL)")
            .bind(jti)
            .bind(client_id)
            .bind(grant_id)
            .fetch_one(pool)
            .await)
    }

    /// Drops revocations past their expiry, then records `jti` until `expires`.
    pub async fn revoke_access_token(&self, jti: &str, expires: Timestamp, now: Timestamp) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM auth.oidc_revoked_tokens WHERE expires_at < $1").bind(now).execute(pool).await?;
            sqlx::query("INSERT INTO auth.oidc_revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                .bind(jti)
                .bind(expires)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The scopes a user allowed a client, if any were remembered.
    pub async fn consented_scopes(&self, user_id: &str, client_id: &str) -> Result<Option<Vec<String>>, sqlx::Error> {
        let row: Option<String> = with_pool!(&self.db, pool => sqlx::query_scalar("SELECT scopes FROM auth.oidc_consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        crate::storage::json_column_opt("oidc_consents.scopes", row)
    }

    /// Sets what a user allowed a client (`scopes`, JSON text).
    pub async fn put_consent(&self, user_id: &str, client_id: &str, scopes: &str, now: Timestamp) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth.oidc_consents (user_id, client_id, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at")
            .bind(user_id)
            .bind(client_id)
            .bind(scopes)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Forgets a user's consent to one client (or, with `None`, to every client).
    pub async fn delete_consent(&self, user_id: &str, client_id: Option<&str>) -> Result<u64, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_consents WHERE user_id = $1 AND ($2 IS NULL OR client_id = $2)")
            .bind(user_id)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    }
}

/// A stored refresh token, with its grant's state and its user (read in the same query: a
/// refresh is the token endpoint's hot path).
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub user: User,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub session_id: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub claims: Option<serde_json::Value>,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub revoked: bool,
}
