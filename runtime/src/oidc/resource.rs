//! What resource servers and clients ask about tokens: userinfo (OIDC Core §5.3, Bearer per
//! RFC 6750), introspection (RFC 7662) and revocation (RFC 7009).

use serde_json::{json, Value};

use super::claims::{merge_hook, user_claims, ClaimsHook, HookInput};
use super::client_auth::Outcome;
use super::jwt::Expect;
use super::Provider;
use super::{form_params, split_scopes, OAuthError, Params, Reply};
use crate::crypto::sha256_hex;
use crate::identity::IdentityError;
use crate::request::HttpRequest;

/// A Bearer failure: 401 (or 403) with `WWW-Authenticate` saying why (RFC 6750 §3).
fn bearer_error(e: OAuthError) -> Reply {
    let challenge = format!("Bearer realm=\"assay\", error=\"{}\", error_description=\"{}\"", e.code, e.description.replace('"', "'"));
    e.reply().header("www-authenticate", challenge)
}

impl Provider {
    /// The claims of a live access token of this provider (signature, expiry, issuer, typ;
    /// neither it nor its grant revoked; its client and grant still there), or why not.
    pub async fn check_access_token(&self, token: &str) -> Result<Result<Value, String>, IdentityError> {
        let expect = Expect { issuer: Some(self.config.auth.issuer.clone()), typ: Some("at+jwt".into()), ..Default::default() };
        let claims = match self.signing.verify(token, &expect).await {
            Ok(c) => c,
            Err(IdentityError::InvalidJwt(why)) => return Ok(Err(why)),
            Err(e) => return Err(e),
        };
        let Some(jti) = claims["jti"].as_str() else { return Ok(Err("no jti".into())) };
        let Some(client_id) = claims["client_id"].as_str() else { return Ok(Err("no client_id".into())) };
        if !self.grants.access_token_live(jti, client_id).await? {
            return Ok(Err("revoked".into()));
        }
        Ok(Ok(claims))
    }

