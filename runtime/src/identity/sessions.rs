//! `auth.sessions`: opaque browser sessions. The cookie carries 256 random bits; the table
//! keeps their SHA-256 (`token_hash`) beside a public id used by the admin API and as the OIDC
//! `sid`. A session ends at its absolute expiry or after `idle_timeout_secs` without use,
//! whichever comes first; a disabled user's sessions do not load.

use serde::Serialize;
use sqlx::Row;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::secrets::ServerKeys;
use super::users::{rfc3339, User};
use super::{ids, Context, IdentityError};
use crate::config::SessionConfig;
use crate::crypto::{random_token, sha256_hex};
use crate::storage::{Conn, Db, Timestamp};
use crate::with_pool;

/// How often `last_seen_at` is written at most: a write per request would make every page
/// view a database write.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip)]
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub idle_expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
}

/// One page of sessions.
pub type Page = crate::storage::Page<Session>;

const SESSION_COLUMNS: &str = "s.id AS s_id, s.user_id AS s_user_id, s.csrf_token AS s_csrf_token, s.created_at AS s_created_at, \
     s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at, s.idle_expires_at AS s_idle_expires_at, s.ip AS s_ip, \
     s.user_agent AS s_user_agent, s.amr AS s_amr, u.email AS s_email";

fn session_from_row<R: Row>(row: &R) -> Result<(Session, Timestamp), sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> Timestamp: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let amr: String = row.try_get("s_amr")?;
    let last_seen: Timestamp = row.try_get("s_last_seen_at")?;
    let s = Session {
        id: row.try_get("s_id")?,
        user_id: row.try_get("s_user_id")?,
        email: row.try_get("s_email")?,
        csrf_token: row.try_get("s_csrf_token")?,
        created_at: rfc3339(row.try_get("s_created_at")?),
        last_seen_at: rfc3339(last_seen),
        expires_at: rfc3339(row.try_get("s_expires_at")?),
        idle_expires_at: rfc3339(row.try_get("s_idle_expires_at")?),
        ip: row.try_get("s_ip")?,
        user_agent: row.try_get("s_user_agent")?,
        amr: crate::storage::json_column("sessions.amr", &amr)?,
    };
    Ok((s, last_seen))
}

fn later(now: Timestamp, secs: u64) -> Timestamp {
    Timestamp(now.0 + chrono::Duration::seconds(secs as i64))
}

/// What else ends with a browser session, in the transaction that deletes it: the OpenID
/// provider's Logout Tokens and session-bound grants. The provider registers it when the
/// services are built; sessions do not know its tables.
pub trait EndHook: Send + Sync {
    /// Statements for the ending session `sid`; returns how many notices it queued.
    fn ending<'a>(&'a self, conn: Conn<'a>, sid: &'a str) -> BoxFuture<'a, Result<usize, sqlx::Error>>;
    /// After the commit, with the sum of what `ending` returned.
    fn ended(&self, queued: usize);
}

/// Nothing else ends with a session (an engine without the OpenID provider's tables, tests).
pub struct NoEndHook;

impl EndHook for NoEndHook {
    fn ending<'a>(&'a self, _conn: Conn<'a>, _sid: &'a str) -> BoxFuture<'a, Result<usize, sqlx::Error>> {
        Box::pin(async { Ok(0) })
    }
    fn ended(&self, _queued: usize) {}
}

/// The browser sessions service.
#[derive(Clone)]
pub struct Sessions {
    db: Db,
    rules: SessionConfig,
    keys: Arc<ServerKeys>,
    hook: Arc<dyn EndHook>,
}

