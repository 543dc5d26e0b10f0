//! `assay.oidc`: the OpenID provider as flows see it: the protocol endpoints (a flow routes
//! them and may wrap them), the login and consent hand-off, and the registered clients.
//! Reference: `stdlib/oidc.md`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use mlua::{Function, Lua, Table, Value};

use super::{identity, opt_field, opt_string, outcome, outcome_lua, page_limit};
use crate::identity::sessions::Session;
use crate::identity::users::User;
use crate::identity::IdentityError;
use crate::lua::{FlowResponse, HookSources, HttpRequest, Outcome, Phase, RequestRun};
use crate::oidc::claims::{ClaimsHook, HookFuture, HookInput};
use crate::oidc::{Body, Reply};
use crate::services::Services;

const PHASES: &[Phase] = &[Phase::Request];

fn body(lua: &Lua, function: &str, v: Value) -> mlua::Result<serde_json::Value> {
    super::json::to_json(lua, v).map_err(|e| mlua::Error::runtime(format!("{function}: {e}")))
}

/// The request being served, shared rather than copied: the identity calls await (so no borrow
/// of the state's app data may be held across them), and an `Arc` costs a count, not a copy of
/// the headers and strings.
fn request(lua: &Lua, function: &str) -> mlua::Result<Arc<HttpRequest>> {
    lua.app_data_ref::<RequestRun>()
        .map(|r| r.request.clone())
        .ok_or_else(|| mlua::Error::runtime(format!("{function} needs a request being served")))
}

/// The parameters of an authorization-style request: the query of a GET, the form of a POST.
fn request_params(req: &HttpRequest) -> Vec<(String, String)> {
    if req.method == "POST" {
        req.form_pairs()
    } else {
        req.query_pairs()
    }
}

/// A protocol answer as the response a handler returns; pages render through the templates.
fn into_response(lua: &Lua, id: &Services, reply: Reply) -> mlua::Result<mlua::AnyUserData> {
    let (content_type, body): (&'static str, Bytes) = match &reply.body {
        Body::Json(v) => ("application/json", Bytes::from(serde_json::to_vec(v).map_err(mlua::Error::external)?)),
        Body::Page(name, ctx) => {
            let mut ctx = ctx.clone();
            if let Some(obj) = ctx.as_object_mut() {
                let request_id = lua.app_data_ref::<RequestRun>().map(|r| r.request.request_id.clone()).unwrap_or_default();
                obj.insert("request_id".into(), request_id.into());
                obj.insert("product_name".into(), "assay".into());
            }
            let html = crate::lua::shared(lua)?.templates.render(name, &ctx).map_err(mlua::Error::external)?;
            ("text/html; charset=utf-8", Bytes::from(html))
        }
        Body::Redirect(_) | Body::Empty => ("text/plain; charset=utf-8", Bytes::new()),
    };
    let mut headers = vec![(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type))];
    if let Body::Redirect(location) = &reply.body {
        headers.push((
            http::header::LOCATION,
            HeaderValue::from_str(location).map_err(|_| mlua::Error::runtime("oidc: a redirect target is not a header value"))?,
        ));
    }
    for (name, value) in &reply.headers {
        let value = HeaderValue::from_str(value).map_err(|_| mlua::Error::runtime(format!("oidc: header {name} is not a header value")))?;
        headers.push((HeaderName::from_static(name), value));
    }
    if reply.clear_session {
        super::session::clear_session_cookie(lua, id)?;
    }
    lua.create_userdata(FlowResponse { status: reply.status, headers, cookies: Vec::new(), body })
}

/// `[auth.oidc_provider] enabled = false` turns the protocol endpoints off.
fn provider_off(lua: &Lua, id: &Services) -> mlua::Result<Option<mlua::AnyUserData>> {
    if id.config.auth.oidc_provider.enabled {
        return Ok(None);
    }
    let body = serde_json::json!({ "error": "not_found", "error_description": "the OpenID provider is disabled ([auth.oidc_provider] enabled = false)" });
    Ok(Some(super::http::json_response(lua, 404, &body)?))
}

/// `flows/claims.lua`, run through the state's hook runner.
struct LuaClaims {
    lua: Lua,
}

