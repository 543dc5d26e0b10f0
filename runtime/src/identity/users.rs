//! Accounts: their rules (email, roles, display name, metadata), their password hashes (never
//! leaving this service and its store, `store::users`), and password login with brute-force
//! counters.

use std::sync::Arc;

use super::audit::{self, Audit};
use super::error::is_unique_violation;
use super::password::Hasher;
use super::sessions::Sessions;
use super::store::users::Fields;
use super::store::UserStore;
use super::throttle::Throttle;
use super::{ids, Context, IdentityError};
use crate::storage::{Db, Timestamp};

pub use super::store::users::User;
// The OpenID provider reads users joined to its own rows through the same mapping.

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

pub use crate::storage::MAX_PAGE;

pub use crate::storage::rfc3339;

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
    store: UserStore,
    hasher: Arc<Hasher>,
    audit: Audit,
    throttle: Throttle,
    sessions: Sessions,
}

impl Users {
    pub fn new(db: Db, hasher: Arc<Hasher>, audit: Audit, throttle: Throttle, sessions: Sessions) -> Users {
        Users { store: UserStore::new(db), hasher, audit, throttle, sessions }
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
        let normalized = normalize_email(&email);
        let fields = Fields {
            email: &email,
            email_normalized: &normalized,
            email_verified: new.email_verified,
            display_name: new.display_name.as_deref(),
            disabled: false,
            roles: &roles,
            metadata: &metadata,
        };
        let inserted = self.store.insert(&id, &fields, hash.as_deref(), now).await;
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
        let found = self.store.find_by(column, value).await?;
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
        let normalized = normalize_email(&email);
        // A new address is not verified until proven.
        let email_changed = normalized != normalize_email(&current.email);
        let verified = patch.email_verified.unwrap_or(current.email_verified && !email_changed);
        let disabled = patch.disabled.unwrap_or(current.disabled);
        let roles_json = serde_json::to_string(&roles).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let fields = Fields {
            email: &email,
            email_normalized: &normalized,
            email_verified: verified,
            display_name: display_name.as_deref(),
            disabled,
            roles: &roles_json,
            metadata: &metadata,
        };
        let done = self.store.update(id, &fields).await;
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
        let n = self.store.delete(id).await?;
        if n == 0 {
            return Err(IdentityError::NotFound("no user with that id".into()));
        }
        Ok(())
    }

    pub async fn set_password(&self, id: &str, password: &str) -> Result<(), IdentityError> {
        self.hasher.check_policy(password)?;
        self.get(id).await?;
        let hash = self.hasher.hash(password).await?;
        Ok(self.store.set_password_hash(id, &hash).await?)
    }

    /// Newest first; `q` matches email or display name (case-insensitive substring); the
    /// cursor is the last id of the previous page.
    pub async fn list(&self, q: Option<&str>, limit: i64, cursor: Option<&str>) -> Result<UserPage, IdentityError> {
        let limit = limit.clamp(1, MAX_PAGE);
        Ok(self.store.list(q, limit, cursor).await?)
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
                Ok(hash) => self.store.set_password_hash(&user.id, &hash).await?,
                Err(IdentityError::Busy(_)) => tracing::debug!(user = %user.id, "re-hash deferred: the hashing queue is full"),
                Err(e) => return Err(e),
            }
        }
        // No "login.succeeded" here: that entry is written with the session it starts
        // (`Sessions::create`), in one transaction.
        Ok(user)
    }
}
