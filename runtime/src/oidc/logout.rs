//! Logout: RP-Initiated Logout 1.0 at the `end_session_endpoint`, and Back-Channel Logout 1.0.
//!
//! When a browser session ends, however it ends (this endpoint, the logout page, an admin
//! revoking it, another user signing in in that browser), in the same transaction every client that got an ID token in it and has a
//! `backchannel_logout_uri` is sent a signed Logout Token. Tokens wait in
//! `auth.oidc_logout_deliveries` until delivered, so a restart or a client that is down loses
//! none; the `next_attempt_at` lease keeps two engines from sending the same one. Grants bound
//! to the session (those without `offline_access`) end with it.

use serde_json::{json, Value};
use sqlx::Row;

use super::jwt::Expect;
use super::{later, now_secs, with_params, Params, Reply};
use crate::crypto::random_token;
use crate::identity::sessions::Session;
use crate::identity::users::User;
use crate::identity::{ids, Identity, IdentityError};
use crate::storage::Timestamp;
use crate::with_pool;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Deliveries give up after this many attempts (the last about a day after the first).
const MAX_ATTEMPTS: i64 = 12;
/// How long an engine holds a delivery it is sending before another may try it.
const LEASE_SECS: u64 = 60;

/// A logout request that cannot be honoured: a page, never a redirect.
fn refuse(why: &str) -> Reply {
    Reply::titled_error_page(400, "invalid_request", "This sign-out request cannot be completed", why)
}

fn retry_delay(attempts: i64) -> u64 {
    (5u64 << attempts.clamp(0, 20)).min(4 * 3600)
}

impl Identity {
    /// `GET`/`POST /auth/oauth2/sessions/logout`. `csrf` is the token the confirmation page
    /// carries; `confirmed` is true for a POST of that page with a valid token.
    pub async fn end_session(
        &self,
        pairs: Vec<(String, String)>,
        browser: Option<&(Session, User)>,
        csrf: Option<String>,
        confirmed: bool,
    ) -> Result<Reply, IdentityError> {
        let p = match Params::new(pairs) {
            Ok(p) => p,
            Err(e) => return Ok(refuse(&e.description)),
        };
        let hint = match p.get("id_token_hint") {
            None => None,
            Some(t) => {
                // An ID token (typ JWT), not an access or Logout Token of this provider.
                let expect = Expect {
                    issuer: Some(self.config.auth.issuer.clone()),
                    typ: Some("JWT".into()),
                    allow_expired: true,
                    ..Default::default()
                };
                match self.verify_jwt(t, &expect).await {
                    Ok(c) => Some(c),
                    Err(IdentityError::InvalidJwt(why)) => {
                        return Ok(refuse(&format!("id_token_hint is not an ID token of this provider ({why})")))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let hint_client = hint.as_ref().and_then(|c| match &c["aud"] {
            Value::String(a) => Some(a.clone()),
            Value::Array(list) => list.first().and_then(|a| a.as_str()).map(str::to_string),
            _ => None,
        });
        let client_id = match (p.get("client_id"), hint_client.as_deref()) {
            (Some(a), Some(b)) if a != b => return Ok(refuse("client_id differs from the id_token_hint's audience")),
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b.map(str::to_string),
        };
        let client = match &client_id {
            None => None,
            Some(id) => match self.get_client(id).await {
                Ok(c) => Some(c),
                Err(IdentityError::NotFound(_)) => return Ok(refuse("no client is registered with that client_id")),
                Err(e) => return Err(e),
            },
        };
        let target = match p.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => match &client {
                None => return Ok(refuse("post_logout_redirect_uri needs id_token_hint or client_id")),
                Some(c) if c.settings.post_logout_redirect_uris.iter().any(|u| u == uri) => Some(uri.to_string()),
                Some(_) => return Ok(refuse("post_logout_redirect_uri is not registered for this client")),
            },
        };
        let done = |ended: bool| {
            let mut r = match &target {
                Some(uri) => {
                    let mut params: Vec<(&str, &str)> = Vec::new();
                    if let Some(s) = p.get("state") {
                        params.push(("state", s));
                    }
                    Reply::redirect(with_params(uri, &params))
                }
                None => Reply::redirect("/auth/login?logged_out=1".into()),
            };
            r.clear_session = ended;
            r
        };
        let Some((session, user)) = browser else { return Ok(done(false)) };
        // The RP proves which session it means with an ID token of it: no question to ask.
        let hinted = hint.as_ref().is_some_and(|h| match h["sid"].as_str() {
            Some(sid) => sid == session.id,
            None => h["sub"].as_str() == Some(user.id.as_str()),
        });
        if hinted || confirmed {
            self.revoke_session(&session.id).await?;
            crate::identity::audit::append(
                self,
                &Default::default(),
                crate::identity::audit::Entry::new("session.logout")
                    .actor(&format!("user:{}", user.id))
                    .target(&session.id)
                    .detail("via", "end_session_endpoint"),
            )
            .await?;
            return Ok(done(true));
        }
        let fields: Vec<Value> = ["id_token_hint", "post_logout_redirect_uri", "state", "client_id"]
            .iter()
            .filter_map(|k| p.get(k).map(|v| json!({ "name": k, "value": v })))
            .collect();
        Ok(Reply::page(
            200,
            "end_session.html",
            json!({
                "csrf_token": csrf,
                "fields": fields,
                "email": user.email,
                "client_name": client.as_ref().map(|c| c.name.clone()),
            }),
        ))
    }

    /// Ends the browser sessions whose `column` is `value` and, in the same transaction, queues
    /// a Logout Token for each client that got an ID token in one of them and ends the grants
    /// bound to them: either all of it happens or none. Returns the ended sessions' ids.
    pub async fn end_sessions(&self, column: &'static str, value: &str) -> Result<Vec<String>, IdentityError> {
        let delete = format!("DELETE FROM auth.sessions WHERE {column} = $1 RETURNING id");
        // Grants without offline_access live only as long as the session.
        let bound =
            "SELECT id FROM auth.oidc_grants WHERE session_id = $1 AND revoked_at IS NULL AND scopes NOT LIKE '%\"offline_access\"%'";
        let revoke_tokens = format!("UPDATE auth.oidc_refresh_tokens SET revoked = TRUE WHERE grant_id IN ({bound})");
        let revoke_grants = format!("UPDATE auth.oidc_grants SET revoked_at = $2 WHERE id IN ({bound})");
        let now = Timestamp::now();
        let (sids, queued) = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let sids: Vec<String> = sqlx::query_scalar(&delete).bind(value).fetch_all(&mut *tx).await?;
            let mut queued = 0;
            for sid in &sids {
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
                        "iss": self.config.auth.issuer,
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
            }
            tx.commit().await?;
            (sids, queued)
        });
        if queued > 0 {
            self.logout_wakeup.notify_one();
        }
        Ok(sids)
    }

    /// Sends the Logout Tokens that are due; returns how many were delivered.
    pub async fn deliver_logout_tokens(&self, http: &reqwest::Client) -> Result<usize, IdentityError> {
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
            let token = self.sign_jwt(&alg, Some("logout+jwt"), &claims).await?;
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
