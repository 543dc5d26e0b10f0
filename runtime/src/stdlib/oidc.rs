//! `assay.oidc`: the OpenID provider as flows see it. So far its registered clients; the
//! login and consent hand-off comes with the authorize endpoint. Reference: `stdlib/oidc.md`.

use mlua::{Lua, Table, Value};

use super::{identity, opt_string, outcome, page_limit, to_lua};
use crate::lua::{Outcome, Phase};

const PHASES: &[Phase] = &[Phase::Request];

fn body(lua: &Lua, function: &str, v: Value) -> mlua::Result<serde_json::Value> {
    super::json::to_json(lua, v).map_err(|e| mlua::Error::runtime(format!("{function}: {e}")))
}

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("create_client", lua.create_async_function(|lua, t: Value| async move {
        let id = identity(&lua, "oidc.create_client", PHASES)?;
        let input = body(&lua, "oidc.create_client", t)?;
        match outcome(id.create_client(&input).await)? {
            Outcome::Ok((client, secret)) => {
                let mut json = serde_json::to_value(&client).map_err(mlua::Error::external)?;
                if let (Some(obj), Some(secret)) = (json.as_object_mut(), secret) {
                    obj.insert("client_secret".into(), secret.into());
                }
                Ok(Outcome::Ok(super::json::from_json(&lua, &json)?))
            }
            Outcome::Fail(e) => Ok(Outcome::Fail(e)),
        }
    })?)?;
    m.set("get_client", lua.create_async_function(|lua, client_id: String| async move {
        let id = identity(&lua, "oidc.get_client", PHASES)?;
        match outcome(id.get_client(&client_id).await)? {
            Outcome::Ok(c) => Ok(Outcome::Ok(to_lua(&lua, &c)?)),
            Outcome::Fail(e) => Ok(Outcome::Fail(e)),
        }
    })?)?;
    m.set("update_client", lua.create_async_function(|lua, (client_id, t): (String, Value)| async move {
        let id = identity(&lua, "oidc.update_client", PHASES)?;
        let input = body(&lua, "oidc.update_client", t)?;
        match outcome(id.update_client(&client_id, &input).await)? {
            Outcome::Ok(c) => Ok(Outcome::Ok(to_lua(&lua, &c)?)),
            Outcome::Fail(e) => Ok(Outcome::Fail(e)),
        }
    })?)?;
    m.set("delete_client", lua.create_async_function(|lua, client_id: String| async move {
        let id = identity(&lua, "oidc.delete_client", PHASES)?;
        outcome(id.delete_client(&client_id).await.map(|_| true))
    })?)?;
    m.set("rotate_client_secret", lua.create_async_function(|lua, client_id: String| async move {
        let id = identity(&lua, "oidc.rotate_client_secret", PHASES)?;
        outcome(id.rotate_client_secret(&client_id).await)
    })?)?;
    m.set("list_clients", lua.create_async_function(|lua, opts: Option<Table>| async move {
        let id = identity(&lua, "oidc.list_clients", PHASES)?;
        let limit = page_limit("oidc.list_clients", opts.as_ref())?;
        let cursor = opt_string(opts.as_ref(), "cursor")?;
        match outcome(id.list_clients(limit, cursor.as_deref()).await)? {
            Outcome::Ok(page) => Ok(Outcome::Ok(to_lua(&lua, &page)?)),
            Outcome::Fail(e) => Ok(Outcome::Fail(e)),
        }
    })?)?;
    Ok(m)
}
