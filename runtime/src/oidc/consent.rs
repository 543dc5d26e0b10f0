//! `auth.oidc_consents`: the scopes a user allowed a client, remembered when they asked for it,
//! so the next authorization for the same or fewer scopes skips the consent page.

use super::json_text;
use crate::identity::{Identity, IdentityError};
use crate::storage::Timestamp;
use crate::with_pool;

impl Identity {
    pub async fn consented_scopes(&self, user_id: &str, client_id: &str) -> Result<Vec<String>, IdentityError> {
        let row: Option<String> = with_pool!(&self.db, pool => sqlx::query_scalar("SELECT scopes FROM auth.oidc_consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        Ok(crate::storage::json_column_opt("oidc_consents.scopes", row)?.unwrap_or_default())
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
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth.oidc_consents (user_id, client_id, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at")
            .bind(user_id)
            .bind(client_id)
            .bind(json_text(&all))
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Forgets a user's consent to one client (or to every client).
    pub async fn revoke_consent(&self, user_id: &str, client_id: Option<&str>) -> Result<u64, IdentityError> {
        let n = with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth.oidc_consents WHERE user_id = $1 AND ($2 IS NULL OR client_id = $2)")
            .bind(user_id)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
