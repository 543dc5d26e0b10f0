//! The OpenID Connect provider (Hydra's part). The protocol core is Rust; the pages people see
//! (login, consent) are Lua flows that report back through `assay.oidc`.
//!
//! Services, each owning its tables:
//! - [`SigningKeys`] (`keys.rs`, `jwt.rs`): signing keys sealed at rest, compact JWS signed and
//!   verified with them
//! - [`Clients`] (`clients.rs`): relying parties
//! - [`Grants`] (`grants.rs`): grants, refresh tokens, remembered consent
//! - [`LogoutQueue`] (`logout_queue.rs`): back-channel Logout Tokens, queued in the transaction
//!   that ends a session and delivered with retries
//! - [`Provider`] (`provider.rs`): the protocol endpoints, one file each: `authorize.rs` (the
//!   authorization endpoint, the parked request, login and consent hand-off), `token.rs` (the
//!   token endpoint and its three grants), `client_auth.rs` (client authentication),
//!   `resource.rs` (userinfo, RFC 7662 introspection, RFC 7009 revocation), `logout.rs`
//!   (RP-initiated logout)
//!
//! Their SQL lives in `store/`, one store per table group, each a small handle over the pool
//! that a service builds in `new`: `keys.rs` (`auth.jwks_keys`), `clients.rs` (clients and the
//! cascade on delete), `grants.rs` (grants, refresh tokens, consents, revoked access tokens),
//! `requests.rs` (parked authorization requests, codes and their redemption), `logout.rs` (OIDC
//! sessions and the Logout Token queue), `assertions.rs` (client assertion replay). Services
//! and endpoints keep the protocol rules; each atomic write is one store method.
//!
//! Pure parts: `discovery.rs` (the discovery document), `claims.rs` (claims by scope, the ID
//! token and the RFC 9068 access token), `reply.rs` (what an endpoint answers, the OAuth error).

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod clients;
pub mod discovery;
pub mod grants;
pub mod jwt;
pub mod keys;
pub mod logout;
pub mod logout_queue;
pub mod provider;
#[cfg(test)]
mod pure_tests;
pub mod reply;
pub mod resource;
mod store;
pub mod token;

pub use clients::Clients;
pub use grants::Grants;
pub use keys::SigningKeys;
pub use logout_queue::LogoutQueue;
pub use provider::{Provider, ProviderParts};
pub use reply::{Body, OAuthError, Reply};

use crate::request::{bounded_pairs, MAX_PARAMS};
use crate::storage::Timestamp;

/// A space-separated scope string as a list, in order, without repeats. The string comes from
/// the client (up to a whole body of it), so repeats are found with a set, not a scan.
pub fn split_scopes(s: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    s.split(' ').filter(|p| !p.is_empty() && seen.insert(*p)).map(str::to_string).collect()
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn later(secs: u64) -> Timestamp {
    Timestamp(Timestamp::now().0 + chrono::Duration::seconds(secs.min(i64::MAX as u64 / 2) as i64))
}

/// Form or query parameters, refusing repeats (RFC 6749 §3.1 and §3.2: a parameter MUST NOT
/// appear more than once) and treating empty values as absent (§3.1). These are checked
/// before the client is authenticated, so the check is linear and the count bounded.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        if pairs.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request(format!("too many parameters (at most {MAX_PARAMS})")));
        }
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        for (k, _) in &pairs {
            if !seen.insert(k.as_str()) {
                return Err(OAuthError::invalid_request(format!("the parameter {k} appears more than once")));
            }
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
pub fn form_params(req: &crate::request::HttpRequest) -> Result<Params, OAuthError> {
    let ct = req.header("content-type").unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    Params::new(bounded_pairs(&req.body))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("p{i}"), "v".to_string())).collect()
    }

    #[test]
    fn params_refuse_repeats_and_too_many() {
        assert!(Params::new(pairs(MAX_PARAMS)).is_ok());
        let e = Params::new(pairs(MAX_PARAMS + 1)).err().map(|e| e.description).unwrap_or_default();
        assert!(e.contains("too many parameters"), "{e}");
        let mut twice = pairs(3);
        twice.push(("p1".into(), "again".into()));
        let e = Params::new(twice).err().map(|e| e.description).unwrap_or_default();
        assert!(e.contains("p1 appears more than once"), "{e}");
    }

    #[test]
    fn form_params_stop_reading_past_the_cap() {
        // A megabyte of distinct names: refused without building them all.
        let body: String = (0..120_000).map(|i| format!("k{i}=v&")).collect();
        let req = crate::request::HttpRequest {
            headers: [(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-www-form-urlencoded"))]
                .into_iter()
                .collect(),
            body: body.into(),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let e = form_params(&req).err().map(|e| e.description).unwrap_or_default();
        assert!(e.contains("too many parameters"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[test]
    fn scopes_keep_order_without_repeats() {
        assert_eq!(split_scopes("openid  email openid profile email"), vec!["openid", "email", "profile"]);
        let many: String = (0..200_000).map(|i| format!("s{i} ")).collect();
        let started = std::time::Instant::now();
        assert_eq!(split_scopes(&many).len(), 200_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
