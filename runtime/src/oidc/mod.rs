//! The OpenID Connect provider (Hydra's part). The protocol core is Rust; the pages people see
//! (login, consent) are Lua flows that report back through `assay.oidc`.
//!
//! - `keys.rs`, `jwt.rs`: signing keys sealed at rest, compact JWS signed and verified with them
//! - `clients.rs`: relying parties
//! - `discovery.rs`: the discovery document
//! - `authorize.rs`: the authorization endpoint, the parked request, login and consent hand-off
//! - `consent.rs`: remembered consent per (user, client)
//! - `client_auth.rs`: client authentication at the token-style endpoints
//! - `claims.rs`: claims by scope, the ID token and the RFC 9068 access token
//! - `token.rs`: the token endpoint and its three grants; `refresh.rs` the refresh-token store
//! - `resource.rs`: userinfo, introspection (RFC 7662) and revocation (RFC 7009)
//! - `logout.rs`: RP-initiated logout and back-channel Logout Tokens with retries
//! - `reply.rs`: what an endpoint answers, and the OAuth error type

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod clients;
pub mod consent;
pub mod discovery;
pub mod jwt;
pub mod keys;
pub mod logout;
pub mod refresh;
pub mod reply;
pub mod resource;
pub mod token;

pub use reply::{Body, OAuthError, Reply};

use crate::storage::Timestamp;

/// A space-separated scope string as a list, in order, without repeats.
pub fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|x| x == part) {
            out.push(part.to_string());
        }
    }
    out
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn later(secs: u64) -> Timestamp {
    Timestamp(Timestamp::now().0 + chrono::Duration::seconds(secs.min(i64::MAX as u64 / 2) as i64))
}

/// Form or query parameters, refusing repeats (RFC 6749 §3.1 and §3.2: a parameter MUST NOT
/// appear more than once) and treating empty values as absent (§3.1).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in &pairs {
            if seen.contains(&k.as_str()) {
                return Err(OAuthError::invalid_request(format!("the parameter {k} appears more than once")));
            }
            seen.push(k);
        }
        Ok(Params(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// The form body of a POST to a token-style endpoint: `application/x-www-form-urlencoded` only.
pub fn form_params(req: &crate::lua::FlowRequest) -> Result<Params, OAuthError> {
    let ct = req.header("content-type").unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    Params::new(form_urlencoded::parse(&req.body).into_owned().collect())
}

/// `uri` with `params` added to its query (or, for `fragment`, its fragment).
pub fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    if q.is_empty() {
        return out;
    }
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(&q);
    out
}

/// base64url(SHA-256(x)) — PKCE S256 and nothing else here.
pub fn s256(x: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(x.as_bytes()))
}

/// JSON text of a list or object, for the TEXT columns that hold them on both backends.
pub fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