impl Sessions {
    pub fn new(db: Db, rules: SessionConfig, keys: Arc<ServerKeys>, hook: Arc<dyn EndHook>) -> Sessions {
        Sessions { db, rules, keys, hook }
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
        let mut rekey = same_sid;
        let id = loop {
            let id = rekey.clone().unwrap_or_else(ids::new_id);
            // The re-key and the insert bind the same parameters in the same places.
            let sql = if rekey.is_some() {
                "UPDATE auth.sessions SET token_hash = $2, csrf_token = $4, created_at = $5, last_seen_at = $5, expires_at = $6, idle_expires_at = $7, \
                 ip = $8, user_agent = $9, amr = $10 WHERE id = $1 AND user_id = $3"
            } else {
                "INSERT INTO auth.sessions (id, token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, idle_expires_at, ip, user_agent, amr) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)"
            };
            let audit_row = match &audit {
                Some(e) => Some(super::audit::StoredEntry::new(ctx, e.clone().detail("session_id", id.clone()))?),
                None => None,
            };
            let written = with_pool!(&self.db, pool => {
                let mut tx = pool.begin().await?;
                let n = sqlx::query(sql)
                    .bind(&id)
                    .bind(sha256_hex(token.as_bytes()))
                    .bind(user_id)
                    .bind(random_token(32))
                    .bind(now)
                    .bind(expires)
                    .bind(idle)
                    .bind(&ctx.ip)
                    .bind(&user_agent)
                    .bind(&amr_json)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1 {
                    if let Some(row) = &audit_row {
                        crate::bind_audit_row!(row).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                n == 1
            });
            if written {
                break id;
            }
            // The session to re-key ended meanwhile (a sign-out in another tab): nothing was
            // written, and a new session is made instead.
            rekey = None;
        };
        let session = self
            .session_by("s.id", &id)
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
        let Some((session, user, last_seen)) = self.session_by("s.token_hash", &sha256_hex(token.as_bytes())).await? else {
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
            with_pool!(&self.db, pool => sqlx::query("UPDATE auth.sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id = $1")
                .bind(&session.id)
                .bind(now)
                .bind(idle)
                .execute(pool)
                .await
                .map(|_| ()))?;
        }
        Ok(Some((session, user)))
    }

    async fn session_by(&self, column: &'static str, value: &str) -> Result<Option<(Session, User, Timestamp)>, IdentityError> {
        let sql = format!(
            "SELECT u.id, u.email, u.email_verified, u.display_name, u.disabled, u.roles, u.metadata, u.password_hash, u.created_at, u.updated_at, \
             {SESSION_COLUMNS} FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE {column} = $1"
        );
        let found = with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(value).fetch_optional(pool).await? {
                Some(row) => {
                    let (user, _) = super::users::from_row(&row)?;
                    let (session, last_seen) = session_from_row(&row)?;
                    Some((session, user, last_seen))
                }
                None => None,
            }
        });
        Ok(found)
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
        let delete = format!("DELETE FROM auth.sessions WHERE {column} = $1 RETURNING id");
        let (sids, queued) = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let sids: Vec<String> = sqlx::query_scalar(&delete).bind(value).fetch_all(&mut *tx).await?;
            let mut queued = 0;
            for sid in &sids {
                queued += self.hook.ending(Conn::from(&mut *tx), sid).await?;
            }
            tx.commit().await?;
            (sids, queued)
        });
        self.hook.ended(queued);
        Ok(sids)
    }

    /// Live sessions, newest first, of one user or of everyone.
    pub async fn list(&self, user_id: Option<&str>, limit: i64, cursor: Option<&str>) -> Result<Page, IdentityError> {
        let limit = limit.clamp(1, super::users::MAX_PAGE);
        let now = Timestamp::now();
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id \
             WHERE ($1 IS NULL OR s.user_id = $1) AND ($2 IS NULL OR s.id < $2) AND s.expires_at > $3 AND s.idle_expires_at > $3 \
             ORDER BY s.id DESC LIMIT $4"
        );
        let sessions = with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql).bind(user_id).bind(cursor).bind(now).bind(limit + 1).fetch_all(pool).await?;
            rows.iter().map(|r| session_from_row(r).map(|(s, _)| s)).collect::<Result<Vec<Session>, sqlx::Error>>()?
        });
        Ok(Page::from_overfetch("sessions", sessions, limit, |s| s.id.clone()))
    }

    /// The CSRF token of an anonymous visitor: a MAC of their `assay_csrf` cookie, so it needs
    /// no row and cannot be forged without the master key.
    pub fn anonymous_csrf_token(&self, cookie: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.keys.mac("assay/csrf/v1", cookie.as_bytes()))
    }
}
