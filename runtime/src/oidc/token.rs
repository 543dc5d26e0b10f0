//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6; OIDC Core §3.1.3): the
//! authorization_code, refresh_token and client_credentials grants.
//!
//! Each grant checks everything and signs its tokens before it writes anything, then writes
//! in one transaction whose first statement claims the code or the refresh token (an UPDATE
//! conditional on it being unspent): two requests racing with the same code cannot both
//! succeed, and a refused request leaves no rows behind.

use serde_json::{json, Map, Value};

use super::claims::{at_hash, merge_hook, user_claims, ClaimsHook, HookInput};
use super::client_auth::Outcome;
use super::clients::Client;
use super::store::NewRefresh;
use super::Provider;
use super::{form_params, json_text, later, now_secs, s256, split_scopes, OAuthError, Params, Reply};
use crate::crypto::{random_token, sha256_hex};
use crate::identity::users::User;
use crate::identity::{ids, IdentityError};
use crate::request::HttpRequest;
use crate::storage::Timestamp;

/// What a successful grant hands out, before it is written.
struct Issued {
    access_token: String,
    id_token: Option<String>,
    refresh_token: Option<String>,
    scopes: Vec<String>,
}

/// A user-bound grant's facts, from a code or a refresh token.
struct Subject<'a> {
    user: &'a User,
    client: &'a Client,
    grant_id: &'a str,
    scopes: &'a [String],
    session_id: Option<&'a str>,
    auth_time: i64,
    amr: &'a [String],
    acr: Option<&'a str>,
    nonce: Option<&'a str>,
    claims: Option<&'a Value>,
    grant_type: &'a str,
}

fn fault(e: IdentityError) -> Result<Reply, IdentityError> {
    Err(e)
}

impl Provider {
    /// `POST /auth/token`.
    pub async fn token_endpoint(&self, req: &HttpRequest, hook: &dyn ClaimsHook) -> Result<Reply, IdentityError> {
        let p = match form_params(req) {
            Ok(p) => p,
            Err(e) => return Ok(e.reply()),
        };
        let endpoint = super::discovery::endpoint(&self.config, "/auth/token");
        let client = match self.authenticate_client(req, &p, &endpoint).await {
            Ok(a) => a.client,
            Err(Outcome::Failed(f)) => return Ok(f.reply()),
            Err(Outcome::Fault(e)) => return fault(e),
        };
        let grant_type = p.get("grant_type").unwrap_or_default().to_string();
        let known = ["authorization_code", "refresh_token", "client_credentials"];
        if grant_type.is_empty() {
            return Ok(OAuthError::invalid_request("the request has no grant_type").reply());
        }
        if !known.contains(&grant_type.as_str()) {
            return Ok(OAuthError::unsupported_grant_type(format!("grant_type {grant_type:?} is not supported")).reply());
        }
        if !client.settings.grant_types.contains(&grant_type) {
            return Ok(OAuthError::unauthorized_client(format!("this client may not use the {grant_type} grant")).reply());
        }
        let result = match grant_type.as_str() {
            "authorization_code" => self.code_grant(&client, &p, hook).await?,
            "refresh_token" => self.refresh_grant(&client, &p, hook).await?,
            _ => self.client_credentials_grant(&client, &p, hook).await?,
        };
        Ok(match result {
            Ok(issued) => {
                let mut body = json!({
                    "access_token": issued.access_token,
                    "token_type": "Bearer",
                    "expires_in": self.config.auth.oidc_provider.access_token_ttl_secs,
                    "scope": issued.scopes.join(" "),
                });
                if let Some(t) = issued.id_token {
                    body["id_token"] = json!(t);
                }
                if let Some(t) = issued.refresh_token {
                    body["refresh_token"] = json!(t);
                }
                Reply::json(200, body)
            }
            Err(e) => e.reply(),
        }
        // Browser-based public clients redeem codes from another origin; no cookie is used here.
        .header("access-control-allow-origin", "*"))
    }

