//! Identity errors. Each has a typed [`ErrorCode`] (a stable word flows and API clients branch
//! on), a message for the person (no internals), and structured details (`retry_after`,
//! `field`). Lua sees `nil, err` with `err.code`, `err.message` and the details; the admin API
//! answers the code with its status. `Display` is for the log: "code: message" with the cause.

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

/// The stable codes, shared by every domain's errors and by the Lua bindings' own failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotFound,
    Conflict,
    /// A field of the input is wrong (`details.field` names it).
    Invalid,
    WeakPassword,
    InvalidCredentials,
    Throttled,
    Busy,
    Disabled,
    InvalidToken,
    MailError,
    NoSession,
    Csrf,
    Unauthorized,
    Forbidden,
    BadJson,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Invalid => "invalid",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Throttled => "throttled",
            ErrorCode::Busy => "busy",
            ErrorCode::Disabled => "disabled",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::MailError => "mail_error",
            ErrorCode::NoSession => "no_session",
            ErrorCode::Csrf => "csrf",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BadJson => "bad_json",
            ErrorCode::Internal => "internal",
        }
    }

    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Invalid,
        ErrorCode::WeakPassword,
        ErrorCode::InvalidCredentials,
        ErrorCode::Throttled,
        ErrorCode::Busy,
        ErrorCode::Disabled,
        ErrorCode::InvalidToken,
        ErrorCode::MailError,
        ErrorCode::NoSession,
        ErrorCode::Csrf,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::BadJson,
        ErrorCode::Internal,
    ];

    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The HTTP status an API answers this code with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Invalid | ErrorCode::WeakPassword => 422,
            ErrorCode::BadJson | ErrorCode::InvalidToken => 400,
            ErrorCode::Conflict => 409,
            ErrorCode::NotFound => 404,
            ErrorCode::Unauthorized | ErrorCode::InvalidCredentials | ErrorCode::NoSession => 401,
            ErrorCode::Forbidden | ErrorCode::Csrf | ErrorCode::Disabled => 403,
            ErrorCode::Throttled => 429,
            ErrorCode::MailError => 502,
            ErrorCode::Busy => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl IdentityError {
    pub fn code(&self) -> ErrorCode {
        match self {
            IdentityError::NotFound(_) => ErrorCode::NotFound,
            IdentityError::Conflict(_) => ErrorCode::Conflict,
            IdentityError::Invalid { .. } => ErrorCode::Invalid,
            IdentityError::WeakPassword(_) => ErrorCode::WeakPassword,
            IdentityError::InvalidCredentials => ErrorCode::InvalidCredentials,
            IdentityError::Throttled(_) => ErrorCode::Throttled,
            IdentityError::Busy(_) => ErrorCode::Busy,
            IdentityError::Disabled => ErrorCode::Disabled,
            IdentityError::InvalidToken | IdentityError::InvalidJwt(_) => ErrorCode::InvalidToken,
            IdentityError::Mail(_) => ErrorCode::MailError,
            IdentityError::Config(_) | IdentityError::Internal(_) | IdentityError::Db(_) => ErrorCode::Internal,
        }
    }

    /// What the person is told: the message without the code, and nothing internal (an engine
    /// fault's cause goes to the log only).
    pub fn message(&self) -> String {
        match self {
            IdentityError::NotFound(m) | IdentityError::Conflict(m) | IdentityError::WeakPassword(m) | IdentityError::InvalidJwt(m) => {
                m.clone()
            }
            IdentityError::Invalid { field, reason } => format!("{field}: {reason}"),
            IdentityError::InvalidCredentials => "incorrect email or password".into(),
            IdentityError::Throttled(secs) => format!("too many failed attempts, try again in {secs} seconds"),
            IdentityError::Busy(secs) => format!("too many password checks at once, try again in {secs} seconds"),
            IdentityError::Disabled => "this account is disabled".into(),
            IdentityError::InvalidToken => "the link is invalid, used or expired".into(),
            IdentityError::Mail(_) => "the mail could not be sent".into(),
            IdentityError::Config(_) | IdentityError::Internal(_) | IdentityError::Db(_) => "internal error".into(),
        }
    }

    /// Structured details beside the code: `retry_after` (seconds) for throttled and busy,
    /// `field` for an invalid input.
    pub fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut d = serde_json::Map::new();
        match self {
            IdentityError::Throttled(secs) | IdentityError::Busy(secs) => {
                d.insert("retry_after".into(), (*secs).into());
            }
            IdentityError::Invalid { field, .. } => {
                d.insert("field".into(), (*field).into());
            }
            _ => {}
        }
        d
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_details_are_structured() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
        let e = IdentityError::Throttled(7);
        assert_eq!((e.code(), e.code().status()), (ErrorCode::Throttled, 429));
        assert_eq!(e.details()["retry_after"], 7);
        let e = IdentityError::invalid("email", "is required");
        assert_eq!(e.details()["field"], "email");
        assert_eq!(e.message(), "email: is required");
        // An engine fault tells the person nothing of its cause; the log gets it.
        let e = IdentityError::Internal("secret path /var/x".into());
        assert_eq!(e.message(), "internal error");
        assert!(e.to_string().contains("/var/x"));
    }
}
