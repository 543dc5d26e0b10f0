//! `assay.password`: Argon2id PHC hashing with the server pepper, off the async workers.
//! Reference: `stdlib/password.md`.

use mlua::{Lua, Table};

use super::{identity, outcome};
use crate::lua::{Outcome, Phase};

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "hash",
        lua.create_async_function(|lua, plain: mlua::String| async move {
            let id = identity(&lua, "password.hash", PHASES)?;
            let plain = plain.to_str()?.to_string();
            if plain.len() > crate::identity::password::MAX_PASSWORD_BYTES {
                return Ok(Outcome::Fail(crate::lua::Failure::new(
                    "weak_password",
                    format!("use at most {} bytes", crate::identity::password::MAX_PASSWORD_BYTES),
                )));
            }
            outcome(id.hasher.hash(&plain).await)
        })?,
    )?;
    m.set(
        "verify",
        lua.create_async_function(|lua, (plain, phc): (mlua::String, String)| async move {
            let id = identity(&lua, "password.verify", PHASES)?;
            let plain = plain.to_str()?.to_string();
            let v = id.hasher.verify(&plain, Some(&phc)).await.map_err(mlua::Error::external)?;
            Ok((v.ok, v.needs_rehash))
        })?,
    )?;
    m.set(
        "needs_rehash",
        lua.create_function(|lua, phc: String| {
            let id = identity(lua, "password.needs_rehash", PHASES)?;
            Ok(id.hasher.needs_rehash(&phc))
        })?,
    )?;
    m.set(
        "check_policy",
        lua.create_function(|lua, plain: mlua::String| {
            let id = identity(lua, "password.check_policy", PHASES)?;
            outcome(id.hasher.check_policy(&plain.to_str()?).map(|_| true))
        })?,
    )?;
    Ok(m)
}
