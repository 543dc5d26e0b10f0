//! The authorization endpoint (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 8252).
//!
//! Checks come in the order the specs demand: first the client and the exact redirect URI
//! (failing either is an error page, never a redirect), then everything else, whose errors go
//! back to the now trusted redirect URI. A request that needs the user is parked in
//! `auth.oidc_auth_requests` under a random challenge (only its SHA-256 is stored) and the
//! browser goes to the login flow, then the consent flow; they report back through
//! `assay.oidc` and send the browser to `/auth/authorize/resume`, which finishes here. Once a
//! login is accepted the parked request is bound to that browser session: resuming it from
//! another browser restarts the login.

use serde_json::{json, Value};

use super::clients::Client;
pub use super::store::AuthRequest;
use super::store::{NewCode, Parked};
use super::Provider;
use super::{json_text, later, now_secs, split_scopes, with_params, OAuthError, Params, Reply};
use crate::crypto::{random_token, sha256_hex};
use crate::identity::sessions::Session;
use crate::identity::users::User;
use crate::identity::IdentityError;
use crate::storage::Timestamp;

pub const LOGIN_PATH: &str = "/auth/login";
pub const CONSENT_PATH: &str = "/auth/consent";
pub const RESUME_PATH: &str = "/auth/authorize/resume";
const PROMPTS: &[&str] = &["none", "login", "consent", "select_account"];
/// The errors a login or consent flow may end a request with (OIDC Core §3.1.2.6).
pub const FLOW_ERRORS: &[&str] = &[
    "access_denied",
    "login_required",
    "consent_required",
    "interaction_required",
    "account_selection_required",
    "temporarily_unavailable",
];

impl AuthRequest {
    fn prompts(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
}

/// Who signed in for a request, and how.
#[derive(Debug, Clone)]
pub struct Login {
    pub user_id: String,
    pub session_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
}

/// Where the answer of a request goes once its redirect URI is trusted.
struct Target<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    form_post: bool,
}

fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp()).unwrap_or(0)
}

/// Whether a sign-in at `auth_time` is too old for `max_age` (OIDC Core §3.1.2.1): re-authenticate
/// when auth_time + max_age < now. Times are whole seconds, so a sign-in in this very second
/// would pass `max_age=0`; but 0 means "sign in again" (it is `prompt=login`, §3.1.2.1), always.
fn sign_in_too_old(auth_time: i64, max_age: i64, now: i64) -> bool {
    max_age == 0 || auth_time.saturating_add(max_age) < now
}

/// RFC 8252 §7.3: a loopback redirect URI matches on any port. Everything else is compared as
/// a string, byte for byte.
pub fn redirect_uri_registered(registered: &[String], given: &str) -> bool {
    if registered.iter().any(|r| r == given) {
        return true;
    }
    let Ok(g) = url::Url::parse(given) else { return false };
    let loopback = |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if !loopback(&g) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|r| loopback(&r) && r.host_str() == g.host_str() && r.path() == g.path() && r.query() == g.query() && g.fragment().is_none())
}

impl Provider {
    fn issuer(&self) -> &str {
        &self.config.auth.issuer
    }

