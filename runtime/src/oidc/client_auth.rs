//! Client authentication at the token, introspection and revocation endpoints (RFC 6749
//! §2.3.1, OIDC Core §9): `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//! (RFC 7523 assertions, each jti accepted once), and `none` for public clients, which prove
//! themselves with PKCE instead. A secret client may send its secret either way (RPs differ on
//! which they pick); every other method must be the one registered. Secrets are HMACs compared
//! in constant time; an unknown client and a wrong secret get the same answer.

use base64::Engine;

use super::clients::Client;
use super::Provider;
use super::{now_secs, OAuthError, Params};
use crate::identity::IdentityError;
use crate::request::HttpRequest;
use crate::storage::Timestamp;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client authenticated, for the errors' sake (Basic failures carry WWW-Authenticate).
pub struct Authenticated {
    pub client: Client,
    pub method: &'static str,
}

/// An authentication failure: the OAuth error and whether the client used HTTP Basic.
pub struct AuthFailure {
    pub error: OAuthError,
    pub basic: bool,
}

impl AuthFailure {
    pub fn reply(&self) -> super::Reply {
        let r = self.error.reply();
        if self.basic || self.error.code == "invalid_client" {
            r.header("www-authenticate", "Basic realm=\"assay\", charset=\"UTF-8\"")
        } else {
            r
        }
    }
}

fn fail(e: OAuthError, basic: bool) -> Result<Authenticated, Outcome> {
    Err(Outcome::Failed(AuthFailure { error: e, basic }))
}

/// Either a failure to answer, or an engine fault.
pub enum Outcome {
    Failed(AuthFailure),
    Fault(IdentityError),
}

impl From<IdentityError> for Outcome {
    fn from(e: IdentityError) -> Self {
        Outcome::Fault(e)
    }
}

fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), OAuthError>> {
    let h = req.header("authorization")?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bad = || OAuthError::invalid_client("the Authorization header is not valid Basic credentials");
    let decoded = match base64::engine::general_purpose::STANDARD.decode(rest.trim()) {
        Ok(d) => d,
        Err(_) => return Some(Err(bad())),
    };
    let text = match String::from_utf8(decoded) {
        Ok(t) => t,
        Err(_) => return Some(Err(bad())),
    };
    let Some((id, secret)) = text.split_once(':') else { return Some(Err(bad())) };
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    let unform = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    Some(Ok((unform(id), unform(secret))))
}

impl Provider {
    /// The client a token-style request comes from. `endpoint` is the URL it was sent to, which
    /// an assertion's `aud` may name (beside the issuer and the token endpoint).
    pub async fn authenticate_client(&self, req: &HttpRequest, p: &Params, endpoint: &str) -> Result<Authenticated, Outcome> {
        let basic = basic_credentials(req);
        let assertion = p.get("client_assertion");
        let post_secret = p.get("client_secret");
        let used = [basic.is_some(), assertion.is_some(), post_secret.is_some()].iter().filter(|x| **x).count();
        if used > 1 {
            return fail(OAuthError::invalid_request("use exactly one client authentication method"), basic.is_some());
        }
        if let Some(creds) = basic {
            let (id, secret) = match creds {
                Ok(c) => c,
                Err(e) => return fail(e, true),
            };
            if p.get("client_id").is_some_and(|c| c != id) {
                return fail(OAuthError::invalid_request("client_id differs from the Basic credentials"), true);
            }
            return self.by_secret(&id, &secret, "client_secret_basic", true).await;
        }
        if let Some(secret) = post_secret {
            let Some(id) = p.get("client_id") else { return fail(OAuthError::invalid_request("client_secret without client_id"), false) };
            return self.by_secret(id, secret, "client_secret_post", false).await;
        }
        if let Some(jwt) = assertion {
            if p.get("client_assertion_type") != Some(ASSERTION_TYPE) {
                return fail(OAuthError::invalid_request(format!("client_assertion_type must be {ASSERTION_TYPE}")), false);
            }
            return self.by_assertion(jwt, p.get("client_id"), endpoint).await;
        }
        let Some(id) = p.get("client_id") else {
            return fail(OAuthError::invalid_client("the client did not authenticate (no credentials and no client_id)"), false);
        };
        let client = match self.clients.get(id).await {
            Ok(c) => c,
            Err(IdentityError::NotFound(_)) => return fail(OAuthError::invalid_client("unknown client or bad credentials"), false),
            Err(e) => return Err(e.into()),
        };
        if client.settings.token_endpoint_auth_method != "none" {
            return fail(
                OAuthError::invalid_client(format!("this client must authenticate ({})", client.settings.token_endpoint_auth_method)),
                false,
            );
        }
        Ok(Authenticated { client, method: "none" })
    }

