//! Client assertion replay (`private_key_jwt`): each assertion's jti is kept in
//! `auth.oidc_revoked_tokens` (beside revoked access tokens, under an `assertion:` key) until
//! the assertion expires.

use crate::storage::{Db, Timestamp};
use crate::with_pool;

#[derive(Clone)]
pub struct AssertionStore {
    db: Db,
}

impl AssertionStore {
    pub fn new(db: Db) -> AssertionStore {
        AssertionStore { db }
    }

    /// Records `key` until `expires`; false when it was already there (a replay).
    pub async fn spend(&self, key: &str, expires: Timestamp) -> Result<bool, sqlx::Error> {
        let inserted = with_pool!(&self.db, pool => sqlx::query("INSERT INTO auth.oidc_revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(key)
            .bind(expires)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(inserted > 0)
    }
}
