//! `assay.audit`: append to and query the append-only audit log. Reference: `stdlib/audit.md`.

use mlua::{Lua, Table, Value};

use super::{context, identity, opt_string, outcome, outcome_lua, page_limit};
use crate::identity::audit::{Entry, Query};
use crate::lua::{Outcome, Phase};
use crate::storage::Timestamp;

const PHASES: &[Phase] = &[Phase::Request];

pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "append",
        lua.create_async_function(|lua, t: Table| async move {
            let id = identity(&lua, "audit.append", PHASES)?;
            let action: String =
                t.get::<Option<String>>("action")?.ok_or_else(|| mlua::Error::runtime("audit.append: action is required"))?;
            let mut entry = Entry::new(&action);
            entry.actor = t.get("actor")?;
            entry.target = t.get("target")?;
            match t.get::<Value>("details")? {
                Value::Nil => {}
                v => match super::json::to_json(&lua, v) {
                    Ok(serde_json::Value::Object(map)) => entry.details = map,
                    Ok(_) => return Err(mlua::Error::runtime("audit.append: details must be a table with string keys")),
                    Err(e) => return Err(mlua::Error::runtime(format!("audit.append: details: {e}"))),
                },
            }
            outcome(id.audit.append(&context(&lua), entry).await.map(|_| true))
        })?,
    )?;
    m.set(
        "query",
        lua.create_async_function(|lua, opts: Option<Table>| async move {
            let id = identity(&lua, "audit.query", crate::lua::READ_PHASES)?;
            let time = |key: &str| -> mlua::Result<Result<Option<Timestamp>, crate::lua::Failure>> {
                Ok(match opt_string(opts.as_ref(), key)? {
                    None => Ok(None),
                    Some(s) => match chrono::DateTime::parse_from_rfc3339(&s) {
                        Ok(t) => Ok(Some(Timestamp(t.to_utc()))),
                        Err(_) => {
                            Err(crate::lua::Failure::new("invalid", format!("{key}: {s:?} is not an RFC 3339 time (2026-01-31T12:00:00Z)"))
                                .detail("field", key))
                        }
                    },
                })
            };
            let (since, until) = match (time("since")?, time("until")?) {
                (Ok(s), Ok(u)) => (s, u),
                (Err(e), _) | (_, Err(e)) => return Ok(Outcome::Fail(e)),
            };
            let cursor = match opt_string(opts.as_ref(), "cursor")? {
                None => None,
                Some(c) => match c.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        return Ok(Outcome::Fail(crate::lua::Failure::new(
                            "invalid",
                            format!("cursor: {c:?} is not a cursor from a previous page"),
                        )))
                    }
                },
            };
            let q = Query {
                actor: opt_string(opts.as_ref(), "actor")?,
                action: opt_string(opts.as_ref(), "action")?,
                since,
                until,
                limit: page_limit("audit.query", opts.as_ref())?,
                cursor,
            };
            outcome_lua(&lua, id.audit.query(&q).await)
        })?,
    )?;
    Ok(m)
}