    async fn by_secret(&self, id: &str, secret: &str, method: &'static str, basic: bool) -> Result<Authenticated, Outcome> {
        match self.clients.check_secret(id, secret).await? {
            Some(client) if matches!(client.settings.token_endpoint_auth_method.as_str(), "client_secret_basic" | "client_secret_post") => {
                Ok(Authenticated { client, method })
            }
            _ => fail(OAuthError::invalid_client("unknown client or bad credentials"), basic),
        }
    }

    /// RFC 7523 §3: iss and sub are the client, aud names this provider, exp is in the future,
    /// and the jti has not been seen before.
    async fn by_assertion(&self, jwt: &str, client_id: Option<&str>, endpoint: &str) -> Result<Authenticated, Outcome> {
        let bad = |why: &str| fail(OAuthError::invalid_client(format!("client_assertion: {why}")), false);
        // The claims are read before the signature is checked only to find the client's keys.
        let unverified = jwt
            .split('.')
            .nth(1)
            .and_then(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let Some(sub) = unverified.as_ref().and_then(|c| c["sub"].as_str().map(str::to_string)) else { return bad("no sub") };
        if client_id.is_some_and(|c| c != sub) {
            return bad("client_id differs from the assertion's sub");
        }
        let client = match self.clients.get(&sub).await {
            Ok(c) => c,
            Err(IdentityError::NotFound(_)) => return bad("unknown client"),
            Err(e) => return Err(e.into()),
        };
        if client.settings.token_endpoint_auth_method != "private_key_jwt" {
            return bad("this client is not registered for private_key_jwt");
        }
        let Some(jwks) = client.settings.jwks.as_ref() else { return bad("the client has no keys") };
        let claims = match super::jwt::verify_with_jwks(jwt, jwks) {
            Ok((_, c)) => c,
            Err(e) => return bad(&e.to_string()),
        };
        if claims["iss"].as_str() != Some(sub.as_str()) {
            return bad("iss must be the client_id");
        }
        let token_endpoint = super::discovery::endpoint(&self.config, "/auth/token");
        let audiences: Vec<&str> = match &claims["aud"] {
            serde_json::Value::String(a) => vec![a.as_str()],
            serde_json::Value::Array(list) => list.iter().filter_map(|a| a.as_str()).collect(),
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| *a == self.config.auth.issuer || *a == token_endpoint || *a == endpoint) {
            return bad("aud must be the issuer or the token endpoint");
        }
        let now = now_secs();
        let Some(exp) = claims["exp"].as_i64() else { return bad("no exp") };
        if exp + 60 < now {
            return bad("expired");
        }
        if exp > now + 3600 {
            return bad("exp is more than an hour away");
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) {
            return bad("not yet valid");
        }
        let Some(jti) = claims["jti"].as_str() else { return bad("no jti") };
        if jti.len() > 256 {
            return bad("jti is too long");
        }
        // Each assertion once: its jti is kept until the assertion expires.
        let key = format!("assertion:{sub}:{}", crate::crypto::sha256_hex(jti.as_bytes()));
        let expires = Timestamp(chrono::DateTime::from_timestamp(exp + 60, 0).unwrap_or_else(chrono::Utc::now));
        let fresh = self.assertions.spend(&key, expires).await.map_err(IdentityError::from)?;
        if !fresh {
            return bad("this assertion was already used");
        }
        Ok(Authenticated { client, method: "private_key_jwt" })
    }
}
