//! Identity errors, each with a stable code word: Lua sees `nil, "code: message"`, the admin
//! API maps the code to a status.

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("not_found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("weak_password: {0}")]
    WeakPassword(String),
    /// Unknown account or wrong password: one message, so neither is told apart.
    #[error("invalid_credentials: incorrect email or password")]
    InvalidCredentials,
    #[error("throttled: too many failed attempts, try again in {0} seconds")]
    Throttled(u64),
    /// The password hashing queue is full: answered 503 with `Retry-After`, never queued.
    #[error("busy: too many password checks at once, try again in {0} seconds")]
    Busy(u64),
    #[error("disabled: this account is disabled")]
    Disabled,
    #[error("invalid_token: the link is invalid, used or expired")]
    InvalidToken,
    #[error("invalid_token: {0}")]
    InvalidJwt(String),
    #[error("mail_error: {0}")]
    Mail(String),
    #[error("config: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
    #[error("database_error: {0}")]
    Db(#[from] sqlx::Error),
}

impl IdentityError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        IdentityError::Invalid { field, reason: reason.into() }
    }

    /// True for failures caused by the caller's input or the world (returned to Lua as
    /// `nil, err`), false for faults of the engine (raised, logged, answered with a 500).
    pub fn is_operational(&self) -> bool {
        !matches!(self, IdentityError::Db(_) | IdentityError::Internal(_) | IdentityError::Config(_))
    }
}

/// A unique violation from either backend.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
