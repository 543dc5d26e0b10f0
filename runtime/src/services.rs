//! The engine's services, built once per process and held together: the one context the Lua
//! bindings, the server and the CLI receive. Each service owns its tables and its rules and is
//! a cheap handle (a pool and `Arc`s), so a service that needs another holds a clone of it;
//! those dependencies point one way (identity below the OpenID provider) and are wired here,
//! which is the only file that knows every domain.
//!
//! A new domain (Zanzibar, say) adds its folder beside `identity/` and `oidc/`, a field here
//! and one line in [`Services::new`]; see ARCHITECTURE.md, "Adding a domain".

use std::sync::Arc;

use crate::config::Config;
use crate::identity::password::Hasher;
use crate::identity::secrets::ServerKeys;
use crate::identity::{Audit, IdentityError, MailTokens, Mailer, Sessions, Throttle, Users};
use crate::oidc::{Clients, Grants, LogoutQueue, Provider, ProviderParts, SigningKeys};
use crate::storage::{Db, WriteTurns};

pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    /// The master key's derivations (CSRF MACs, sealing).
    pub keys: Arc<ServerKeys>,
    pub hasher: Arc<Hasher>,
    pub mailer: Arc<Mailer>,
    pub audit: Audit,
    pub throttle: Throttle,
    pub sessions: Sessions,
    pub users: Users,
    pub tokens: MailTokens,
    pub signing: SigningKeys,
    pub clients: Clients,
    pub grants: Grants,
    pub logout: LogoutQueue,
    pub provider: Provider,
}

impl Services {
    /// Loads (or on first start generates) the master key, checks it against the one every
    /// other engine on this database uses, and builds every service on it.
    pub async fn new(config: Arc<Config>, db: Db) -> Result<Services, IdentityError> {
        let keys = Arc::new(ServerKeys::load(&config, &db).await?);
        let hasher = Arc::new(Hasher::new(&config.auth.password, &keys)?);
        let mailer = Arc::new(Mailer::new(config.auth.smtp.as_ref())?);
        let audit = Audit::new(db.clone());
        let throttle = Throttle::new(db.clone(), config.auth.brute_force.clone(), audit.clone());
        let signing = SigningKeys::new(db.clone(), config.auth.oidc_provider.clone(), keys.clone());
        let logout = LogoutQueue::new(db.clone(), config.auth.issuer.clone(), signing.clone());
        let sessions = Sessions::new(db.clone(), config.auth.session.clone(), keys.clone(), Arc::new(logout.clone()));
        let users = Users::new(db.clone(), hasher.clone(), audit.clone(), throttle.clone(), sessions.clone());
        let tokens = MailTokens::new(db.clone(), users.clone(), mailer.clone());
        // The provider's write transactions on SQLite take turns (see `WriteTurns`).
        let turns = WriteTurns::for_db(&db);
        let clients = Clients::new(db.clone(), keys.clone(), turns.clone());
        let grants = Grants::new(db.clone(), turns.clone());
        let provider = Provider::new(ProviderParts {
            config: config.clone(),
            db: db.clone(),
            turns,
            users: users.clone(),
            sessions: sessions.clone(),
            clients: clients.clone(),
            signing: signing.clone(),
            grants: grants.clone(),
            audit: audit.clone(),
        });
        Ok(Services {
            config,
            db,
            keys,
            hasher,
            mailer,
            audit,
            throttle,
            sessions,
            users,
            tokens,
            signing,
            clients,
            grants,
            logout,
            provider,
        })
    }
}
