//! The provider service: the protocol endpoints (authorization, token, userinfo,
//! introspection, revocation, RP-initiated logout) over the services they use. Each endpoint
//! lives in its own file as part of this one service; the state they share is below.

use std::sync::Arc;

use super::store::{AssertionStore, GrantStore, RequestStore};
use super::{Clients, Grants, SigningKeys};
use crate::config::Config;
use crate::identity::{Audit, Sessions, Users};
use crate::storage::{Db, WriteTurns};

#[derive(Clone)]
pub struct Provider {
    pub(super) config: Arc<Config>,
    /// For the SQLite write turn only; statements go through the stores.
    /// Parked requests and codes (`authorize.rs`, and their redemption in `token.rs`).
    pub(super) requests: RequestStore,
    /// Refresh rotation (`token.rs`) and a grant's claims request (`resource.rs`); the rest of
    /// the grant rules go through `grants`.
    pub(super) grant_rows: GrantStore,
    /// Client assertion replay (`client_auth.rs`).
    pub(super) assertions: AssertionStore,
    pub(super) turns: WriteTurns,
    pub(super) users: Users,
    pub(super) sessions: Sessions,
    pub(super) clients: Clients,
    pub(super) signing: SigningKeys,
    pub(super) grants: Grants,
    pub(super) audit: Audit,
}

/// What the provider is built on (named, so the constructor reads as a list).
pub struct ProviderParts {
    pub config: Arc<Config>,
    pub db: Db,
    pub turns: WriteTurns,
    pub users: Users,
    pub sessions: Sessions,
    pub clients: Clients,
    pub signing: SigningKeys,
    pub grants: Grants,
    pub audit: Audit,
}

impl Provider {
    pub fn new(p: ProviderParts) -> Provider {
        let ProviderParts { config, db, turns, users, sessions, clients, signing, grants, audit } = p;
        let (requests, grant_rows, assertions) = (RequestStore::new(db.clone()), GrantStore::new(db.clone()), AssertionStore::new(db));
        Provider { config, requests, grant_rows, assertions, turns, users, sessions, clients, signing, grants, audit }
    }
}
