//! `auth.oidc_clients`, and on delete every row that hangs off a client: its refresh tokens,
//! codes, grants, consents, parked requests and OIDC sessions.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::storage::rfc3339;
use crate::storage::{Db, Timestamp};
use crate::with_pool;

const COLUMNS: &str = "client_id, name, secret_hash, settings, resource_server, created_at, updated_at";

#[derive(Clone)]
pub struct ClientStore {
    db: Db,
}

impl ClientStore {
    pub fn new(db: Db) -> ClientStore {
        ClientStore { db }
    }

    pub async fn insert(
        &self,
        client_id: &str,
        name: &str,
        secret_hash: Option<String>,
        settings: &str,
        resource_server: bool,
        now: Timestamp,
    ) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth.oidc_clients (client_id, name, secret_hash, settings, resource_server, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
            .bind(client_id)
            .bind(name)
            .bind(secret_hash)
            .bind(settings)
            .bind(resource_server)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// A client and its secret's hash.
    pub async fn find(&self, client_id: &str) -> Result<Option<(Client, Option<String>)>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM auth.oidc_clients WHERE client_id = $1");
        with_pool!(&self.db, pool => {
            match sqlx::query(&sql).bind(client_id).fetch_optional(pool).await? {
                Some(r) => Ok(Some(client_from(&r)?)),
                None => Ok(None),
            }
        })
    }

    /// Writes name, settings and the resource_server flag; `clear_secret` drops the secret.
    pub async fn update(
        &self,
        client_id: &str,
        name: &str,
        settings: &str,
        clear_secret: bool,
        resource_server: bool,
    ) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth.oidc_clients SET name = $2, settings = $3, updated_at = $4, secret_hash = CASE WHEN $5 THEN NULL ELSE secret_hash END, \
             resource_server = $6 WHERE client_id = $1")
            .bind(client_id)
            .bind(name)
            .bind(settings)
            .bind(Timestamp::now())
            .bind(clear_secret)
            .bind(resource_server)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Deletes the client and its dependents in one transaction; returns how many clients went
    /// (0 or 1). The foreign keys cascade too, but saying it here keeps it true whatever a
    /// connection's `foreign_keys` setting.
    pub async fn delete_cascade(&self, client_id: &str) -> Result<u64, sqlx::Error> {
        const DEPENDENTS: &[&str] = &[
            "DELETE FROM auth.oidc_refresh_tokens WHERE client_id = $1",
            "DELETE FROM auth.oidc_authorization_codes WHERE client_id = $1",
            "DELETE FROM auth.oidc_grants WHERE client_id = $1",
            "DELETE FROM auth.oidc_consents WHERE client_id = $1",
            "DELETE FROM auth.oidc_auth_requests WHERE client_id = $1",
            "DELETE FROM auth.oidc_sessions WHERE client_id = $1",
        ];
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for sql in DEPENDENTS {
                sqlx::query(sql).bind(client_id).execute(&mut *tx).await?;
            }
            let n = sqlx::query("DELETE FROM auth.oidc_clients WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(n)
        })
    }

    pub async fn set_secret_hash(&self, client_id: &str, secret_hash: &str) -> Result<(), sqlx::Error> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth.oidc_clients SET secret_hash = $2, updated_at = $3 WHERE client_id = $1")
            .bind(client_id)
            .bind(secret_hash)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Up to `fetch` clients by client_id, after `cursor`.
    pub async fn page(&self, cursor: Option<&str>, fetch: i64) -> Result<Vec<Client>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM auth.oidc_clients WHERE ($1 IS NULL OR client_id > $1) ORDER BY client_id LIMIT $2");
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(&sql).bind(cursor).bind(fetch).fetch_all(pool).await?;
            rows.iter().map(|r| client_from(r).map(|(c, _)| c)).collect::<Result<Vec<Client>, sqlx::Error>>()
        })
    }
}

fn client_from<R: Row>(r: &R) -> Result<(Client, Option<String>), sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'x> String: sqlx::Decode<'x, R::Database> + sqlx::Type<R::Database>,
    for<'x> Option<String>: sqlx::Decode<'x, R::Database>,
    for<'x> bool: sqlx::Decode<'x, R::Database> + sqlx::Type<R::Database>,
    for<'x> Timestamp: sqlx::Decode<'x, R::Database> + sqlx::Type<R::Database>,
{
    let settings: String = r.try_get("settings")?;
    let settings: Settings = serde_json::from_str(&settings).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok((
        Client {
            client_id: r.try_get("client_id")?,
            name: r.try_get("name")?,
            settings,
            resource_server: r.try_get("resource_server")?,
            created_at: rfc3339(r.try_get("created_at")?),
            updated_at: rfc3339(r.try_get("updated_at")?),
        },
        r.try_get("secret_hash")?,
    ))
}

/// What a client may do; stored as one JSON document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub default_scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub pkce_required: bool,
    pub skip_consent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    pub id_token_signed_response_alg: String,
    /// Public keys for `private_key_jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    #[serde(flatten)]
    pub settings: Settings,
    /// May introspect tokens issued to other clients (an API checking bearer tokens). Its own
    /// column, not part of `settings`: see migration 0006.
    pub resource_server: bool,
    pub created_at: String,
    pub updated_at: String,
}
