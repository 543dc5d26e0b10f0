//! `auth.audit`: the append-only log of security-relevant events. The product only ever
//! INSERTs; the migrations add triggers that refuse UPDATE and DELETE on both backends.

use serde::Serialize;
use sqlx::Row;

use super::{Context, IdentityError};
use crate::storage::rfc3339;
use crate::storage::Db;
use crate::storage::Timestamp;
use crate::with_pool;

/// An event to record. `ip` and `request_id` come from the [`Context`].
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Entry {
    pub fn new(action: &str) -> Entry {
        Entry { action: action.to_string(), actor: None, target: None, details: serde_json::Map::new() }
    }
    pub fn actor(mut self, actor: &str) -> Entry {
        self.actor = Some(actor.to_string());
        self
    }
    pub fn target(mut self, target: &str) -> Entry {
        self.target = Some(target.to_string());
        self
    }
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Entry {
        self.details.insert(key.to_string(), value.into());
        self
    }
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

pub type Page = crate::storage::Page<Record>;

/// The most an entry keeps of its actor, target, IP or request id, and of each string in its
/// details: the log is append-only, so whatever a caller sends would stay forever.
pub const MAX_FIELD_BYTES: usize = 512;
/// The most an entry keeps of its details as a whole (JSON text).
pub const MAX_DETAILS_BYTES: usize = 8 * 1024;

/// `s` cut to at most `max` bytes on a character boundary, marked with "…" when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Strings inside `v` cut to [`MAX_FIELD_BYTES`], however deep.
fn cap_strings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.len() > MAX_FIELD_BYTES => *s = truncate(s, MAX_FIELD_BYTES),
        serde_json::Value::Array(items) => items.iter_mut().for_each(cap_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(cap_strings),
        _ => {}
    }
}

/// An entry as stored: every field bounded.
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

impl StoredEntry {
    pub fn new(ctx: &Context, e: Entry) -> Result<StoredEntry, IdentityError> {
        if e.action.is_empty() || e.action.len() > 100 {
            return Err(IdentityError::invalid("action", "must be 1 to 100 characters"));
        }
        let cap = |v: &Option<String>| v.as_deref().map(|s| truncate(s, MAX_FIELD_BYTES));
        let mut details = serde_json::Value::Object(e.details);
        cap_strings(&mut details);
        let original = details.to_string();
        let mut text = original.clone();
        // Too long: the start of it, as a string, under the same bound once re-escaped.
        let mut keep = MAX_DETAILS_BYTES;
        while text.len() > MAX_DETAILS_BYTES {
            text = serde_json::json!({ "truncated": truncate(&original, keep) }).to_string();
            keep = keep.saturating_sub((text.len().saturating_sub(MAX_DETAILS_BYTES)).max(64));
        }
        Ok(StoredEntry {
            at: Timestamp::now(),
            actor: cap(&e.actor),
            action: e.action,
            target: cap(&e.target),
            ip: cap(&ctx.ip),
            request_id: cap(&ctx.request_id),
            details: text,
        })
    }
}

/// Binds a [`StoredEntry`] to [`INSERT`], for callers that write it inside their own transaction.
#[macro_export]
macro_rules! bind_audit_row {
    ($row:expr) => {
        sqlx::query($crate::identity::audit::INSERT)
            .bind($row.at)
            .bind(&$row.actor)
            .bind(&$row.action)
            .bind(&$row.target)
            .bind(&$row.ip)
            .bind(&$row.request_id)
            .bind(&$row.details)
    };
}

/// The audit log service: appends entries (each bounded) and reads them back newest first.
#[derive(Clone)]
pub struct Audit {
    db: Db,
}

impl Audit {
    pub fn new(db: Db) -> Audit {
        Audit { db }
    }

    pub async fn append(&self, ctx: &Context, e: Entry) -> Result<(), IdentityError> {
        let row = StoredEntry::new(ctx, e)?;
        with_pool!(&self.db, pool => bind_audit_row!(row).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Newest first.
    pub async fn query(&self, q: &Query) -> Result<Page, IdentityError> {
        let limit = q.limit.clamp(1, crate::storage::MAX_PAGE);
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
                        details: crate::storage::json_column("audit.details", &details)?,
                    })
                })
                .collect::<Result<Vec<Record>, sqlx::Error>>()?
        });
        Ok(Page::from_overfetch("entries", entries, limit, |e| e.id.to_string()))
    }
}
