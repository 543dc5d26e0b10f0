//! `auth.oidc_clients`: the relying parties. Settings are validated here, once, whichever way
//! they arrive (admin API, console, Lua); the secret is shown once and kept as an HMAC.

use crate::crypto::{constant_time_eq, random_token};
use crate::identity::IdentityError;
use std::sync::Arc;

use super::store::ClientStore;
pub use super::store::{Client, Settings};
use crate::identity::secrets::ServerKeys;
use crate::storage::{Db, Timestamp, WriteTurns};

const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none", "private_key_jwt"];
const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

pub type Page = crate::storage::Page<Client>;

fn strings(field: &'static str, v: &serde_json::Value) -> Result<Vec<String>, IdentityError> {
    let list = v.as_array().ok_or_else(|| IdentityError::invalid(field, "must be an array of strings"))?;
    list.iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(|| IdentityError::invalid(field, "must be an array of strings")))
        .collect()
}

/// An absolute URI without a fragment: https, http (loopback or not; the operator decides), or
/// a private-use scheme (`app.immich:///oauth-callback`, RFC 8252).
fn check_uri(field: &'static str, s: &str) -> Result<(), IdentityError> {
    let u = url::Url::parse(s).map_err(|e| IdentityError::invalid(field, format!("{s:?} is not an absolute URI: {e}")))?;
    if u.fragment().is_some() {
        return Err(IdentityError::invalid(field, format!("{s:?} has a fragment")));
    }
    if matches!(u.scheme(), "javascript" | "data" | "file" | "vbscript") {
        return Err(IdentityError::invalid(field, format!("{s:?} uses a scheme that cannot be a redirect")));
    }
    if matches!(u.scheme(), "http" | "https") && u.host_str().is_none_or(str::is_empty) {
        return Err(IdentityError::invalid(field, format!("{s:?} has no host")));
    }
    Ok(())
}

/// A client as `apply` leaves it: what gets written.
pub struct Draft {
    pub name: String,
    pub settings: Settings,
    pub resource_server: bool,
}

