//! `assay.template`: render a minijinja template (bundled, or the operator's override).
//! Reference: `stdlib/template.md`.

use mlua::{Lua, Table, Value};

use crate::lua::{shared, Outcome};

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "render",
        lua.create_function(|lua, (name, ctx): (String, Option<Value>)| {
            let ctx = match ctx {
                None | Some(Value::Nil) => serde_json::Value::Object(Default::default()),
                Some(v) => super::json::to_json(lua, v).map_err(|e| mlua::Error::runtime(format!("template.render: context: {e}")))?,
            };
            match shared(lua)?.templates.render(&name, &ctx) {
                Ok(html) => Ok(Outcome::Ok(html)),
                Err(e) => Ok(Outcome::Fail(crate::lua::Failure::new(e.code(), e.message()))),
            }
        })?,
    )?;
    Ok(m)
}
