//! The discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414): what this provider
//! supports, and nothing it does not. Served at `/.well-known/openid-configuration` and at
//! `{issuer}/.well-known/openid-configuration`, the same document at both.

use serde_json::{json, Value};

use crate::config::Config;

/// The claims the provider can put in ID tokens and userinfo.
pub const CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "groups",
];

pub const SCOPES: &[&str] = &["openid", "profile", "email", "address", "phone", "offline_access", "groups"];

/// Where the provider's endpoints live: under `{public_url}/auth`, whatever the issuer says
/// (the issuer is an identifier; the routes are this engine's).
pub fn endpoint(config: &Config, path: &str) -> String {
    format!("{}{path}", config.public_url())
}

pub fn document(config: &Config) -> Value {
    let algs = super::keys::ALGORITHMS;
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"];
    // Introspection is for clients that can authenticate; a public client may revoke its own.
    let introspection_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    let assertion_algs = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
    json!({
        "issuer": config.auth.issuer,
        "authorization_endpoint": endpoint(config, "/auth/authorize"),
        "token_endpoint": endpoint(config, "/auth/token"),
        "userinfo_endpoint": endpoint(config, "/auth/userinfo"),
        "jwks_uri": endpoint(config, "/.well-known/jwks.json"),
        "revocation_endpoint": endpoint(config, "/auth/oauth2/revoke"),
        "introspection_endpoint": endpoint(config, "/auth/oauth2/introspect"),
        "end_session_endpoint": endpoint(config, "/auth/oauth2/sessions/logout"),
        "scopes_supported": SCOPES,
        "claims_supported": CLAIMS,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": introspection_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "id_token_signing_alg_values_supported": algs,
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page"],
        "acr_values_supported": ["0", "1"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "ui_locales_supported": ["en"],
    })
}