/// Applies `input` (a JSON object) over `base` (a new client's defaults, or the stored
/// settings for a PATCH) and checks the result as a whole.
pub fn apply(
    name: Option<String>,
    base: Settings,
    resource_server: bool,
    input: &serde_json::Value,
    creating: bool,
) -> Result<Draft, IdentityError> {
    let obj = input.as_object().ok_or_else(|| IdentityError::invalid("body", "must be a JSON object"))?;
    let mut s = base;
    let mut name = name;
    let mut resource_server = resource_server;
    for (k, v) in obj {
        match k.as_str() {
            "name" => name = Some(v.as_str().ok_or_else(|| IdentityError::invalid("name", "must be a string"))?.trim().to_string()),
            "redirect_uris" => s.redirect_uris = strings("redirect_uris", v)?,
            "post_logout_redirect_uris" => s.post_logout_redirect_uris = strings("post_logout_redirect_uris", v)?,
            "default_scopes" => s.default_scopes = strings("default_scopes", v)?,
            "grant_types" => s.grant_types = strings("grant_types", v)?,
            "token_endpoint_auth_method" => {
                s.token_endpoint_auth_method =
                    v.as_str().ok_or_else(|| IdentityError::invalid("token_endpoint_auth_method", "must be a string"))?.to_string()
            }
            "pkce_required" => {
                s.pkce_required = v.as_bool().ok_or_else(|| IdentityError::invalid("pkce_required", "must be true or false"))?
            }
            "skip_consent" => {
                s.skip_consent = v.as_bool().ok_or_else(|| IdentityError::invalid("skip_consent", "must be true or false"))?
            }
            "resource_server" => {
                resource_server = v.as_bool().ok_or_else(|| IdentityError::invalid("resource_server", "must be true or false"))?
            }
            "backchannel_logout_uri" => {
                s.backchannel_logout_uri = match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(u) if u.is_empty() => None,
                    serde_json::Value::String(u) => Some(u.clone()),
                    _ => return Err(IdentityError::invalid("backchannel_logout_uri", "must be a string or null")),
                }
            }
            "id_token_signed_response_alg" => {
                s.id_token_signed_response_alg =
                    v.as_str().ok_or_else(|| IdentityError::invalid("id_token_signed_response_alg", "must be a string"))?.to_string()
            }
            "jwks" => s.jwks = if v.is_null() { None } else { Some(v.clone()) },
            // Shown in answers; ignored when sent back (a GET's output can be PATCHed as is).
            "client_id" | "created_at" | "updated_at" if !creating => {}
            other => return Err(IdentityError::Invalid { field: "body", reason: format!("unknown field {other:?}") }),
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or_else(|| IdentityError::invalid("name", "is required"))?;
    if name.chars().count() > 200 {
        return Err(IdentityError::invalid("name", "must be at most 200 characters"));
    }
    for g in &s.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(IdentityError::invalid("grant_types", format!("{g:?} is not one of {}", GRANT_TYPES.join(", "))));
        }
    }
    if s.grant_types.is_empty() {
        return Err(IdentityError::invalid("grant_types", "must not be empty"));
    }
    if !AUTH_METHODS.contains(&s.token_endpoint_auth_method.as_str()) {
        return Err(IdentityError::invalid("token_endpoint_auth_method", format!("must be one of {}", AUTH_METHODS.join(", "))));
    }
    if !super::keys::ALGORITHMS.contains(&s.id_token_signed_response_alg.as_str()) {
        return Err(IdentityError::invalid(
            "id_token_signed_response_alg",
            format!("must be one of {}", super::keys::ALGORITHMS.join(", ")),
        ));
    }
    if s.grant_types.iter().any(|g| g == "authorization_code") && s.redirect_uris.is_empty() {
        return Err(IdentityError::invalid("redirect_uris", "at least one is required for the authorization_code grant"));
    }
    for u in &s.redirect_uris {
        check_uri("redirect_uris", u)?;
    }
    for u in &s.post_logout_redirect_uris {
        check_uri("post_logout_redirect_uris", u)?;
    }
    if let Some(u) = &s.backchannel_logout_uri {
        check_uri("backchannel_logout_uri", u)?;
        if !u.starts_with("https://") && !u.starts_with("http://") {
            return Err(IdentityError::invalid("backchannel_logout_uri", "must be an http(s) URL"));
        }
    }
    for scope in &s.default_scopes {
        if scope.is_empty() || !scope.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') {
            return Err(IdentityError::invalid("default_scopes", format!("{scope:?} is not a scope token")));
        }
    }
    if s.token_endpoint_auth_method == "none" {
        // A public client proves itself only with PKCE.
        if !s.pkce_required {
            return Err(IdentityError::invalid("pkce_required", "must be true for a public client (token_endpoint_auth_method none)"));
        }
        if s.grant_types.iter().any(|g| g == "client_credentials") {
            return Err(IdentityError::invalid("grant_types", "client_credentials needs an authenticated client"));
        }
    }
    if s.token_endpoint_auth_method == "private_key_jwt" && !s.jwks.as_ref().is_some_and(|j| j["keys"].is_array()) {
        return Err(IdentityError::invalid("jwks", "a JWK Set ({\"keys\": [...]}) is required for private_key_jwt"));
    }
    Ok(Draft { name, settings: s, resource_server })
}

