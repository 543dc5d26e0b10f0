//! `auth.user_tokens`: emailed-link tokens, kept as the SHA-256 of the secret. Issuing retires
//! the user's earlier unused tokens of the purpose in the same transaction; consuming is one
//! guarded UPDATE, so of two concurrent uses exactly one wins.

use crate::storage::{Db, Timestamp};
use crate::with_pool;

#[derive(Clone)]
pub struct TokenStore {
    db: Db,
}

impl TokenStore {
    pub fn new(db: Db) -> TokenStore {
        TokenStore { db }
    }

    /// Marks `user_id`'s unused `purpose` tokens used and inserts the new one, atomically: only
    /// the newest link works.
    pub async fn issue(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE auth.user_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
                .bind(user_id)
                .bind(purpose)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO auth.user_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash)
                .bind(user_id)
                .bind(purpose)
                .bind(now)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Uses up the unused, unexpired `purpose` token with this hash; returns its user's id, or
    /// `None` when there is no such token.
    pub async fn consume(&self, token_hash: &str, purpose: &str, now: Timestamp) -> Result<Option<String>, sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query_scalar(
            "UPDATE auth.user_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING user_id")
            .bind(token_hash)
            .bind(purpose)
            .bind(now)
            .fetch_optional(pool)
            .await)
    }
}
