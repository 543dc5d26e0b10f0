//! `assay.log`: structured log lines from flows, carrying the request id of the request that
//! wrote them. Reference: `stdlib/log.md`.

use mlua::{Lua, Table, Value};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        m.set(
            level,
            lua.create_function(move |lua, (msg, fields): (String, Option<Value>)| {
                let fields = match fields {
                    None | Some(Value::Nil) => String::new(),
                    Some(v) => super::json::to_json(lua, v)
                        .map(|j| j.to_string())
                        .map_err(|e| mlua::Error::runtime(format!("log.{level}: fields: {e}")))?,
                };
                match level {
                    "debug" => tracing::debug!(target: "flow", fields = %fields, "{msg}"),
                    "info" => tracing::info!(target: "flow", fields = %fields, "{msg}"),
                    "warn" => tracing::warn!(target: "flow", fields = %fields, "{msg}"),
                    _ => tracing::error!(target: "flow", fields = %fields, "{msg}"),
                }
                Ok(())
            })?,
        )?;
    }
    Ok(m)
}
