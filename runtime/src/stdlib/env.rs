//! `assay.env` (and the `env` global of operator scripts): read environment variables.
//! Reference: `stdlib/env.md`.
//!
//! The engine's environment holds its secrets (`ASSAY_MASTER_KEY`, database passwords), and a
//! flow is code an operator may have copied from anywhere: so an operator script reads any
//! variable, while a flow reads only those named `ASSAY_FLOW_*`, which exist for flows alone.

use mlua::{Lua, Table};

use crate::lua::{phase, Phase};

/// The only variables a flow may read start with this.
pub const FLOW_PREFIX: &str = "ASSAY_FLOW_";

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("get", lua.create_function(get)?)?;
    Ok(m)
}

fn get(lua: &Lua, name: String) -> mlua::Result<Option<String>> {
    if phase(lua) != Phase::Script && !name.starts_with(FLOW_PREFIX) {
        return Err(mlua::Error::runtime(format!(
            "env.get: a flow may read only {FLOW_PREFIX}* variables, not {name:?} (operator scripts may read any)"
        )));
    }
    Ok(std::env::var(&name).ok())
}
