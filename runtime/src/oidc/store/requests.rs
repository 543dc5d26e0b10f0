//! `auth.oidc_auth_requests` (authorization requests parked while the user signs in and
//! consents) and `auth.oidc_authorization_codes`. Redeeming a code also writes what it gives:
//! the grant (`auth.oidc_grants`), its first refresh token and the client's place in the
//! browser session (`auth.oidc_sessions`), in the transaction that claims the code.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use super::NewRefresh;
use crate::storage::{Db, Timestamp};
use crate::with_pool;

/// A parked request's row.
pub struct Parked {
    pub request: AuthRequest,
    pub browser_hash: String,
    pub stage: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: Option<Vec<String>>,
    pub acr: Option<String>,
    pub granted: Option<Vec<String>>,
    pub remember: bool,
    pub error: Option<(String, String)>,
}

/// A code to store; lists and the claims request are JSON text.
pub struct NewCode<'a> {
    pub code_hash: String,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: String,
    pub nonce: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub auth_time: i64,
    pub amr: String,
    pub acr: &'a str,
    pub claims: Option<String>,
    pub expires_at: Timestamp,
}

/// A stored code; lists and the claims request are JSON text, copied as is into the grant.
pub struct CodeRow {
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub redirect_uri: String,
    pub scopes: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub acr: Option<String>,
    pub claims: Option<String>,
    pub grant_id: Option<String>,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

#[derive(Clone)]
pub struct RequestStore {
    db: Db,
}

impl RequestStore {
    pub fn new(db: Db) -> RequestStore {
        RequestStore { db }
    }

