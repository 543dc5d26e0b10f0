//! What tokens and userinfo say about a user: standard claims by scope (OIDC Core §5.4), the
//! `claims` request parameter for standard claims (§5.5), the operator's Lua claims hook, and
//! the two JWTs the token endpoint signs: the ID token (§2) and the RFC 9068 access token.

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::Digest;

use super::clients::Client;
use crate::identity::users::User;
use crate::identity::IdentityError;

/// Claims the engine sets and a hook may not change.
pub const PROTECTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
    "sid",
    "azp",
    "client_id",
    "scope",
    "acr",
    "amr",
    "typ",
    "cnf",
    "events",
];

const PROFILE_FROM_METADATA: &[&str] =
    &["given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale"];

/// What the claims hook is told: which token, for whom, which client, which scopes.
pub struct HookInput<'a> {
    pub target: &'static str,
    pub user: Option<&'a User>,
    pub client: &'a Client,
    pub scopes: &'a [String],
    pub grant_type: &'a str,
}

pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<Map<String, Value>, IdentityError>> + Send + 'a>>;

/// The operator's hook (`flows/claims.lua`): extra claims for one token or the userinfo answer.
pub trait ClaimsHook: Send + Sync {
    fn claims<'a>(&'a self, input: HookInput<'a>) -> HookFuture<'a>;
}

/// A hook that adds nothing (operator scripts, tests of the core).
pub struct NoHook;

impl ClaimsHook for NoHook {
    fn claims<'a>(&'a self, _input: HookInput<'a>) -> HookFuture<'a> {
        Box::pin(async { Ok(Map::new()) })
    }
}

fn has(scopes: &[String], s: &str) -> bool {
    scopes.iter().any(|x| x == s)
}

/// Every standard claim the engine knows of `user`, by name.
fn standard_claim(user: &User, name: &str) -> Option<Value> {
    let meta = |k: &str| user.metadata.get(k).filter(|v| !v.is_null()).cloned();
    match name {
        "name" => Some(json!(user.display_name.clone().unwrap_or_else(|| user.email.clone()))),
        "preferred_username" => Some(meta("preferred_username").unwrap_or_else(|| json!(user.email))),
        "updated_at" => chrono::DateTime::parse_from_rfc3339(&user.updated_at).ok().map(|t| json!(t.timestamp())),
        "email" => Some(json!(user.email)),
        "email_verified" => Some(json!(user.email_verified)),
        "groups" => Some(json!(user.roles)),
        "address" | "phone_number" | "phone_number_verified" => meta(name),
        n if PROFILE_FROM_METADATA.contains(&n) => meta(n),
        _ => None,
    }
}

/// The scope whose consent covers a standard claim.
fn scope_of(claim: &str) -> Option<&'static str> {
    match claim {
        "name" | "preferred_username" | "updated_at" => Some("profile"),
        c if PROFILE_FROM_METADATA.contains(&c) => Some("profile"),
        "email" | "email_verified" => Some("email"),
        "groups" => Some("groups"),
        "address" => Some("address"),
        "phone_number" | "phone_number_verified" => Some("phone"),
        _ => None,
    }
}

/// The claims of `scopes`, plus the standard claims `requested` (a member of the `claims`
/// request parameter: `{"email": null, "picture": {"essential": true}}`) names.
pub fn user_claims(user: &User, scopes: &[String], requested: Option<&Value>) -> Map<String, Value> {
    let mut names: Vec<&str> = Vec::new();
    if has(scopes, "profile") {
        names.extend(["name", "preferred_username", "updated_at"]);
        names.extend(PROFILE_FROM_METADATA);
    }
    if has(scopes, "email") {
        names.extend(["email", "email_verified"]);
    }
    if has(scopes, "groups") {
        names.push("groups");
    }
    if has(scopes, "address") {
        names.push("address");
    }
    if has(scopes, "phone") {
        names.extend(["phone_number", "phone_number_verified"]);
    }
    // Only within what the user consented to: the parameter chooses among the granted
    // scopes' claims, it never widens them.
    if let Some(Value::Object(req)) = requested {
        names.extend(req.keys().map(String::as_str).filter(|k| scope_of(k).is_some_and(|s| has(scopes, s))));
    }
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    for n in names {
        if let Some(v) = standard_claim(user, n) {
            out.insert(n.to_string(), v);
        }
    }
    out
}

/// Adds what the hook returned, minus the protected claims (logged, not fatal: an operator's
/// typo must not break every login).
pub fn merge_hook(into: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (k, v) in extra {
        if PROTECTED.contains(&k.as_str()) {
            tracing::warn!(claim = %k, "the claims hook tried to set a protected claim; ignored");
            continue;
        }
        into.insert(k, v);
    }
}

/// OIDC Core §3.1.3.6: base64url of the left half of the hash of the access token, the hash
/// being the one of the ID token's algorithm (SHA-512 for Ed25519).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        "EdDSA" => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}
