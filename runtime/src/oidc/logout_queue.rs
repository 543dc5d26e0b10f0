//! Back-channel Logout 1.0: the queue of Logout Tokens. When a browser session ends, however it
//! ends, the sessions service runs [`LogoutQueue`]'s hook in the transaction that deletes it:
//! every client that got an ID token in that session and has a `backchannel_logout_uri` gets a
//! row in `auth.oidc_logout_deliveries`, and the grants bound to the session (those without
//! `offline_access`) end. Rows wait until delivered, so a restart or a client that is down
//! loses none; the `next_attempt_at` lease keeps two engines from sending the same one.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use sqlx::Row;

use super::keys::SigningKeys;
use super::{later, now_secs};
use crate::crypto::random_token;
use crate::identity::sessions::EndHook;
use crate::identity::{ids, IdentityError};
use crate::storage::{Conn, Db, Timestamp};
use crate::{with_conn, with_pool};

pub(crate) const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Deliveries give up after this many attempts (the last about a day after the first).
const MAX_ATTEMPTS: i64 = 12;
/// How long an engine holds a delivery it is sending before another may try it.
const LEASE_SECS: u64 = 60;

fn retry_delay(attempts: i64) -> u64 {
    (5u64 << attempts.clamp(0, 20)).min(4 * 3600)
}

/// The Logout Token queue and its deliverer.
#[derive(Clone)]
pub struct LogoutQueue {
    db: Db,
    issuer: String,
    signing: SigningKeys,
    /// Woken when Logout Tokens are queued, so the deliverer sends them at once.
    wakeup: Arc<tokio::sync::Notify>,
}

impl EndHook for LogoutQueue {
    /// Queues the Logout Tokens of session `sid` and ends its bound grants, in the transaction
    /// that ends the session; returns how many tokens it queued.
    fn ending<'a>(&'a self, conn: Conn<'a>, sid: &'a str) -> BoxFuture<'a, Result<usize, sqlx::Error>> {
        // Grants without offline_access live only as long as the session.
        const BOUND: &str =
            "SELECT id FROM auth.oidc_grants WHERE session_id = $1 AND revoked_at IS NULL AND scopes NOT LIKE '%\"offline_access\"%'";
        Box::pin(async move {
            let revoke_tokens = format!("UPDATE auth.oidc_refresh_tokens SET revoked = TRUE WHERE grant_id IN ({BOUND})");
            let revoke_grants = format!("UPDATE auth.oidc_grants SET revoked_at = $2 WHERE id IN ({BOUND})");
            let now = Timestamp::now();
            let mut queued = 0;
            with_conn!(conn, tx => {
                let rows = sqlx::query("SELECT s.client_id, s.user_id, c.settings FROM auth.oidc_sessions s JOIN auth.oidc_clients c ON c.client_id = s.client_id WHERE s.sid = $1")
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?;
                for r in &rows {
                    let client_id: String = r.try_get("client_id")?;
                    let user_id: String = r.try_get("user_id")?;
                    let settings: String = r.try_get("settings")?;
                    let settings: super::clients::Settings = match serde_json::from_str(&settings) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!(client_id, error = %e, "a client's settings do not parse; no Logout Token for it");
                            continue;
                        }
                    };
                    let Some(uri) = settings.backchannel_logout_uri else { continue };
                    // iat and exp are set when it is signed, at each attempt.
                    let claims = json!({
                        "iss": self.issuer,
                        "aud": client_id,
                        "jti": random_token(16),
                        "sub": user_id,
                        "sid": sid,
                        "events": { EVENT: {} },
                    });
                    sqlx::query("INSERT INTO auth.oidc_logout_deliveries (id, client_id, uri, claims, alg, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
                        .bind(ids::new_id())
                        .bind(&client_id)
                        .bind(&uri)
                        .bind(claims.to_string())
                        .bind(&settings.id_token_signed_response_alg)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    queued += 1;
                }
                sqlx::query("DELETE FROM auth.oidc_sessions WHERE sid = $1").bind(sid).execute(&mut *tx).await?;
                sqlx::query(&revoke_tokens).bind(sid).execute(&mut *tx).await?;
                sqlx::query(&revoke_grants).bind(sid).bind(now).execute(&mut *tx).await?;
            });
            Ok(queued)
        })
    }

    fn ended(&self, queued: usize) {
        if queued > 0 {
            self.wakeup.notify_one();
        }
    }
}

impl LogoutQueue {
    pub fn new(db: Db, issuer: String, signing: SigningKeys) -> LogoutQueue {
        LogoutQueue { db, issuer, signing, wakeup: Default::default() }
    }

    /// Resolves when a logout has queued tokens (the deliverer also polls, for retries and for
    /// rows other engines queued).
    pub async fn queued(&self) {
        self.wakeup.notified().await
    }

    /// Sends the Logout Tokens that are due; returns how many were delivered.
    pub async fn deliver(&self, http: &reqwest::Client) -> Result<usize, IdentityError> {
        let now = Timestamp::now();
        type Due = (String, String, String, String, i64, Timestamp);
        let due: Vec<Due> = with_pool!(&self.db, pool => {
            let rows = sqlx::query("SELECT id, uri, claims, alg, attempts, next_attempt_at FROM auth.oidc_logout_deliveries WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 50")
                .bind(now)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("uri")?, r.try_get("claims")?, r.try_get("alg")?, r.try_get("attempts")?, r.try_get("next_attempt_at")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut delivered = 0;
        for (id, uri, claims, alg, attempts, was) in due {
            // Take the lease; another engine that read the same row loses here.
            let leased = with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_logout_deliveries SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2")
                .bind(&id)
                .bind(was)
                .bind(later(LEASE_SECS))
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
            if leased == 0 {
                continue;
            }
            let mut claims: Value = serde_json::from_str(&claims).map_err(|e| IdentityError::Internal(e.to_string()))?;
            let iat = now_secs();
            claims["iat"] = json!(iat);
            claims["exp"] = json!(iat + 120);
            let token = self.signing.sign(&alg, Some("logout+jwt"), &claims).await?;
            let sent = http.post(&uri).form(&[("logout_token", token.as_str())]).timeout(std::time::Duration::from_secs(10)).send().await;
            let problem = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("the client answered {}", r.status())),
                Err(e) => Some(format!("cannot reach the client: {e}")),
            };
            match problem {
                None => {
                    delivered += 1;
                    with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_logout_deliveries WHERE id = $1").bind(&id).execute(pool).await.map(|_| ()))?;
                }
                Some(why) if attempts + 1 >= MAX_ATTEMPTS => {
                    tracing::warn!(uri, attempts = attempts + 1, error = why, "back-channel logout given up");
                    with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_logout_deliveries WHERE id = $1").bind(&id).execute(pool).await.map(|_| ()))?;
                }
                Some(why) => {
                    tracing::info!(uri, attempts = attempts + 1, error = why, "back-channel logout failed; will retry");
                    with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_logout_deliveries SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1")
                        .bind(&id)
                        .bind(attempts + 1)
                        .bind(later(retry_delay(attempts + 1)))
                        .bind(&why)
                        .execute(pool)
                        .await
                        .map(|_| ()))?;
                }
            }
        }
        Ok(delivered)
    }
}
