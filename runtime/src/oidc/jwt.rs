//! Compact JWS (RFC 7515) signed with the provider's keys, and verified against the published
//! ones. Parsed key pairs are cached by kid (a kid's key never changes); the active kid of each
//! algorithm is re-read from the database at most every few seconds, so a rotation on one
//! engine reaches the others quickly, and a token signed meanwhile with the retired key still
//! verifies because retired keys stay published.

use aws_lc_rs::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PKCS1_SHA256, RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384,
    RSA_PSS_2048_8192_SHA512,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::keys::{Signer, SigningKeys};
use crate::identity::IdentityError;

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 60;

/// What a verification checks besides the signature.
#[derive(Debug, Default, Clone)]
pub struct Expect {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub typ: Option<String>,
    /// Accept an expired token (an `id_token_hint` may be one; OIDC RP-Initiated Logout §2).
    pub allow_expired: bool,
}

fn invalid(why: &str) -> IdentityError {
    IdentityError::InvalidJwt(why.to_string())
}

impl SigningKeys {
    /// `claims` (a JSON object) signed with the active key of `alg`; the header carries `kid`
    /// and `typ` (default `JWT`; RFC 9068 access tokens use `at+jwt`).
    pub async fn sign(&self, alg: &str, typ: Option<&str>, claims: &serde_json::Value) -> Result<String, IdentityError> {
        if !claims.is_object() {
            return Err(IdentityError::invalid("claims", "must be an object"));
        }
        let kid = self.active_kid_cached(alg).await?;
        let signer = self.signer(&kid).await?;
        let header = serde_json::json!({ "alg": alg, "kid": kid, "typ": typ.unwrap_or("JWT") });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = match &*signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .map_err(|_| IdentityError::Internal("RS256 signing failed".into()))?;
                sig
            }
            Signer::Ec(k) => {
                k.sign(&rng, input.as_bytes()).map_err(|_| IdentityError::Internal("ES256 signing failed".into()))?.as_ref().to_vec()
            }
            Signer::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(input)
    }

    /// The claims of a token signed by one of the published keys, valid now (`exp`, `nbf`
    /// with a minute of leeway) and matching `expect`; `InvalidJwt` with the reason otherwise.
    pub async fn verify(&self, token: &str, expect: &Expect) -> Result<serde_json::Value, IdentityError> {
        let Jws { header, claims, sig, message } = split(token)?;
        let kid = header["kid"].as_str().ok_or_else(|| invalid("no kid"))?;
        let alg = header["alg"].as_str().ok_or_else(|| invalid("no alg"))?;
        let jwk = self.list().await?.into_iter().find(|k| k.kid == kid).map(|k| k.public_jwk).ok_or_else(|| invalid("unknown kid"))?;
        // The key decides the algorithm: a header naming another one is refused (no alg
        // confusion, no "none").
        if jwk["alg"].as_str() != Some(alg) {
            return Err(invalid("alg does not match the key"));
        }
        if !verify_signature(&jwk, alg, message, &sig) {
            return Err(invalid("bad signature"));
        }
        if let Some(typ) = &expect.typ {
            if !header["typ"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
                return Err(invalid("unexpected typ"));
            }
        }
        let now = chrono::Utc::now().timestamp();
        if !expect.allow_expired && claims["exp"].as_i64().is_some_and(|exp| now > exp + LEEWAY_SECS) {
            return Err(invalid("expired"));
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| now + LEEWAY_SECS < nbf) {
            return Err(invalid("not yet valid"));
        }
        if let Some(iss) = &expect.issuer {
            if claims["iss"].as_str() != Some(iss.as_str()) {
                return Err(invalid("wrong issuer"));
            }
        }
        if let Some(aud) = &expect.audience {
            let has = match &claims["aud"] {
                serde_json::Value::String(a) => a == aud,
                serde_json::Value::Array(list) => list.iter().any(|a| a.as_str() == Some(aud.as_str())),
                _ => false,
            };
            if !has {
                return Err(invalid("wrong audience"));
            }
        }
        Ok(claims)
    }
}

