//! `auth.users`: accounts, their password hashes (never leaving this file), and password login
//! with brute-force counters.

use serde::Serialize;
use sqlx::Row;

use std::sync::Arc;

use super::audit::{self, Audit};
use super::error::is_unique_violation;
use super::password::Hasher;
use super::sessions::Sessions;
use super::throttle::Throttle;
use super::{ids, Context, IdentityError};
use crate::storage::{Db, Timestamp};
use crate::with_pool;

/// A user as every caller sees it: no password hash, only whether there is one.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub disabled: bool,
    pub roles: Vec<String>,
    pub metadata: serde_json::Value,
    pub has_password: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl User {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Fields of a new user.
#[derive(Debug, Default, Clone)]
pub struct NewUser {
    pub email: String,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub metadata: Option<serde_json::Value>,
}

/// A partial update: `None` leaves a field alone; `display_name: Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    pub email: Option<String>,
    pub display_name: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
    pub disabled: Option<bool>,
}

/// One page of users.
pub type UserPage = crate::storage::Page<User>;

const COLUMNS: &str = "id, email, email_verified, display_name, disabled, roles, metadata, password_hash, created_at, updated_at";
pub use crate::storage::MAX_PAGE;

pub use crate::storage::rfc3339;

pub(crate) fn from_row<R: Row>(row: &R) -> Result<(User, Option<String>), sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Timestamp: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let roles: String = row.try_get("roles")?;
    let metadata: String = row.try_get("metadata")?;
    let hash: Option<String> = row.try_get("password_hash")?;
    let user = User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        email_verified: row.try_get("email_verified")?,
        display_name: row.try_get("display_name")?,
        disabled: row.try_get("disabled")?,
        roles: crate::storage::json_column("users.roles", &roles)?,
        metadata: crate::storage::json_column("users.metadata", &metadata)?,
        has_password: hash.is_some(),
        created_at: rfc3339(row.try_get("created_at")?),
        updated_at: rfc3339(row.try_get("updated_at")?),
    };
    Ok((user, hash))
}

/// A trimmed address with one `@`, a dotless-or-dotted domain, and no spaces or controls. Full
/// RFC 5322 syntax is not the point: the verification mail is.
pub fn check_email(email: &str) -> Result<String, IdentityError> {
    let email = email.trim();
    let bad = |r: &str| Err(IdentityError::invalid("email", r));
    if email.is_empty() {
        return bad("is required");
    }
    if email.len() > 254 {
        return bad("is longer than 254 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else { return bad("is not an email address") };
    if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return bad("is not an email address");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>') {
        return bad("is not an email address");
    }
    Ok(email.to_string())
}

pub use super::input::{check_identifier, check_text, MAX_IDENTIFIER_BYTES};

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn check_roles(roles: &[String]) -> Result<(), IdentityError> {
    for r in roles {
        if r.is_empty() || r.len() > 64 || !r.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) {
            return Err(IdentityError::invalid("roles", format!("{r:?} is not a role name (letters, digits, _ - . :)")));
        }
    }
    Ok(())
}

fn check_display_name(name: &Option<String>) -> Result<(), IdentityError> {
    if let Some(n) = name {
        if n.chars().count() > 200 || n.chars().any(char::is_control) {
            return Err(IdentityError::invalid("display_name", "must be at most 200 characters, without control characters"));
        }
    }
    Ok(())
}

fn check_metadata(m: &serde_json::Value) -> Result<String, IdentityError> {
    if !m.is_object() {
        return Err(IdentityError::invalid("metadata", "must be an object"));
    }
    let text = m.to_string();
    if text.len() > 64 * 1024 {
        return Err(IdentityError::invalid("metadata", "is larger than 64 KiB"));
    }
    Ok(text)
}

/// The accounts service: users, their passwords and password login.
#[derive(Clone)]
pub struct Users {
    db: Db,
    hasher: Arc<Hasher>,
    audit: Audit,
    throttle: Throttle,
    sessions: Sessions,
}

impl Users {
    pub fn new(db: Db, hasher: Arc<Hasher>, audit: Audit, throttle: Throttle, sessions: Sessions) -> Users {
        Users { db, hasher, audit, throttle, sessions }
    }

