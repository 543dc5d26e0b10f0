//! Back-channel Logout 1.0: the queue of Logout Tokens. When a browser session ends, however it
//! ends, the sessions service runs [`LogoutQueue`]'s hook in the transaction that deletes it:
//! every client that got an ID token in that session and has a `backchannel_logout_uri` gets a
//! row in `auth.oidc_logout_deliveries`, and the grants bound to the session (those without
//! `offline_access`) end. Rows wait until delivered, so a restart or a client that is down
//! loses none; the `next_attempt_at` lease keeps two engines from sending the same one.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::keys::SigningKeys;
use super::store::{Delivery, LogoutStore};
use super::{later, now_secs};
use crate::crypto::random_token;
use crate::identity::sessions::EndHook;
use crate::identity::IdentityError;
use crate::storage::{Conn, Db, Timestamp};

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
    store: LogoutStore,
    issuer: String,
    signing: SigningKeys,
    /// Woken when Logout Tokens are queued, so the deliverer sends them at once.
    wakeup: Arc<tokio::sync::Notify>,
}

impl EndHook for LogoutQueue {
    /// Queues the Logout Tokens of session `sid` and ends its bound grants, in the transaction
    /// that ends the session; returns how many tokens it queued.
    fn ending<'a>(&'a self, conn: Conn<'a>, sid: &'a str) -> BoxFuture<'a, Result<usize, sqlx::Error>> {
        Box::pin(async move {
            let delivery = |client_id: &str, user_id: &str, settings: &str| {
                let settings: super::clients::Settings = match serde_json::from_str(settings) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(client_id, error = %e, "a client's settings do not parse; no Logout Token for it");
                        return None;
                    }
                };
                let uri = settings.backchannel_logout_uri?;
                // iat and exp are set when it is signed, at each attempt.
                let claims = json!({
                    "iss": self.issuer,
                    "aud": client_id,
                    "jti": random_token(16),
                    "sub": user_id,
                    "sid": sid,
                    "events": { EVENT: {} },
                });
                Some(Delivery { uri, claims: claims.to_string(), alg: settings.id_token_signed_response_alg })
            };
            self.store.end_session(conn, sid, Timestamp::now(), delivery).await
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
        LogoutQueue { store: LogoutStore::new(db), issuer, signing, wakeup: Default::default() }
    }

    /// Resolves when a logout has queued tokens (the deliverer also polls, for retries and for
    /// rows other engines queued).
    pub async fn queued(&self) {
        self.wakeup.notified().await
    }

    /// Sends the Logout Tokens that are due; returns how many were delivered.
    pub async fn deliver(&self, http: &reqwest::Client) -> Result<usize, IdentityError> {
        let now = Timestamp::now();
        let due = self.store.due(now).await?;
        let mut delivered = 0;
        for super::store::Due { id, uri, claims, alg, attempts, next_attempt_at: was } in due {
            // Take the lease; another engine that read the same row loses here.
            let leased = self.store.lease(&id, was, later(LEASE_SECS)).await?;
            if !leased {
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
                    self.store.delete(&id).await?;
                }
                Some(why) if attempts + 1 >= MAX_ATTEMPTS => {
                    tracing::warn!(uri, attempts = attempts + 1, error = why, "back-channel logout given up");
                    self.store.delete(&id).await?;
                }
                Some(why) => {
                    tracing::info!(uri, attempts = attempts + 1, error = why, "back-channel logout failed; will retry");
                    self.store.retry_later(&id, attempts + 1, later(retry_delay(attempts + 1)), &why).await?;
                }
            }
        }
        Ok(delivered)
    }
}
