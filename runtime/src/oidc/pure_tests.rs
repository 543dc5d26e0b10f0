//! Unit tests of the provider's pure parts, against the specifications' own vectors where they
//! give one: PKCE (RFC 7636), `at_hash` (OIDC Core §3.1.3.6), claims by scope and the claims
//! request parameter (OIDC Core §5.4, §5.5), the hook's protected claims, and client-assertion
//! signatures (RFC 7523) checked against a JWK Set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::claims::{at_hash, merge_hook, user_claims};
use super::jwt::{verify_signature, verify_with_jwks};
use super::s256;
use crate::identity::users::User;

#[test]
fn pkce_s256_matches_rfc_7636_appendix_b() {
    assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

#[test]
fn at_hash_is_the_left_half_of_the_algorithms_hash() {
    use sha2::Digest;
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNEjPyMsDHLlhOjM1mE4";
    let full = sha2::Sha256::digest(token.as_bytes());
    assert_eq!(at_hash("RS256", token), URL_SAFE_NO_PAD.encode(&full[..16]));
    assert_eq!(at_hash("ES256", token).len(), 22, "16 bytes in base64url");
    let full = sha2::Sha512::digest(token.as_bytes());
    assert_eq!(at_hash("EdDSA", token), URL_SAFE_NO_PAD.encode(&full[..32]));
}

fn user() -> User {
    User {
        id: "u1".into(),
        email: "ada@example.com".into(),
        email_verified: true,
        display_name: Some("Ada".into()),
        disabled: false,
        roles: vec!["admin".into()],
        metadata: json!({ "picture": "https://example.com/ada.png", "phone_number": "+1 555 0100" }),
        has_password: true,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-02T00:00:00Z".into(),
    }
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn claims_follow_the_granted_scopes() {
    let u = user();
    let only_openid = user_claims(&u, &scopes(&["openid"]), None);
    assert_eq!(Value::Object(only_openid), json!({ "sub": "u1" }));

    let c = user_claims(&u, &scopes(&["openid", "email"]), None);
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["email_verified"], true);
    assert!(!c.contains_key("name"));

    let c = user_claims(&u, &scopes(&["openid", "profile", "groups", "phone"]), None);
    assert_eq!(c["name"], "Ada");
    assert_eq!(c["picture"], "https://example.com/ada.png");
    assert_eq!(c["updated_at"], 1_767_312_000);
    assert_eq!(c["groups"], json!(["admin"]));
    assert_eq!(c["phone_number"], "+1 555 0100");
    assert!(!c.contains_key("email"));
}

#[test]
fn the_claims_parameter_never_widens_the_scopes() {
    let u = user();
    // `email` is asked for by name but its scope was not granted; `picture` is within profile.
    let requested = json!({ "email": null, "picture": { "essential": true } });
    let c = user_claims(&u, &scopes(&["openid", "profile"]), Some(&requested));
    assert!(!c.contains_key("email"));
    assert_eq!(c["picture"], "https://example.com/ada.png");
}

#[test]
fn the_hook_cannot_set_protected_claims() {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!("u1"));
    let mut extra = Map::new();
    for k in ["sub", "iss", "aud", "exp", "nonce", "sid", "scope"] {
        extra.insert(k.into(), json!("forged"));
    }
    extra.insert("immich_role".into(), json!("admin"));
    merge_hook(&mut claims, extra);
    assert_eq!(Value::Object(claims), json!({ "sub": "u1", "immich_role": "admin" }));
}

/// A compact EdDSA JWS of `claims` with `kid`, and the key pair's public JWK.
fn signed(claims: &Value, kid: &str) -> (String, Value) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let header = json!({ "alg": "EdDSA", "kid": kid, "typ": "JWT" });
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = key.sign(input.as_bytes());
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()) });
    (format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())), jwk)
}

#[test]
fn client_assertions_verify_against_the_clients_key_set_only() {
    let claims = json!({ "iss": "c1", "sub": "c1", "aud": "https://id.example/auth/token", "jti": "j1", "exp": 4_000_000_000u64 });
    let (token, jwk) = signed(&claims, "k1");
    let (_, other) = signed(&claims, "k2");

    let (header, got) = verify_with_jwks(&token, &json!({ "keys": [other.clone(), jwk.clone()] })).unwrap();
    assert_eq!(header["kid"], "k1");
    assert_eq!(got, claims);
    // Another client's key, a key set without the kid, a tampered payload: all refused.
    assert!(verify_with_jwks(&token, &json!({ "keys": [other] })).is_err());
    assert!(verify_with_jwks(&token, &json!({})).is_err());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(json!({ "iss": "c1", "sub": "admin" }).to_string());
    parts[1] = &forged;
    assert!(verify_with_jwks(&parts.join("."), &json!({ "keys": [jwk.clone()] })).is_err());
    // The key decides the algorithm: an Ed25519 key never verifies as another alg.
    let input = token.rsplit_once('.').unwrap().0;
    let sig = URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap();
    assert!(verify_signature(&jwk, "EdDSA", input.as_bytes(), &sig));
    assert!(!verify_signature(&jwk, "ES256", input.as_bytes(), &sig));
    assert!(!verify_signature(&jwk, "none", input.as_bytes(), &sig));
}