    /// The answer to `target` carrying `params` (plus `state` and `iss`, RFC 9207).
    fn respond_to(&self, target: &Target<'_>, params: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        if let Some(s) = target.state {
            all.push(("state", s));
        }
        all.push(("iss", self.issuer()));
        if target.form_post {
            let fields: Vec<Value> = all.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
            Reply::page(200, "form_post.html", json!({ "action": target.redirect_uri, "fields": fields }))
        } else {
            Reply::redirect(with_params(target.redirect_uri, &all))
        }
    }

    fn error_to(&self, target: &Target<'_>, e: &OAuthError) -> Reply {
        self.respond_to(target, &[("error", e.code), ("error_description", &e.description)])
    }

    /// `GET` or `POST /auth/authorize`.
    /// `binding` is the browser's `assay_authz` cookie: only that browser may sign in for a
    /// request parked here.
    pub async fn authorize(
        &self,
        pairs: Vec<(String, String)>,
        browser: Option<&(Session, User)>,
        binding: &str,
    ) -> Result<Reply, IdentityError> {
        // Until the client and redirect URI are known to be right, every error is a page.
        let pairs_ok = Params::new(pairs);
        let client_id = match &pairs_ok {
            Ok(p) => p.get("client_id").map(str::to_string),
            Err(_) => None,
        };
        let Some(client_id) = client_id else {
            let why = pairs_ok.err().map(|e| e.description).unwrap_or_else(|| "the request has no client_id".into());
            return Ok(Reply::error_page(400, "invalid_request", &why));
        };
        let params = pairs_ok.map_err(|e| IdentityError::Internal(e.description))?;
        let client = match self.clients.get(&client_id).await {
            Ok(c) => c,
            Err(IdentityError::NotFound(_)) => {
                return Ok(Reply::error_page(400, "invalid_client", "no client is registered with that client_id"))
            }
            Err(e) => return Err(e),
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return Ok(Reply::error_page(400, "invalid_request", "the request has no redirect_uri"));
        };
        if !redirect_uri_registered(&client.settings.redirect_uris, redirect_uri) {
            return Ok(Reply::error_page(400, "invalid_request", "the redirect_uri is not registered for this client"));
        }
        let form_post = match params.get("response_mode") {
            None | Some("query") => false,
            Some("form_post") => true,
            Some(other) => {
                let target = Target { redirect_uri, state: params.get("state"), form_post: false };
                return Ok(self.error_to(
                    &target,
                    &OAuthError::invalid_request(format!("response_mode {other:?} is not supported (query, form_post)")),
                ));
            }
        };
        let target = Target { redirect_uri, state: params.get("state"), form_post };
        let request = match self.check_request(&client, &params, redirect_uri, form_post).await {
            Ok(r) => r,
            Err(e) => return Ok(self.error_to(&target, &e)),
        };

        // Can the browser's session answer for the user?
        let login = browser.and_then(|(s, u)| {
            let auth_time = parse_time(&s.created_at);
            let too_old = request.max_age.is_some_and(|m| sign_in_too_old(auth_time, m, now_secs()));
            let other_user = request.login_hint.as_deref().is_some_and(|h| !h.eq_ignore_ascii_case(&u.email) && h != u.id);
            // acr "0" is a session's single sign-on, "1" a sign-in made for this request.
            let wants_interactive = request.acr_values.iter().any(|a| a == "1") && !request.acr_values.iter().any(|a| a == "0");
            let fresh_wanted = request.prompts("login") || request.prompts("select_account") || wants_interactive;
            (!too_old && !other_user && !fresh_wanted).then(|| Login {
                user_id: u.id.clone(),
                session_id: s.id.clone(),
                auth_time,
                amr: s.amr.clone(),
                acr: "0".into(),
            })
        });
        match login {
            Some(login) => self.after_login(&client, request, None, binding, login, None, false).await,
            None if request.prompts("none") => {
                Ok(self.error_to(&target, &OAuthError::login_required("no session can answer for the user")))
            }
            None => {
                let challenge = self.park(&request, binding).await?;
                Ok(Reply::redirect(with_params(LOGIN_PATH, &[("login_challenge", &challenge)])))
            }
        }
    }

    /// Everything after the redirect URI: response type, scopes, PKCE, prompt and the rest.
    async fn check_request(&self, client: &Client, p: &Params, redirect_uri: &str, form_post: bool) -> Result<AuthRequest, OAuthError> {
        if p.has("request") {
            return Err(OAuthError::request_not_supported("request objects are not supported"));
        }
        if p.has("request_uri") {
            return Err(OAuthError::request_uri_not_supported("request_uri is not supported"));
        }
        match p.get("response_type") {
            None => return Err(OAuthError::invalid_request("the request has no response_type")),
            Some("code") => {}
            Some(other) => {
                return Err(OAuthError::unsupported_response_type(format!("response_type {other:?} is not supported; use code")))
            }
        }
        if !client.settings.grant_types.iter().any(|g| g == "authorization_code") {
            return Err(OAuthError::unauthorized_client("this client may not use the authorization code grant"));
        }
        let scopes = match p.get("scope") {
            Some(s) => split_scopes(s),
            None => client.settings.default_scopes.clone(),
        };
        if let Some(bad) = scopes.iter().find(|s| !client.settings.default_scopes.contains(s)) {
            return Err(OAuthError::invalid_scope(format!("this client may not ask for the scope {bad:?}")));
        }
        let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
            (Some(c), Some("S256")) => Some(c.to_string()),
            (Some(_), None) => return Err(OAuthError::invalid_request("code_challenge_method must be S256 (plain is refused)")),
            (Some(_), Some(m)) => return Err(OAuthError::invalid_request(format!("code_challenge_method {m:?} is refused; use S256"))),
            (None, Some(_)) => return Err(OAuthError::invalid_request("code_challenge_method without code_challenge")),
            (None, None) if client.settings.pkce_required => {
                return Err(OAuthError::invalid_request("this client must use PKCE: code_challenge with code_challenge_method S256"))
            }
            (None, None) => None,
        };
        if let Some(c) = &code_challenge {
            // base64url of a SHA-256 is 43 characters; RFC 7636 allows 43 to 128 of its alphabet.
            if c.len() < 43 || c.len() > 128 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                return Err(OAuthError::invalid_request("code_challenge is not 43 to 128 characters of [A-Za-z0-9-._~]"));
            }
        }
        let prompt = p.get("prompt").map(split_scopes).unwrap_or_default();
        if let Some(bad) = prompt.iter().find(|x| !PROMPTS.contains(&x.as_str())) {
            return Err(OAuthError::invalid_request(format!("prompt {bad:?} is not one of none, login, consent, select_account")));
        }
        if prompt.iter().any(|x| x == "none") && prompt.len() > 1 {
            return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
        }
        let max_age = match p.get("max_age") {
            None => None,
            Some(v) => Some(
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?,
            ),
        };
        let claims = match p.get("claims") {
            None => None,
            Some(v) => {
                let parsed: Value = serde_json::from_str(v).map_err(|e| OAuthError::invalid_request(format!("claims is not JSON: {e}")))?;
                if !parsed.is_object() {
                    return Err(OAuthError::invalid_request("claims must be a JSON object"));
                }
                Some(parsed)
            }
        };
        let mut login_hint = p.get("login_hint").map(str::to_string);
        if let Some(hint) = p.get("id_token_hint") {
            let expect = super::jwt::Expect {
                issuer: Some(self.issuer().to_string()),
                typ: Some("JWT".into()),
                allow_expired: true,
                ..Default::default()
            };
            let claims = self
                .signing
                .verify(hint, &expect)
                .await
                .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token of this provider"))?;
            if let Some(sub) = claims["sub"].as_str() {
                login_hint = Some(sub.to_string());
            }
        }
        let limit = |name: &str, v: Option<&str>| -> Result<Option<String>, OAuthError> {
            match v {
                Some(s) if s.len() > 2048 => Err(OAuthError::invalid_request(format!("{name} is longer than 2048 bytes"))),
                other => Ok(other.map(str::to_string)),
            }
        };
        Ok(AuthRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
            response_mode: if form_post { "form_post" } else { "query" }.into(),
            scopes,
            state: limit("state", p.get("state"))?,
            nonce: limit("nonce", p.get("nonce"))?,
            code_challenge,
            prompt,
            max_age,
            login_hint: limit("login_hint", login_hint.as_deref())?,
            acr_values: p.get("acr_values").map(split_scopes).unwrap_or_default(),
            claims,
            created_at: now_secs(),
        })
    }

    /// The request, once a user is known: consent, then the code.
    #[allow(clippy::too_many_arguments)]
    async fn after_login(
        &self,
        client: &Client,
        request: AuthRequest,
        challenge: Option<&str>,
        binding: &str,
        login: Login,
        granted: Option<Vec<String>>,
        remember: bool,
    ) -> Result<Reply, IdentityError> {
        let target = Target {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            form_post: request.response_mode == "form_post",
        };
        let scopes = match granted {
            Some(granted) => {
                if remember {
                    self.grants.remember_consent(&login.user_id, &client.client_id, &granted).await?;
                }
                Some(granted)
            }
            None if request.prompts("consent") => None,
            None if client.settings.skip_consent => Some(request.scopes.clone()),
            None if self.grants.consent_covers(&login.user_id, &client.client_id, &request.scopes).await? => Some(request.scopes.clone()),
            None => None,
        };
        let Some(scopes) = scopes else {
            if request.prompts("none") {
                if let Some(c) = challenge {
                    self.forget_request(c).await?;
                }
                return Ok(self.error_to(&target, &OAuthError::consent_required("the user has not consented to this client")));
            }
            let challenge = match challenge {
                Some(c) => c.to_string(),
                None => self.park(&request, binding).await?,
            };
            self.set_login(&challenge, &login).await?;
            return Ok(Reply::redirect(with_params(CONSENT_PATH, &[("consent_challenge", &challenge)])));
        };
        if let Some(c) = challenge {
            // Two resumes racing: only the one that removes the request gets a code.
            if !self.forget_request(c).await? {
                return Ok(Reply::error_page(400, "invalid_request", "this sign-in request was already completed"));
            }
        }
        let code = self.issue_code(&request, &login, &scopes).await?;
        Ok(self.respond_to(&target, &[("code", &code)]))
    }

    /// Parks a request; returns its challenge.
    async fn park(&self, request: &AuthRequest, binding: &str) -> Result<String, IdentityError> {
        let challenge = random_token(32);
        let json = serde_json::to_string(request).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let now = Timestamp::now();
        let expires = later(self.config.auth.oidc_provider.request_ttl_secs);
        let (challenge_hash, browser_hash) = (sha256_hex(challenge.as_bytes()), sha256_hex(binding.as_bytes()));
        self.requests.park(&challenge_hash, &request.client_id, &json, &browser_hash, now, expires).await?;
        Ok(challenge)
    }

    async fn set_login(&self, challenge: &str, login: &Login) -> Result<(), IdentityError> {
        let amr = serde_json::to_string(&login.amr).map_err(|e| IdentityError::Internal(e.to_string()))?;
        let hash = sha256_hex(challenge.as_bytes());
        self.requests.set_login(&hash, &login.user_id, &login.session_id, login.auth_time, &amr, &login.acr).await?;
        Ok(())
    }

    /// Removes a parked request; false when it was already gone.
    async fn forget_request(&self, challenge: &str) -> Result<bool, IdentityError> {
        Ok(self.requests.forget(&sha256_hex(challenge.as_bytes())).await?)
    }

    /// The parked request a challenge names, unless it expired.
    async fn parked(&self, challenge: &str) -> Result<Option<Parked>, IdentityError> {
        if challenge.is_empty() || challenge.len() > 128 {
            return Ok(None);
        }
        let row = self.requests.parked(&sha256_hex(challenge.as_bytes()), Timestamp::now()).await?;
        Ok(row)
    }

    /// `GET /auth/authorize/resume?challenge=...`: where the login and consent flows send the
    /// browser once they have reported.
    pub async fn resume_authorization(&self, challenge: &str, browser: Option<&(Session, User)>) -> Result<Reply, IdentityError> {
        let Some(p) = self.parked(challenge).await? else {
            return Ok(Reply::error_page(
                400,
                "invalid_request",
                "this sign-in request is unknown or has expired; start again from the application",
            ));
        };
        let client = match self.clients.get(&p.request.client_id).await {
            Ok(c) => c,
            Err(IdentityError::NotFound(_)) => {
                return Ok(Reply::error_page(400, "invalid_client", "the client of this request no longer exists"))
            }
            Err(e) => return Err(e),
        };
        let request = p.request.clone();
        let target = Target {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            form_post: request.response_mode == "form_post",
        };
        if let Some(err) = &p.error {
            self.forget_request(challenge).await?;
            let code = FLOW_ERRORS.iter().find(|c| **c == err.0).copied().unwrap_or("access_denied");
            return Ok(self.error_to(&target, &OAuthError { code, description: err.1.clone(), status: 400 }));
        }
        let login_again = || Reply::redirect(with_params(LOGIN_PATH, &[("login_challenge", challenge)]));
        if p.stage == "login" {
            return Ok(login_again());
        }
        let bound = browser.is_some_and(|(s, _)| Some(&s.id) == p.session_id.as_ref());
        let (Some(user_id), Some(session_id), true) = (p.user_id.clone(), p.session_id.clone(), bound) else {
            // Another browser, or the session ended: sign in again for this request.
            self.requests.restart_login(&sha256_hex(challenge.as_bytes())).await?;
            return Ok(login_again());
        };
        let login = Login {
            user_id,
            session_id,
            auth_time: p.auth_time.unwrap_or_else(now_secs),
            amr: p.amr.clone().unwrap_or_default(),
            acr: p.acr.clone().unwrap_or_else(|| "1".into()),
        };
        let granted = if p.stage == "done" { p.granted.clone() } else { None };
        self.after_login(&client, request, Some(challenge), "", login, granted, p.remember).await
    }

    /// What the login flow needs to know of a parked request.
    pub async fn login_request(&self, challenge: &str, binding: &str) -> Result<Value, IdentityError> {
        let p = self.parked_for(challenge, binding).await?;
        let client = self.clients.get(&p.request.client_id).await?;
        Ok(json!({
            "challenge": challenge,
            "client": { "client_id": client.client_id, "name": client.name },
            "scopes": p.request.scopes,
            "login_hint": p.request.login_hint,
            "prompt": p.request.prompt,
            "max_age": p.request.max_age,
            "acr_values": p.request.acr_values,
            "stage": p.stage,
        }))
    }

    /// The login flow signed `browser` in for the request: record who, and where to go next.
    pub async fn accept_login(
        &self,
        challenge: &str,
        binding: &str,
        browser: &(Session, User),
        amr: Option<Vec<String>>,
        acr: Option<String>,
    ) -> Result<String, IdentityError> {
        let p = self.parked_for(challenge, binding).await?;
        if p.stage != "login" {
            return Err(IdentityError::Conflict("this request's login was already handled".into()));
        }
        let (s, u) = browser;
        let login = Login {
            user_id: u.id.clone(),
            session_id: s.id.clone(),
            auth_time: now_secs(),
            amr: amr.unwrap_or_else(|| s.amr.clone()),
            acr: acr.unwrap_or_else(|| "1".into()),
        };
        self.set_login(challenge, &login).await?;
        Ok(with_params(RESUME_PATH, &[("challenge", challenge)]))
    }

    /// Ends a parked request with an error for the client (`access_denied` by default).
    pub async fn reject_request(&self, challenge: &str, binding: &str, error: &str, description: &str) -> Result<String, IdentityError> {
        if !FLOW_ERRORS.contains(&error) {
            return Err(IdentityError::invalid("error", format!("must be one of {}", FLOW_ERRORS.join(", "))));
        }
        self.parked_for(challenge, binding).await?;
        let err = serde_json::to_string(&(error, description)).map_err(|e| IdentityError::Internal(e.to_string()))?;
        self.requests.set_error(&sha256_hex(challenge.as_bytes()), &err).await?;
        Ok(with_params(RESUME_PATH, &[("challenge", challenge)]))
    }

    /// What the consent flow shows; only to the browser that signed in for the request.
    pub async fn consent_request(&self, challenge: &str, browser: Option<&(Session, User)>) -> Result<Value, IdentityError> {
        let p = self.bound(challenge, browser).await?;
        let client = self.clients.get(&p.request.client_id).await?;
        let user = browser.map(|(_, u)| json!({ "id": u.id, "email": u.email, "display_name": u.display_name }));
        let previously = self.grants.consented_scopes(p.user_id.as_deref().unwrap_or_default(), &client.client_id).await?;
        Ok(json!({
            "challenge": challenge,
            "client": { "client_id": client.client_id, "name": client.name },
            "scopes": p.request.scopes,
            "previously_granted": previously,
            "user": user,
            "prompt": p.request.prompt,
        }))
    }

    /// The user allowed the request: `scopes` (default: all asked), remembered or not.
    pub async fn accept_consent(
        &self,
        challenge: &str,
        browser: Option<&(Session, User)>,
        scopes: Option<Vec<String>>,
        remember: bool,
    ) -> Result<String, IdentityError> {
        let p = self.bound(challenge, browser).await?;
        let granted = match scopes {
            None => p.request.scopes.clone(),
            Some(list) => {
                if let Some(bad) = list.iter().find(|s| !p.request.scopes.contains(s)) {
                    return Err(IdentityError::invalid("scopes", format!("{bad:?} was not asked for")));
                }
                // Kept in the order the client asked.
                p.request.scopes.iter().filter(|s| list.contains(s)).cloned().collect()
            }
        };
        let json = serde_json::to_string(&granted).map_err(|e| IdentityError::Internal(e.to_string()))?;
        self.requests.set_consent(&sha256_hex(challenge.as_bytes()), &json, remember).await?;
        Ok(with_params(RESUME_PATH, &[("challenge", challenge)]))
    }

    /// A parked request made by the browser whose `assay_authz` cookie is `binding`.
    async fn parked_for(&self, challenge: &str, binding: &str) -> Result<Parked, IdentityError> {
        let missing = || IdentityError::NotFound("no pending sign-in request with that challenge for this browser".into());
        let p = self.parked(challenge).await?.ok_or_else(missing)?;
        let same = crate::crypto::constant_time_eq(p.browser_hash.as_bytes(), sha256_hex(binding.as_bytes()).as_bytes());
        if binding.is_empty() || !same {
            return Err(missing());
        }
        Ok(p)
    }

    /// A parked request past its login, that `browser`'s session signed in for.
    async fn bound(&self, challenge: &str, browser: Option<&(Session, User)>) -> Result<Parked, IdentityError> {
        let p = self
            .parked(challenge)
            .await?
            .ok_or_else(|| IdentityError::NotFound("no pending consent request with that challenge".into()))?;
        let ok = p.stage != "login" && browser.is_some_and(|(s, _)| p.session_id.as_ref() == Some(&s.id));
        if !ok {
            return Err(IdentityError::NotFound("no pending consent request with that challenge for this session".into()));
        }
        Ok(p)
    }

    /// A single-use code for the request, bound to its client, redirect URI and PKCE challenge.
    async fn issue_code(&self, r: &AuthRequest, login: &Login, scopes: &[String]) -> Result<String, IdentityError> {
        let code = random_token(32);
        let now = Timestamp::now();
        let new = NewCode {
            code_hash: sha256_hex(code.as_bytes()),
            client_id: &r.client_id,
            user_id: &login.user_id,
            session_id: &login.session_id,
            redirect_uri: &r.redirect_uri,
            scopes: json_text(&scopes),
            nonce: r.nonce.as_deref(),
            code_challenge: r.code_challenge.as_deref(),
            auth_time: login.auth_time,
            amr: json_text(&login.amr),
            acr: &login.acr,
            claims: r.claims.as_ref().map(|c| c.to_string()),
            expires_at: later(self.config.auth.oidc_provider.code_ttl_secs),
        };
        self.requests.insert_code(&new, now).await?;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::{redirect_uri_registered, sign_in_too_old};

    #[test]
    fn max_age_zero_always_asks_and_others_allow_exactly_max_age() {
        // max_age=0 is prompt=login, even for a sign-in in this very second.
        assert!(sign_in_too_old(1000, 0, 1000));
        // auth_time + max_age < now: 60 s after the sign-in is still fine, 61 s is not.
        assert!(!sign_in_too_old(1000, 60, 1060));
        assert!(sign_in_too_old(1000, 60, 1061));
        assert!(!sign_in_too_old(1000, i64::MAX, 1061), "no overflow on a huge max_age");
    }

    fn reg(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn redirect_uris_match_exactly_except_loopback_ports() {
        let r =
            reg(&["https://photos.example.com/auth/login", "app.immich:///oauth-callback", "http://127.0.0.1/cb", "http://[::1]/cb?x=1"]);
        assert!(redirect_uri_registered(&r, "https://photos.example.com/auth/login"));
        assert!(redirect_uri_registered(&r, "app.immich:///oauth-callback"));
        // RFC 8252 §7.3: any port on a loopback address.
        assert!(redirect_uri_registered(&r, "http://127.0.0.1:53412/cb"));
        assert!(redirect_uri_registered(&r, "http://[::1]:8085/cb?x=1"));
        for bad in [
            "https://photos.example.com/auth/login/",
            "https://photos.example.com/auth/login?x=1",
            "https://photos.example.com:444/auth/login",
            "HTTPS://photos.example.com/auth/login",
            "app.immich:///oauth-callback/x",
            "http://127.0.0.1:53412/cb/other",
            "http://127.0.0.1:53412/cb#frag",
            "http://127.0.0.2:53412/cb",
            "https://127.0.0.1:53412/cb",
            "http://[::1]:8085/cb",
            "",
        ] {
            assert!(!redirect_uri_registered(&r, bad), "{bad:?} matched");
        }
        // A non-loopback http URI gets no port leniency.
        assert!(!redirect_uri_registered(&reg(&["http://app.internal/cb"]), "http://app.internal:8080/cb"));
    }
}
