//! `auth.sessions`: the session row (read joined with its user, through [`super::users`]), the
//! statements on the table, and the [`EndHook`] through which another service's statements join
//! the transaction that ends a session.

use futures_util::future::BoxFuture;
use serde::Serialize;
use sqlx::Row;

use super::audit::StoredEntry;
use super::users::{self, User};
use crate::storage::{json_column, rfc3339, Conn, Db, Page, Timestamp};
use crate::with_pool;

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

/// Prefixed, so they cannot clash with the user's columns in the same joined row.
const SESSION_COLUMNS: &str = "s.id AS s_id, s.user_id AS s_user_id, s.csrf_token AS s_csrf_token, s.created_at AS s_created_at, \
     s.last_seen_at AS s_last_seen_at, s.expires_at AS s_expires_at, s.idle_expires_at AS s_idle_expires_at, s.ip AS s_ip, \
     s.user_agent AS s_user_agent, s.amr AS s_amr, u.email AS s_email";

/// A session and its `last_seen_at` (which decides whether a load writes it again).
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
        amr: json_column("sessions.amr", &amr)?,
    };
    Ok((s, last_seen))
}

/// A session row to write; `amr` is its JSON text.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub csrf_token: &'a str,
    pub now: Timestamp,
    pub expires: Timestamp,
    pub idle_expires: Timestamp,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub amr: &'a str,
}

#[derive(Clone)]
pub struct SessionStore {
    db: Db,
}

impl SessionStore {
    pub fn new(db: Db) -> SessionStore {
        SessionStore { db }
    }

    /// Writes `s` as a new row, or over the row with its id and user when `rekey`, and `audit`
    /// with it in one transaction. False (and nothing written) when the row to re-key is gone.
    pub async fn write(&self, s: &NewSession<'_>, rekey: bool, audit: Option<&StoredEntry>) -> Result<bool, sqlx::Error> {
        // The re-key and the insert bind the same parameters in the same places.
        let sql = if rekey {
            "UPDATE auth.sessions SET token_hash = $2, csrf_token = $4, created_at = $5, last_seen_at = $5, expires_at = $6, idle_expires_at = $7, \
             ip = $8, user_agent = $9, amr = $10 WHERE id = $1 AND user_id = $3"
        } else {
            "INSERT INTO auth.sessions (id, token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, idle_expires_at, ip, user_agent, amr) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)"
        };
        Ok(with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(sql)
                .bind(s.id)
                .bind(s.token_hash)
                .bind(s.user_id)
                .bind(s.csrf_token)
                .bind(s.now)
                .bind(s.expires)
                .bind(s.idle_expires)
                .bind(s.ip)
                .bind(s.user_agent)
                .bind(s.amr)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                if let Some(row) = audit {
                    crate::bind_audit_row!(row).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n == 1
        }))
    }

    /// The session whose `column` (`s.id` or `s.token_hash`) is `value`, with its user and
    /// `last_seen_at`, whether or not it is still alive.
    pub async fn find_by(&self, column: &'static str, value: &str) -> Result<Option<(Session, User, Timestamp)>, sqlx::Error> {
        let sql = format!(
            "SELECT {}, {SESSION_COLUMNS} FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE {column} = $1",
            users::columns_of("u")
        );
        Ok(with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(value).fetch_optional(pool).await? {
                Some(row) => {
                    let (user, _) = users::from_row(&row)?;
                    let (session, last_seen) = session_from_row(&row)?;
                    Some((session, user, last_seen))
                }
                None => None,
            }
        }))
    }

    /// Records a use of session `id`: seen at `now`, idle until `idle_expires`.
    pub async fn touch(&self, id: &str, now: Timestamp, idle_expires: Timestamp) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(idle_expires)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Deletes the sessions whose `column` is `value` and runs `hook.ending` for each in the same
    /// transaction: all of it happens or none. Returns the ended ids and what the hook queued;
    /// calling `hook.ended` after the commit is the caller's.
    pub async fn end(&self, column: &'static str, value: &str, hook: &dyn EndHook) -> Result<(Vec<String>, usize), sqlx::Error> {
        let delete = format!("DELETE FROM auth.sessions WHERE {column} = $1 RETURNING id");
        Ok(with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let sids: Vec<String> = sqlx::query_scalar(&delete).bind(value).fetch_all(&mut *tx).await?;
            let mut queued = 0;
            for sid in &sids {
                queued += hook.ending(Conn::from(&mut *tx), sid).await?;
            }
            tx.commit().await?;
            (sids, queued)
        }))
    }

    /// Sessions alive at `now`, newest first, of one user or of everyone, after the `cursor` id.
    pub async fn list(
        &self,
        user_id: Option<&str>,
        limit: i64,
        cursor: Option<&str>,
        now: Timestamp,
    ) -> Result<Page<Session>, sqlx::Error> {
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
}
