//! `assay.jwks`: the provider's signing keys as public material (Lua never sees a private
//! key). Reference: `stdlib/jwks.md`.

use mlua::{Lua, Table};

use super::{identity, outcome, to_lua};
use crate::lua::{Outcome, Phase};

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "set",
        lua.create_async_function(|lua, ()| async move {
            let id = identity(&lua, "jwks.set", crate::lua::READ_PHASES)?;
            let set = id.signing.jwks().await.map_err(mlua::Error::external)?;
            super::json::from_json(&lua, &set)
        })?,
    )?;
    m.set(
        "keys",
        lua.create_async_function(|lua, ()| async move {
            let id = identity(&lua, "jwks.keys", crate::lua::READ_PHASES)?;
            let keys = id.signing.list().await.map_err(mlua::Error::external)?;
            to_lua(&lua, &keys)
        })?,
    )?;
    m.set(
        "rotate",
        lua.create_async_function(|lua, alg: Option<String>| async move {
            let id = identity(&lua, "jwks.rotate", PHASES)?;
            let alg = alg.unwrap_or_else(|| crate::oidc::keys::DEFAULT_ALG.to_string());
            match outcome(id.signing.rotate(&alg).await)? {
                Outcome::Ok(kid) => Ok(Outcome::Ok(kid)),
                Outcome::Fail(e) => Ok(Outcome::Fail(e)),
            }
        })?,
    )?;
    Ok(m)
}
