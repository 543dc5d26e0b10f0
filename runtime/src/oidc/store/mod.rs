//! The provider's SQL: one store per table group, each a cheap handle over the pool. The
//! services and endpoints keep the protocol rules and call these; every statement, column
//! list and row mapping of `auth.jwks_keys` and the `auth.oidc_*` tables lives here. Writes
//! that must be atomic are one method each (the whole transaction), so a caller cannot leave
//! half of one behind.

/// One refresh-token row, inside a caller's transaction (a macro: one body per backend).
/// Shared by the code exchange (`requests.rs`) and refresh rotation (`grants.rs`).
macro_rules! insert_refresh {
    ($tx:expr, $r:expr) => {
        sqlx::query(
            "INSERT INTO auth.oidc_refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, session_id, auth_time, amr, acr, claims, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind($r.token_hash.as_str())
        .bind($r.grant_id)
        .bind($r.client_id)
        .bind($r.user_id)
        .bind($r.scopes)
        .bind($r.session_id)
        .bind($r.auth_time)
        .bind($r.amr)
        .bind($r.acr)
        .bind($r.claims)
        .bind(crate::storage::Timestamp::now())
        .bind($r.expires_at)
        .execute(&mut *$tx)
        .await
    };
}

mod assertions;
mod clients;
mod grants;
mod keys;
mod logout;
mod requests;

pub use assertions::AssertionStore;
pub use clients::{Client, ClientStore, Settings};
pub use grants::{GrantStore, NewRefresh, RefreshRecord};
pub use keys::{KeyInfo, KeyStore, RetireFirst};
pub use logout::{Delivery, Due, LogoutStore};
pub use requests::{AuthRequest, NewCode, Parked, RequestStore};
