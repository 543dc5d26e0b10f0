//! `assay.session`: browser sessions and CSRF tokens. The engine sets and clears the cookies
//! itself on the handler's response, always with `HttpOnly`, `SameSite=Lax`, and `Secure`
//! when the public URL is HTTPS. Reference: `stdlib/session.md`.

use http::HeaderValue;
use mlua::{Lua, Table, Value};

use super::{context, identity, opt_field, opt_string, outcome, outcome_lua, page_limit};
use crate::crypto::{constant_time_eq, random_token};
use crate::identity::sessions::Session;
use crate::identity::users::User;
use crate::lua::{Outcome, Phase, RequestRun};
use crate::services::Services;

const PHASES: &[Phase] = &[Phase::Request];
/// The cookie an anonymous visitor's CSRF token is bound to.
pub const CSRF_COOKIE: &str = "assay_csrf";

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "load",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "session.load", PHASES)?;
            match current(&lua, &id).await? {
                Some((s, u)) => Ok(Outcome::Ok(session_table(&lua, &s, Some(&u))?)),
                None => Ok(Outcome::Fail(crate::lua::Failure::new("no_session", "the request carries no live session"))),
            }
        })?,
    )?;
    m.set(
        "create",
        lua.create_async_function(|lua, (_req, user_id, opts): (Value, String, Option<Table>)| async move {
            let id = identity(&lua, "session.create", PHASES)?;
            let amr = opt_field::<Vec<String>>(opts.as_ref(), "amr")?.unwrap_or_else(|| vec!["pwd".to_string()]);
            let old = request_cookie(&lua, &id.config.session_cookie());
            let user = match id.users.get(&user_id).await {
                Ok(u) => u,
                Err(e) => return outcome(Err(e)),
            };
            if user.disabled {
                return Ok(Outcome::Fail(crate::lua::Failure::new("disabled", "this account is disabled")));
            }
            let entry = crate::identity::audit::Entry::new("login.succeeded").actor(&format!("user:{user_id}")).detail("amr", amr.clone());
            let (token, session) =
                id.sessions.create(&user_id, &amr, &context(&lua), old.as_deref(), Some(entry)).await.map_err(mlua::Error::external)?;
            started(&lua, &id, &token, session, user)
        })?,
    )?;
    m.set(
        "rotate",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "session.rotate", PHASES)?;
            let Some(old) = request_cookie(&lua, &id.config.session_cookie()) else {
                return Ok(Outcome::Fail(crate::lua::Failure::new("no_session", "the request carries no session")));
            };
            match id.sessions.rotate(&old, &context(&lua)).await.map_err(mlua::Error::external)? {
                Some((token, session)) => {
                    let user = id.users.get(&session.user_id).await.map_err(mlua::Error::external)?;
                    started(&lua, &id, &token, session, user)
                }
                None => Ok(Outcome::Fail(crate::lua::Failure::new("no_session", "the request carries no live session"))),
            }
        })?,
    )?;
    m.set(
        "logout",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "session.logout", PHASES)?;
            let name = id.config.session_cookie();
            if let Some(token) = request_cookie(&lua, &name) {
                id.sessions.revoke_by_token(&token).await.map_err(mlua::Error::external)?;
            }
            clear_session_cookie(&lua, &id)?;
            Ok(true)
        })?,
    )?;
    m.set(
        "revoke",
        lua.create_async_function(|lua, session_id: String| async move {
            let id = identity(&lua, "session.revoke", PHASES)?;
            outcome(id.sessions.revoke(&session_id).await.map(|_| true))
        })?,
    )?;
    m.set(
        "revoke_all",
        lua.create_async_function(|lua, user_id: String| async move {
            let id = identity(&lua, "session.revoke_all", PHASES)?;
            id.sessions.revoke_user(&user_id).await.map_err(mlua::Error::external)
        })?,
    )?;
    m.set(
        "list",
        lua.create_async_function(|lua, opts: Option<Table>| async move {
            let id = identity(&lua, "session.list", PHASES)?;
            let limit = page_limit("session.list", opts.as_ref())?;
            let user_id = opt_string(opts.as_ref(), "user_id")?;
            let cursor = opt_string(opts.as_ref(), "cursor")?;
            outcome_lua(&lua, id.sessions.list(user_id.as_deref(), limit, cursor.as_deref()).await)
        })?,
    )?;
    m.set(
        "csrf_token",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "session.csrf_token", PHASES)?;
            if let Some((s, _)) = current(&lua, &id).await? {
                return Ok(s.csrf_token);
            }
            let anon = match anonymous_cookie(&lua, &id) {
                Some(c) => c,
                None => {
                    let value = random_token(32);
                    let set = cookie(&id, CSRF_COOKIE, &value, None)?;
                    if let Some(mut run) = lua.app_data_mut::<RequestRun>() {
                        run.cookies.push(set);
                    }
                    value
                }
            };
            Ok(id.sessions.anonymous_csrf_token(&anon))
        })?,
    )?;
    m.set(
        "check_csrf",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "session.check_csrf", PHASES)?;
            check_csrf(&lua, &id).await
        })?,
    )?;
    Ok(m)
}