    /// The password hasher (its policy and queue), for callers that check a password's strength.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub async fn create(&self, new: NewUser) -> Result<User, IdentityError> {
        let email = check_email(&new.email)?;
        check_display_name(&new.display_name)?;
        check_roles(&new.roles)?;
        let metadata = check_metadata(new.metadata.as_ref().unwrap_or(&serde_json::json!({})))?;
        let hash = match &new.password {
            Some(p) => {
                self.hasher.check_policy(p)?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let id = ids::new_id();
        let now = Timestamp::now();
        let roles = serde_json::to_string(&new.roles).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let inserted = with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth.users (id, email, email_normalized, email_verified, display_name, disabled, roles, metadata, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
            .bind(&id)
            .bind(&email)
            .bind(normalize_email(&email))
            .bind(new.email_verified)
            .bind(&new.display_name)
            .bind(false)
            .bind(&roles)
            .bind(&metadata)
            .bind(&hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()));
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(IdentityError::Conflict(format!("a user with the email {email} exists"))),
            Err(e) => Err(e.into()),
            Ok(()) => self.get(&id).await,
        }
    }

    pub async fn get(&self, id: &str) -> Result<User, IdentityError> {
        self.user_with_hash_by("id", id).await.map(|(u, _)| u)
    }

    pub async fn find_by_email(&self, email: &str) -> Result<User, IdentityError> {
        check_identifier("email", email)?;
        self.user_with_hash_by("email_normalized", &normalize_email(email)).await.map(|(u, _)| u)
    }

