//! `assay.json`: encode and decode JSON. Reference: `stdlib/json.md`.

use mlua::{Lua, LuaSerdeExt, Table, Value};

use crate::lua::fail;

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("null", Value::NULL)?;
    m.set("encode", lua.create_function(|lua, (value, opts): (Value, Option<Table>)| {
        let pretty = opts.map(|o| o.get::<Option<bool>>("pretty")).transpose()?.flatten().unwrap_or(false);
        let json = match to_json(lua, value) {
            Ok(j) => j,
            Err(e) => return fail("unencodable", e),
        };
        let text = if pretty { serde_json::to_string_pretty(&json) } else { serde_json::to_string(&json) };
        text.map_or_else(|e| fail("unencodable", e), |t| Ok((Some(t), None)))
    })?)?;
    m.set("decode", lua.create_function(|lua, text: mlua::String| {
        match serde_json::from_slice::<serde_json::Value>(&text.as_bytes()) {
            Ok(v) => Ok((Some(from_json(lua, &v)?), None)),
            Err(e) => fail("bad_json", e),
        }
    })?)?;
    // `json.array(t)` marks a table as an array, so that an empty one encodes as `[]`.
    m.set("array", lua.create_function(|lua, t: Option<Table>| {
        let t = match t {
            Some(t) => t,
            None => lua.create_table()?,
        };
        t.set_metatable(Some(lua.array_metatable()));
        Ok(t)
    })?)?;
    Ok(m)
}

/// A Lua value as JSON. Tables with only 1..n keys are arrays; `json.null` is null.
pub fn to_json(lua: &Lua, value: Value) -> Result<serde_json::Value, String> {
    lua.from_value::<serde_json::Value>(value).map_err(|e| e.to_string())
}

/// JSON as a Lua value; null becomes `json.null`, arrays keep their array-ness.
pub fn from_json(lua: &Lua, value: &serde_json::Value) -> mlua::Result<Value> {
    lua.to_value_with(value, mlua::SerializeOptions::new().serialize_none_to_null(true).serialize_unit_to_null(true))
}
