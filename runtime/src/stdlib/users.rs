//! `assay.users`: accounts (create, get, find by email, update, disable, delete, list), password
//! login, and single-use link tokens. Reference: `stdlib/users.md`.

use mlua::{Lua, Table, Value};

use super::{context, identity, opt_string, outcome, outcome_lua, page_limit};
use crate::identity::tokens::{LinkMail, Purpose};
use crate::identity::users::{NewUser, UserPatch};
use crate::lua::{Outcome, Phase};

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "create",
        lua.create_async_function(|lua, t: Table| async move {
            let id = identity(&lua, "users.create", PHASES)?;
            let new = NewUser {
                email: t.get::<Option<String>>("email")?.unwrap_or_default(),
                password: t.get("password")?,
                display_name: t.get("display_name")?,
                email_verified: t.get::<Option<bool>>("email_verified")?.unwrap_or(false),
                roles: roles(&t)?.unwrap_or_default(),
                metadata: metadata(&lua, &t)?,
            };
            let created = id.users.create(new).await;
            user_outcome(&lua, created)
        })?,
    )?;
    m.set(
        "get",
        lua.create_async_function(|lua, user_id: String| async move {
            let id = identity(&lua, "users.get", crate::lua::READ_PHASES)?;
            let found = id.users.get(&user_id).await;
            user_outcome(&lua, found)
        })?,
    )?;
    m.set(
        "find_by_email",
        lua.create_async_function(|lua, email: String| async move {
            let id = identity(&lua, "users.find_by_email", crate::lua::READ_PHASES)?;
            let found = id.users.find_by_email(&email).await;
            user_outcome(&lua, found)
        })?,
    )?;
    m.set(
        "update",
        lua.create_async_function(|lua, (user_id, t): (String, Table)| async move {
            let id = identity(&lua, "users.update", PHASES)?;
            let display_name = match t.get::<Value>("display_name")? {
                Value::Nil => None,
                Value::String(s) if s.as_bytes().is_empty() => Some(None),
                Value::String(s) => Some(Some(s.to_str()?.to_string())),
                Value::LightUserData(p) if p.0.is_null() => Some(None), // json.null clears it
                other => {
                    return Err(mlua::Error::runtime(format!("users.update: display_name must be a string, not {}", other.type_name())))
                }
            };
            let patch = UserPatch {
                email: t.get("email")?,
                display_name,
                email_verified: t.get("email_verified")?,
                roles: roles(&t)?,
                metadata: metadata(&lua, &t)?,
                disabled: t.get("disabled")?,
            };
            let updated = id.users.update(&user_id, patch).await;
            user_outcome(&lua, updated)
        })?,
    )?;
    for (name, disabled) in [("disable", true), ("enable", false)] {
        m.set(
            name,
            lua.create_async_function(move |lua, user_id: String| async move {
                let id = identity(&lua, if disabled { "users.disable" } else { "users.enable" }, PHASES)?;
                let updated = id.users.update(&user_id, UserPatch { disabled: Some(disabled), ..UserPatch::default() }).await;
                user_outcome(&lua, updated)
            })?,
        )?;
    }
    m.set(
        "delete",
        lua.create_async_function(|lua, user_id: String| async move {
            let id = identity(&lua, "users.delete", PHASES)?;
            outcome(id.users.delete(&user_id).await.map(|_| true))
        })?,
    )?;
    m.set(
        "list",
        lua.create_async_function(|lua, opts: Option<Table>| async move {
            let id = identity(&lua, "users.list", crate::lua::READ_PHASES)?;
            let limit = page_limit("users.list", opts.as_ref())?;
            let q = opt_string(opts.as_ref(), "q")?;
            let cursor = opt_string(opts.as_ref(), "cursor")?;
            outcome_lua(&lua, id.users.list(q.as_deref(), limit, cursor.as_deref()).await)
        })?,
    )?;
    m.set(
        "set_password",
        lua.create_async_function(|lua, (user_id, password): (String, String)| async move {
            let id = identity(&lua, "users.set_password", PHASES)?;
            outcome(id.users.set_password(&user_id, &password).await.map(|_| true))
        })?,
    )?;
    m.set(
        "authenticate",
        lua.create_async_function(|lua, t: Table| async move {
            let id = identity(&lua, "users.authenticate", PHASES)?;
            let email: String = t.get::<Option<String>>("email")?.unwrap_or_default();
            let password: String = t.get::<Option<String>>("password")?.unwrap_or_default();
            let ctx = context(&lua);
            let user = id.users.authenticate(&email, &password, &ctx).await;
            user_outcome(&lua, user)
        })?,
    )?;
    m.set(
        "issue_token",
        lua.create_async_function(|lua, (user_id, purpose, ttl): (String, String, Option<u64>)| async move {
            let id = identity(&lua, "users.issue_token", PHASES)?;
            let purpose = parse_purpose("users.issue_token", &purpose)?;
            outcome(id.tokens.issue(&user_id, purpose, ttl).await)
        })?,
    )?;
    // Token and mail after the response, for a user or for nobody: the request does the
    // same work either way (recovery must not tell which addresses have accounts by timing).
    m.set(
        "mail_link",
        lua.create_function(|lua, (user_id, t): (Option<String>, Table)| {
            let id = identity(lua, "users.mail_link", PHASES)?;
            let purpose = parse_purpose("users.mail_link", &t.get::<Option<String>>("purpose")?.unwrap_or_default())?;
            let need = |k: &str| -> mlua::Result<String> {
                t.get::<Option<String>>(k)?.ok_or_else(|| mlua::Error::runtime(format!("users.mail_link: {k} is required")))
            };
            let link =
                LinkMail { purpose, ttl_secs: t.get("ttl_secs")?, url: need("url")?, subject: need("subject")?, text: need("text")? };
            if !link.text.contains("{link}") {
                return Err(mlua::Error::runtime("users.mail_link: text must contain {link}"));
            }
            if !(link.url.starts_with("https://") || link.url.starts_with("http://")) {
                return Err(mlua::Error::runtime("users.mail_link: url must be an absolute http(s) URL"));
            }
            tokio::spawn(async move {
                let Some(user_id) = user_id else { return };
                if let Err(e) = id.tokens.mail_link(&user_id, &link).await {
                    tracing::error!(user = %user_id, purpose = link.purpose.as_str(), error = %e, "link mail was not sent");
                }
            });
            Ok(true)
        })?,
    )?;
    m.set(
        "consume_token",
        lua.create_async_function(|lua, (token, purpose): (String, String)| async move {
            let id = identity(&lua, "users.consume_token", PHASES)?;
            let purpose = parse_purpose("users.consume_token", &purpose)?;
            let user = id.tokens.consume(&token, purpose).await;
            user_outcome(&lua, user)
        })?,
    )?;
    Ok(m)
}