fn defaults() -> Settings {
    Settings {
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        default_scopes: vec!["openid".into(), "profile".into(), "email".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        token_endpoint_auth_method: "client_secret_basic".into(),
        pkce_required: true,
        skip_consent: false,
        backchannel_logout_uri: None,
        id_token_signed_response_alg: super::keys::DEFAULT_ALG.into(),
        jwks: None,
    }
}

fn uses_secret(s: &Settings) -> bool {
    matches!(s.token_endpoint_auth_method.as_str(), "client_secret_basic" | "client_secret_post")
}

/// The relying parties service (`auth.oidc_clients`). Deleting a client removes what hangs off
/// it (tokens, codes, grants, consents, parked requests, OIDC sessions) in one transaction.
#[derive(Clone)]
pub struct Clients {
    /// For the SQLite write turn only; statements go through `store`.
    store: ClientStore,
    keys: Arc<ServerKeys>,
    turns: WriteTurns,
}

impl Clients {
    pub fn new(db: Db, keys: Arc<ServerKeys>, turns: WriteTurns) -> Clients {
        Clients { store: ClientStore::new(db), keys, turns }
    }

    fn secret_hash(&self, secret: &str) -> String {
        hex::encode(self.keys.mac("assay/client-secret/v1", secret.as_bytes()))
    }

    /// A new client and, for secret-based auth methods, its secret (shown once).
    pub async fn create(&self, input: &serde_json::Value) -> Result<(Client, Option<String>), IdentityError> {
        let Draft { name, settings, resource_server } = apply(None, defaults(), false, input, true)?;
        let client_id = random_token(16);
        let secret = uses_secret(&settings).then(|| format!("cs_{}", random_token(32)));
        let now = Timestamp::now();
        let json = serde_json::to_string(&settings).map_err(|e| IdentityError::Internal(e.to_string()))?;
        self.store.insert(&client_id, &name, secret.as_deref().map(|s| self.secret_hash(s)), &json, resource_server, now).await?;
        Ok((self.get(&client_id).await?, secret))
    }

    pub async fn get(&self, client_id: &str) -> Result<Client, IdentityError> {
        self.client_row(client_id).await?.map(|(c, _)| c).ok_or_else(|| IdentityError::NotFound("no client with that client_id".into()))
    }

    async fn client_row(&self, client_id: &str) -> Result<Option<(Client, Option<String>)>, IdentityError> {
        // An id no client can have is never looked up: it may come from a Basic header or an
        // unverified assertion, and PostgreSQL refuses a NUL in text with an error (a 500).
        if crate::identity::input::check_text("client_id", client_id, 255).is_err() {
            return Ok(None);
        }
        let row = self.store.find(client_id).await?;
        Ok(row)
    }

    pub async fn update(&self, client_id: &str, input: &serde_json::Value) -> Result<Client, IdentityError> {
        let current = self.get(client_id).await?;
        let had_secret = uses_secret(&current.settings);
        let Draft { name, settings, resource_server } = apply(Some(current.name), current.settings, current.resource_server, input, false)?;
        if uses_secret(&settings) && !had_secret {
            return Err(IdentityError::invalid(
                "token_endpoint_auth_method",
                "switching to a secret needs POST .../rotate-secret after the change; create the client with a secret method instead",
            ));
        }
        let json = serde_json::to_string(&settings).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let clear_secret = !uses_secret(&settings);
        self.store.update(client_id, &name, &json, clear_secret, resource_server).await?;
        self.get(client_id).await
    }

    /// Deletes a client and, in the same transaction, everything it was given: grants and their
    /// refresh tokens, unused codes, remembered consents, parked authorization requests, and the
    /// sessions it would be told about at logout. The foreign keys cascade too, but saying it
    /// here keeps it true whatever a connection's `foreign_keys` setting; the access tokens it
    /// holds then fail introspection and userinfo, which treat a missing grant or client as
    /// revoked. Pending Logout Tokens stay: they end sessions the client already knew about.
    pub async fn delete(&self, client_id: &str) -> Result<(), IdentityError> {
        let _turn = self.turns.take().await;
        let n = self.store.delete_cascade(client_id).await?;
        if n == 0 {
            return Err(IdentityError::NotFound("no client with that client_id".into()));
        }
        Ok(())
    }

    /// A new secret (shown once); the old one stops working at once.
    pub async fn rotate_secret(&self, client_id: &str) -> Result<String, IdentityError> {
        let client = self.get(client_id).await?;
        if !uses_secret(&client.settings) {
            return Err(IdentityError::invalid(
                "token_endpoint_auth_method",
                format!("a {} client has no secret", client.settings.token_endpoint_auth_method),
            ));
        }
        let secret = format!("cs_{}", random_token(32));
        self.store.set_secret_hash(client_id, &self.secret_hash(&secret)).await?;
        Ok(secret)
    }

    /// Whether `secret` is the client's current secret (an HMAC, compared in constant time).
    pub async fn check_secret(&self, client_id: &str, secret: &str) -> Result<Option<Client>, IdentityError> {
        let Some((client, Some(stored))) = self.client_row(client_id).await? else { return Ok(None) };
        Ok(constant_time_eq(self.secret_hash(secret).as_bytes(), stored.as_bytes()).then_some(client))
    }

    /// By client_id; the cursor is the last client_id of the previous page.
    pub async fn list(&self, limit: i64, cursor: Option<&str>) -> Result<Page, IdentityError> {
        let limit = limit.clamp(1, crate::identity::users::MAX_PAGE);
        let clients = self.store.page(cursor, limit + 1).await?;
        Ok(Page::from_overfetch("clients", clients, limit, |c| c.client_id.clone()))
    }
}