    async fn user_with_hash_by(&self, column: &'static str, value: &str) -> Result<(User, Option<String>), IdentityError> {
        let not_found = || IdentityError::NotFound(format!("no user with that {}", if column == "id" { "id" } else { "email" }));
        if column == "id" && !ids::is_id(value) {
            return Err(not_found());
        }
        let sql = format!("SELECT {COLUMNS} FROM auth.users WHERE {column} = $1");
        let found = with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(value).fetch_optional(pool).await? {
                Some(row) => Some(from_row(&row)?),
                None => None,
            }
        });
        found.ok_or_else(not_found)
    }

    pub async fn update(&self, id: &str, patch: UserPatch) -> Result<User, IdentityError> {
        let current = self.get(id).await?;
        let email = match &patch.email {
            Some(e) => check_email(e)?,
            None => current.email.clone(),
        };
        let display_name = patch.display_name.clone().unwrap_or(current.display_name.clone());
        check_display_name(&display_name)?;
        let roles = patch.roles.clone().unwrap_or(current.roles.clone());
        check_roles(&roles)?;
        let metadata = check_metadata(patch.metadata.as_ref().unwrap_or(&current.metadata))?;
        // A new address is not verified until proven.
        let email_changed = normalize_email(&email) != normalize_email(&current.email);
        let verified = patch.email_verified.unwrap_or(current.email_verified && !email_changed);
        let disabled = patch.disabled.unwrap_or(current.disabled);
        let roles_json = serde_json::to_string(&roles).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let done = with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth.users SET email = $2, email_normalized = $3, email_verified = $4, display_name = $5, \
             disabled = $6, roles = $7, metadata = $8, updated_at = $9 WHERE id = $1")
            .bind(id)
            .bind(&email)
            .bind(normalize_email(&email))
            .bind(verified)
            .bind(&display_name)
            .bind(disabled)
            .bind(&roles_json)
            .bind(&metadata)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        match done {
            Err(e) if is_unique_violation(&e) => return Err(IdentityError::Conflict(format!("a user with the email {email} exists"))),
            Err(e) => return Err(e.into()),
            Ok(0) => return Err(IdentityError::NotFound("no user with that id".into())),
            Ok(_) => {}
        }
        if disabled && !current.disabled {
            self.sessions.revoke_user(id).await?;
        }
        self.get(id).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), IdentityError> {
        if !ids::is_id(id) {
            return Err(IdentityError::NotFound("no user with that id".into()));
        }
        // Its sessions end first, so the OpenID provider's clients get their Logout Tokens;
        // tokens, grants and consents go with the row (ON DELETE CASCADE).
        self.sessions.revoke_user(id).await?;
        let n = with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if n == 0 {
            return Err(IdentityError::NotFound("no user with that id".into()));
        }
        Ok(())
    }

    pub async fn set_password(&self, id: &str, password: &str) -> Result<(), IdentityError> {
        self.hasher.check_policy(password)?;
        self.get(id).await?;
        let hash = self.hasher.hash(password).await?;
        self.store_hash(id, &hash).await
    }

    async fn store_hash(&self, id: &str, hash: &str) -> Result<(), IdentityError> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Newest first; `q` matches email or display name (case-insensitive substring); the
    /// cursor is the last id of the previous page.
    pub async fn list(&self, q: Option<&str>, limit: i64, cursor: Option<&str>) -> Result<UserPage, IdentityError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let pattern = q.filter(|q| !q.trim().is_empty()).map(|q| format!("%{}%", escape_like(&q.trim().to_lowercase())));
        let sql = format!(
            "SELECT {COLUMNS} FROM auth.users WHERE ($1 IS NULL OR id < $1) \
             AND ($2 IS NULL OR email_normalized LIKE $2 ESCAPE '\\' OR lower(COALESCE(display_name, '')) LIKE $2 ESCAPE '\\') \
             ORDER BY id DESC LIMIT $3"
        );
        let users = with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql).bind(cursor).bind(&pattern).bind(limit + 1).fetch_all(pool).await?;
            rows.iter().map(|r| from_row(r).map(|(u, _)| u)).collect::<Result<Vec<User>, sqlx::Error>>()?
        });
        Ok(UserPage::from_overfetch("users", users, limit, |u| u.id.clone()))
    }

    /// Password login: throttle check, Argon2id verify (equal cost for unknown accounts),
    /// counters, transparent re-hash, audit.
    pub async fn authenticate(&self, email: &str, password: &str, ctx: &Context) -> Result<User, IdentityError> {
        // Refused before the throttle, the hash and the audit log see it: an unbounded
        // identifier would be written twice per attempt (audit row and throttle key).
        check_identifier("email", email)?;
        let account_key = format!("account:{}", normalize_email(email));
        let ip_key = ctx.ip.as_ref().map(|ip| format!("ip:{ip}"));
        let keys: Vec<&str> = std::iter::once(account_key.as_str()).chain(ip_key.as_deref()).collect();
        if let Some(wait) = self.throttle.retry_after(&keys).await? {
            self.audit.append(ctx, audit::Entry::new("login.throttled").actor(email).detail("retry_after", wait)).await?;
            return Err(IdentityError::Throttled(wait));
        }
        let found = match self.user_with_hash_by("email_normalized", &normalize_email(email)).await {
            Ok(found) => Some(found),
            Err(IdentityError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let password = if password.len() > super::password::MAX_PASSWORD_BYTES { "" } else { password };
        let verified = self.hasher.verify(password, found.as_ref().and_then(|(_, h)| h.as_deref())).await?;
        let Some((user, _)) = found.filter(|_| verified.ok) else {
            self.throttle.record_failure(&account_key, ip_key.as_deref(), email, ctx).await?;
            self.audit.append(ctx, audit::Entry::new("login.failed").actor(email)).await?;
            return Err(IdentityError::InvalidCredentials);
        };
        if user.disabled {
            self.audit.append(ctx, audit::Entry::new("login.refused_disabled").actor(&format!("user:{}", user.id))).await?;
            return Err(IdentityError::Disabled);
        }
        self.throttle.clear(&account_key).await?;
        if verified.needs_rehash {
            // An upgrade, not a condition of signing in: under a burst it waits for next time.
            match self.hasher.hash(password).await {
                Ok(hash) => self.store_hash(&user.id, &hash).await?,
                Err(IdentityError::Busy(_)) => tracing::debug!(user = %user.id, "re-hash deferred: the hashing queue is full"),
                Err(e) => return Err(e),
            }
        }
        // No "login.succeeded" here: that entry is written with the session it starts
        // (`create_session`), in one transaction.
        Ok(user)
    }
}

/// `%`, `_` and the escape character itself taken literally in a LIKE pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