impl ClaimsHook for LuaClaims {
    fn claims<'a>(&'a self, input: HookInput<'a>) -> HookFuture<'a> {
        Box::pin(async move {
            let fault = |e: mlua::Error| IdentityError::Internal(format!("flows/claims.lua: {e}"));
            let Some(chunk) = hook_chunk(&self.lua, "claims.lua").map_err(fault)? else { return Ok(serde_json::Map::new()) };
            let mut ctx = serde_json::json!({
                "target": input.target,
                "client": { "client_id": input.client.client_id, "name": input.client.name },
                "scopes": input.scopes,
                "grant_type": input.grant_type,
            });
            // Absent, not json.null, for client_credentials: `if ctx.user == nil` must work.
            if let Some(user) = input.user {
                ctx["user"] = serde_json::to_value(user).map_err(|e| IdentityError::Internal(e.to_string()))?;
            }
            let ctx = super::json::from_json(&self.lua, &ctx).map_err(fault)?;
            let runner: Function = self.lua.named_registry_value(crate::lua::sandbox::HOOK_RUNNER_KEY).map_err(fault)?;
            // The hook runs in its own phase: reads are allowed, writes raise. The phase the
            // request was in comes back whatever the hook did.
            let before = self.lua.app_data_ref::<Phase>().map(|p| *p).unwrap_or(Phase::Request);
            self.lua.set_app_data(Phase::Claims);
            let ret = runner.call_async::<Value>((chunk, "claims.lua", ctx)).await;
            self.lua.set_app_data(before);
            let ret = ret.map_err(fault)?;
            match ret {
                Value::Nil => Ok(serde_json::Map::new()),
                Value::Table(_) => match super::json::to_json(&self.lua, ret).map_err(|e| fault(mlua::Error::runtime(e)))? {
                    serde_json::Value::Object(map) => Ok(map),
                    serde_json::Value::Array(a) if a.is_empty() => Ok(serde_json::Map::new()),
                    _ => {
                        Err(IdentityError::Internal("flows/claims.lua: the hook must return a table of claims (string keys) or nil".into()))
                    }
                },
                other => Err(IdentityError::Internal(format!(
                    "flows/claims.lua: the hook returned a {}, not a table of claims",
                    other.type_name()
                ))),
            }
        })
    }
}

/// A hook flow's compiled chunk, compiled once per state; `None` when no such flow exists.
fn hook_chunk(lua: &Lua, name: &str) -> mlua::Result<Option<Function>> {
    let key = format!("assay.hook_chunk:{name}");
    if let Ok(f) = lua.named_registry_value::<Function>(&key) {
        return Ok(Some(f));
    }
    let Some(hooks) = lua.app_data_ref::<Arc<HookSources>>().map(|h| h.clone()) else { return Ok(None) };
    let Some(source) = hooks.get(name) else { return Ok(None) };
    let f = lua.load(format!("{}{source}", crate::lua::sandbox::ENV_PARAMETER)).set_name(format!("@flows/{name}")).into_function()?;
    lua.set_named_registry_value(&key, f.clone())?;
    Ok(Some(f))
}

/// The cookie that ties a parked authorization request to the browser that made it.
const BINDING_COOKIE: &str = "assay_authz";

/// This browser's binding cookie; with `create`, one is made (and set on the response) when the
/// browser has none.
fn binding(lua: &Lua, id: &Services, create: bool) -> mlua::Result<String> {
    let sent = lua
        .app_data_ref::<RequestRun>()
        .and_then(|r| r.request.cookie(&id.config.cookie_name(BINDING_COOKIE)))
        .filter(|v| !v.is_empty() && v.len() <= 128);
    match sent {
        Some(v) => Ok(v),
        None if !create => Ok(String::new()),
        None => {
            let value = crate::crypto::random_token(32);
            let set = super::session::cookie(id, BINDING_COOKIE, &value, None)?;
            if let Some(mut run) = lua.app_data_mut::<RequestRun>() {
                run.cookies.push(set);
            }
            Ok(value)
        }
    }
}

/// A cross-site POST carries no `SameSite=Lax` cookie, so the session would be invisible: the
/// same request again as a GET (a top-level navigation, which does carry them).
fn as_get(path: &str, req: &HttpRequest) -> Reply {
    let pairs = req.form_pairs();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        ser.append_pair(k, v);
    }
    Reply::redirect(format!("{path}?{}", ser.finish()))
}

/// The browser's session, if the request carries a live one.
async fn browser(lua: &Lua, id: &Services) -> mlua::Result<Option<(Session, User)>> {
    super::session::current(lua, id).await
}

