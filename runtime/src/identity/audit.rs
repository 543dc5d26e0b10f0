//! `auth.audit`: the append-only log of security-relevant events. The product only ever
//! INSERTs; the migrations add triggers that refuse UPDATE and DELETE on both backends.

use super::store::AuditStore;
use super::{Context, IdentityError};
use crate::storage::{Db, Timestamp};

pub(crate) use super::store::audit::StoredEntry;
pub use super::store::audit::{Query, Record};

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

// The row is the store's; bounding it is the rule, so it is built here.
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

/// The audit log service: appends entries (each bounded) and reads them back newest first.
#[derive(Clone)]
pub struct Audit {
    store: AuditStore,
}

impl Audit {
    pub fn new(db: Db) -> Audit {
        Audit { store: AuditStore::new(db) }
    }

    pub async fn append(&self, ctx: &Context, e: Entry) -> Result<(), IdentityError> {
        let row = StoredEntry::new(ctx, e)?;
        self.store.append(&row).await?;
        Ok(())
    }

    /// Newest first.
    pub async fn query(&self, q: &Query) -> Result<Page, IdentityError> {
        let limit = q.limit.clamp(1, crate::storage::MAX_PAGE);
        Ok(self.store.query(q, limit).await?)
    }
}
