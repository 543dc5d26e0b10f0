//! `auth.sessions`: opaque browser sessions. The cookie carries 256 random bits; the table
//! keeps their SHA-256 (`token_hash`) beside a public id used by the admin API and as the OIDC
//! `sid`. A session ends at its absolute expiry or after `idle_timeout_secs` without use,
//! whichever comes first; a disabled user's sessions do not load.

use std::sync::Arc;

use super::secrets::ServerKeys;
use super::store::sessions::NewSession;
use super::store::users::User;
use super::store::SessionStore;
use super::{ids, Context, IdentityError};
use crate::config::SessionConfig;
use crate::crypto::{random_token, sha256_hex};
use crate::storage::{Db, Timestamp};

pub use super::store::sessions::{EndHook, NoEndHook, Session};

/// How often `last_seen_at` is written at most: a write per request would make every page
/// view a database write.
const TOUCH_EVERY_SECS: i64 = 60;

/// One page of sessions.
pub type Page = crate::storage::Page<Session>;

fn later(now: Timestamp, secs: u64) -> Timestamp {
    Timestamp(now.0 + chrono::Duration::seconds(secs as i64))
}

/// The browser sessions service.
#[derive(Clone)]
pub struct Sessions {
    store: SessionStore,
    rules: SessionConfig,
    keys: Arc<ServerKeys>,
    hook: Arc<dyn EndHook>,
}

impl Sessions {
    pub fn new(db: Db, rules: SessionConfig, keys: Arc<ServerKeys>, hook: Arc<dyn EndHook>) -> Sessions {
        Sessions { store: SessionStore::new(db), rules, keys, hook }
    }

    /// A session for `user_id`; returns the cookie value (shown once) and the session.
    /// `replaces` (the cookie the browser came with) stops working: a login always gets a new
    /// secret. If it was another user's session, that session ends; if it was this user's, it
    /// is re-keyed and keeps its public id.
    ///
    /// `audit`, when given, is written in the same transaction as the session: the log never
    /// shows a sign-in that made no session (nor a session without its entry).
    pub async fn create(
        &self,
        user_id: &str,
        amr: &[String],
        ctx: &Context,
        replaces: Option<&str>,
        audit: Option<super::audit::Entry>,
    ) -> Result<(String, Session), IdentityError> {
        let mut same_sid = None;
        if let Some(old) = replaces {
            match self.load(old).await? {
                // The same user signing in again (prompt=login, max_age, a rotation): the same
                // session, so the same OIDC sid, under a new secret and CSRF token. The old
                // cookie dies all the same, and the relying parties holding the sid are not
                // sent Logout Tokens for a session that goes on.
                Some((s, u)) if u.id == user_id => same_sid = Some(s.id),
                _ => {
                    self.revoke_by_token(old).await?;
                }
            }
        }
        let cfg = &self.rules;
        let token = random_token(32);
        let now = Timestamp::now();
        let expires = later(now, cfg.ttl_secs);
        let idle = later(now, cfg.idle_timeout_secs).min(expires);
        let amr_json = serde_json::to_string(amr).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let user_agent = ctx.user_agent.as_ref().map(|ua| ua.chars().take(512).collect::<String>());
        let token_hash = sha256_hex(token.as_bytes());
        let mut rekey = same_sid;
        let id = loop {
            let id = rekey.clone().unwrap_or_else(ids::new_id);
            let audit_row = match &audit {
                Some(e) => Some(super::audit::StoredEntry::new(ctx, e.clone().detail("session_id", id.clone()))?),
                None => None,
            };
            let row = NewSession {
                id: &id,
                token_hash: &token_hash,
                user_id,
                csrf_token: &random_token(32),
                now,
                expires,
                idle_expires: idle,
                ip: ctx.ip.as_deref(),
                user_agent: user_agent.as_deref(),
                amr: &amr_json,
            };
            let written = self.store.write(&row, rekey.is_some(), audit_row.as_ref()).await?;
            if written {
                break id;
            }
            // The session to re-key ended meanwhile (a sign-out in another tab): nothing was
            // written, and a new session is made instead.
            rekey = None;
        };
        let session = self
            .store
            .find_by("s.id", &id)
            .await?
            .map(|(s, _, _)| s)
            .ok_or_else(|| IdentityError::Internal("the new session vanished".into()))?;
        Ok((token, session))
    }

    /// The live session a cookie value names, with its user; `None` when unknown, expired, idle
    /// too long, or its user is disabled.
    pub async fn load(&self, token: &str) -> Result<Option<(Session, User)>, IdentityError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some((session, user, last_seen)) = self.store.find_by("s.token_hash", &sha256_hex(token.as_bytes())).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let alive = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|t| t > now.0).unwrap_or(false);
        if !alive(&session.expires_at) || !alive(&session.idle_expires_at) || user.disabled {
            return Ok(None);
        }
        if (now.0 - last_seen.0).num_seconds() >= TOUCH_EVERY_SECS {
            let cfg = &self.rules;
            let expires = chrono::DateTime::parse_from_rfc3339(&session.expires_at).map(|t| Timestamp(t.to_utc())).unwrap_or(now);
            let idle = later(now, cfg.idle_timeout_secs).min(expires);
            self.store.touch(&session.id, now, idle).await?;
        }
        Ok(Some((session, user)))
    }

    /// The same user and methods under a new secret and CSRF token (after a privilege change);
    /// the public id, which relying parties know as `sid`, stays.
    pub async fn rotate(&self, token: &str, ctx: &Context) -> Result<Option<(String, Session)>, IdentityError> {
        let Some((old, user)) = self.load(token).await? else { return Ok(None) };
        let (token, session) = self.create(&user.id, &old.amr, ctx, Some(token), None).await?;
        Ok(Some((token, session)))
    }

    pub async fn revoke_by_token(&self, token: &str) -> Result<bool, IdentityError> {
        let ended = self.end("token_hash", &sha256_hex(token.as_bytes())).await?;
        Ok(!ended.is_empty())
    }

    pub async fn revoke(&self, id: &str) -> Result<(), IdentityError> {
        if self.end("id", id).await?.is_empty() {
            return Err(IdentityError::NotFound("no session with that id".into()));
        }
        Ok(())
    }

    /// Ends every session of a user; returns how many there were.
    pub async fn revoke_user(&self, user_id: &str) -> Result<u64, IdentityError> {
        Ok(self.end("user_id", user_id).await?.len() as u64)
    }

    /// Ends the sessions whose `column` is `value` and, in the same transaction, whatever the
    /// end hook adds (the provider's Logout Tokens): all of it happens or none. Returns the
    /// ended sessions' ids.
    pub async fn end(&self, column: &'static str, value: &str) -> Result<Vec<String>, IdentityError> {
        let (sids, queued) = self.store.end(column, value, &*self.hook).await?;
        self.hook.ended(queued);
        Ok(sids)
    }

    /// Live sessions, newest first, of one user or of everyone.
    pub async fn list(&self, user_id: Option<&str>, limit: i64, cursor: Option<&str>) -> Result<Page, IdentityError> {
        let limit = limit.clamp(1, crate::storage::MAX_PAGE);
        let now = Timestamp::now();
        Ok(self.store.list(user_id, limit, cursor, now).await?)
    }

    /// The CSRF token of an anonymous visitor: a MAC of their `assay_csrf` cookie, so it needs
    /// no row and cannot be forged without the master key.
    pub fn anonymous_csrf_token(&self, cookie: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.keys.mac("assay/csrf/v1", cookie.as_bytes()))
    }
}
