//! `assay.errors`: the error values of `nil, err`, for Lua code that fails the way the stdlib
//! does (bundled Lua modules, operators' own libraries). Reference: `stdlib/errors.md`.

use mlua::{Lua, Table, Value};

use crate::lua::Failure;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "new",
        lua.create_function(|lua, (code, message, details): (String, String, Option<Table>)| {
            if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(mlua::Error::runtime(format!("errors.new: {code:?} is not a code (lower-case letters, digits, _)")));
            }
            let mut f = Failure::new(code, message);
            if let Some(details) = details {
                let json = super::json::to_json(lua, Value::Table(details))
                    .map_err(|e| mlua::Error::runtime(format!("errors.new: details: {e}")))?;
                if let serde_json::Value::Object(map) = json {
                    for (k, v) in map {
                        if k != "code" && k != "message" {
                            f.details.insert(k, v);
                        }
                    }
                }
            }
            Ok(f)
        })?,
    )?;
    m.set(
        "is",
        lua.create_function(|_, (err, code): (Value, String)| {
            Ok(matches!(&err, Value::Table(t) if t.raw_get::<Option<String>>("code").ok().flatten().as_deref() == Some(code.as_str())))
        })?,
    )?;
    Ok(m)
}
