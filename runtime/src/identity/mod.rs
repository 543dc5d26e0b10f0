//! Identity: the protocol-free services behind Kratos's part of the product. Each service owns
//! its tables and is a small cloneable handle: [`Users`] (accounts, passwords, password login),
//! [`Sessions`], [`Audit`], [`Throttle`] (brute-force counters, rate limits), [`MailTokens`]
//! (single-use emailed links) and the [`Mailer`]. `crate::services::Services` builds them once
//! and holds them; the Lua bindings in `stdlib/` are thin wrappers over them. A service keeps
//! the rules and its store (`store/`) holds its SQL and row mapping.

pub mod audit;
pub mod error;
pub mod ids;
pub mod input;
pub mod mail;
pub mod password;
pub mod secrets;
pub mod sessions;
pub(crate) mod store;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use audit::Audit;
pub use error::IdentityError;
pub use mail::Mailer;
pub use sessions::Sessions;
pub use throttle::Throttle;
pub use tokens::MailTokens;
pub use users::Users;

/// Where an identity call comes from, for the audit log and the brute-force counters.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}