/// A compact JWS taken apart: header, claims, signature, and the signed bytes.
struct Jws<'a> {
    header: serde_json::Value,
    claims: serde_json::Value,
    sig: Vec<u8>,
    message: &'a [u8],
}

fn split(token: &str) -> Result<Jws<'_>, IdentityError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("not a compact JWS"));
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| invalid("bad base64url"));
    Ok(Jws {
        header: serde_json::from_slice(&decode(h)?).map_err(|_| invalid("bad header"))?,
        claims: serde_json::from_slice(&decode(c)?).map_err(|_| invalid("bad claims"))?,
        sig: decode(s)?,
        message: &token.as_bytes()[..h.len() + 1 + c.len()],
    })
}

/// Whether `sig` is `alg`'s signature of `message` under the public `jwk`. Covers what
/// clients sign assertions with (RS*, PS*, ES256, ES384, EdDSA); the key's type must fit the
/// algorithm, so an RSA key cannot be used as an HMAC secret or the like.
pub fn verify_signature(jwk: &serde_json::Value, alg: &str, message: &[u8], sig: &[u8]) -> bool {
    let b64 = |k: &str| jwk[k].as_str().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let rsa = |params: &'static aws_lc_rs::signature::RsaParameters| match (jwk["kty"].as_str(), b64("n"), b64("e")) {
        (Some("RSA"), Some(n), Some(e)) => RsaPublicKeyComponents { n, e }.verify(params, message, sig).is_ok(),
        _ => false,
    };
    let ec = |crv: &str, params: &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm| match (
        jwk["kty"].as_str(),
        jwk["crv"].as_str(),
        b64("x"),
        b64("y"),
    ) {
        (Some("EC"), Some(c), Some(x), Some(y)) if c == crv => {
            let mut point = vec![4u8];
            point.extend(x);
            point.extend(y);
            UnparsedPublicKey::new(params, point).verify(message, sig).is_ok()
        }
        _ => false,
    };
    match alg {
        "RS256" => rsa(&RSA_PKCS1_2048_8192_SHA256),
        "RS384" => rsa(&RSA_PKCS1_2048_8192_SHA384),
        "RS512" => rsa(&RSA_PKCS1_2048_8192_SHA512),
        "PS256" => rsa(&RSA_PSS_2048_8192_SHA256),
        "PS384" => rsa(&RSA_PSS_2048_8192_SHA384),
        "PS512" => rsa(&RSA_PSS_2048_8192_SHA512),
        "ES256" => ec("P-256", &ECDSA_P256_SHA256_FIXED),
        "ES384" => ec("P-384", &ECDSA_P384_SHA384_FIXED),
        "EdDSA" | "Ed25519" => match (jwk["kty"].as_str(), jwk["crv"].as_str(), b64("x")) {
            (Some("OKP"), Some("Ed25519"), Some(x)) => UnparsedPublicKey::new(&ED25519, x).verify(message, sig).is_ok(),
            _ => false,
        },
        _ => false,
    }
}

/// The header and claims of a compact JWS whose signature one key of `jwks` (a JWK Set)
/// verifies; the key is picked by `kid` when the header names one. Times are not checked here.
pub fn verify_with_jwks(token: &str, jwks: &serde_json::Value) -> Result<(serde_json::Value, serde_json::Value), IdentityError> {
    let Jws { header, claims, sig, message } = split(token)?;
    let alg = header["alg"].as_str().ok_or_else(|| invalid("no alg"))?;
    let keys = jwks["keys"].as_array().ok_or_else(|| invalid("the client has no JWK Set"))?;
    let kid = header["kid"].as_str();
    let ok = keys
        .iter()
        .filter(|k| kid.is_none() || k["kid"].as_str() == kid)
        .filter(|k| k["alg"].as_str().is_none_or(|a| a == alg))
        .any(|k| verify_signature(k, alg, message, &sig));
    if !ok {
        return Err(invalid("no key of the client verifies the signature"));
    }
    Ok((header, claims))
}
