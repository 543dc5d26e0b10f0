//! `assay.json`: encode and decode JSON. Reference: `stdlib/json.md`.

use mlua::{Lua, LuaSerdeExt, Table, Value};

use crate::lua::{fail, Outcome};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("null", Value::NULL)?;
    m.set(
        "encode",
        lua.create_function(|lua, (value, opts): (Value, Option<Table>)| {
            let pretty = opts.map(|o| o.get::<Option<bool>>("pretty")).transpose()?.flatten().unwrap_or(false);
            let json = match to_json(lua, value) {
                Ok(j) => j,
                Err(e) => return fail("unencodable", e),
            };
            let text = if pretty { serde_json::to_string_pretty(&json) } else { serde_json::to_string(&json) };
            text.map_or_else(|e| fail("unencodable", e), |t| Ok(Outcome::Ok(t)))
        })?,
    )?;
    m.set(
        "decode",
        lua.create_function(|lua, text: mlua::String| match serde_json::from_slice::<serde_json::Value>(&text.as_bytes()) {
            Ok(v) => Ok(Outcome::Ok(from_json(lua, &v)?)),
            Err(e) => fail("bad_json", e),
        })?,
    )?;
    // `json.array(t)` marks a table as an array, so that an empty one encodes as `[]`.
    m.set(
        "array",
        lua.create_function(|lua, t: Option<Table>| {
            let t = match t {
                Some(t) => t,
                None => lua.create_table()?,
            };
            t.set_metatable(Some(lua.array_metatable()));
            Ok(t)
        })?,
    )?;
    Ok(m)
}

/// A Lua value as JSON, refusing rather than dropping what JSON cannot say: a table is an
/// array when its keys are exactly 1..n (or it carries `json.array`'s mark), an object when
/// all its keys are strings, and an error otherwise; `json.null` is null; NaN is an error.
pub fn to_json(lua: &Lua, value: Value) -> Result<serde_json::Value, String> {
    convert(lua, &value, 0)
}

const MAX_DEPTH: usize = 64;

fn convert(lua: &Lua, value: &Value, depth: usize) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        Value::Nil => J::Null,
        Value::LightUserData(p) if p.0.is_null() => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => J::from(*i),
        Value::Number(n) => J::Number(serde_json::Number::from_f64(*n).ok_or_else(|| format!("{n} cannot be encoded (NaN or infinity)"))?),
        Value::String(s) => J::String(s.to_str().map_err(|_| "a string is not valid UTF-8".to_string())?.to_string()),
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(format!("tables nested deeper than {MAX_DEPTH} levels (a cycle?)"));
            }
            // Most tables have no metatable: only then is `json.array`'s mark looked up.
            let marked_array = t.metatable().is_some_and(|m| m == lua.array_metatable());
            let mut items: Vec<(i64, J)> = Vec::new();
            let mut fields = serde_json::Map::new();
            let mut failure: Option<String> = None;
            t.for_each(|k: Value, v: Value| {
                let v = match convert(lua, &v, depth + 1) {
                    Ok(v) => v,
                    Err(e) => {
                        failure.get_or_insert(e);
                        return Ok(());
                    }
                };
                match k {
                    Value::Integer(i) => items.push((i, v)),
                    Value::String(s) => match s.to_str() {
                        Ok(key) => {
                            fields.insert(key.to_string(), v);
                        }
                        Err(_) => {
                            failure.get_or_insert_with(|| "a key is not valid UTF-8".into());
                        }
                    },
                    other => {
                        failure.get_or_insert_with(|| format!("a {} key cannot be encoded", other.type_name()));
                    }
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            if let Some(e) = failure {
                return Err(e);
            }
            match (items.is_empty(), fields.is_empty()) {
                (true, true) if marked_array => J::Array(vec![]),
                (true, _) if !marked_array => J::Object(fields),
                (false, true) => {
                    items.sort_by_key(|(i, _)| *i);
                    if items.iter().enumerate().any(|(n, (i, _))| *i != n as i64 + 1) {
                        return Err("a sparse array cannot be encoded (fill the gaps with json.null)".into());
                    }
                    J::Array(items.into_iter().map(|(_, v)| v).collect())
                }
                _ if marked_array => return Err("a table marked as an array has named keys".into()),
                _ => return Err("a table mixes array items and named keys".into()),
            }
        }
        other => return Err(format!("a {} cannot be encoded", other.type_name())),
    })
}

/// JSON as a Lua value; null becomes `json.null`, arrays keep their array-ness.
pub fn from_json(lua: &Lua, value: &serde_json::Value) -> mlua::Result<Value> {
    lua.to_value_with(value, mlua::SerializeOptions::new().serialize_none_to_null(true).serialize_unit_to_null(true))
}
