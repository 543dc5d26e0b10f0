//! `assay.admin`: who may use the admin API and the console, and its JSON errors. An admin is
//! a Bearer admin API key (from `[auth] admin_api_keys` or generated at first start; compared
//! by SHA-256 in constant time) or the session of a user with the `admin` role.
//! Reference: `stdlib/admin.md`.

use mlua::{Lua, Table, Value};

use super::{identity, session, to_lua};
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::lua::{require_phase, Failure, Outcome, Phase, RequestRun};
use crate::services::Services;

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "authenticate",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "admin.authenticate", PHASES)?;
            match authenticate(&lua, &id).await? {
                Ok(principal) => Ok(Outcome::Ok(principal)),
                Err(f) => Ok(Outcome::Fail(f)),
            }
        })?,
    )?;
    m.set(
        "require",
        lua.create_async_function(|lua, _req: Value| async move {
            let id = identity(&lua, "admin.require", PHASES)?;
            let mut answer = authenticate(&lua, &id).await?;
            // A body is JSON and says so: a form or text/plain POST is what a cross-site page can
            // send without a CORS preflight, so the API never reads one.
            if answer.is_ok() {
                if let Some(refusal) = non_json_body(&lua) {
                    answer = Err(refusal);
                }
            }
            // A browser sends its session cookie along on any request, so a change made with a
            // session (not an API key) must also carry the CSRF token: checked here, once, for
            // every admin endpoint.
            if let Ok(Value::Table(principal)) = &answer {
                let changes = lua.app_data_ref::<RequestRun>().is_some_and(|r| !matches!(r.request.method.as_str(), "GET" | "HEAD"));
                if changes && principal.get::<String>("kind")? == "session" {
                    if let Outcome::Fail(_) = session::check_csrf(&lua, &id).await? {
                        answer = Err(Failure::new("csrf", "missing or wrong X-CSRF-Token header"));
                    }
                }
            }
            Ok(match answer {
                Ok(principal) => Outcome::Ok(principal),
                Err(f) => Outcome::Fail(f),
            })
        })?,
    )?;
    m.set(
        "paging",
        lua.create_function(|lua, _req: Value| {
            require_phase(lua, "admin.paging", PHASES)?;
            paging(lua)
        })?,
    )?;
    m.set(
        "error",
        lua.create_function(|lua, (status, code, description): (u16, String, Option<String>)| {
            super::http::error_response(lua, status, &code, description.as_deref().unwrap_or(""))
        })?,
    )?;
    m.set(
        "fail",
        lua.create_function(|lua, err: Value| {
            let f = Failure::from_lua_value(&err).ok_or_else(|| {
                mlua::Error::runtime(format!("admin.fail: expected an error from a stdlib call, got a {}", err.type_name()))
            })?;
            super::http::failure_response(lua, &f)
        })?,
    )?;
    Ok(m)
}

/// `admin.paging(req)`: the request's `limit` and `cursor` query parameters as list options
/// (absent or empty ones left out), or nil and a 422 when `limit` is not 1..200.
fn paging(lua: &Lua) -> mlua::Result<(Value, Value)> {
    let (limit, cursor) = match lua.app_data_ref::<RequestRun>() {
        Some(run) => {
            let q = run.request.query_pairs();
            let get = |k: &str| q.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
            (get("limit"), get("cursor"))
        }
        None => (None, None),
    };
    let opts = lua.create_table()?;
    if let Some(raw) = limit {
        match raw.parse::<i64>() {
            Ok(n) if raw.bytes().all(|b| b.is_ascii_digit()) && (1..=crate::identity::users::MAX_PAGE).contains(&n) => {
                opts.set("limit", n)?
            }
            _ => {
                let resp = super::http::error_response(lua, 422, "invalid_field", "limit: must be an integer from 1 to 200")?;
                return Ok((Value::Nil, Value::UserData(resp)));
            }
        }
    }
    opts.set("cursor", cursor)?;
    Ok((Value::Table(opts), Value::Nil))
}

/// Why the request's body is refused, when it has one that is not `application/json`.
fn non_json_body(lua: &Lua) -> Option<Failure> {
    let run = lua.app_data_ref::<RequestRun>()?;
    if run.request.body.is_empty() {
        return None;
    }
    let ct = run.request.header("content-type").unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    // application/json and its structured-syntax relatives (application/merge-patch+json...):
    // none of them is a type a cross-site page may send without a preflight.
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        return None;
    }
    Some(Failure::new(
        "unsupported_media_type",
        format!("the body must be application/json (it was {:?})", if ct.is_empty() { "none" } else { ct.as_str() }),
    ))
}

/// The principal, or the failure to refuse with.
async fn authenticate(lua: &Lua, id: &Services) -> mlua::Result<Result<Value, Failure>> {
    let authorization = lua.app_data_ref::<RequestRun>().and_then(|r| r.request.header("authorization"));
    if let Some(header) = authorization {
        let Some(key) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim) else {
            return Ok(Err(Failure::new("unauthorized", "the Authorization header must be `Bearer <admin API key>`")));
        };
        return match api_key_name(id, key).await? {
            Some(name) => {
                let t = lua.create_table()?;
                t.set("kind", "api_key")?;
                t.set("actor", format!("api_key:{name}"))?;
                Ok(Ok(Value::Table(t)))
            }
            None => Ok(Err(Failure::new("unauthorized", "the admin API key is not valid"))),
        };
    }
    match session::current(lua, id).await? {
        Some((s, user)) if user.has_role("admin") => {
            let t = lua.create_table()?;
            t.set("kind", "session")?;
            t.set("actor", format!("user:{}", user.id))?;
            t.set("user", to_lua(lua, &user)?)?;
            t.set("session", session::session_table(lua, &s, None)?)?;
            Ok(Ok(Value::Table(t)))
        }
        Some(_) => Ok(Err(Failure::new("forbidden", "this account does not have the admin role"))),
        None => Ok(Err(Failure::new("unauthorized", "send Authorization: Bearer <admin API key>, or sign in as an administrator"))),
    }
}

/// The name of the admin key `key` is, comparing SHA-256 digests in constant time against the
/// configured keys, then looking the digest up among generated keys.
async fn api_key_name(id: &Services, key: &str) -> mlua::Result<Option<String>> {
    let digest = sha256_hex(key.as_bytes());
    let mut found = None;
    for (i, configured) in id.config.auth.admin_api_keys.iter().enumerate() {
        // Every configured key is compared, so the time does not tell which one matched.
        if constant_time_eq(sha256_hex(configured.expose().as_bytes()).as_bytes(), digest.as_bytes()) && found.is_none() {
            found = Some(format!("config:{i}"));
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    id.db.admin_key_name(&digest).await.map_err(mlua::Error::external)
}
