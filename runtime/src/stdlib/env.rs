//! `assay.env` (and the `env` global of operator scripts): read environment variables.
//! Reference: `stdlib/env.md`.

use mlua::{Lua, Table};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("get", lua.create_function(|_, name: String| Ok(std::env::var(&name).ok()))?)?;
    Ok(m)
}