/// A protocol endpoint as a Lua function of the request.
macro_rules! endpoint {
    ($m:expr, $lua:expr, $name:literal, |$l:ident, $id:ident, $req:ident| $body:expr) => {
        $m.set(
            $name,
            $lua.create_async_function(|$l, _req: Value| async move {
                let $id = identity(&$l, concat!("oidc.", $name), PHASES)?;
                if let Some(off) = provider_off(&$l, &$id)? {
                    return Ok(off);
                }
                let $req = request(&$l, concat!("oidc.", $name))?;
                let reply: Result<Reply, IdentityError> = $body;
                into_response(&$l, &$id, reply.map_err(mlua::Error::external)?)
            })?,
        )?;
    };
}

fn challenge_arg(function: &str, v: Option<String>) -> mlua::Result<String> {
    v.filter(|c| !c.is_empty()).ok_or_else(|| mlua::Error::runtime(format!("{function}: the challenge is missing")))
}

/// `{ error = "access_denied", error_description = "..." }` for the reject calls.
fn rejection(opts: Option<&Table>, default_description: &str) -> mlua::Result<(String, String)> {
    let error = opt_string(opts, "error")?.unwrap_or_else(|| "access_denied".into());
    let description = opt_string(opts, "error_description")?.unwrap_or_else(|| default_description.into());
    Ok((error, description))
}

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "discovery",
        lua.create_function(|lua, ()| {
            let shared = crate::lua::shared(lua)?;
            super::json::from_json(lua, &crate::oidc::discovery::document(&shared.config))
        })?,
    )?;
    endpoint!(m, lua, "authorize", |lua, id, req| {
        if req.method == "POST" {
            Ok(as_get("/auth/authorize", &req))
        } else {
            let session = browser(&lua, &id).await?;
            let bound = binding(&lua, &id, true)?;
            id.provider.authorize(request_params(&req), session.as_ref(), &bound).await
        }
    });
    endpoint!(m, lua, "resume", |lua, id, req| {
        let session = browser(&lua, &id).await?;
        let challenge = req.query_pairs().into_iter().find(|(k, _)| k == "challenge").map(|(_, v)| v).unwrap_or_default();
        id.provider.resume_authorization(&challenge, session.as_ref()).await
    });
    endpoint!(m, lua, "token", |lua, id, req| { id.provider.token_endpoint(&req, &LuaClaims { lua: lua.clone() }).await });
    endpoint!(m, lua, "userinfo", |lua, id, req| { id.provider.userinfo(&req, &LuaClaims { lua: lua.clone() }).await });
    endpoint!(m, lua, "introspect", |lua, id, req| { id.provider.introspect(&req).await });
    endpoint!(m, lua, "revoke", |lua, id, req| { id.provider.revoke(&req).await });
    endpoint!(m, lua, "end_session", |lua, id, req| {
        let mut params = request_params(&req);
        let confirming = req.method == "POST" && params.iter().any(|(k, v)| k == "confirm" && v == "yes");
        if req.method == "POST" && !confirming {
            // An RP's POSTed logout: see it with the session cookie.
            Ok(as_get("/auth/oauth2/sessions/logout", &req))
        } else {
            let session = browser(&lua, &id).await?;
            let confirmed = confirming && matches!(super::session::check_csrf(&lua, &id).await?, Outcome::Ok(true));
            params.retain(|(k, _)| k != "confirm" && k != "csrf_token");
            let csrf = session.as_ref().map(|(s, _)| s.csrf_token.clone());
            id.provider.end_session(params, session.as_ref(), csrf, confirmed).await
        }
    });
    m.set(
        "login_request",
        lua.create_async_function(|lua, challenge: Option<String>| async move {
            let id = identity(&lua, "oidc.login_request", PHASES)?;
            let challenge = challenge_arg("oidc.login_request", challenge)?;
            let bound = binding(&lua, &id, false)?;
            outcome_lua(&lua, id.provider.login_request(&challenge, &bound).await)
        })?,
    )?;
    m.set(
        "accept_login",
        lua.create_async_function(|lua, (challenge, opts): (Option<String>, Option<Table>)| async move {
            let id = identity(&lua, "oidc.accept_login", PHASES)?;
            let challenge = challenge_arg("oidc.accept_login", challenge)?;
            let amr = opt_field::<Vec<String>>(opts.as_ref(), "amr")?;
            let acr = opt_string(opts.as_ref(), "acr")?;
            let Some(session) = browser(&lua, &id).await? else {
                return Ok(Outcome::Fail(crate::lua::Failure::new(
                    "no_session",
                    "sign the user in (session.create) before accepting the login",
                )));
            };
            let bound = binding(&lua, &id, false)?;
            outcome(id.provider.accept_login(&challenge, &bound, &session, amr, acr).await)
        })?,
    )?;
    for (name, stage) in [("reject_login", "the user cancelled the sign-in"), ("reject_consent", "the user denied the request")] {
        m.set(
            name,
            lua.create_async_function(move |lua, (challenge, opts): (Option<String>, Option<Table>)| async move {
                let function = format!("oidc.{name}");
                let id = identity(&lua, &function, PHASES)?;
                let challenge = challenge_arg(&function, challenge)?;
                let (error, description) = rejection(opts.as_ref(), stage)?;
                let bound = binding(&lua, &id, false)?;
                outcome(id.provider.reject_request(&challenge, &bound, &error, &description).await)
            })?,
        )?;
    }
    m.set(
        "consent_request",
        lua.create_async_function(|lua, challenge: Option<String>| async move {
            let id = identity(&lua, "oidc.consent_request", PHASES)?;
            let challenge = challenge_arg("oidc.consent_request", challenge)?;
            let session = browser(&lua, &id).await?;
            outcome_lua(&lua, id.provider.consent_request(&challenge, session.as_ref()).await)
        })?,
    )?;
    m.set(
        "accept_consent",
        lua.create_async_function(|lua, (challenge, opts): (Option<String>, Option<Table>)| async move {
            let id = identity(&lua, "oidc.accept_consent", PHASES)?;
            let challenge = challenge_arg("oidc.accept_consent", challenge)?;
            let scopes = opt_field::<Vec<String>>(opts.as_ref(), "scopes")?;
            let remember = opt_field::<bool>(opts.as_ref(), "remember")?.unwrap_or(false);
            let session = browser(&lua, &id).await?;
            outcome(id.provider.accept_consent(&challenge, session.as_ref(), scopes, remember).await)
        })?,
    )?;
    m.set(
        "create_client",
        lua.create_async_function(|lua, t: Value| async move {
            let id = identity(&lua, "oidc.create_client", PHASES)?;
            let input = body(&lua, "oidc.create_client", t)?;
            match outcome(id.clients.create(&input).await)? {
                Outcome::Ok((client, secret)) => {
                    let mut json = serde_json::to_value(&client).map_err(mlua::Error::external)?;
                    if let (Some(obj), Some(secret)) = (json.as_object_mut(), secret) {
                        obj.insert("client_secret".into(), secret.into());
                    }
                    Ok(Outcome::Ok(super::json::from_json(&lua, &json)?))
                }
                Outcome::Fail(e) => Ok(Outcome::Fail(e)),
            }
        })?,
    )?;
    m.set(
        "get_client",
        lua.create_async_function(|lua, client_id: String| async move {
            let id = identity(&lua, "oidc.get_client", crate::lua::READ_PHASES)?;
            outcome_lua(&lua, id.clients.get(&client_id).await)
        })?,
    )?;
    m.set(
        "update_client",
        lua.create_async_function(|lua, (client_id, t): (String, Value)| async move {
            let id = identity(&lua, "oidc.update_client", PHASES)?;
            let input = body(&lua, "oidc.update_client", t)?;
            outcome_lua(&lua, id.clients.update(&client_id, &input).await)
        })?,
    )?;
    m.set(
        "delete_client",
        lua.create_async_function(|lua, client_id: String| async move {
            let id = identity(&lua, "oidc.delete_client", PHASES)?;
            outcome(id.clients.delete(&client_id).await.map(|_| true))
        })?,
    )?;
    m.set(
        "rotate_client_secret",
        lua.create_async_function(|lua, client_id: String| async move {
            let id = identity(&lua, "oidc.rotate_client_secret", PHASES)?;
            outcome(id.clients.rotate_secret(&client_id).await)
        })?,
    )?;
    m.set(
        "list_clients",
        lua.create_async_function(|lua, opts: Option<Table>| async move {
            let id = identity(&lua, "oidc.list_clients", crate::lua::READ_PHASES)?;
            let limit = page_limit("oidc.list_clients", opts.as_ref())?;
            let cursor = opt_string(opts.as_ref(), "cursor")?;
            outcome_lua(&lua, id.clients.list(limit, cursor.as_deref()).await)
        })?,
    )?;
    Ok(m)
}
