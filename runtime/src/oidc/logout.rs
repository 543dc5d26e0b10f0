//! RP-Initiated Logout 1.0 at the `end_session_endpoint`. Ending the browser session there (as
//! anywhere) queues the Back-Channel Logout Tokens: see `logout_queue.rs`.

use serde_json::{json, Value};

use super::jwt::Expect;
use super::Provider;
use super::{with_params, Params, Reply};
use crate::identity::sessions::Session;
use crate::identity::users::User;
use crate::identity::IdentityError;

/// A logout request that cannot be honoured: a page, never a redirect.
fn refuse(why: &str) -> Reply {
    Reply::titled_error_page(400, "invalid_request", "This sign-out request cannot be completed", why)
}

impl Provider {
    /// `GET`/`POST /auth/oauth2/sessions/logout`. `csrf` is the token the confirmation page
    /// carries; `confirmed` is true for a POST of that page with a valid token.
    pub async fn end_session(
        &self,
        pairs: Vec<(String, String)>,
        browser: Option<&(Session, User)>,
        csrf: Option<String>,
        confirmed: bool,
    ) -> Result<Reply, IdentityError> {
        let p = match Params::new(pairs) {
            Ok(p) => p,
            Err(e) => return Ok(refuse(&e.description)),
        };
        let hint = match p.get("id_token_hint") {
            None => None,
            Some(t) => {
                // An ID token (typ JWT), not an access or Logout Token of this provider.
                let expect = Expect {
                    issuer: Some(self.config.auth.issuer.clone()),
                    typ: Some("JWT".into()),
                    allow_expired: true,
                    ..Default::default()
                };
                match self.signing.verify(t, &expect).await {
                    Ok(c) => Some(c),
                    Err(IdentityError::InvalidJwt(why)) => {
                        return Ok(refuse(&format!("id_token_hint is not an ID token of this provider ({why})")))
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let hint_client = hint.as_ref().and_then(|c| match &c["aud"] {
            Value::String(a) => Some(a.clone()),
            Value::Array(list) => list.first().and_then(|a| a.as_str()).map(str::to_string),
            _ => None,
        });
        let client_id = match (p.get("client_id"), hint_client.as_deref()) {
            (Some(a), Some(b)) if a != b => return Ok(refuse("client_id differs from the id_token_hint's audience")),
            (Some(a), _) => Some(a.to_string()),
            (None, b) => b.map(str::to_string),
        };
        let client = match &client_id {
            None => None,
            Some(id) => match self.clients.get(id).await {
                Ok(c) => Some(c),
                Err(IdentityError::NotFound(_)) => return Ok(refuse("no client is registered with that client_id")),
                Err(e) => return Err(e),
            },
        };
        let target = match p.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => match &client {
                None => return Ok(refuse("post_logout_redirect_uri needs id_token_hint or client_id")),
                Some(c) if c.settings.post_logout_redirect_uris.iter().any(|u| u == uri) => Some(uri.to_string()),
                Some(_) => return Ok(refuse("post_logout_redirect_uri is not registered for this client")),
            },
        };
        let done = |ended: bool| {
            let mut r = match &target {
                Some(uri) => {
                    let mut params: Vec<(&str, &str)> = Vec::new();
                    if let Some(s) = p.get("state") {
                        params.push(("state", s));
                    }
                    Reply::redirect(with_params(uri, &params))
                }
                None => Reply::redirect("/auth/login?logged_out=1".into()),
            };
            r.clear_session = ended;
            r
        };
        let Some((session, user)) = browser else { return Ok(done(false)) };
        // The RP proves which session it means with an ID token of it: no question to ask.
        let hinted = hint.as_ref().is_some_and(|h| match h["sid"].as_str() {
            Some(sid) => sid == session.id,
            None => h["sub"].as_str() == Some(user.id.as_str()),
        });
        if hinted || confirmed {
            self.sessions.revoke(&session.id).await?;
            self.audit
                .append(
                    &Default::default(),
                    crate::identity::audit::Entry::new("session.logout")
                        .actor(&format!("user:{}", user.id))
                        .target(&session.id)
                        .detail("via", "end_session_endpoint"),
                )
                .await?;
            return Ok(done(true));
        }
        let fields: Vec<Value> = ["id_token_hint", "post_logout_redirect_uri", "state", "client_id"]
            .iter()
            .filter_map(|k| p.get(k).map(|v| json!({ "name": k, "value": v })))
            .collect();
        Ok(Reply::page(
            200,
            "end_session.html",
            json!({
                "csrf_token": csrf,
                "fields": fields,
                "email": user.email,
                "client_name": client.as_ref().map(|c| c.name.clone()),
            }),
        ))
    }
}
