//! Identity: the protocol-free primitives behind Kratos's part of the product. Users, password
//! hashing, sessions, the audit log, single-use mail tokens, brute-force counters and mail.
//! Each file is one concept, with its SQL (one string for both backends) beside its rules; the
//! Lua bindings in `stdlib/` are thin wrappers over these.

pub mod audit;
pub mod error;
pub mod ids;
pub mod input;
pub mod mail;
pub mod password;
pub mod secrets;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::config::Config;
use crate::storage::Db;
pub use error::IdentityError;

/// Everything identity code needs, built once per process.
pub struct Identity {
    pub config: Arc<Config>,
    pub db: Db,
    pub hasher: password::Hasher,
    pub keys: secrets::ServerKeys,
    pub mailer: mail::Mailer,
    /// Parsed signing keys by kid, and the active kid of each algorithm.
    pub signers: crate::oidc::jwt::Signers,
    /// Woken when Logout Tokens are queued, so the deliverer sends them at once.
    pub logout_wakeup: Arc<tokio::sync::Notify>,
    /// Turns for the OpenID provider's write transactions on SQLite (`sqlite_write_turn`).
    pub sqlite_writer: tokio::sync::Mutex<()>,
}

/// Where an identity call comes from, for the audit log and the brute-force counters.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

impl Identity {
    /// Loads (or on first start generates) the master key, checks it against the one every
    /// other engine on this database uses, and prepares the hasher and the mailer.
    pub async fn new(config: Arc<Config>, db: Db) -> Result<Identity, IdentityError> {
        let keys = secrets::ServerKeys::load(&config, &db).await?;
        let hasher = password::Hasher::new(&config.auth.password, &keys)?;
        let mailer = mail::Mailer::new(config.auth.smtp.as_ref())?;
        Ok(Identity {
            config,
            db,
            hasher,
            keys,
            mailer,
            signers: Default::default(),
            logout_wakeup: Default::default(),
            sqlite_writer: Default::default(),
        })
    }
}
