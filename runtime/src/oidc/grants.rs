//! The grants service: what users granted clients. Grants and refresh tokens
//! (`auth.oidc_grants`, `auth.oidc_refresh_tokens`): a grant is one code exchange; its refresh
//! tokens form a family, each use spending one and minting the next. Revoking the grant (a
//! replayed code, a reused refresh token, RFC 7009, a logout of a session-bound grant) ends the
//! whole family and the access tokens that name it. And remembered consent
//! (`auth.oidc_consents`): the scopes a user allowed a client, so the next authorization for
//! the same or fewer scopes skips the consent page.

use sqlx::Row;

use super::json_text;
use crate::identity::users::User;
use crate::identity::IdentityError;
use crate::storage::{Db, Timestamp, WriteTurns};
use crate::with_pool;

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

#[derive(Clone)]
pub struct Grants {
    db: Db,
    turns: WriteTurns,
}

impl Grants {
    pub fn new(db: Db, turns: WriteTurns) -> Grants {
        Grants { db, turns }
    }

    pub async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>, IdentityError> {
        let found = with_pool!(&self.db, pool => {
            match sqlx::query(
                "SELECT r.grant_id, r.client_id, r.user_id, r.scopes, r.session_id, r.auth_time, r.amr, r.acr, r.claims, r.expires_at, r.used_at, \
                 r.revoked, g.revoked_at, u.id, u.email, u.email_verified, u.display_name, u.disabled, u.roles, u.metadata, u.password_hash, \
                 u.created_at, u.updated_at FROM auth.oidc_refresh_tokens r JOIN auth.oidc_grants g ON g.id = r.grant_id \
                 JOIN auth.users u ON u.id = r.user_id WHERE r.token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
            {
                None => None,
                Some(r) => {
                    let scopes: String = r.try_get("scopes")?;
                    let amr: String = r.try_get("amr")?;
                    let claims: Option<String> = r.try_get("claims")?;
                    let grant_revoked: Option<Timestamp> = r.try_get("revoked_at")?;
                    let revoked: bool = r.try_get("revoked")?;
                    Some(RefreshRecord {
                        user: crate::identity::users::from_row(&r)?.0,
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
                    })
                }
            }
        });
        Ok(found)
    }

    /// Ends a grant and every refresh token of its family; returns whether it was live.
    pub async fn revoke(&self, grant_id: &str) -> Result<bool, IdentityError> {
        let now = Timestamp::now();
        let _turn = self.turns.take(&self.db).await;
        let n = with_pool!(&self.db, pool => {
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
            n
        });
        Ok(n > 0)
    }

    /// Whether an access token still stands: not revoked itself, its client still registered,
    /// and the grant its jti names (`<grant id>.<random>`) present and not revoked. A missing
    /// grant is NOT live: deleting a client (or its user) deletes its grants, and their access
    /// tokens must end with them. Client-credentials tokens name no grant (no `.` in the jti).
    pub async fn access_token_live(&self, jti: &str, client_id: &str) -> Result<bool, IdentityError> {
        let grant = jti.split_once('.').map(|(g, _)| g.to_string());
        let (revoked, clients, live_grants): (i64, i64, i64) = with_pool!(&self.db, pool => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM auth.oidc_revoked_tokens WHERE jti = $1), \
             (SELECT COUNT(*) FROM auth.oidc_clients WHERE client_id = $2), \
             (SELECT COUNT(*) FROM auth.oidc_grants WHERE id = $3 AND revoked_at IS NULL)")
            .bind(jti)
            .bind(client_id)
            .bind(grant.as_deref().unwrap_or_default())
            .fetch_one(pool)
            .await)?;
        Ok(revoked == 0 && clients == 1 && (grant.is_none() || live_grants == 1))
    }

    /// Revokes one access token by jti until it expires.
    pub async fn revoke_access_token(&self, jti: &str, exp: i64) -> Result<(), IdentityError> {
        let now = Timestamp::now();
        let expires = Timestamp(chrono::DateTime::from_timestamp(exp, 0).unwrap_or(now.0));
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

    // Remembered consent.

    pub async fn consented_scopes(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, IdentityError> {
        let row: Option<String> = with_pool!(&self.db, pool => sqlx::query_scalar("SELECT scopes FROM auth.oidc_consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        Ok(crate::storage::json_column_opt("oidc_consents.scopes", row)?.unwrap_or_default())
    }

    pub async fn consent_covers(&self, user_id: &str, client_id: &str, scopes: &[String]) -> Result<bool, IdentityError> {
        let granted = self.consented_scopes(user_id, client_id).await?;
        Ok(!granted.is_empty() && scopes.iter().all(|s| granted.contains(s)))
    }

    /// Adds `scopes` to what the user allowed the client.
    pub async fn remember_consent(&self, user_id: &str, client_id: &str, scopes: &[String]) -> Result<(), IdentityError> {
        let mut all = self.consented_scopes(user_id, client_id).await?;
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        let now = Timestamp::now();
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth.oidc_consents (user_id, client_id, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at")
            .bind(user_id)
            .bind(client_id)
            .bind(json_text(&all))
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Forgets a user's consent to one client (or to every client).
    pub async fn revoke_consent(&self, user_id: &str, client_id: Option<&str>) -> Result<u64, IdentityError> {
        let n = with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_consents WHERE user_id = $1 AND ($2 IS NULL OR client_id = $2)")
            .bind(user_id)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
