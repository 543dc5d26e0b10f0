//! `auth.oidc_sessions` (which clients got an ID token in a browser session) and
//! `auth.oidc_logout_deliveries` (the Logout Token queue); ending a session also ends its bound
//! grants in `auth.oidc_grants` and `auth.oidc_refresh_tokens`.

use sqlx::Row;

use crate::identity::ids;
use crate::storage::{Conn, Db, Timestamp};
use crate::{with_conn, with_pool};

/// A Logout Token to queue for one client: where, what (claims as JSON text), signed how.
pub struct Delivery {
    pub uri: String,
    pub claims: String,
    pub alg: String,
}

/// A queued delivery that is due.
pub struct Due {
    pub id: String,
    pub uri: String,
    pub claims: String,
    pub alg: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
}

#[derive(Clone)]
pub struct LogoutStore {
    db: Db,
}

impl LogoutStore {
    pub fn new(db: Db) -> LogoutStore {
        LogoutStore { db }
    }

    /// On `conn`, inside the caller's transaction that ends session `sid`: queues a delivery
    /// for each client of the session that `delivery` (given client_id, user_id and the
    /// client's settings as JSON text) says to tell, forgets the session's clients, and
    /// revokes the grants bound to the session (those without `offline_access`) with their
    /// refresh tokens. Returns how many deliveries it queued.
    pub async fn end_session<F>(&self, conn: Conn<'_>, sid: &str, now: Timestamp, mut delivery: F) -> Result<usize, sqlx::Error>
    where
        F: FnMut(&str, &str, &str) -> Option<Delivery> + Send,
    {
        // Grants without offline_access live only as long as the session.
        const BOUND: &str =
            "SELECT id FROM auth.oidc_grants WHERE session_id = $1 AND revoked_at IS NULL AND scopes NOT LIKE '%\"offline_access\"%'";
        let revoke_tokens = format!("UPDATE auth.oidc_refresh_tokens SET revoked = TRUE WHERE grant_id IN ({BOUND})");
        let revoke_grants = format!("UPDATE auth.oidc_grants SET revoked_at = $2 WHERE id IN ({BOUND})");
        let mut queued = 0;
        with_conn!(conn, tx => {
            let rows = sqlx::query("SELECT s.client_id, s.user_id, c.settings FROM auth.oidc_sessions s JOIN auth.oidc_clients c ON c.client_id = s.client_id WHERE s.sid = $1")
                .bind(sid)
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                let client_id: String = r.try_get("client_id")?;
                let user_id: String = r.try_get("user_id")?;
                let settings: String = r.try_get("settings")?;
                let Some(d) = delivery(&client_id, &user_id, &settings) else { continue };
                sqlx::query("INSERT INTO auth.oidc_logout_deliveries (id, client_id, uri, claims, alg, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
                    .bind(ids::new_id())
                    .bind(&client_id)
                    .bind(&d.uri)
                    .bind(&d.claims)
                    .bind(&d.alg)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                queued += 1;
            }
            sqlx::query("DELETE FROM auth.oidc_sessions WHERE sid = $1").bind(sid).execute(&mut *tx).await?;
            sqlx::query(&revoke_tokens).bind(sid).execute(&mut *tx).await?;
            sqlx::query(&revoke_grants).bind(sid).bind(now).execute(&mut *tx).await?;
        });
        Ok(queued)
    }

    /// Up to 50 deliveries due at `now`, the longest waiting first.
    pub async fn due(&self, now: Timestamp) -> Result<Vec<Due>, sqlx::Error> {
        with_pool!(&self.db, pool => {
            let rows = sqlx::query("SELECT id, uri, claims, alg, attempts, next_attempt_at FROM auth.oidc_logout_deliveries WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 50")
                .bind(now)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Due {
                        id: r.try_get("id")?,
                        uri: r.try_get("uri")?,
                        claims: r.try_get("claims")?,
                        alg: r.try_get("alg")?,
                        attempts: r.try_get("attempts")?,
                        next_attempt_at: r.try_get("next_attempt_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })
    }

    /// Moves a delivery's next attempt from `was` to `until`; false when it no longer was due
    /// at `was` (another engine took it).
    pub async fn lease(&self, id: &str, was: Timestamp, until: Timestamp) -> Result<bool, sqlx::Error> {
        let n = with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_logout_deliveries SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2")
            .bind(id)
            .bind(was)
            .bind(until)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn delete(&self, id: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_logout_deliveries WHERE id = $1").bind(id).execute(pool).await.map(|_| ()))
    }

    /// Records a failed attempt and when to try again.
    pub async fn retry_later(&self, id: &str, attempts: i64, next: Timestamp, error: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_logout_deliveries SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1")
            .bind(id)
            .bind(attempts)
            .bind(next)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ()))
    }
}