    /// Parks a request at the login stage, dropping expired ones on the way (an index on
    /// expires_at keeps this cheap).
    pub async fn park(
        &self,
        challenge_hash: &str,
        client_id: &str,
        request: &str,
        browser_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM auth.oidc_auth_requests WHERE expires_at < $1").bind(now).execute(pool).await?;
            sqlx::query("INSERT INTO auth.oidc_auth_requests (challenge_hash, client_id, request, browser_hash, stage, created_at, expires_at) VALUES ($1, $2, $3, $4, 'login', $5, $6)")
                .bind(challenge_hash)
                .bind(client_id)
                .bind(request)
                .bind(browser_hash)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records who signed in (`amr` as JSON text) and moves the request to consent.
    pub async fn set_login(
        &self,
        challenge_hash: &str,
        user_id: &str,
        session_id: &str,
        auth_time: i64,
        amr: &str,
        acr: &str,
    ) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth.oidc_auth_requests SET stage = 'consent', user_id = $2, session_id = $3, auth_time = $4, amr = $5, acr = $6 WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .bind(user_id)
            .bind(session_id)
            .bind(auth_time)
            .bind(amr)
            .bind(acr)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Removes a parked request; false when it was already gone.
    pub async fn forget(&self, challenge_hash: &str) -> Result<bool, sqlx::Error> {
        let n = with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_auth_requests WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The parked request, unless it expired by `now`.
    pub async fn parked(&self, challenge_hash: &str, now: Timestamp) -> Result<Option<Parked>, sqlx::Error> {
        with_pool!(&self.db, pool => {
            match sqlx::query(
                "SELECT request, browser_hash, stage, user_id, session_id, auth_time, amr, acr, granted_scopes, remember, error FROM auth.oidc_auth_requests \
                 WHERE challenge_hash = $1 AND expires_at > $2")
                .bind(challenge_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?
            {
                None => Ok(None),
                Some(r) => {
                    let request: String = r.try_get("request")?;
                    let amr: Option<String> = r.try_get("amr")?;
                    let granted: Option<String> = r.try_get("granted_scopes")?;
                    let error: Option<String> = r.try_get("error")?;
                    Ok(Some(Parked {
                        request: serde_json::from_str(&request).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        browser_hash: r.try_get("browser_hash")?,
                        stage: r.try_get("stage")?,
                        user_id: r.try_get("user_id")?,
                        session_id: r.try_get("session_id")?,
                        auth_time: r.try_get("auth_time")?,
                        amr: crate::storage::json_column_opt("oidc_auth_requests.amr", amr)?,
                        acr: r.try_get("acr")?,
                        granted: crate::storage::json_column_opt("oidc_auth_requests.granted_scopes", granted)?,
                        remember: r.try_get("remember")?,
                        error: crate::storage::json_column_opt("oidc_auth_requests.error", error)?,
                    }))
                }
            }
        })
    }

    /// Back to the login stage, forgetting who signed in and what they allowed.
    pub async fn restart_login(&self, challenge_hash: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_auth_requests SET stage = 'login', user_id = NULL, session_id = NULL, granted_scopes = NULL WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Ends the request with `error` (JSON text of `[code, description]`).
    pub async fn set_error(&self, challenge_hash: &str, error: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_auth_requests SET error = $2 WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Records the consent (`granted` as JSON text) and marks the request done.
    pub async fn set_consent(&self, challenge_hash: &str, granted: &str, remember: bool) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_auth_requests SET stage = 'done', granted_scopes = $2, remember = $3 WHERE challenge_hash = $1")
            .bind(challenge_hash)
            .bind(granted)
            .bind(remember)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Stores a code, dropping expired ones on the way.
    pub async fn insert_code(&self, c: &NewCode<'_>, now: Timestamp) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => {
            sqlx::query("DELETE FROM auth.oidc_authorization_codes WHERE expires_at < $1").bind(now).execute(pool).await?;
            sqlx::query(
                "INSERT INTO auth.oidc_authorization_codes (code_hash, client_id, user_id, session_id, redirect_uri, scopes, nonce, code_challenge, auth_time, amr, acr, claims, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
                .bind(c.code_hash.as_str())
                .bind(c.client_id)
                .bind(c.user_id)
                .bind(c.session_id)
                .bind(c.redirect_uri)
                .bind(c.scopes.as_str())
                .bind(c.nonce)
                .bind(c.code_challenge)
                .bind(c.auth_time)
                .bind(c.amr.as_str())
                .bind(c.acr)
                .bind(c.claims.as_deref())
                .bind(now)
                .bind(c.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn find_code(&self, code_hash: &str) -> Result<Option<CodeRow>, sqlx::Error> {
        with_pool!(&self.db, pool => {
            match sqlx::query(
                "SELECT client_id, user_id, session_id, redirect_uri, scopes, nonce, code_challenge, auth_time, amr, acr, claims, grant_id, expires_at, used_at \
                 FROM auth.oidc_authorization_codes WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(pool)
                .await?
            {
                None => Ok(None),
                Some(r) => Ok(Some(CodeRow {
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    scopes: r.try_get("scopes")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    auth_time: r.try_get("auth_time")?,
                    amr: r.try_get("amr")?,
                    acr: r.try_get("acr")?,
                    claims: r.try_get("claims")?,
                    grant_id: r.try_get("grant_id")?,
                    expires_at: r.try_get("expires_at")?,
                    used_at: r.try_get("used_at")?,
                })),
            }
        })
    }

    /// In one transaction whose first statement claims the code (an UPDATE conditional on it
    /// being unused, so two racing redemptions cannot both win): the grant `grant_id` for the
    /// code's user with its scopes and claims request, its first refresh token if any,
    /// and, when `session` is given, the client's row in that browser session. False when the
    /// code was already used; nothing is written then.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        code: &CodeRow,
        grant_id: &str,
        refresh: Option<&NewRefresh<'_>>,
        session: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE auth.oidc_authorization_codes SET used_at = $2, grant_id = $3 WHERE code_hash = $1 AND used_at IS NULL")
                .bind(code_hash)
                .bind(now)
                .bind(grant_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                sqlx::query("INSERT INTO auth.oidc_grants (id, client_id, user_id, session_id, scopes, claims, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(grant_id)
                    .bind(&code.client_id)
                    .bind(&code.user_id)
                    .bind(&code.session_id)
                    .bind(&code.scopes)
                    .bind(&code.claims)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if let Some(rt) = refresh {
                    insert_refresh!(tx, rt)?;
                }
                if let Some(sid) = session {
                    sqlx::query("INSERT INTO auth.oidc_sessions (sid, client_id, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sid, client_id) DO NOTHING")
                        .bind(sid)
                        .bind(&code.client_id)
                        .bind(&code.user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(n == 1)
        })
    }
}

/// An authorization request once checked, as it is parked and later turned into a code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Vec<String>,
    pub claims: Option<Value>,
    pub created_at: i64,
}