/// Whether the request carries this browser's CSRF token (form field `csrf_token` or header
/// `X-CSRF-Token`): the session's own when there is a session, else the HMAC of the anonymous
/// `assay_csrf` cookie.
pub(crate) async fn check_csrf(lua: &Lua, id: &Services) -> mlua::Result<Outcome<bool>> {
    let submitted = {
        let run = lua.app_data_ref::<RequestRun>();
        run.and_then(|r| {
            r.request.form_pairs().into_iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v).or_else(|| r.request.header("x-csrf-token"))
        })
    };
    let Some(submitted) = submitted.filter(|s| !s.is_empty()) else {
        return Ok(Outcome::Fail(crate::lua::Failure::new("csrf", "the request carries no CSRF token")));
    };
    // With a session, only that session's token counts. The anonymous token is a MAC of a
    // cookie, and a cookie can be planted by a same-site attacker who fetched the matching
    // token for it first: accepting it here let such a page act as a signed-in admin.
    if let Some((s, _)) = current(lua, id).await? {
        if constant_time_eq(s.csrf_token.as_bytes(), submitted.as_bytes()) {
            return Ok(Outcome::Ok(true));
        }
        return Ok(Outcome::Fail(crate::lua::Failure::new("csrf", "the CSRF token does not match this session")));
    }
    if let Some(anon) = request_cookie(lua, &id.config.cookie_name(CSRF_COOKIE)) {
        if constant_time_eq(id.sessions.anonymous_csrf_token(&anon).as_bytes(), submitted.as_bytes()) {
            return Ok(Outcome::Ok(true));
        }
    }
    Ok(Outcome::Fail(crate::lua::Failure::new("csrf", "the CSRF token does not match this browser")))
}

/// The request's session, looked up once per request.
pub(crate) async fn current(lua: &Lua, id: &Services) -> mlua::Result<Option<(Session, User)>> {
    if let Some(cached) = lua.app_data_ref::<RequestRun>().and_then(|r| r.session.clone()) {
        return Ok(cached);
    }
    let found = match request_cookie(lua, &id.config.session_cookie()) {
        Some(token) => id.sessions.load(&token).await.map_err(mlua::Error::external)?,
        None => None,
    };
    if let Some(mut run) = lua.app_data_mut::<RequestRun>() {
        run.session = Some(found.clone());
    }
    Ok(found)
}

fn request_cookie(lua: &Lua, name: &str) -> Option<String> {
    lua.app_data_ref::<RequestRun>().and_then(|r| r.request.cookie(name)).filter(|v| !v.is_empty())
}

/// The anonymous CSRF cookie: the one the browser sent, or one set earlier in this request.
fn anonymous_cookie(lua: &Lua, id: &Services) -> Option<String> {
    let name = id.config.cookie_name(CSRF_COOKIE);
    if let Some(v) = request_cookie(lua, &name) {
        return Some(v);
    }
    let run = lua.app_data_ref::<RequestRun>()?;
    let prefix = format!("{name}=");
    run.cookies
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix(&prefix))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_string)
}

/// A new session's cookie on the response, and the session as the rest of the request sees it.
fn started(lua: &Lua, id: &Services, token: &str, session: Session, user: User) -> mlua::Result<Outcome<Value>> {
    let cfg = &id.config.auth.session;
    let set = cookie(id, &cfg.cookie_name, token, Some(cfg.ttl_secs))?;
    let table = session_table(lua, &session, Some(&user))?;
    if let Some(mut run) = lua.app_data_mut::<RequestRun>() {
        run.cookies.push(set);
        run.session = Some(Some((session, user)));
    }
    Ok(Outcome::Ok(table))
}

/// Has the response clear the session cookie; the rest of the request sees no session.
pub(crate) fn clear_session_cookie(lua: &Lua, id: &Services) -> mlua::Result<()> {
    let clear = cookie(id, &id.config.auth.session.cookie_name, "", Some(0))?;
    if let Some(mut run) = lua.app_data_mut::<RequestRun>() {
        run.cookies.push(clear);
        run.session = Some(None);
    }
    Ok(())
}

/// `Set-Cookie` with the engine's attributes; `max_age` None is a browser-session cookie.
/// `name` is the base name: on https it becomes `__Host-<name>` ([`crate::config::Config::cookie_name`]).
pub(crate) fn cookie(id: &Services, name: &str, value: &str, max_age: Option<u64>) -> mlua::Result<HeaderValue> {
    let name = id.config.cookie_name(name);
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if id.config.is_https() {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).map_err(|_| mlua::Error::runtime("session: cookie value is not a header value"))
}

/// A session as Lua sees it: its fields, the CSRF token, and the user.
pub(crate) fn session_table(lua: &Lua, s: &Session, user: Option<&User>) -> mlua::Result<Value> {
    let mut json = serde_json::to_value(s).map_err(mlua::Error::external)?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("csrf_token".into(), serde_json::Value::String(s.csrf_token.clone()));
        if let Some(u) = user {
            obj.insert("user".into(), serde_json::to_value(u).map_err(mlua::Error::external)?);
        }
    }
    super::json::from_json(lua, &json)
}
