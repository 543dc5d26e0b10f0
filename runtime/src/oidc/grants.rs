//! The grants service: what users granted clients. Grants and refresh tokens
//! (`auth.oidc_grants`, `auth.oidc_refresh_tokens`): a grant is one code exchange; its refresh
//! tokens form a family, each use spending one and minting the next. Revoking the grant (a
//! replayed code, a reused refresh token, RFC 7009, a logout of a session-bound grant) ends the
//! whole family and the access tokens that name it. And remembered consent
//! (`auth.oidc_consents`): the scopes a user allowed a client, so the next authorization for
//! the same or fewer scopes skips the consent page.

use super::json_text;
use super::store::GrantStore;
pub use super::store::RefreshRecord;
use crate::identity::IdentityError;
use crate::storage::{Db, Timestamp, WriteTurns};

#[derive(Clone)]
pub struct Grants {
    /// For the SQLite write turn only; statements go through `store`.
    store: GrantStore,
    turns: WriteTurns,
}

impl Grants {
    pub fn new(db: Db, turns: WriteTurns) -> Grants {
        Grants { store: GrantStore::new(db), turns }
    }

    pub async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshRecord>, IdentityError> {
        let found = self.store.find_refresh_token(token_hash).await?;
        Ok(found)
    }

    /// Ends a grant and every refresh token of its family; returns whether it was live.
    pub async fn revoke(&self, grant_id: &str) -> Result<bool, IdentityError> {
        let now = Timestamp::now();
        let _turn = self.turns.take().await;
        let n = self.store.revoke(grant_id, now).await?;
        Ok(n > 0)
    }

    /// Whether an access token still stands: not revoked itself, its client still registered,
    /// and the grant its jti names (`<grant id>.<random>`) present and not revoked. A missing
    /// grant is NOT live: deleting a client (or its user) deletes its grants, and their access
    /// tokens must end with them. Client-credentials tokens name no grant (no `.` in the jti).
    pub async fn access_token_live(&self, jti: &str, client_id: &str) -> Result<bool, IdentityError> {
        let grant = jti.split_once('.').map(|(g, _)| g.to_string());
        let (revoked, clients, live_grants) = self.store.access_token_counts(jti, client_id, grant.as_deref().unwrap_or_default()).await?;
        Ok(revoked == 0 && clients == 1 && (grant.is_none() || live_grants == 1))
    }

    /// Revokes one access token by jti until it expires.
    pub async fn revoke_access_token(&self, jti: &str, exp: i64) -> Result<(), IdentityError> {
        let now = Timestamp::now();
        let expires = Timestamp(chrono::DateTime::from_timestamp(exp, 0).unwrap_or(now.0));
        self.store.revoke_access_token(jti, expires, now).await?;
        Ok(())
    }

    // Remembered consent.

    pub async fn consented_scopes(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, IdentityError> {
        Ok(self.store.consented_scopes(user_id, client_id).await?.unwrap_or_default())
    }

    pub async fn consent_covers(&self, user_id: &str, client_id: &str, scopes: &[String]) -> Result<bool, IdentityError> {
        let granted = self.consented_scopes(user_id, client_id).await?;
        Ok(!granted.is_empty() && scopes.iter().all(|s| granted.contains(s)))
    }

    /// Adds `scopes` to what the user allowed the client.
    pub async fn remember_consent(&self, user_id: &str, client_id: &str, scopes: &[String]) -> Result<(), IdentityError> {
        let mut all = self.consented_scopes(user_id, client_id).await?;
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        let now = Timestamp::now();
        self.store.put_consent(user_id, client_id, &json_text(&all), now).await?;
        Ok(())
    }

    /// Forgets a user's consent to one client (or to every client).
    pub async fn revoke_consent(&self, user_id: &str, client_id: Option<&str>) -> Result<u64, IdentityError> {
        let n = self.store.delete_consent(user_id, client_id).await?;
        Ok(n)
    }
}