    async fn code_grant(&self, client: &Client, p: &Params, hook: &dyn ClaimsHook) -> Result<Result<Issued, OAuthError>, IdentityError> {
        let Some(code) = p.get("code") else { return Ok(Err(OAuthError::invalid_request("the request has no code"))) };
        let code_hash = sha256_hex(code.as_bytes());
        let row = self.requests.find_code(&code_hash).await?;
        let Some(row) = row else { return Ok(Err(OAuthError::invalid_grant("the code is unknown or expired"))) };
        if row.client_id != client.client_id {
            return Ok(Err(OAuthError::invalid_grant("the code was issued to another client")));
        }
        if row.used_at.is_some() {
            // RFC 6749 §4.1.2: a code used twice revokes what it gave the first time.
            if let Some(g) = &row.grant_id {
                if self.grants.revoke(g).await? {
                    tracing::warn!(client_id = %client.client_id, "authorization code replayed; its grant is revoked");
                }
            }
            return Ok(Err(OAuthError::invalid_grant("the code was already used; the tokens it gave are revoked")));
        }
        if row.expires_at.0 <= Timestamp::now().0 {
            return Ok(Err(OAuthError::invalid_grant("the code is unknown or expired")));
        }
        match p.get("redirect_uri") {
            Some(u) if u == row.redirect_uri => {}
            Some(_) => return Ok(Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request's"))),
            None => return Ok(Err(OAuthError::invalid_request("the request has no redirect_uri"))),
        }
        match (&row.code_challenge, p.get("code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                if verifier.len() < 43
                    || verifier.len() > 128
                    || !verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                {
                    return Ok(Err(OAuthError::invalid_request("code_verifier is not 43 to 128 characters of [A-Za-z0-9-._~]")));
                }
                if !crate::crypto::constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes()) {
                    return Ok(Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge")));
                }
            }
            (Some(_), None) => return Ok(Err(OAuthError::invalid_grant("the request has no code_verifier (the authorization used PKCE)"))),
            (None, Some(_)) => {
                return Ok(Err(OAuthError::invalid_grant("code_verifier sent, but the authorization had no code_challenge")))
            }
            (None, None) if client.settings.pkce_required => return Ok(Err(OAuthError::invalid_grant("this client must use PKCE"))),
            (None, None) => {}
        }
        let user = match self.users.get(&row.user_id).await {
            Ok(u) if !u.disabled => u,
            Ok(_) | Err(IdentityError::NotFound(_)) => return Ok(Err(OAuthError::invalid_grant("the user is disabled or gone"))),
            Err(e) => return Err(e),
        };
        let scopes: Vec<String> = serde_json::from_str(&row.scopes).unwrap_or_default();
        let amr: Vec<String> = serde_json::from_str(&row.amr).unwrap_or_default();
        let claims: Option<Value> = row.claims.as_deref().and_then(|c| serde_json::from_str(c).ok());
        let grant_id = ids::new_id();
        let subject = Subject {
            user: &user,
            client,
            grant_id: &grant_id,
            scopes: &scopes,
            session_id: row.session_id.as_deref(),
            auth_time: row.auth_time,
            amr: &amr,
            acr: row.acr.as_deref(),
            nonce: row.nonce.as_deref(),
            claims: claims.as_ref(),
            grant_type: "authorization_code",
        };
        let issued = self.sign_user_tokens(&subject, hook).await?;
        let now = Timestamp::now();
        let turn = self.turns.take().await;
        let refresh = issued.refresh_token.as_ref().map(|rt| NewRefresh {
            token_hash: sha256_hex(rt.as_bytes()),
            grant_id: &grant_id,
            client_id: &client.client_id,
            user_id: &user.id,
            scopes: &row.scopes,
            session_id: row.session_id.as_deref(),
            auth_time: row.auth_time,
            amr: &row.amr,
            acr: row.acr.as_deref(),
            claims: row.claims.as_deref(),
            expires_at: self.refresh_expiry(),
        });
        // The client joins the browser session only when it got an ID token in it.
        let session = issued.id_token.as_ref().and(row.session_id.as_deref());
        let claimed = self.requests.redeem_code(&code_hash, &row, &grant_id, refresh.as_ref(), session, now).await?;
        drop(turn);
        if !claimed {
            return Ok(Err(OAuthError::invalid_grant("the code was already used")));
        }
        Ok(Ok(issued))
    }

    async fn refresh_grant(&self, client: &Client, p: &Params, hook: &dyn ClaimsHook) -> Result<Result<Issued, OAuthError>, IdentityError> {
        let Some(token) = p.get("refresh_token") else { return Ok(Err(OAuthError::invalid_request("the request has no refresh_token"))) };
        let hash = sha256_hex(token.as_bytes());
        let Some(rec) = self.grants.find_refresh_token(&hash).await? else {
            return Ok(Err(OAuthError::invalid_grant("the refresh token is unknown")));
        };
        if rec.client_id != client.client_id {
            return Ok(Err(OAuthError::invalid_grant("the refresh token is unknown")));
        }
        if rec.revoked {
            return Ok(Err(OAuthError::invalid_grant("the refresh token was revoked")));
        }
        let now = Timestamp::now();
        if rec.expires_at.0 <= now.0 {
            return Ok(Err(OAuthError::invalid_grant("the refresh token has expired")));
        }
        if let Some(used) = rec.used_at {
            let grace = self.config.auth.oidc_provider.refresh_grace_secs as i64;
            if (now.0 - used.0).num_milliseconds() > grace * 1000 {
                // Reuse after the grace window: someone else may hold this family. End it.
                self.grants.revoke(&rec.grant_id).await?;
                tracing::warn!(client_id = %client.client_id, user_id = %rec.user_id, "refresh token reused; its family is revoked");
                return Ok(Err(OAuthError::invalid_grant("the refresh token was already used; every token of its family is revoked")));
            }
        }
        let scopes = match p.get("scope") {
            None => rec.scopes.clone(),
            Some(s) => {
                let asked = split_scopes(s);
                if let Some(bad) = asked.iter().find(|x| !rec.scopes.contains(x)) {
                    return Ok(Err(OAuthError::invalid_scope(format!("{bad:?} was not granted"))));
                }
                asked
            }
        };
        if rec.user.disabled {
            return Ok(Err(OAuthError::invalid_grant("the user is disabled")));
        }
        let user = &rec.user;
        let subject = Subject {
            user,
            client,
            grant_id: &rec.grant_id,
            scopes: &scopes,
            session_id: rec.session_id.as_deref(),
            auth_time: rec.auth_time,
            amr: &rec.amr,
            acr: rec.acr.as_deref(),
            nonce: None,
            claims: rec.claims.as_ref(),
            grant_type: "refresh_token",
        };
        let mut issued = self.sign_user_tokens(&subject, hook).await?;
        let next = random_token(32);
        let (scopes_text, amr_text, claims_text) =
            (json_text(&rec.scopes), json_text(&rec.amr), rec.claims.as_ref().map(|c| c.to_string()));
        let expiry = self.refresh_expiry();
        let next_row = NewRefresh {
            token_hash: sha256_hex(next.as_bytes()),
            grant_id: &rec.grant_id,
            client_id: &client.client_id,
            user_id: &user.id,
            scopes: &scopes_text,
            session_id: rec.session_id.as_deref(),
            auth_time: rec.auth_time,
            amr: &amr_text,
            acr: rec.acr.as_deref(),
            claims: claims_text.as_deref(),
            expires_at: expiry,
        };
        let turn = self.turns.take().await;
        // Spend it and insert the next one, atomically; no row spent means the family was
        // revoked meanwhile.
        let ok = self.grant_rows.rotate_refresh(&hash, &next_row, now).await?;
        drop(turn);
        if !ok {
            return Ok(Err(OAuthError::invalid_grant("the refresh token was revoked")));
        }
        issued.refresh_token = Some(next);
        Ok(Ok(issued))
    }

    async fn client_credentials_grant(
        &self,
        client: &Client,
        p: &Params,
        hook: &dyn ClaimsHook,
    ) -> Result<Result<Issued, OAuthError>, IdentityError> {
        if client.settings.token_endpoint_auth_method == "none" {
            return Ok(Err(OAuthError::unauthorized_client("a public client cannot use client_credentials")));
        }
        let user_only = ["openid", "offline_access"];
        let scopes: Vec<String> = match p.get("scope") {
            None => client.settings.default_scopes.iter().filter(|s| !user_only.contains(&s.as_str())).cloned().collect(),
            Some(s) => {
                let asked = split_scopes(s);
                if let Some(bad) = asked.iter().find(|x| user_only.contains(&x.as_str()) || !client.settings.default_scopes.contains(x)) {
                    return Ok(Err(OAuthError::invalid_scope(format!("this client may not ask for {bad:?} here"))));
                }
                asked
            }
        };
        let mut at = self.access_claims(&client.client_id, client, &scopes, random_token(16));
        let extra = hook
            .claims(HookInput { target: "access_token", user: None, client, scopes: &scopes, grant_type: "client_credentials" })
            .await?;
        merge_hook(&mut at, extra);
        let access_token = self.signing.sign(super::keys::DEFAULT_ALG, Some("at+jwt"), &Value::Object(at)).await?;
        Ok(Ok(Issued { access_token, id_token: None, refresh_token: None, scopes }))
    }

    /// The claims every RFC 9068 access token has.
    fn access_claims(&self, sub: &str, client: &Client, scopes: &[String], jti: String) -> Map<String, Value> {
        let now = now_secs();
        let mut at = Map::new();
        at.insert("iss".into(), json!(self.config.auth.issuer));
        at.insert("sub".into(), json!(sub));
        at.insert("aud".into(), json!(client.client_id));
        at.insert("client_id".into(), json!(client.client_id));
        at.insert("iat".into(), json!(now));
        at.insert("exp".into(), json!(now + self.config.auth.oidc_provider.access_token_ttl_secs as i64));
        at.insert("jti".into(), json!(jti));
        at.insert("scope".into(), json!(scopes.join(" ")));
        at
    }

    fn refresh_expiry(&self) -> Timestamp {
        later(self.config.auth.oidc_provider.refresh_token_ttl_secs)
    }

    /// The access token, the ID token (scope openid) and a new refresh token (when the client
    /// has the refresh_token grant) of a user-bound grant, signed.
    async fn sign_user_tokens(&self, s: &Subject<'_>, hook: &dyn ClaimsHook) -> Result<Issued, IdentityError> {
        let cfg = &self.config.auth.oidc_provider;
        let now = now_secs();
        let requested = |member: &str| s.claims.and_then(|c| c.get(member));

        // The grant id leads the jti, so revoking the grant reaches its access tokens.
        let mut at = self.access_claims(&s.user.id, s.client, s.scopes, format!("{}.{}", s.grant_id, random_token(12)));
        at.insert("auth_time".into(), json!(s.auth_time));
        if let Some(acr) = s.acr {
            at.insert("acr".into(), json!(acr));
        }
        at.insert("amr".into(), json!(s.amr));
        if let Some(sid) = s.session_id {
            at.insert("sid".into(), json!(sid));
        }
        if s.scopes.iter().any(|x| x == "groups") {
            at.insert("groups".into(), json!(s.user.roles));
        }
        let input = |target| HookInput { target, user: Some(s.user), client: s.client, scopes: s.scopes, grant_type: s.grant_type };
        merge_hook(&mut at, hook.claims(input("access_token")).await?);
        let access_token = self.signing.sign(super::keys::DEFAULT_ALG, Some("at+jwt"), &Value::Object(at)).await?;

        let id_token = if s.scopes.iter().any(|x| x == "openid") {
            let alg = s.client.settings.id_token_signed_response_alg.as_str();
            let mut idt = user_claims(s.user, s.scopes, requested("id_token"));
            idt.insert("iss".into(), json!(self.config.auth.issuer));
            idt.insert("aud".into(), json!(s.client.client_id));
            idt.insert("azp".into(), json!(s.client.client_id));
            idt.insert("iat".into(), json!(now));
            idt.insert("exp".into(), json!(now + cfg.id_token_ttl_secs as i64));
            idt.insert("auth_time".into(), json!(s.auth_time));
            if let Some(n) = s.nonce {
                idt.insert("nonce".into(), json!(n));
            }
            if let Some(acr) = s.acr {
                idt.insert("acr".into(), json!(acr));
            }
            idt.insert("amr".into(), json!(s.amr));
            if let Some(sid) = s.session_id {
                idt.insert("sid".into(), json!(sid));
            }
            idt.insert("at_hash".into(), json!(at_hash(alg, &access_token)));
            merge_hook(&mut idt, hook.claims(input("id_token")).await?);
            Some(self.signing.sign(alg, None, &Value::Object(idt)).await?)
        } else {
            None
        };
        let refresh_token = s.client.settings.grant_types.iter().any(|g| g == "refresh_token").then(|| random_token(32));
        Ok(Issued { access_token, id_token, refresh_token, scopes: s.scopes.to_vec() })
    }
}