fn user_outcome(lua: &Lua, r: Result<crate::identity::users::User, crate::identity::IdentityError>) -> mlua::Result<Outcome<Value>> {
    outcome_lua(lua, r)
}

fn parse_purpose(function: &str, s: &str) -> mlua::Result<Purpose> {
    Purpose::parse(s).ok_or_else(|| mlua::Error::runtime(format!("{function}: purpose must be \"recovery\" or \"verify\", not {s:?}")))
}

/// `t.roles` as a list of strings (a table of strings; raises on anything else).
fn roles(t: &Table) -> mlua::Result<Option<Vec<String>>> {
    match t.get::<Value>("roles")? {
        Value::Nil => Ok(None),
        Value::Table(list) => {
            let mut out = Vec::new();
            for v in list.sequence_values::<String>() {
                out.push(v.map_err(|_| mlua::Error::runtime("roles must be a list of strings"))?);
            }
            Ok(Some(out))
        }
        other => Err(mlua::Error::runtime(format!("roles must be a list of strings, not {}", other.type_name()))),
    }
}

fn metadata(lua: &Lua, t: &Table) -> mlua::Result<Option<serde_json::Value>> {
    match t.get::<Value>("metadata")? {
        Value::Nil => Ok(None),
        v => super::json::to_json(lua, v).map(Some).map_err(|e| mlua::Error::runtime(format!("metadata: {e}"))),
    }
}
