//! `auth.audit`: the append-only log's row as stored ([`StoredEntry`]) and as read back
//! ([`Record`]), its INSERT (also bound inside other stores' transactions through
//! [`bind_audit_row!`](crate::bind_audit_row)) and its newest-first search.

use serde::Serialize;
use sqlx::Row;

use crate::storage::{json_column, rfc3339, Db, Page, Timestamp};
use crate::with_pool;

/// An entry as stored: every field already bounded (`identity::audit` builds it).
pub(crate) struct StoredEntry {
    pub at: Timestamp,
    pub actor: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
}

pub(crate) const INSERT: &str =
    "INSERT INTO auth.audit (at, actor, action, target, ip, request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Binds a [`StoredEntry`] to [`INSERT`], for callers that write it inside their own transaction.
#[macro_export]
macro_rules! bind_audit_row {
    ($row:expr) => {
        sqlx::query($crate::identity::store::audit::INSERT)
            .bind($row.at)
            .bind(&$row.actor)
            .bind(&$row.action)
            .bind(&$row.target)
            .bind(&$row.ip)
            .bind(&$row.request_id)
            .bind(&$row.details)
    };
}

/// A recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: i64,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub details: serde_json::Value,
}

/// What to look for; every field narrows the result.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: i64,
    /// The id of the last entry of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Clone)]
pub struct AuditStore {
    db: Db,
}

impl AuditStore {
    pub fn new(db: Db) -> AuditStore {
        AuditStore { db }
    }

    pub async fn append(&self, row: &StoredEntry) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => crate::bind_audit_row!(row).execute(pool).await.map(|_| ()))
    }

    /// Newest first, at most `limit` (the caller's bound, not `q.limit`).
    pub async fn query(&self, q: &Query, limit: i64) -> Result<Page<Record>, sqlx::Error> {
        let sql = "SELECT id, at, actor, action, target, ip, request_id, details FROM auth.audit \
                   WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) \
                   AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4) AND ($5 IS NULL OR id < $5) \
                   ORDER BY id DESC LIMIT $6";
        let entries = with_pool!(&self.db, pool => {
            let rows = sqlx::query(sql)
                .bind(&q.actor)
                .bind(&q.action)
                .bind(q.since)
                .bind(q.until)
                .bind(q.cursor)
                .bind(limit + 1)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let details: String = r.try_get("details")?;
                    Ok(Record {
                        id: r.try_get("id")?,
                        at: rfc3339(r.try_get("at")?),
                        actor: r.try_get("actor")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        ip: r.try_get("ip")?,
                        request_id: r.try_get("request_id")?,
                        details: json_column("audit.details", &details)?,
                    })
                })
                .collect::<Result<Vec<Record>, sqlx::Error>>()?
        });
        Ok(Page::from_overfetch("entries", entries, limit, |e| e.id.to_string()))
    }
}