    /// `GET`/`POST /auth/userinfo`.
    pub async fn userinfo(&self, req: &HttpRequest, hook: &dyn ClaimsHook) -> Result<Reply, IdentityError> {
        let from_header = req.header("authorization").and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_string())
        });
        // RFC 6750 §2.2: a form body may carry it instead (never the query: it ends up in logs).
        let from_form =
            if req.method == "POST" { form_params(req).ok().and_then(|p| p.get("access_token").map(str::to_string)) } else { None };
        let token = match (from_header, from_form) {
            (Some(_), Some(_)) => return Ok(bearer_error(OAuthError::invalid_request("send the access token one way only"))),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => {
                return Ok(OAuthError::invalid_token("no access token").reply().header("www-authenticate", "Bearer realm=\"assay\""));
            }
        };
        let claims = match self.check_access_token(&token).await? {
            Ok(c) => c,
            Err(why) => return Ok(bearer_error(OAuthError::invalid_token(format!("the access token is not valid: {why}")))),
        };
        let scopes = split_scopes(claims["scope"].as_str().unwrap_or_default());
        if !scopes.iter().any(|s| s == "openid") {
            return Ok(bearer_error(OAuthError::insufficient_scope("userinfo needs a token with the openid scope")));
        }
        let client = match self.clients.get(claims["client_id"].as_str().unwrap_or_default()).await {
            Ok(c) => c,
            Err(IdentityError::NotFound(_)) => return Ok(bearer_error(OAuthError::invalid_token("the token's client no longer exists"))),
            Err(e) => return Err(e),
        };
        let user = match self.users.get(claims["sub"].as_str().unwrap_or_default()).await {
            Ok(u) if !u.disabled => u,
            Ok(_) | Err(IdentityError::NotFound(_)) => {
                return Ok(bearer_error(OAuthError::invalid_token("the token's user is disabled or gone")))
            }
            Err(e) => return Err(e),
        };
        let requested = self.grant_claims_request(claims["jti"].as_str().unwrap_or_default()).await?;
        let mut out = user_claims(&user, &scopes, requested.as_ref().and_then(|c| c.get("userinfo")));
        let extra = hook
            .claims(HookInput { target: "userinfo", user: Some(&user), client: &client, scopes: &scopes, grant_type: "userinfo" })
            .await?;
        merge_hook(&mut out, extra);
        Ok(Reply::json(200, Value::Object(out)).header("access-control-allow-origin", "*"))
    }

    /// The `claims` request parameter of the authorization an access token came from.
    async fn grant_claims_request(&self, jti: &str) -> Result<Option<Value>, IdentityError> {
        let Some((grant, _)) = jti.split_once('.') else { return Ok(None) };
        Ok(self.grant_rows.claims_request(grant).await?)
    }

    /// Introspection and revocation authenticate the client the same way; a public client
    /// has no credentials to show, and may only revoke (its own tokens, RFC 7009 §5).
    async fn token_client(
        &self,
        req: &HttpRequest,
        p: &Params,
        path: &str,
        public_ok: bool,
    ) -> Result<Result<super::clients::Client, Reply>, IdentityError> {
        let endpoint = super::discovery::endpoint(&self.config, path);
        match self.authenticate_client(req, p, &endpoint).await {
            Ok(a) if a.method == "none" && !public_ok => {
                Ok(Err(OAuthError::invalid_client("this endpoint needs an authenticated client").reply()))
            }
            Ok(a) => Ok(Ok(a.client)),
            Err(Outcome::Failed(f)) => Ok(Err(f.reply())),
            Err(Outcome::Fault(e)) => Err(e),
        }
    }

    /// `POST /auth/oauth2/introspect` (RFC 7662).
    pub async fn introspect(&self, req: &HttpRequest) -> Result<Reply, IdentityError> {
        let p = match form_params(req) {
            Ok(p) => p,
            Err(e) => return Ok(e.reply()),
        };
        let caller = match self.token_client(req, &p, "/auth/oauth2/introspect", false).await? {
            Ok(c) => c,
            Err(reply) => return Ok(reply),
        };
        let Some(token) = p.get("token") else { return Ok(OAuthError::invalid_request("the request has no token").reply()) };
        let inactive = || Reply::json(200, json!({ "active": false }));
        // RFC 7662 §4: a client learns about its own tokens; only a resource server (the API the
        // tokens are for) about other clients' ones. Anyone else hears "inactive", as for a
        // token that does not exist, so introspection is no oracle for stolen tokens.
        let may_see = |owner: &str| owner == caller.client_id || caller.resource_server;
        // A JWT is an access token; anything else may be a refresh token.
        if token.split('.').count() == 3 {
            let claims = match self.check_access_token(token).await? {
                Ok(c) if may_see(c["client_id"].as_str().unwrap_or_default()) => c,
                Ok(_) | Err(_) => return Ok(inactive()),
            };
            let sub = claims["sub"].as_str().unwrap_or_default();
            let mut out = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": claims["scope"],
                "client_id": claims["client_id"],
                "sub": sub,
                "aud": claims["aud"],
                "iss": claims["iss"],
                "exp": claims["exp"],
                "iat": claims["iat"],
                "jti": claims["jti"],
            });
            if sub != claims["client_id"].as_str().unwrap_or_default() {
                match self.users.get(sub).await {
                    Ok(u) if !u.disabled => out["username"] = json!(u.email),
                    Ok(_) | Err(IdentityError::NotFound(_)) => return Ok(inactive()),
                    Err(e) => return Err(e),
                }
            }
            for k in ["auth_time", "acr", "sid"] {
                if !claims[k].is_null() {
                    out[k] = claims[k].clone();
                }
            }
            return Ok(Reply::json(200, out));
        }
        let Some(rec) = self.grants.find_refresh_token(&sha256_hex(token.as_bytes())).await? else { return Ok(inactive()) };
        let now = crate::storage::Timestamp::now();
        if rec.revoked || rec.used_at.is_some() || rec.expires_at.0 <= now.0 {
            return Ok(inactive());
        }
        if rec.user.disabled || !may_see(&rec.client_id) {
            return Ok(inactive());
        }
        let username = rec.user.email.clone();
        Ok(Reply::json(
            200,
            json!({
                "active": true,
                "scope": rec.scopes.join(" "),
                "client_id": rec.client_id,
                "sub": rec.user_id,
                "username": username,
                "iss": self.config.auth.issuer,
                "exp": rec.expires_at.0.timestamp(),
                "auth_time": rec.auth_time,
            }),
        ))
    }

    /// `POST /auth/oauth2/revoke` (RFC 7009). 200 whether or not the token was known (§2.2),
    /// and a token of another client is left alone.
    pub async fn revoke(&self, req: &HttpRequest) -> Result<Reply, IdentityError> {
        let p = match form_params(req) {
            Ok(p) => p,
            Err(e) => return Ok(e.reply()),
        };
        let client = match self.token_client(req, &p, "/auth/oauth2/revoke", true).await? {
            Ok(c) => c,
            Err(reply) => return Ok(reply),
        };
        let Some(token) = p.get("token") else { return Ok(OAuthError::invalid_request("the request has no token").reply()) };
        if token.split('.').count() == 3 {
            if let Ok(claims) = self.check_access_token(token).await? {
                if claims["client_id"].as_str() == Some(client.client_id.as_str()) {
                    if let Some(jti) = claims["jti"].as_str() {
                        self.grants.revoke_access_token(jti, claims["exp"].as_i64().unwrap_or_default()).await?;
                    }
                }
            }
        } else if let Some(rec) = self.grants.find_refresh_token(&sha256_hex(token.as_bytes())).await? {
            // RFC 7009 §2.1: revoking a refresh token also ends the access tokens of its grant.
            if rec.client_id == client.client_id {
                self.grants.revoke(&rec.grant_id).await?;
            }
        }
        Ok(Reply::empty(200).header("access-control-allow-origin", "*"))
    }
}
